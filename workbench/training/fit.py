"""``fit``: one plain training loop; callbacks observe it.

The loop (minGPT's shape): draw a batch, ``loss, logs = method.loss(model, batch)``, back-prop,
step, record, call the callbacks, evaluate every ``eval_every`` steps. The phases are named
helpers a reader can take one at a time: ``check_inputs``/``check_fit_args`` (``checks.py``:
every argument is checked before anything changes), ``_setup`` (the method sizes itself, the
optimizer and schedule are built), ``LastGoodState`` and ``OptimizerStep`` (``step.py``: the
state restored on divergence or interrupt, and one update with SAM's closure), ``_record``
(logging). Guarantees:

* **Reproducible**: the batch order comes from a generator seeded by ``seed`` and everything
  random inside the method (augmentations, dropout) draws from a forked global RNG seeded by
  ``seed``; the caller's RNG state is restored afterwards. Same seed and thread count twice on
  CPU give the same history and weights (``History.config["threads"]`` says which count ran).
* **Nothing lost**: a non-finite loss stops the fit at that step and restores the parameters
  and buffers (model and method) to the last state that gave a finite loss; KeyboardInterrupt
  (the notebook's stop button) ends the fit cleanly, restoring that state only if it struck in
  the middle of an update. The history is kept and returned in every case.
* **Modes**: model and method train in train mode; afterwards every submodule is back in the
  mode it had (``workbench._modes``), also when the fit raises.
* **Devices**: the model's device is the truth. CPU data is moved there once; data on another
  accelerator raises. The method (its buffers and parameters) is moved to the model's device.
* **Threads**: ``threads="auto"`` (default) picks torch's intra-op thread count for a CPU fit by
  the rule of ``workbench._threads`` (measured by ``benchmarks/bench_threads.py``): one thread
  when a step's work is small (two threads lost up to 10x there when another process held the
  other core), one per free core otherwise, never more than torch's current setting.
  ``threads=k`` uses k threads, ``None`` leaves torch's setting alone. The setting is restored
  afterwards; the choice and its reason are in ``History.config["threads"]`` and
  ``History.threads_note``.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from .._device import model_device
from .._modes import eval_mode, train_mode
from .._threads import auto_threads, num_threads
from ..data.dataset import Dataset
from .callbacks import Callback, FitState, ProgressBar
from .checks import SCHEDULES, FitConfig, check_fit_args, check_inputs
from .history import History
from .optim import make_optimizer
from .step import LastGoodState, OptimizerStep

__all__ = ["fit", "SCHEDULES", "FitConfig"]


def fit(
    model: nn.Module, method, data: Dataset, *,
    steps: int | None = None, epochs: int | None = None, lr: float = 1e-3, batch_size: int = 256,
    optimizer="adam", weight_decay: float | None = None, schedule: str | None = None,
    warmup: int = 0, grad_clip: float | None = None, val: Dataset | None = None,
    eval_every: int | None = None, seed: int = 0, callbacks: Sequence[Callback] = (),
    progress: bool = True, threads: int | str | None = "auto", **optimizer_options,
) -> History:
    """Train ``model`` with ``method`` on ``data``; returns a ``History``.

    Parameters
    ----------
    steps / epochs: length of training (give one; default 1000 steps). An epoch is
        ``len(data) // batch_size`` steps (the ragged tail of each shuffle is dropped).
    optimizer: ``"adam"``, ``"adamw"``, ``"sgd"``, ``"sam"`` (with ``rho=``, ``base=``), ``"awp"``
        (adversarial weight perturbation, with ``gamma=``, ``base=``) or a factory ``f(params, lr=..., weight_decay=...)``; extra keywords (``momentum=``,
        ``rho=``...) go to it. ``weight_decay=None`` keeps the optimizer's default.
    schedule: learning-rate schedule ``None``/``"constant"``, ``"cosine"`` or ``"linear"``
        decay to 0, after ``warmup`` linear warm-up steps (``0 <= warmup < steps``).
    val, eval_every: evaluate ``method.evaluate(model, val)`` every ``eval_every`` steps
        (default: 10 times per fit) and at the end.
    callbacks: a list of observers (see ``workbench.training.callbacks``); a progress bar is
        added unless ``progress=False``.
    threads: ``"auto"`` (torch threads chosen from the model's size and the machine's load),
        an int, or None (leave torch's setting); restored afterwards.
    """
    method, data, val = check_inputs(model, method, data, val)
    cfg, callbacks = check_fit_args(
        n_train=len(data), has_val=val is not None, steps=steps, epochs=epochs, lr=lr,
        batch_size=batch_size, optimizer=optimizer, weight_decay=weight_decay,
        schedule=schedule, warmup=warmup, grad_clip=grad_clip, eval_every=eval_every, seed=seed,
        callbacks=callbacks, progress=progress, threads=threads, optimizer_options=optimizer_options,
    )
    opt, sched, params = _setup(model, method, data, cfg)
    history = History(config=cfg.history_config(len(data)))
    cbs = [*callbacks, ProgressBar()] if progress else list(callbacks)
    state = FitState(model=model, method=method, optimizer=opt, history=history, total_steps=cfg.steps)
    guard, update = LastGoodState(model, method), OptimizerStep(model, method, opt, params, cfg.grad_clip)
    device = model_device(model)
    with _fit_context(cfg, model, method, data, history):
        batches = _batches(data, cfg.batch_size, cfg.seed)
        _notify(cbs, "on_fit_start", state)
        t0 = time.perf_counter()
        try:
            for step in range(1, cfg.steps + 1):
                state.batch_index, batch = next(batches)
                state.batch = batch
                _notify(cbs, "on_batch_start", state)
                opt.zero_grad(set_to_none=True)
                loss, logs = method.loss(model, batch)
                if not torch.isfinite(loss.detach()):
                    guard.restore()
                    _end(history, "diverged", step, loss=float(loss.detach()))
                    break
                with guard.update():
                    update.step(loss, batch)
                    sched.step()
                state.step, state.last = step, _record(loss, logs, sched.get_last_lr()[0], device)
                history.log_step(step, state.last)
                _notify(cbs, "on_step_end", state)
                if cfg.eval_every is not None and (step % cfg.eval_every == 0 or step == cfg.steps):
                    metrics = _evaluate(model, method, val)
                    history.log_eval(step, metrics)
                    _notify(cbs, "on_eval", state, metrics)
                if state.stop:
                    _end(history, "stopped", step)
                    break
            else:
                _end(history, "completed", cfg.steps)
        except KeyboardInterrupt:  # guard.update() restored the state if it struck mid-update
            _end(history, "interrupted", history.last_step)
        finally:
            history.elapsed = time.perf_counter() - t0
            _notify(cbs, "on_fit_end", state)
    if history.status == "diverged":
        warnings.warn(history.message, RuntimeWarning, stacklevel=2)
    return history


# ---------------------------------------------------------------------- phases
def _setup(model: nn.Module, method: nn.Module, data: Dataset, cfg: FitConfig):
    """``(optimizer, schedule, params)``. A method may size its own modules from the model and
    data (e.g. a projection head on top of ``model.features``) before the optimizer sees its
    parameters; it is moved to the model's device."""
    if callable(getattr(method, "setup", None)):
        method.setup(model, data)
    method.to(model_device(model))
    params: list[nn.Parameter] = []
    seen = set()
    for p in [*model.parameters(), *method.parameters()]:
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            params.append(p)
    if not params:
        raise ValueError("nothing to train: the model and method have no parameters with requires_grad=True")
    opt = make_optimizer(cfg.optimizer, params, lr=cfg.lr, weight_decay=cfg.weight_decay,
                         **cfg.optimizer_options)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg.schedule, cfg.steps, cfg.warmup))
    return opt, sched, params


