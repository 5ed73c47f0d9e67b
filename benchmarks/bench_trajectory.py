"""What recording a whole reverse process costs: ``sample_trajectory`` with and without recording.

The same 1000-step DDPM run on 10 000 2-D points (a ``TimeMLP(dim=2)`` denoiser, ~74k parameters,
sinusoidal input features), once recording x_t and x̂0 at every step (``record_every=1``:
1001 frames, ~160 MB of float32) and once recording nothing but x_T and the samples
(``record_every=None``). Runs alternate (plain, recorded, plain, ...) so a busy machine
hurts both alike; the script prints every run, the medians of wall and CPU time, and the ratio
recorded / plain (the target is at most 1.2).

    OMP_NUM_THREADS=1 python benchmarks/bench_trajectory.py [--n 10000] [--steps 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import workbench as wb


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=1000, help="T of the DDPM schedule (all steps are sampled)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ddpm = wb.methods.DDPM(n_steps=args.steps, schedule="linear")
    den = wb.models.TimeMLP(dim=2, seed=0)  # timing does not depend on training
    n_params = sum(p.numel() for p in den.parameters())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), load average {os.getloadavg()}")
    print(f"TimeMLP(dim=2): {n_params:,} parameters; DDPM T={args.steps}; n={args.n}")
    # warm-up (allocator, first-call overheads)
    wb.analyses.sample_trajectory(den, ddpm, n=args.n, seed=0, record_every=None, steps=min(20, args.steps))
    res = {"plain": [], "recorded": []}
    for r in range(args.repeats):
        for mode, every in (("plain", None), ("recorded", 1)):
            t0, c0 = time.perf_counter(), time.process_time()
            tr = wb.analyses.sample_trajectory(den, ddpm, n=args.n, seed=r, record_every=every)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            mb = (tr.x.numel() + tr.x0_pred.numel()) * 4 / 1e6
            res[mode].append((wall, cpu))
            print(f"run {r} {mode:<9} wall {wall:7.2f} s  cpu {cpu:7.2f} s  (cpu/wall {cpu / wall:4.0%})  "
                  f"frames {tr.n_frames:5d}  stored {mb:7.1f} MB  load {os.getloadavg()[0]:.1f}", flush=True)
            del tr
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in res.items()}
    print()
    print(f"median plain    : wall {med['plain'][0]:.2f} s, cpu {med['plain'][1]:.2f} s")
    print(f"median recorded : wall {med['recorded'][0]:.2f} s, cpu {med['recorded'][1]:.2f} s")
    rw = med["recorded"][0] / med["plain"][0]
    rc = med["recorded"][1] / med["plain"][1]
    print(f"ratio recorded/plain: wall {rw:.3f}, cpu {rc:.3f}  (target <= 1.2 on wall time: {'PASS' if rw <= 1.2 else 'FAIL'})")
    share = min(c / w for v in res.values() for w, c in v)
    if share < 0.9:
        print(f"note: some runs got only {share:.0%} of a core (a busy machine); their wall times measure the "
              "scheduler more than the code, so read the cpu ratio")


if __name__ == "__main__":
    main()
