"""Static figure builders: result -> plotly Figure, pure functions (needs plotly)."""

from .classification import confusion_matrix
from .data import samples
from .embedding import embedding
from .training import loss_curves

__all__ = ["loss_curves", "confusion_matrix", "embedding", "samples"]