@contextlib.contextmanager
def _fit_context(cfg: FitConfig, model, method, data, history) -> Iterator[None]:
    """For the loop: the global RNG forked and seeded with ``cfg.seed``, the thread count, and
    train mode; the caller's RNG, thread setting and every submodule's mode come back after."""
    device = model_device(model)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        n_threads = _choose_threads(cfg, model, data, history)
        with num_threads(n_threads), train_mode(model, method):
            torch.manual_seed(cfg.seed)
            yield


def _choose_threads(cfg: FitConfig, model: nn.Module, data: Dataset, history: History) -> int | None:
    """The thread count for the fit (None: leave torch's setting), recorded in the history."""
    device = model_device(model)
    if cfg.threads is None:
        n, note = None, f"left as found: torch's setting ({_n_threads(torch.get_num_threads())})"
    elif cfg.threads != "auto":
        n, note = cfg.threads, f"threads={cfg.threads} (given)"
    elif device.type != "cpu":
        n, note = None, f"auto: torch's setting left ({_n_threads(torch.get_num_threads())}; model on {device})"
    else:
        allowed = torch.get_num_threads()
        if allowed <= 1:  # nothing to choose: skip counting the model's FLOPs
            n, note = 1, "auto: 1 thread (torch's setting is 1)"
        else:
            choice = auto_threads(model, data.x[:2], min(cfg.batch_size, len(data)))
            n, note = choice.n, choice.reason
    history.config["threads"] = torch.get_num_threads() if n is None else n
    history.threads_note = note
    return n


