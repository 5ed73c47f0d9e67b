"""``fit``: one plain training loop; callbacks observe it.

The loop (minGPT's shape): draw a batch, ``loss, logs = method.loss(model, batch)``, back-prop,
step, record, call the callbacks, evaluate every ``eval_every`` steps. Guarantees:

* **Reproducible**: the batch order comes from a generator seeded by ``seed`` and everything
  random inside the method (augmentations, dropout) draws from a forked global RNG seeded by
  ``seed``; the caller's RNG state is restored afterwards. Same seed twice on CPU gives the same
  history and weights.
* **Nothing lost**: a non-finite loss stops the fit at that step and restores the parameters
  and buffers (model and method) to the last state that gave a finite loss; KeyboardInterrupt
  (the notebook's stop button) ends the fit cleanly, restoring that state only if it struck in
  the middle of an update. The history is kept and returned in every case.
* **Devices**: the model's device is the truth. CPU data is moved there once; data on another
  accelerator raises. The method (its buffers and parameters) is moved to the model's device.
* **Threads**: ``threads=k`` sets torch's intra-op threads for the duration of the fit and
  restores the setting afterwards; the default leaves torch's setting (and OMP_NUM_THREADS)
  alone. Measured on the 2-core CI box, 1000 steps of a 64-128-128-10 MLP on digits: 1.75 s
  with one thread and 0.93 s with two when the machine is quiet, but small models with two
  threads slowed 10x or more when another process was busy on the other core. On a shared
  machine pass ``threads=1``; tests and CI run with ``OMP_NUM_THREADS=1``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from .._device import model_device, same_device_type
from ..data.dataset import Dataset
from .callbacks import Callback, FitState, ProgressBar
from .history import History
from .optim import make_optimizer

SCHEDULES = (None, "constant", "cosine", "linear")


def _batches(data: Dataset, batch_size: int, seed: int) -> Iterator[tuple]:
    """Endless shuffled batches, epoch after epoch, from one seeded generator."""
    g = torch.Generator().manual_seed(seed)
    n = len(data)
    bs = min(batch_size, n)
    while True:
        order = torch.randperm(n, generator=g).to(data.device)
        for i in range(0, n - bs + 1, bs):  # drop the ragged tail: equal batch sizes
            idx = order[i : i + bs]
            yield data.x[idx], (None if data.y is None else data.y[idx])


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


def fit(
    model: nn.Module,
    method,
    data: Dataset,
    *,
    steps: int | None = None,
    epochs: int | None = None,
    lr: float = 1e-3,
    batch_size: int = 256,
    optimizer="adam",
    weight_decay: float | None = None,
    schedule: str | None = None,
    warmup: int = 0,
    grad_clip: float | None = None,
    val: Dataset | None = None,
    eval_every: int | None = None,
    seed: int = 0,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    threads: int | None = None,
    **optimizer_options,
) -> History:
    """Train ``model`` with ``method`` on ``data``; returns a ``History``.

    Parameters
    ----------
    steps / epochs: length of training (give one; default 1000 steps). An epoch is
        ``len(data) // batch_size`` steps (the ragged tail of each shuffle is dropped).
    optimizer: ``"adam"``, ``"adamw"``, ``"sgd"``, ``"sam"`` (with ``rho=``, ``base=``) or a
        factory ``f(params, lr=..., weight_decay=...)``; extra keywords (``momentum=``,
        ``rho=``...) go to it. ``weight_decay=None`` keeps the optimizer's default.
    schedule: learning-rate schedule ``None``/``"constant"``, ``"cosine"`` or ``"linear"``
        decay to 0, after ``warmup`` linear warm-up steps.
    val, eval_every: evaluate ``method.evaluate(model, val)`` every ``eval_every`` steps
        (default: 10 times per fit) and at the end.
    callbacks: observers (see ``workbench.training.callbacks``); a progress bar is added unless
        ``progress=False``.
    threads: intra-op threads during the fit (restored afterwards); None leaves torch's setting.
    """
    # ---------------------------------------------------------------- validate
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
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if steps is not None and epochs is not None:
        raise ValueError("give steps or epochs, not both")
    per_epoch = max(1, len(data) // batch_size)
    if epochs is not None:
        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive int, got {epochs!r}")
        total = epochs * per_epoch
    else:
        total = 1000 if steps is None else steps
        if not isinstance(total, int) or isinstance(total, bool) or total < 1:
            raise ValueError(f"steps must be a positive int, got {steps!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; valid: None, 'constant', 'cosine', 'linear'")
    if grad_clip is not None and not grad_clip > 0:
        raise ValueError(f"grad_clip must be positive or None, got {grad_clip!r}")
    if val is None and eval_every is not None:
        raise ValueError("eval_every needs a validation set; pass val=... (e.g. the test split)")
    if val is not None and eval_every is None:
        eval_every = max(1, total // 10)
    if eval_every is not None and (not isinstance(eval_every, int) or eval_every < 1):
        raise ValueError(f"eval_every must be a positive int, got {eval_every!r}")
    for cb in callbacks:
        if not any(callable(getattr(cb, h, None)) for h in ("on_fit_start", "on_step_end", "on_eval", "on_fit_end")):
            raise TypeError(f"{cb!r} is not a callback (it has none of on_fit_start/on_step_end/on_eval/on_fit_end)")

    # a method may size its own modules from the model and data (e.g. a projection head on
    # top of model.features) before the optimizer sees its parameters
    if callable(getattr(method, "setup", None)):
        method.setup(model, data)
    method.to(device)
    params: list[torch.nn.Parameter] = []
    seen = set()
    for p in [*model.parameters(), *method.parameters()]:
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            params.append(p)
    if not params:
        raise ValueError("nothing to train: the model and method have no parameters with requires_grad=True")
    opt = make_optimizer(optimizer, params, lr=lr, weight_decay=weight_decay, **optimizer_options)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(schedule, total, warmup))
    needs_closure = bool(getattr(opt, "needs_closure", False))

    history = History(
        config=dict(
            steps=total, lr=lr, batch_size=batch_size,
            optimizer=optimizer if isinstance(optimizer, str) else getattr(optimizer, "__name__", "custom"),
            weight_decay=weight_decay, schedule=schedule, warmup=warmup, grad_clip=grad_clip,
            eval_every=eval_every, seed=seed, n_train=len(data),
            **{k: v for k, v in optimizer_options.items() if isinstance(v, (int, float, str, bool, type(None)))},
        )
    )
    cbs = list(callbacks)
    if progress:
        cbs.append(ProgressBar())
    state = FitState(model=model, method=method, optimizer=opt, history=history, total_steps=total)

    # state kept to restore on divergence / interrupt: parameters and buffers of both modules
    tracked = [t for t in [*model.parameters(), *model.buffers(), *method.parameters(), *method.buffers()]]
    tracked = list({id(t): t for t in tracked}.values())
    good = [t.detach().clone() for t in tracked]

    def save_good():
        with torch.no_grad():
            torch._foreach_copy_(good, [t.detach() for t in tracked])

    def restore_good():
        with torch.no_grad():
            for t, g in zip(tracked, good):
                t.copy_(g)

    # the re-evaluation inside a closure (SAM's second pass) must not update buffers: BatchNorm
    # running statistics and method state keep the clean first pass's values, as the official
    # SAM code does
    closure_buffers = list({id(b): b for b in [*model.buffers(), *method.buffers()]}.values())

    was_training = (model.training, method.training)
    old_threads = torch.get_num_threads()
    if threads is not None and not (isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1):
        raise ValueError(f"threads must be a positive int or None, got {threads!r}")
    use_threads = threads

    rng_devices = [device] if device.type == "cuda" else []
    t0 = time.perf_counter()
    in_update = False
    try:
        if use_threads is not None:
            torch.set_num_threads(use_threads)
        with torch.random.fork_rng(devices=rng_devices):
            torch.manual_seed(seed)
            batches = _batches(data, batch_size, seed)
            model.train()
            method.train()
            for cb in cbs:
                _call(cb, "on_fit_start", state)
            try:
                for step in range(1, total + 1):
                    x, y = next(batches)
                    opt.zero_grad(set_to_none=True)
                    loss, logs = method.loss(model, (x, y))
                    if not torch.isfinite(loss.detach()):
                        restore_good()
                        history.status = "diverged"
                        history.message = (
                            f"the loss became {float(loss.detach())} at step {step}; training stopped and the "
                            f"model was restored to its state before step {step} (last finite loss). "
                            "Try a smaller lr, grad_clip=1.0, or check the data"
                        )
                        break
                    save_good()
                    in_update = True
                    loss.backward()
                    if grad_clip is not None:
                        torch.nn.utils.clip_grad_norm_(params, grad_clip)
                    if needs_closure:

                        def closure(x=x, y=y, bufs=closure_buffers):
                            opt.zero_grad(set_to_none=True)
                            kept = [b.detach().clone() for b in bufs]
                            l2, _ = method.loss(model, (x, y))
                            l2.backward()
                            with torch.no_grad():
                                for b, k in zip(bufs, kept):
                                    b.copy_(k)
                            if grad_clip is not None:
                                torch.nn.utils.clip_grad_norm_(params, grad_clip)
                            return l2

                        opt.step(closure)
                    else:
                        opt.step()
                    sched.step()
                    in_update = False
                    keys = ["loss", *logs]
                    vals = torch.stack(
                        [loss.detach().float()]
                        + [torch.as_tensor(v, dtype=torch.float32, device=device).detach() for v in logs.values()]
                    ).tolist()
                    record = dict(zip(keys, vals))
                    record["lr"] = sched.get_last_lr()[0]
                    history.log_step(step, record)
                    state.step, state.last = step, record
                    for cb in cbs:
                        _call(cb, "on_step_end", state)
                    if eval_every is not None and (step % eval_every == 0 or step == total):
                        metrics = _evaluate(model, method, val)
                        history.log_eval(step, metrics)
                        for cb in cbs:
                            _call(cb, "on_eval", state, metrics)
                    if state.stop:
                        history.status = "stopped"
                        history.message = f"stopped by a callback after step {step}"
                        break
                else:
                    history.status = "completed"
                    history.message = f"{total} steps"
            except KeyboardInterrupt:
                if in_update:
                    restore_good()
                history.status = "interrupted"
                history.message = (
                    f"interrupted after {history.last_step} completed steps; the model holds the "
                    "state after the last completed step"
                )
            finally:
                history.elapsed = time.perf_counter() - t0
                for cb in cbs:
                    _call(cb, "on_fit_end", state)
    finally:
        model.train(was_training[0])
        method.train(was_training[1])
        if use_threads is not None:
            torch.set_num_threads(old_threads)
    if history.status == "diverged":
        import warnings

        warnings.warn(history.message, RuntimeWarning, stacklevel=2)
    return history


def _call(cb, hook: str, *args):
    f = getattr(cb, hook, None)
    if f is not None:
        f(*args)


def _evaluate(model, method, val) -> dict[str, float]:
    if val is None:
        return {}
    was = (model.training, method.training)
    model.eval()
    method.eval()
    try:
        return method.evaluate(model, val)
    finally:
        model.train(was[0])
        method.train(was[1])
