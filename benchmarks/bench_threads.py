"""When does a second torch thread pay for training? 1 vs N threads, quiet and with the other
cores busy, for models from ~1 MFLOP to ~7 GFLOP per step.

Run:  python benchmarks/bench_threads.py [--rounds 3] [--quick] [--only 0,5] [--json out.json]

Each case trains with ``wb.fit(..., threads=k)`` (what a user runs) for enough steps that a run
takes ~``--target`` seconds at the slower of the two thread counts, and reports the median time
per step over ``--rounds`` rounds, 1 and N threads interleaved within each round. Conditions:

* ``quiet``: nothing added. The machine may be shared, so the cores other processes use during
  each run are measured from /proc/stat ("others"); before each quiet run the script waits (up
  to ``--max-wait`` s) until they use fewer than ``--wait-quiet`` cores, and redoes once a run
  in which they used more.
* ``busy``: a subprocess spinning ``while True: pass`` on each of the other N-1 cores.
* ``bursty``: the same spinners at a 50 % duty cycle (5 ms on, 5 ms off), like a browser or
  another kernel.

``MFLOP/step`` is ``wb._threads.step_flops`` (forward + backward matmul/conv FLOPs of one
batch), the quantity the ``threads="auto"`` rule reads. ``speedup`` = time at 1 thread / time
at N threads (> 1: N threads faster).

Measured here (2-core box shared with other sessions, torch 2.13 CPU, 2026-12, ``--rounds 3
--target 0.5``; load average 3.1-8.9 during the run, so "others" is printed beside every
figure; ms/step medians):

| case | batch | MFLOP/step | quiet 1 / 2 thr | speedup | others | busy 1 / 2 thr | speedup | others | bursty 1 / 2 thr | speedup | others |
|---|---|---|---|---|---|---|---|---|---|---|---|
| MLP 64-32-10 | 64 | 0.909 | 0.898 / 0.907 * | 0.99x | 0.03 | 0.578 / 3.71 | 0.16x | 0.75 | 0.833 / 1.34 | 0.62x | 0.40 |
| MLP 64-128-128-10 | 64 | 9.93 | 0.748 / 0.815 * | 0.92x | 0.01 | 5.36 / 55.8 | 0.10x | 1.57 | 4.97 / 25.9 | 0.19x | 1.52 |
| MLP 64-128-128-10 | 256 | 39.7 | 2.04 / 1.72 | 1.19x | 0.06 | 1.23 / 5.49 | 0.22x | 0.80 | 1.61 / 2.28 | 0.71x | 0.63 |
| MLP 64-128-128-10 | 1024 | 159 | 3.94 / 29.6 | 0.13x | 0.51 | 20.5 / 107 | 0.19x | 1.61 | 16.3 / 74.9 | 0.22x | 1.57 |
| MLP 64-256-256-10 | 256 | 130 | 8.7 / 48 | 0.18x | 1.40 | 2.78 / 3.8 | 0.73x | 0.58 | 2.75 / 23.7 | 0.12x | 1.05 |
| MLP 64-512-512-10 | 256 | 461 | 7.92 / 5.17 | 1.53x | 0.01 | 17.2 / 22.8 | 0.76x | 1.06 | 7.85 / 8.22 | 0.96x | 0.43 |
| MLP 64-1024-1024-10 | 256 | 1730 | 30.8 / 19.2 | 1.60x | 0.01 | 65.7 / 438 | 0.15x | 1.44 | 28.9 / 27.1 | 1.07x | 0.42 |
| MLP 64-1024-1024-10 | 1024 | 6910 | 92.4 / 50.5 | 1.83x | 0.53 | 488 / 1180 | 0.41x | 1.77 | 413 / 650 | 0.64x | 1.75 |
| ConvNet w16 8x8 | 128 | 179 | 18.9 / 238 | 0.08x | 1.61 | 28.6 / 510 | 0.06x | 1.74 | 33.8 / 367 | 0.09x | 1.75 |
| ConvNet w32 8x8 | 256 | 1390 | 21.2 / 17.5 ** | 1.21x | 0.18 | 129 / 804 | 0.16x | 1.79 | 114 / 1420 | 0.08x | 1.77 |

(*) quiet figures of these rows from earlier runs of this script in quieter minutes (the full
run's were taken with others at 1.0-1.3 cores: 0.03x and 1.02x); (**) from a ``--quick
--rounds 1`` run (the full run's: 0.12x with others at 1.69).

What the rule in ``workbench/_threads.py`` takes from it:

* With other processes on the second core (busy, or quiet rows whose "others" were >= 0.5),
  two threads lost in every case, 0.06x-0.76x, up to 7 GFLOP/step. Only the machine's load
  can allow a second thread, never the model's size alone.
* On a quiet machine (others <= 0.06) two threads gained nothing below ~10 MFLOP/step
  (0.92-0.99x), 1.19x at 40 MFLOP and 1.5-1.8x from 461 MFLOP on. The gain below the
  threshold is small and the loss when a load appears mid-fit is large (0.1-0.2x), so
  ``SMALL_STEP_FLOPS`` = 200 MFLOP sits in the unresolved gap between 40 and 461 MFLOP
  (the 130-179 MFLOP cases never met a quiet minute here).
* With others at ~0.4 core (bursty) the large models broke even (0.96x, 1.07x) and the small
  ones lost: a second thread needs others below a quarter core (``FREE_SLACK`` = 0.25).

End to end, the README's quick start (64-128-128-10 MLP, batch 256, 1000 steps with
evaluation) on this box while JupyterLab, Chromium, kernels and other sessions' jobs ran
beside it (load average 10-12): ``threads="auto"`` (1 thread) 12.5 / 9.9 / 8.9 s, torch's
default of 2 threads 191 / 216 / 175 s (median 9.9 s vs 191 s, same accuracy 0.9638).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

import workbench as wb
from workbench._threads import available_cores, busy_cores, step_flops

SPIN = "import time\nwhile True:\n    pass\n"
BURST = (
    "import time\n"
    "while True:\n"
    "    t = time.perf_counter()\n"
    "    while time.perf_counter() - t < 0.005:\n"
    "        pass\n"
    "    time.sleep(0.005)\n"
)


def cases(quick: bool):
    """(label, model factory, batch size, flattened input?)"""
    mlp = wb.models.MLP
    out = [
        ("MLP 64-32-10", lambda: mlp(64, (32,), 10, seed=0), 64),
        ("MLP 64-128-128-10 (README)", lambda: mlp(64, (128, 128), 10, seed=0), 64),
        ("MLP 64-128-128-10 (README)", lambda: mlp(64, (128, 128), 10, seed=0), 256),
        ("MLP 64-128-128-10 (README)", lambda: mlp(64, (128, 128), 10, seed=0), 1024),
        ("MLP 64-256-256-10", lambda: mlp(64, (256, 256), 10, seed=0), 256),
        ("MLP 64-512-512-10", lambda: mlp(64, (512, 512), 10, seed=0), 256),
        ("MLP 64-1024-1024-10", lambda: mlp(64, (1024, 1024), 10, seed=0), 256),
        ("MLP 64-1024-1024-10", lambda: mlp(64, (1024, 1024), 10, seed=0), 1024),
        ("ConvNet w16 8x8", lambda: wb.models.ConvNet((1, 8, 8), 10, width=16, seed=0), 128),
        ("ConvNet w32 8x8", lambda: wb.models.ConvNet((1, 8, 8), 10, width=32, seed=0), 256),
    ]
    if quick:
        out = [out[i] for i in (0, 2, 5, 7, 9)]
    return out


def time_fit(make, data, batch, steps, threads) -> tuple[float, float]:
    """(seconds per step, cores used by other processes meanwhile)."""
    model = make()
    before = _jiffies()
    cpu0, t0 = time.process_time(), time.perf_counter()
    hist = wb.fit(model, wb.methods.CrossEntropy(), data, steps=steps, batch_size=batch, lr=1e-3,
                  threads=threads, seed=0, progress=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    after = _jiffies()
    others = None
    if before is not None and after is not None:
        busy_all = sum((a[0] - b[0]) / max(1, a[1] - b[1]) for b, a in zip(before, after))
        others = max(0.0, busy_all - cpu / wall)
    return hist.elapsed / steps, others


def wait_quiet(limit: float, max_wait: float = 20.0) -> float:
    """Wait (up to ``max_wait`` s) until other processes use less than ``limit`` cores in a
    0.5 s sample; returns the seconds waited (the machine is shared)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_wait:
        b = busy_cores(0.5)
        if b is None or sum(b) < limit:
            break
    return time.perf_counter() - t0


