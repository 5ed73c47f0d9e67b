"""The numbers a run is listed with: metrics taken from its History, and metrics a user adds.

``final_metrics(history)`` gives ``val_<k>`` (the last evaluation's value of each metric) and
``train_<k>`` (the mean of the last 10 logged steps; one batch is noisy), the learning rate left
out. ``check_metrics`` turns a user's ``metrics=`` into ``{name: float}`` or says what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from ..training.history import History

__all__ = ["final_metrics", "check_metrics"]


def final_metrics(history: History, last: int = 10) -> dict[str, float]:
    """The numbers a run is listed with.

    ``val_<k>``: the last evaluation's value of each metric. ``train_<k>``: the mean of the last
    ``last`` steps' logged values (a single batch is noisy); the learning rate is left out.
    """
    out: dict[str, float] = {}
    if history.records:
        recent = history.records[-last:]
        keys = {k for r in recent for k in r if k != "lr"}
        for k in sorted(keys, key=lambda k: (k != "loss", k)):
            arr = np.asarray([r[k] for r in recent if k in r], dtype=float)
            arr = arr[np.isfinite(arr)]
            if arr.size:
                out[f"train_{k}"] = float(arr.mean())
    if history.evals:
        for k, v in history.evals[-1].items():
            if k != "step":
                out[f"val_{k}"] = float(v)
    return out


def check_metrics(metrics: Mapping | None) -> dict[str, float]:
    """``metrics`` (None, or a dict name -> number or one-element tensor) as ``{name: float}``."""
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a dict name -> number, got {type(metrics).__name__}")
    out = {}
    for k, v in metrics.items():
        if not isinstance(k, str) or not k:
            raise TypeError(f"metric names must be non-empty strings, got {k!r}")
        if isinstance(v, torch.Tensor):
            if v.numel() != 1:
                raise ValueError(f"metric {k!r} must be a single number, got a tensor of shape {tuple(v.shape)}")
            v = v.item()
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            raise TypeError(f"metric {k!r} must be a number, got {type(v).__name__}") from None
    return out
