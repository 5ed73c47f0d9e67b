"""Torch's intra-op thread count: a context manager, and the rule behind ``threads="auto"``.

    with num_threads(1):          # torch.set_num_threads(1) for the body, the old setting after
        ...

    choice = auto_threads(model, x[:1], batch_size=256)   # ThreadChoice(n=1, reason="auto: ...")

Why a rule. Torch starts with one intra-op thread per physical core. A parallel region (a matmul,
an element-wise op over many elements) is split across those threads and ends at a barrier, so
an op is only as fast as its slowest thread. Small ops gain little from a second thread, and when
another process (a browser, another kernel, a test runner) holds a core, the thread that lands
there waits for a time slice at every barrier: training a small model then runs several times
*slower* with two threads than with one. ``benchmarks/bench_threads.py`` measures 1 vs N threads
for models from 1 MFLOP to 7 GFLOP per step, on a quiet machine and with the other core busy;
its table is in the benchmark's docstring. The rule ``choose_threads`` reads off it:

1. **Never more than torch allows.** ``auto`` only lowers the count: a user's
   ``torch.set_num_threads(1)`` or ``OMP_NUM_THREADS=1`` (tests, CI, the notebooks) stays.
2. **Small work per step: one thread.** Below ``SMALL_STEP_FLOPS`` (forward + backward matmul
   FLOPs of one batch) a second thread gained nothing up to 10 MFLOP and 1.19x at 40 MFLOP on
   the quiet 2-core machine, but lost 4-10x (0.10-0.26x) with the other core busy; from
   461 MFLOP on it gained 1.5-1.8x.
3. **Larger work: one thread per free core.** How many cores other processes use is sampled
   from ``/proc/stat`` for ``SAMPLE_S`` seconds (Linux; ``psutil`` elsewhere, else the machine
   counts as quiet); ``floor(cores - used + FREE_SLACK)`` threads, at least one. With a core
   busy two threads lost even at 7 GFLOP/step (0.41x); with 0.4 of a core used by others
   (a bursty load) large models broke even (0.96-1.07x).

The measurement is taken once, when ``fit`` starts: a load that starts later is not seen. The
choice is recorded in ``History.config["threads"]`` and ``History.threads_note``; pass
``threads=k`` to ``fit`` to reproduce a run bit for bit (the thread count changes the order of
floating-point sums, so weights after 1 and 2 threads differ in the last bits).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from ._checks import check_int
from ._modes import eval_mode

# forward + backward matmul/conv FLOPs of one batch below which one thread is used (see the
# module docstring and benchmarks/bench_threads.py for the measurements behind it)
SMALL_STEP_FLOPS = 200e6
# threads = free cores, where free = cores - (cores used by other processes) + FREE_SLACK, rounded
# down: with 2 cores, others must use less than 0.25 of a core for a second thread
FREE_SLACK = 0.25
# how long the load of the machine is sampled (/proc/stat counts in 10 ms ticks)
SAMPLE_S = 0.1


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """``torch.set_num_threads(n)`` for the duration, then torch's previous setting (also when
    the body raises). ``None`` leaves the setting alone."""
    if n is None:
        yield
        return
    if isinstance(n, str):
        raise TypeError(f"num_threads takes a thread count or None, got {n!r}; choose one with auto_threads()")
    check_threads(n)
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def check_threads(threads) -> None:
    """Raise unless ``threads`` is ``"auto"``, None or a positive int."""
    if threads is None or (isinstance(threads, str) and threads == "auto"):
        return
    if isinstance(threads, str):
        raise ValueError(f"unknown threads option {threads!r}; pass 'auto', None or a positive int")
    check_int(threads, "threads", min=1, hint="or 'auto', or None to leave torch's setting")


def available_cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _cpu_times() -> dict[int, tuple[int, int]] | None:
    """``{cpu: (busy, total)}`` jiffies from /proc/stat for the CPUs this process may use."""
    try:
        with open("/proc/stat") as f:
            lines = f.readlines()
    except OSError:
        return None
    try:
        allowed = os.sched_getaffinity(0)
    except AttributeError:
        allowed = None
    out = {}
    for line in lines:
        name, *vals = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        cpu = int(name[3:])
        if allowed is not None and cpu not in allowed:
            continue
        v = [int(t) for t in vals[:8]]
        idle = v[3] + v[4]  # idle + iowait
        out[cpu] = (sum(v) - idle, sum(v))
    return out


def busy_cores(sample_s: float = SAMPLE_S) -> list[float] | None:
    """How busy each usable core is (0..1) over the next ``sample_s`` seconds, this process
    included (it sleeps meanwhile); None when the platform does not say."""
    a = _cpu_times()
    if a is not None:
        time.sleep(sample_s)
        b = _cpu_times() or {}
        return [
            (b[c][0] - a[c][0]) / max(1, b[c][1] - a[c][1]) for c in sorted(a) if c in b
        ]
    try:
        import psutil
    except ImportError:
        return None
    return [p / 100 for p in psutil.cpu_percent(interval=sample_s, percpu=True)]


def step_flops(model: nn.Module, x: torch.Tensor, batch_size: int) -> tuple[float, str]:
    """Matmul/convolution FLOPs of one forward and backward pass over a batch:
    ``3 x`` the forward FLOPs of ``model(x)`` per sample ``x batch_size`` (the backward pass
    costs about twice the forward). Counted with torch's ``FlopCounterMode`` on ``x`` (one or a
    few samples) in eval mode without gradients, so the model's buffers, modes and the random
    generator are left as they were. Returns ``(flops, how)``; a model the counter cannot run
    falls back to ``6 x parameters x batch_size`` (exact for dense layers), a model with lazy
    modules that a forward would initialise to NaN (the rule then picks one thread)."""
    from torch.nn.parameter import UninitializedParameter
    from torch.utils.flop_counter import FlopCounterMode

    if any(isinstance(p, UninitializedParameter) for p in model.parameters()):
        return math.nan, "not counted: lazy modules not initialised yet"  # a forward would do it
    try:
        with eval_mode(model), torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
        per_sample = counter.get_total_flops() / max(1, x.shape[0])
        return 3.0 * per_sample * batch_size, "counted"
    except Exception:  # any model error: the estimate below is good enough for the rule
        n = sum(p.numel() for p in model.parameters())
        return 6.0 * n * batch_size, "estimated from the parameter count"


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count ``auto`` chose and why (``reason`` is what History shows)."""

    n: int
    reason: str
    flops: float | None = None
    busy: tuple[float, ...] | None = None

    def __repr__(self) -> str:
        return f"ThreadChoice(n={self.n}, reason={self.reason!r})"


