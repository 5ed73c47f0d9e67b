"""``fit``'s argument checks: every bad argument raises before anything is changed.

``check_inputs`` checks the model, method and data (and moves CPU data to the model's device);
``check_fit_args`` checks the options and returns them as a frozen ``FitConfig``. Errors say
what was wrong and what to pass instead: a wrong type raises ``TypeError``, a wrong value
``ValueError`` (an unknown name lists the valid ones).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .._device import model_device, same_device_type
from .._threads import check_threads
from ..data.dataset import Dataset
from .optim import check_optimizer

SCHEDULES = (None, "constant", "cosine", "linear")
DEFAULT_STEPS = 1000
HOOKS = ("on_fit_start", "on_step_end", "on_eval", "on_fit_end")


@dataclass(frozen=True)
class FitConfig:
    """``fit``'s options after checking; ``steps`` is the total number of steps (also when
    the length was given in epochs) and ``eval_every`` is filled in when ``val`` is given."""

    steps: int
    lr: float
    batch_size: int
    optimizer: str | Callable
    weight_decay: float | None
    schedule: str | None
    warmup: int
    grad_clip: float | None
    eval_every: int | None
    seed: int
    threads: int | str | None
    optimizer_options: dict[str, Any] = field(default_factory=dict)

    @property
    def optimizer_name(self) -> str:
        if isinstance(self.optimizer, str):
            return self.optimizer
        return getattr(self.optimizer, "__name__", "custom")

    def history_config(self, n_train: int) -> dict[str, Any]:
        """The JSON-able record ``History.config`` keeps (the thread count is added by fit)."""
        plain = (int, float, str, bool, type(None))
        return dict(
            steps=self.steps, lr=self.lr, batch_size=self.batch_size, optimizer=self.optimizer_name,
            weight_decay=self.weight_decay, schedule=self.schedule, warmup=self.warmup,
            grad_clip=self.grad_clip, eval_every=self.eval_every, seed=self.seed, n_train=n_train,
            **{k: v for k, v in self.optimizer_options.items() if isinstance(v, plain)},
        )


# ---------------------------------------------------------------------- model, method, data
def check_inputs(model, method, data, val):
    """``(method, data, val)``: the method resolved from a name, the data on the model's device."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    method = _resolve_method(method)
    device = model_device(model)
    data = _place(data, device, "data")
    _check_finite_data(data, "data")
    if getattr(method, "needs_labels", True) and data.y is None:
        raise ValueError(
            f"{type(method).__name__} needs labels but the data has none; pass a labelled Dataset"
        )
    if val is not None:
        val = _place(val, device, "val")
        _check_finite_data(val, "val")
    return method, data, val


def _resolve_method(method):
    from .. import methods as _methods

    if isinstance(method, str):
        return _methods.create(method)
    if not (isinstance(method, nn.Module) and callable(getattr(method, "loss", None))):
        raise TypeError(
            f"method must be a workbench method (an nn.Module with loss(model, batch)), "
            f"got {type(method).__name__}; e.g. wb.methods.CrossEntropy()"
        )
    return method


def _place(data, device: torch.device, what: str) -> Dataset:
    if not isinstance(data, Dataset):
        raise TypeError(
            f"{what} must be a wb.data.Dataset, got {type(data).__name__}; "
            "wrap arrays with wb.data.Dataset.from_arrays(x, y)"
        )
    if same_device_type(data.device, device):
        return data
    if data.device.type == "cpu":
        return data.to(device)
    raise ValueError(
        f"the model is on {device} but the {what} is on {data.device}; "
        f"pass {what}.to({str(device)!r}) or keep the data on the CPU"
    )


def _check_finite_data(data: Dataset, what: str):
    if not torch.isfinite(data.x).all():
        raise ValueError(f"{what} contains NaN or inf inputs; clean them before training")


