"""workbench: a notebook-first workbench for the science of representation learning.

Light at import: only torch and the core layers (data, models, methods, training) load
eagerly. ``analyses``, ``ood``, ``recipes``, ``runs``, ``viz`` and ``widgets`` load on first use, so
``import workbench`` never pulls in plotly, umap or the Jupyter stack.
"""

from __future__ import annotations

import importlib

from . import data, methods, models, training
from ._device import pick_device
from .checkpoint import load_checkpoint, save_checkpoint
from .training import History, fit

__version__ = "0.1.0"

_LAZY = ("analyses", "ood", "recipes", "runs", "teach", "viz", "widgets")

__all__ = [
    "pick_device",
    "fit",
    "History",
    "save_checkpoint",
    "load_checkpoint",
    "data",
    "models",
    "methods",
    "training",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
