"""Analyses: pure functions over (model, method, data) returning frozen results on the CPU.

Never imports plotly or ipywidgets, never changes the model (weights, buffers, mode).
"""

from .classification import Predictions, predict
from .embedding import PROJECTIONS, Projection, embed, project

__all__ = ["embed", "project", "Projection", "PROJECTIONS", "predict", "Predictions"]