# ---------------------------------------------------------------------- options
def _int(value, name: str, *, minimum: int | None = 1, hint: str = "") -> int:
    """``value`` as an int: TypeError for bools, floats and other types, ValueError below
    ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            hint = hint or f"; pass {name}={int(value)}"
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__}){hint}")
    value = int(value)
    if minimum is not None and value < minimum:
        what = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value}{hint}")
    return value


def _real(value, name: str, *, positive: bool, none_ok: bool, hint: str = "") -> float | None:
    """``value`` as a finite float (> 0 if ``positive`` else >= 0), or None if allowed."""
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        alt = " or None" if none_ok else ""
        raise TypeError(f"{name} must be a number{alt}, got {value!r} ({type(value).__name__}){hint}")
    v = float(value)
    if not math.isfinite(v) or (v <= 0 if positive else v < 0):
        need = "a finite number > 0" if positive else "a finite number >= 0"
        raise ValueError(f"{name} must be {need}, got {value!r}{hint}")
    return value if type(value) in (int, float) else v  # numpy scalars become floats


def _steps(steps, epochs, n_train: int, batch_size: int) -> int:
    if steps is not None and epochs is not None:
        raise ValueError("give steps or epochs, not both")
    if epochs is not None:
        epochs = _int(epochs, "epochs")
        return epochs * max(1, n_train // batch_size)
    if steps is None:
        return DEFAULT_STEPS
    return _int(steps, "steps")


def _callbacks(callbacks) -> tuple:
    if any(callable(getattr(callbacks, h, None)) for h in HOOKS):
        raise TypeError(
            f"callbacks must be a list of callbacks, got one callback {callbacks!r}; "
            "pass callbacks=[cb]"
        )
    if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Sequence):
        raise TypeError(
            f"callbacks must be a list of callbacks, got {type(callbacks).__name__}; "
            "e.g. callbacks=[wb.training.StopAfter(100)]"
        )
    for cb in callbacks:
        if not any(callable(getattr(cb, h, None)) for h in HOOKS):
            raise TypeError(f"{cb!r} is not a callback (it has none of {'/'.join(HOOKS)})")
    return tuple(callbacks)


def check_fit_args(
    *, n_train: int, has_val: bool, steps, epochs, lr, batch_size, optimizer, weight_decay,
    schedule, warmup, grad_clip, eval_every, seed, callbacks, progress, threads,
    optimizer_options: dict[str, Any],
) -> tuple[FitConfig, tuple]:
    """Check ``fit``'s options; returns the ``FitConfig`` and the checked callbacks."""
    batch_size = _int(batch_size, "batch_size")
    total = _steps(steps, epochs, n_train, batch_size)
    lr = _real(lr, "lr", positive=True, none_ok=False, hint="; e.g. lr=1e-3")
    weight_decay = _real(weight_decay, "weight_decay", positive=False, none_ok=True,
                         hint="; None keeps the optimizer's default")
    grad_clip = _real(grad_clip, "grad_clip", positive=True, none_ok=True,
                      hint="; the largest gradient norm, e.g. grad_clip=1.0, or None")
    if not (schedule is None or isinstance(schedule, str)) or schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; valid: None, 'constant', 'cosine', 'linear'")
    warmup = _int(warmup, "warmup", minimum=0, hint="")
    if warmup and warmup >= total:
        raise ValueError(
            f"warmup ({warmup} steps) must be shorter than the fit ({total} steps); "
            f"pass warmup < {total} (0 = no warm-up)"
        )
    if not has_val and eval_every is not None:
        raise ValueError("eval_every needs a validation set; pass val=... (e.g. the test split)")
    if eval_every is not None:
        eval_every = _int(eval_every, "eval_every")
    elif has_val:
        eval_every = max(1, total // 10)
    seed = _int(seed, "seed", minimum=None)
    if not -(2**63) <= seed < 2**64:
        raise ValueError(f"seed must fit in 64 bits, got {seed}")
    callbacks = _callbacks(callbacks)
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, got {progress!r}")
    check_threads(threads)
    check_optimizer(optimizer, lr=lr, weight_decay=weight_decay, **optimizer_options)
    cfg = FitConfig(
        steps=total, lr=lr, batch_size=batch_size, optimizer=optimizer, weight_decay=weight_decay,
        schedule=schedule, warmup=warmup, grad_clip=grad_clip, eval_every=eval_every, seed=seed,
        threads=threads, optimizer_options=dict(optimizer_options),
    )
    return cfg, callbacks