def _n_threads(n: int) -> str:
    return f"{n} thread" + ("s" if n != 1 else "")


def _record(loss: torch.Tensor, logs: dict, lr: float, device) -> dict[str, float]:
    """One step's record: the loss, the method's logs (one device sync for all) and the lr."""
    keys = ["loss", *logs]
    vals = torch.stack(
        [loss.detach().float()]
        + [torch.as_tensor(v, dtype=torch.float32, device=device).detach() for v in logs.values()]
    ).tolist()
    record = dict(zip(keys, vals))
    record["lr"] = lr
    return record


def _end(history: History, status: str, step: int, loss: float | None = None) -> None:
    """Set how the fit ended and the message that says so."""
    history.status = status
    history.message = {
        "completed": f"{step} steps",
        "stopped": f"stopped by a callback after step {step}",
        "interrupted": f"interrupted after {step} completed steps; the model holds the state after "
        "the last completed step",
        "diverged": f"the loss became {loss} at step {step}; training stopped and the model was "
        f"restored to its state before step {step} (last finite loss). Try a smaller lr, "
        "grad_clip=1.0, or check the data",
    }[status]


def _notify(callbacks, hook: str, *args) -> None:
    for cb in callbacks:
        f = getattr(cb, hook, None)
        if f is not None:
            f(*args)


def _evaluate(model, method, val) -> dict[str, float]:
    with eval_mode(model, method):
        return method.evaluate(model, val)


# ---------------------------------------------------------------------- data and schedule
def _batches(data: Dataset, batch_size: int, seed: int) -> Iterator[tuple]:
    """Endless ``(index, (x, y))``: shuffled batches and their indices into ``data``, epoch after
    epoch, from one seeded generator."""
    g = torch.Generator().manual_seed(seed)
    n = len(data)
    bs = min(batch_size, n)
    while True:
        order = torch.randperm(n, generator=g).to(data.device)
        for i in range(0, n - bs + 1, bs):  # drop the ragged tail: equal batch sizes
            idx = order[i : i + bs]
            yield idx, (data.x[idx], (None if data.y is None else data.y[idx]))


def _lr_lambda(schedule, total: int, warmup: int):
    def f(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if schedule in (None, "constant"):
            return 1.0
        p = min(1.0, (step - warmup) / max(1, total - warmup))
        if schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * p))
        return 1.0 - p  # linear

    return f
