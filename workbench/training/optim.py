"""Optimizer choice for ``fit``: a registry of factories, open for extension.

A factory is ``factory(params, *, lr, weight_decay, **options) -> torch.optim.Optimizer``.
``fit`` forwards its extra keyword arguments as ``options`` and each factory says which it
accepts. An optimizer that needs to re-evaluate the loss inside its step (SAM's second pass)
sets ``needs_closure = True``; ``fit`` then calls ``optimizer.step(closure)``, where
``closure()`` zeroes the gradients, recomputes the loss on the same batch, back-propagates and
returns the loss.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch

OPTIMIZERS: dict[str, Callable] = {}


def register_optimizer(name: str, factory: Callable | None = None):
    """Register ``factory`` under ``name`` (usable as a decorator)."""

    def deco(f):
        OPTIMIZERS[name] = f
        return f

    return deco(factory) if factory is not None else deco


@register_optimizer("sgd")
def _sgd(params, *, lr, weight_decay=0.0, momentum=0.9, nesterov=False):
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)


@register_optimizer("adam")
def _adam(params, *, lr, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8):
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, betas=tuple(betas), eps=eps)


@register_optimizer("adamw")
def _adamw(params, *, lr, weight_decay=0.01, betas=(0.9, 0.999), eps=1e-8):
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=tuple(betas), eps=eps)


def make_optimizer(name, params, *, lr: float, weight_decay: float | None, **options):
    """Build the optimizer ``name`` (or call a user factory ``name(params, lr=..., ...)``)."""
    if callable(name):
        factory = name
    else:
        _load_plugins()
        if not isinstance(name, str) or name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name!r}; valid names: {', '.join(sorted(OPTIMIZERS))}")
        factory = OPTIMIZERS[name]
    sig = inspect.signature(factory)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    if not accepts_any:
        unknown = [k for k in options if k not in sig.parameters]
        if unknown:
            valid = [p for p in sig.parameters if p not in ("params", "lr")]
            raise ValueError(
                f"optimizer {getattr(name, '__name__', name)!r} does not take {unknown}; valid options: {valid}"
            )
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    kwargs = dict(options, lr=lr)
    if weight_decay is not None:
        kwargs["weight_decay"] = weight_decay
    return factory(params, **kwargs)


def _load_plugins():
    """Import optimizer modules that register themselves (e.g. SAM) on first use."""
    import importlib

    for mod in ("workbench.training.sam",):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as err:
            if err.name != mod:
                raise
