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


def _factory(name) -> Callable:
    if callable(name):
        return name
    _load_plugins()
    if not isinstance(name, str):
        raise TypeError(
            f"optimizer must be a name ({', '.join(sorted(OPTIMIZERS))}) or a factory "
            f"f(params, lr=..., weight_decay=...), got {type(name).__name__}"
        )
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid names: {', '.join(sorted(OPTIMIZERS))}")
    return OPTIMIZERS[name]


def _kwargs(name, factory, lr, weight_decay, options) -> dict:
    """The keywords for ``factory``, after checking that it takes them and that lr is valid."""
    sig = inspect.signature(factory)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    if not accepts_any:
        unknown = [k for k in options if k not in sig.parameters]
        if unknown:
            valid = [p for p in sig.parameters if p not in ("params", "lr")]
            raise ValueError(
                f"optimizer {getattr(name, '__name__', name)!r} does not take {unknown}; valid options: {valid}"
            )
    if isinstance(lr, bool) or not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    kwargs = dict(options, lr=lr)
    if weight_decay is not None:
        kwargs["weight_decay"] = weight_decay
    return kwargs


def check_optimizer(name, *, lr: float, weight_decay: float | None, **options) -> None:
    """Raise now (before a fit changes anything) if ``make_optimizer`` would fail: an unknown
    name, an option the factory does not take, or (for the built-in optimizers, which are
    built once on a dummy parameter to run their own checks) a bad option value such as
    SAM's ``rho`` or an option of its base optimizer."""
    factory = _factory(name)
    kwargs = _kwargs(name, factory, lr, weight_decay, options)
    if isinstance(name, str) and factory.__module__.startswith("workbench."):
        factory([torch.nn.Parameter(torch.zeros(1))], **kwargs)


def make_optimizer(name, params, *, lr: float, weight_decay: float | None, **options):
    """Build the optimizer ``name`` (or call a user factory ``name(params, lr=..., ...)``)."""
    factory = _factory(name)
    return factory(params, **_kwargs(name, factory, lr, weight_decay, options))


def _load_plugins():
    """Import optimizer modules that register themselves (SAM, AWP) on first use."""
    import importlib

    for mod in ("workbench.training.sam", "workbench.training.awp"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as err:
            if err.name != mod:
                raise
