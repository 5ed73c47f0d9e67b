"""Argument checks shared by the analyses' public entry points (landscapes, curvature).

Each raises ``TypeError`` for a value of the wrong kind and ``ValueError`` for one out of range,
with a message that names the argument, what it got, and what to pass instead.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

__all__ = ["check_int", "check_number", "check_model", "check_seed", "check_choice", "check_labels",
           "needs_labels"]


def check_int(value, name: str, *, minimum: int = 1, none: str | None = None, example: int | None = None):
    """``value`` as an int ``>= minimum`` (bools refused: ``steps=True`` is a mistake, not 1).
    ``none``: what None means, when None is allowed (e.g. ``"all samples"``)."""
    if value is None and none is not None:
        return None
    want = f"an int >= {minimum}" + (f" or None ({none})" if none is not None else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        eg = f"; e.g. {name}={example}" if example is not None else ""
        raise TypeError(f"{name} must be {want}, got {type(value).__name__} {value!r}{eg}")
    if value < minimum:
        raise ValueError(f"{name} must be {want}, got {value!r}")
    return int(value)


def check_number(value, name: str, *, positive: bool = True, below: float | None = None) -> float:
    """A finite real number (``> 0`` when ``positive``; ``< below`` when given)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not math.isfinite(v) or (positive and v <= 0) or (below is not None and v >= below):
        rng = "a positive number" if positive else "a finite number"
        if below is not None:
            rng += f" below {below:g}"
        raise ValueError(f"{name} must be {rng}, got {value!r}")
    return v


def check_model(model, name: str = "model") -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")
    return model


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} {seed!r}; e.g. seed=0")
    return int(seed)


def check_choice(value, name: str, valid, meaning: str = ""):
    """``value`` if it is one of ``valid`` (compared with ==, types checked first)."""
    ok = any(type(value) is type(v) and value == v for v in valid)
    if not ok:
        listed = ", ".join(repr(v) for v in valid)
        raise ValueError(f"unknown {name} {value!r}; valid: {listed}{' (' + meaning + ')' if meaning else ''}")
    return value


def needs_labels(method) -> bool:
    """Whether the method's loss needs labels (``Method.needs_labels``; True for objects that do
    not say, as ``fit`` assumes)."""
    from ..methods.base import Method

    return bool(method.needs_labels) if isinstance(method, Method) else True


def check_labels(method, y: torch.Tensor | None, outputs: torch.Tensor | None, *, reads_outputs: bool,
                 what: str = "data") -> None:
    """Labels the method's loss can use, checked before any evaluation.

    * the method needs labels and there are none -> ValueError (pass a labelled Dataset);
    * the method needs labels and some are -1 (unknown/OOD by convention) -> ValueError: the
      loss is undefined there (pass ``data.subset(data.y >= 0)``);
    * the loss reads the model's outputs (``loss_from_outputs``) and they are a classifier's
      logits ``(N, C)`` with integer labels -> labels must lie in ``[0, C)``.
    """
    name = type(method).__name__
    if y is None:
        if needs_labels(method):
            raise ValueError(
                f"{what} has no labels, but {name}'s loss needs them; pass a labelled wb.data.Dataset "
                "(or an (x, y) pair), or a method that works without labels"
            )
        return
    if not needs_labels(method) or y.is_floating_point() or y.ndim != 1:
        return
    if bool((y < 0).any()):
        n_bad = int((y < 0).sum())
        raise ValueError(
            f"{what} has {n_bad} samples labelled {int(y.min())} (unknown/OOD), where {name}'s loss is "
            "undefined; pass in-distribution samples only, e.g. data.subset(data.y >= 0)"
        )
    if reads_outputs and outputs is not None and outputs.ndim == 2 and outputs.shape[1] > 1:
        c = int(outputs.shape[1])
        if int(y.max()) >= c:
            raise ValueError(
                f"{what} has labels up to {int(y.max())} but the model has {c} outputs (classes 0..{c - 1}); "
                f"pass data whose labels are below {c}, or a model with out_dim={int(y.max()) + 1}"
            )
