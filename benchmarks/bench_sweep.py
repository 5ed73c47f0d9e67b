"""Sweeps on Ray: 8 digits runs sequentially vs as Ray tasks on 2 workers.

Run:  OMP_NUM_THREADS=1 python benchmarks/bench_sweep.py [--runs 8] [--steps 3000] [--rounds 1]

The recipe: the reference notes' 64-128-128-10 MLP with cross-entropy on the 1437 training
digits (80% split), Adam lr 1e-3, batch 64, ``steps`` steps, one torch thread per run, seeds
0..runs-1, each run saved to its own store. Per round, interleaved:

* ``sequential``: ``wb.runs.sweep(..., backend="sequential", threads=1)`` in this process;
* ``ray, start included``: ``backend="ray", num_cpus=2`` with no Ray running, so the sweep
  starts a local cluster (~4 s here), its 2 workers import torch and workbench, and the sweep
  shuts the cluster down at the end;
* ``ray, running cluster``: ``ray.init(num_cpus=2)`` beforehand and one small task per worker
  (workers already warm, as in a session that uses the cluster), then the same sweep.

Printed: seconds per sweep (median over rounds), the speed-up over sequential (goal >= 1.6x on
a running cluster; 2.0x is the 2-core ceiling), whether every backend gave the same metrics,
and each store's ``check()``. The machine is shared: the load average is printed before and
after; compare only figures from the same run.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import tempfile
import time

import numpy as np
import torch

import workbench as wb


def _sweep(data, val, steps, runs, store, backend, **kw):
    make_model = functools.partial(wb.models.MLP, 64, (128, 128), 10)
    t = time.perf_counter()
    res = wb.runs.sweep(make_model, wb.methods.CrossEntropy, data, seeds=list(range(runs)), val=val,
                        steps=steps, batch_size=64, lr=1e-3, threads=1, store=store, name="digits-ce",
                        backend=backend, resume=False, progress=False, **kw)
    return time.perf_counter() - t, res


def _warm(ray):
    @ray.remote(num_cpus=1)
    def imports() -> int:
        import workbench  # noqa: F401

        time.sleep(0.5)  # hold the worker so the other task lands on the other one
        return os.getpid()

    return len(set(ray.get([imports.remote() for _ in range(2)])))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(1)
    import ray

    from workbench.runs.backends import start_ray

    digits = wb.data.load("digits")
    ds = wb.data.Dataset.from_arrays(digits.flat, digits.y, name="digits")
    train, test = ds.split(0.8, seed=0)
    print(f"{args.runs} runs x {args.steps} steps (64-128-128-10 MLP, digits), one torch thread each; "
          f"load average before: {os.getloadavg()[0]:.2f}")
    times: dict[str, list[float]] = {"sequential": [], "ray, start included": [], "ray, running cluster": []}
    metrics, checks = {}, {}
    root = tempfile.mkdtemp(prefix="bench-sweep-")
    for r in range(args.rounds):
        for label in times:
            store = wb.runs.RunStore(os.path.join(root, f"{label.replace(' ', '_').replace(',', '')}-{r}"))
            if label == "sequential":
                dt, res = _sweep(train, test, args.steps, args.runs, store, "sequential")
            elif label == "ray, start included":
                assert not ray.is_initialized()
                try:
                    dt, res = _sweep(train, test, args.steps, args.runs, store, "ray", num_cpus=2)
                except Exception as err:  # Ray's start can time out on a busy machine: report, go on
                    print(f"  round {r + 1}: {label:<22s} FAILED: {str(err).splitlines()[0]}", flush=True)
                    ray.shutdown()
                    continue
                assert not ray.is_initialized()  # the sweep shut its cluster down
            else:
                start_ray(2, tries=4, include_dashboard=False, log_to_driver=False)
                try:
                    workers = _warm(ray)
                    dt, res = _sweep(train, test, args.steps, args.runs, store, "ray")
                finally:
                    ray.shutdown()
                print(f"  (running cluster: {workers} warm workers)")
            times[label].append(dt)
            metrics[label] = res.runs[["val_acc", "val_loss", "train_loss"]].to_numpy()
            checks[label] = store.check()
            print(f"  round {r + 1}: {label:<22s} {dt:7.1f} s  (failures: {len(res.failures)})", flush=True)
    seq = statistics.median(times["sequential"])
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    print(f"{'backend':<24s} {'median s':>9s} {'speed-up':>9s} {'of 2-core ideal':>16s}")
    for label, ts in times.items():
        if not ts:
            print(f"{label:<24s} {'(failed)':>9s}")
            continue
        m = statistics.median(ts)
        print(f"{label:<24s} {m:9.1f} {seq / m:8.2f}x {seq / m / 2:15.0%}")
    same = all(np.array_equal(metrics["sequential"], v) for v in metrics.values())
    print(f"same metrics on every backend: {same}")
    for label, c in checks.items():
        clean = c["integrity"] == "ok" and not c["damaged"] and not c["unindexed"] and c["runs"] == args.runs
        print(f"store check ({label}): {'clean' if clean else 'NOT CLEAN'} {c}")
    goal = seq / statistics.median(times["ray, running cluster"])
    print(f"goal >= 1.6x on a running cluster: {'met' if goal >= 1.6 else 'NOT met'} ({goal:.2f}x)")


if __name__ == "__main__":
    main()