def _jiffies():
    from workbench._threads import _cpu_times

    t = _cpu_times()
    return None if t is None else [t[c] for c in sorted(t)]


class Load:
    """Start ``n`` spinner subprocesses (``script``) for a ``with`` block."""

    def __init__(self, script: str | None, n: int):
        self.script, self.n, self.procs = script, n, []

    def __enter__(self):
        if self.script:
            self.procs = [subprocess.Popen([sys.executable, "-c", self.script]) for _ in range(self.n)]
            time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait()
        self.procs = []
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="N (default: torch's default)")
    ap.add_argument("--target", type=float, default=0.6,
                    help="seconds per run (the slower thread count's, in each condition)")
    ap.add_argument("--conditions", default="quiet,busy,bursty")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default=None, help="comma-separated case numbers (0-based) to run")
    ap.add_argument("--json", default=None)
    ap.add_argument("--wait-quiet", type=float, default=0.3,
                    help="before each quiet run, wait until other processes use fewer cores (0: off)")
    ap.add_argument("--max-wait", type=float, default=20.0, help="seconds to wait for quiet, at most")
    args = ap.parse_args()

    n_threads = args.threads or torch.get_num_threads()
    cores = available_cores()
    ds = wb.data.load("digits")
    data = wb.data.Dataset.from_arrays(ds.flat, ds.y)
    print(f"torch {torch.__version__}, {cores} usable cores, comparing 1 vs {n_threads} threads; "
          f"load average {os.getloadavg()}; per-core load now {busy_cores(0.5)}")

    rows = []
    todo = cases(args.quick)
    if args.only:
        todo = [todo[int(i)] for i in args.only.split(",")]
    for label, make, batch in todo:
        model = make()
        flops = step_flops(model, data.x[:2], batch)[0]
        # calibrate the number of steps at 1 thread, quiet
        t_probe = min(time_fit(make, data, batch, 20, 1)[0] for _ in range(2))
        steps = int(min(2000, max(20, args.target / t_probe)))
        row = dict(case=label, batch=batch, mflop=flops / 1e6, steps=steps)
        for cond in args.conditions.split(","):
            script = {"quiet": None, "busy": SPIN, "bursty": BURST}[cond]
            t1, tn, others = [], [], []
            with Load(script, max(1, cores - 1)):
                # under load N threads can be 10-100x slower: keep each run near --target seconds
                probe = max(time_fit(make, data, batch, 10, k)[0] for k in (1, n_threads))
                n_steps = int(min(steps, max(10, args.target / probe)))
                for r in range(args.rounds):
                    order = (1, n_threads) if r % 2 == 0 else (n_threads, 1)
                    for k in order:
                        for _attempt in range(2):  # a quiet run that others disturbed is redone once
                            if cond == "quiet" and args.wait_quiet:
                                wait_quiet(args.wait_quiet, args.max_wait)
                            t, o = time_fit(make, data, batch, n_steps, k)
                            if cond != "quiet" or not args.wait_quiet or o is None or o < args.wait_quiet:
                                break
                        (t1 if k == 1 else tn).append(t)
                        if o is not None:
                            others.append(o)
            row[cond] = dict(
                t1_ms=1e3 * statistics.median(t1), tn_ms=1e3 * statistics.median(tn),
                speedup=statistics.median(t1) / statistics.median(tn),
                others=statistics.median(others) if others else float("nan"),
            )
        rows.append(row)
        print(_line(row, args.conditions.split(",")), flush=True)

    print()
    print(f"1 vs {n_threads} threads, median ms/step over {args.rounds} rounds; 'others' = cores "
          f"busy with other processes during the runs; load average at the end {os.getloadavg()}")
    conds = args.conditions.split(",")
    head = "| case | batch | MFLOP/step | " + " | ".join(
        f"{c} 1 thr | {c} {n_threads} thr | {c} speedup | {c} others" for c in conds) + " |"
    print(head)
    print("|" + "---|" * (3 + 4 * len(conds)))
    for row in rows:
        print(_line(row, conds))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(rows=rows, threads=n_threads, cores=cores, load=os.getloadavg()), f, indent=1)


def _line(row, conds) -> str:
    cells = [row["case"], str(row["batch"]), f"{row['mflop']:.3g}"]
    for c in conds:
        d = row[c]
        cells += [f"{d['t1_ms']:.3g}", f"{d['tn_ms']:.3g}", f"{d['speedup']:.2f}x", f"{d['others']:.2f}"]
    return "| " + " | ".join(cells) + " |"


if __name__ == "__main__":
    main()
