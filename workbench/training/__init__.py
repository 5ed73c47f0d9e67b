"""Training: ``fit`` (a plain loop), ``History``, callbacks and the optimizer registry."""

from .callbacks import Callback, FitState, ProgressBar, Snapshots, SnapshotSeries, StopAfter
from .fit import fit
from .forgetting import ForgettingEvents
from .history import History
from .optim import OPTIMIZERS, make_optimizer, register_optimizer

__all__ = [
    "fit", "History", "Callback", "FitState", "ProgressBar", "Snapshots", "SnapshotSeries",
    "StopAfter", "ForgettingEvents", "OPTIMIZERS", "register_optimizer", "make_optimizer",
]
