"""``fit``'s argument checks: every bad argument raises before anything is changed.

``check_inputs`` checks the model, method and data (and moves CPU data to the model's device);
``check_fit_args`` checks the options and returns them as a frozen ``FitConfig``. Errors say
what was wrong and what to pass instead: a wrong type raises ``TypeError``, a wrong value
``ValueError`` (an unknown name lists the valid ones).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .._checks import check_bool, check_choice, check_int, check_number, check_seed
from .._device import model_device, same_device_type
from .._threads import check_threads
from ..data.dataset import Dataset
from .optim import check_optimizer

SCHEDULES = (None, "constant", "cosine", "linear")
DEFAULT_STEPS = 1000
HOOKS = ("on_fit_start", "on_batch_start", "on_step_end", "on_eval", "on_fit_end")


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
def _count(value, name: str, *, min: int = 1) -> int:
    """An int >= ``min`` ("a positive int" for 1); an integer-valued float (``steps=1e3``) is
    refused with a hint (``pass steps=1000``)."""
    hint = f"pass {name}={int(value)}" if isinstance(value, float) and value.is_integer() else ""
    value = check_int(value, name, hint=hint)
    if value < min:
        raise ValueError(f"{name} must be {'a positive int' if min == 1 else f'an int >= {min}'}, got {value}")
    return value


def _steps(steps, epochs, n_train: int, batch_size: int) -> int:
    if steps is not None and epochs is not None:
        raise ValueError("give steps or epochs, not both")
    if epochs is not None:
        epochs = _count(epochs, "epochs")
        return epochs * max(1, n_train // batch_size)
    if steps is None:
        return DEFAULT_STEPS
    return _count(steps, "steps")


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
    batch_size = _count(batch_size, "batch_size")
    total = _steps(steps, epochs, n_train, batch_size)
    lr = check_number(lr, "lr", min=0, min_open=True, hint="e.g. lr=1e-3")
    if weight_decay is not None:
        weight_decay = check_number(weight_decay, "weight_decay", min=0,
                                    hint="or None to keep the optimizer's default")
    if grad_clip is not None:
        grad_clip = check_number(grad_clip, "grad_clip", min=0, min_open=True,
                                 hint="the largest gradient norm, e.g. grad_clip=1.0, or None")
    check_choice(schedule, "schedule", SCHEDULES)
    warmup = _count(warmup, "warmup", min=0)
    if warmup and warmup >= total:
        raise ValueError(
            f"warmup ({warmup} steps) must be shorter than the fit ({total} steps); "
            f"pass warmup < {total} (0 = no warm-up)"
        )
    if not has_val and eval_every is not None:
        raise ValueError("eval_every needs a validation set; pass val=... (e.g. the test split)")
    if eval_every is not None:
        eval_every = _count(eval_every, "eval_every")
    elif has_val:
        eval_every = max(1, total // 10)
    seed = check_seed(seed)
    if seed >= 2**64:
        raise ValueError(f"seed must be below 2**64 (torch's generator), got {seed}")
    callbacks = _callbacks(callbacks)
    check_bool(progress, "progress")
    check_threads(threads)
    check_optimizer(optimizer, lr=lr, weight_decay=weight_decay, **optimizer_options)
    cfg = FitConfig(
        steps=total, lr=lr, batch_size=batch_size, optimizer=optimizer, weight_decay=weight_decay,
        schedule=schedule, warmup=warmup, grad_clip=grad_clip, eval_every=eval_every, seed=seed,
        threads=threads, optimizer_options=dict(optimizer_options),
    )
    return cfg, callbacks