def _fmt_flops(f: float) -> str:
    return f"{f / 1e9:.3g} GFLOP" if f >= 1e9 else f"{f / 1e6:.3g} MFLOP"


def choose_threads(
    flops: float,
    *,
    allowed: int | None = None,
    busy: list[float] | None = None,
    small: float = SMALL_STEP_FLOPS,
) -> ThreadChoice:
    """The rule (module docstring): ``flops`` of one step, ``allowed`` threads (default torch's
    current setting), ``busy`` per-core load of the machine (None: unknown, taken as quiet)."""
    allowed = torch.get_num_threads() if allowed is None else allowed
    work = f"{_fmt_flops(flops)}/step"
    if allowed <= 1:
        return ThreadChoice(1, f"auto: 1 thread (torch's setting is 1; {work})", flops)
    if math.isnan(flops):
        return ThreadChoice(1, "auto: 1 thread (work per step unknown)", flops)
    if not flops >= small:
        return ThreadChoice(1, f"auto: 1 thread (small model: {work} < {_fmt_flops(small)})", flops)
    if busy is None:
        return ThreadChoice(allowed, f"auto: {allowed} threads ({work}; machine load unknown)", flops)
    others = sum(busy)
    n = max(1, min(allowed, math.floor(len(busy) - others + FREE_SLACK)))
    noun = "thread" if n == 1 else "threads"
    return ThreadChoice(
        n, f"auto: {n} {noun} ({work}; other processes use {others:.1f} of {len(busy)} cores)",
        flops, tuple(busy),
    )


def auto_threads(model: nn.Module, x: torch.Tensor, batch_size: int) -> ThreadChoice:
    """``choose_threads`` for training ``model`` on batches of ``batch_size`` samples like
    ``x`` (one or a few samples suffice): counts the FLOPs, and samples the machine's load
    only when the model is large enough for it to matter."""
    allowed = torch.get_num_threads()
    flops, how = step_flops(model, x, batch_size)
    busy = None
    if allowed > 1 and flops >= SMALL_STEP_FLOPS:
        busy = busy_cores()
    choice = choose_threads(flops, allowed=allowed, busy=busy)
    if how != "counted":
        choice = ThreadChoice(choice.n, f"{choice.reason[:-1]}, {how})", flops, choice.busy)
    return choice


__all__ = [
    "num_threads", "check_threads", "choose_threads", "auto_threads", "step_flops", "busy_cores",
    "available_cores", "ThreadChoice", "SMALL_STEP_FLOPS", "FREE_SLACK",
]
