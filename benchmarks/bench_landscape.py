"""2-D loss landscape: workbench vs loss-landscapes 3.0.6 on the same model, data and directions.

Run:  OMP_NUM_THREADS=1 python benchmarks/bench_landscape.py [--rounds 5] [--threads 1,2]
      [--sizes 1797,256,64] [--steps 41] [--contention]

What it does, in one run:

1. trains the 64->128->128->10 ReLU MLP on all 1797 digits (8 epochs of SGD, lr 0.05,
   momentum 0.9, batch 64, seed 0; pixels / 16, flattened);
2. rebuilds loss-landscapes' own directions for ``random_plane(distance=1, steps=S,
   normalization="filter")`` with its own functions under ``torch.manual_seed(1234)`` (U[0,1]
   draws, Gram-Schmidt, its filter normalisation, its global rescale ``||θ|| / (distance ·
   steps)`` per step) and checks the values: our evaluator at **the coordinates loss-landscapes
   really visits** (odd rows shifted by one step; half-integer offsets for odd S) against its
   output, and its output against the grid it claims (aligned rows) to show the shift;
3. times, in interleaved rounds (every round runs every variant; medians reported), its
   ``random_plane`` against ``wb.analyses.loss_slice_2d`` on a centred S x S grid with the
   same directions (``normalization=None``), for each evaluation-set size and thread count;
   wall time and process CPU time are both recorded (the machine is shared);
4. counts the slice's FLOPs and measures a plain large matmul's GFLOP/s in the same run, and
   prints the fraction of that throughput each variant reaches: "nominal" counts a full
   forward per grid point (2 N Σ fan_in·fan_out), "executed" the matmul FLOPs our evaluator
   really performs (the first layer's products once per slice, not per point).

``--contention`` adds rounds at 2 threads while a busy-loop process (started and stopped by
this script) occupies one core.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from _common import train_model

import workbench as wb
from workbench.analyses._landscape_engine import GridEvaluator


def ll_directions(model, steps, distance=1.0, seed=1234):
    """loss-landscapes 3.0.6's random_plane directions (per grid step) as dicts."""
    from loss_landscapes.model_interface.model_parameters import orthogonal_to, rand_u_like
    from loss_landscapes.model_interface.model_wrapper import wrap_model

    work = copy.deepcopy(model)
    wrapper = wrap_model(work)
    start = wrapper.get_module_parameters()
    torch.manual_seed(seed)
    d1 = rand_u_like(start)
    d2 = orthogonal_to(d1)
    d1.filter_normalize_(start)
    d2.filter_normalize_(start)
    d1.mul_(((start.model_norm() / distance) / steps) / d1.model_norm())
    d2.mul_(((start.model_norm() / distance) / steps) / d2.model_norm())
    names = [k for k, _ in model.named_parameters()]
    return ({k: t.detach().clone() for k, t in zip(names, d1.parameters)},
            {k: t.detach().clone() for k, t in zip(names, d2.parameters)})


def ll_plane(model, X, y, steps):
    import loss_landscapes as ll
    from loss_landscapes.metrics import Loss

    torch.manual_seed(1234)
    return ll.random_plane(model, Loss(torch.nn.CrossEntropyLoss(), X, y), distance=1, steps=steps,
                           normalization="filter", deepcopy_model=True)


def visited_coords(steps):
    """(S, S, 2) coefficients, in units of the per-step directions, of the points loss-landscapes
    3.0.6 evaluates and stores at [i][j] (from its snake walk)."""
    c = np.zeros((steps, steps, 2))
    for i in range(steps):
        for j in range(steps):
            c[i, j, 0] = -steps / 2 + i
            c[i, j, 1] = -steps / 2 + j + (1 if i % 2 == 0 else 0)
    return c


def matmul_gflops(threads, n=1024, reps=7):
    """(GFLOP/s by wall time, GFLOP/s by process CPU time) of a plain n^3 sgemm."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    c = torch.empty(n, n)
    torch.mm(a, b, out=c)
    ts, cs = [], []
    for _ in range(reps):
        t, c0 = time.perf_counter(), time.process_time()
        for _ in range(4):
            torch.mm(a, b, out=c)
        ts.append((time.perf_counter() - t) / 4)
        cs.append((time.process_time() - c0) / 4)
    return 2 * n**3 / statistics.median(ts) / 1e9, 2 * n**3 / statistics.median(cs) / 1e9


def slice_flops(model, n, points, k=2):
    lins = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    per_point = sum(2 * n * m.in_features * m.out_features for m in lins)
    nominal = per_point * points
    first = lins[0]
    executed = (k + 1) * 2 * n * first.in_features * first.out_features + (per_point - 2 * n * first.in_features * first.out_features) * points
    return nominal, executed


def timed(fn):
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c


def busy_loop():
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def agreement(model, X, y, S):
    """Our evaluator on loss-landscapes' own directions, at the coordinates it visits."""
    d1, d2 = ll_directions(model, S)
    theta_norm = float(torch.cat([p.detach().reshape(-1) for p in model.parameters()]).norm())
    ll_vals = np.asarray(ll_plane(model, X, y, S))
    ev = GridEvaluator(model, wb.methods.CrossEntropy(), X, y, [d1, d2])
    vis = visited_coords(S)
    ours_vis = ev(torch.tensor(vis.reshape(-1, 2))).get("loss").view(S, S).numpy()
    diff = np.abs(ours_vis - ll_vals)
    # the grid loss-landscapes claims (rows aligned, columns -S/2+1 ... S/2 for every row)
    aligned = vis.copy()
    aligned[:, :, 1] = (-S / 2 + 1 + np.arange(S))[None, :]
    ours_aligned = ev(torch.tensor(aligned.reshape(-1, 2))).get("loss").view(S, S).numpy()
    rel_shift = np.abs(ll_vals - ours_aligned) / np.abs(ours_aligned)
    cos = float(sum((d1[k] * d2[k]).sum() for k in d1) / (
        torch.sqrt(sum((d1[k] ** 2).sum() for k in d1)) * torch.sqrt(sum((d2[k] ** 2).sum() for k in d2))))
    print(f"\n== agreement, {S}x{S}, same directions (loss-landscapes' own, seed 1234)")
    print(f"max |ours - loss-landscapes| on the coordinates it visits: {diff.max():.2e} "
          f"(max relative {np.max(diff / np.abs(ll_vals)):.2e}); loss range {ll_vals.min():.4f}-{ll_vals.max():.4f}")
    print(f"its odd-row shift vs the aligned grid it claims: median {100 * np.median(rel_shift[1::2]):.1f} %, "
          f"max {100 * rel_shift.max():.1f} % relative difference")
    print(f"cos(d1, d2) after its filter normalisation: {cos:.4f}; origin on its grid: "
          f"{bool(((vis == 0).all(-1)).any())}")
    print(f"its scale: per-step length ||θ||/(distance·steps) = {theta_norm / S:.4f}; the grid spans "
          f"±||θ||/(2·distance) = ±{theta_norm / 2:.3f} in parameter norm (GitHub HEAD: ±distance·||θ||/2; "
          f"the same at distance=1, 1/distance² apart otherwise)", flush=True)
    return d1, d2


def time_variants(model, X, y, dirs, args):
    """{(config, N, variant): [(wall, cpu, evaluator name)]} over interleaved rounds, and the
    matmul throughput measured per config."""
    S = args.steps
    ce = wb.methods.CrossEntropy()
    span = S // 2  # same number of points, centred grid in units of the per-step directions
    variants = args.variants.split(",")

    def run(variant, n):
        Xn, yn = X[:n], y[:n]
        if variant == "ll":
            out, wall, cpu = timed(lambda: ll_plane(model, Xn, yn, S))
            return wall, cpu, "loss-landscapes"
        dn = wb.data.Dataset(Xn, yn)
        land, wall, cpu = timed(lambda: wb.analyses.loss_slice_2d(
            model, ce, dn, span=float(span), steps=S, directions=dirs, normalization=None, evaluator=variant))
        return wall, cpu, land.evaluator

    configs = [(int(t), False) for t in args.threads.split(",")] + ([(2, True)] if args.contention else [])
    results, gf = {}, {}
    for threads, contended in configs:
        key_c = f"{threads} thread{'s' if threads > 1 else ''}" + (", other core busy" if contended else "")
        bg = busy_loop() if contended else None
        try:
            torch.set_num_threads(threads)
            gf[key_c] = matmul_gflops(threads)
            sizes = args.sizes if threads == 1 and not contended else args.sizes_multi
            for n in (int(v) for v in sizes.split(",")):
                for v in variants:
                    run(v, min(n, 128))  # warm-up
                for _round in range(args.rounds):
                    for v in variants:
                        results.setdefault((key_c, n, v), []).append(run(v, n))
                line = ", ".join(f"{v} {statistics.median([r[0] for r in results[(key_c, n, v)]]):.3f}s" for v in variants)
                print(f"[{key_c}, N={n}] medians: {line}", flush=True)
        finally:
            if bg is not None:
                bg.terminate()
                bg.wait()
    torch.set_num_threads(1)
    return results, gf


def table(model, results, gf, args):
    S, variants = args.steps, args.variants.split(",")
    print(f"\n== timings: {S}x{S} grid ({S * S} points), medians of {args.rounds} interleaved rounds")
    print("matmul throughput measured in this run (1024^3 sgemm): "
          + ", ".join(f"{k}: {v[0]:.1f} GFLOP/s by wall time, {v[1]:.1f} by CPU time" for k, v in gf.items()))
    print("(% mm: the slice's FLOP rate as a fraction of that matmul rate, by wall time and by CPU time; "
          "'nom' counts a full forward per point, 'exec' the FLOPs the evaluator performs)")
    rows = []
    for (key_c, n, v), vals in results.items():
        base = results[(key_c, n, "ll")] if "ll" in variants else vals
        bw, bc = (statistics.median([r[i] for r in base]) for i in (0, 1))
        mw, mc = (statistics.median([r[i] for r in vals]) for i in (0, 1))
        nominal, executed = slice_flops(model, n, S * S)
        ex = executed if v != "ll" else nominal
        rows.append(dict(
            config=key_c, n=n, variant=v, evaluator=vals[-1][2], wall=mw, cpu=mc,
            rounds=[round(r[0], 3) for r in vals], speedup_wall=bw / mw, speedup_cpu=bc / mc,
            nominal_gflops=nominal / mw / 1e9, executed_gflops=ex / mw / 1e9,
            frac_nominal=nominal / mw / 1e9 / gf[key_c][0], frac_executed=ex / mw / 1e9 / gf[key_c][0],
            frac_nominal_cpu=nominal / mc / 1e9 / gf[key_c][1], frac_executed_cpu=ex / mc / 1e9 / gf[key_c][1],
        ))
    print(f"{'config':<28}{'N':>6}  {'variant':<12}{'wall s':>8}{'cpu s':>8}{'x ll(wall)':>11}{'x ll(cpu)':>10}"
          f"{'%mm nom':>8}{'%mm exec':>9}{'(cpu) nom':>10}{'exec':>6}  evaluator / rounds (wall s)")
    for r in rows:
        print(f"{r['config']:<28}{r['n']:>6}  {r['variant']:<12}{r['wall']:>8.3f}{r['cpu']:>8.3f}{r['speedup_wall']:>11.2f}"
              f"{r['speedup_cpu']:>10.2f}{100 * r['frac_nominal']:>7.0f}%{100 * r['frac_executed']:>8.0f}%"
              f"{100 * r['frac_nominal_cpu']:>9.0f}%{100 * r['frac_executed_cpu']:>5.0f}%  {r['evaluator']} {r['rounds']}")
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--sizes", default="1797,256,64")
    ap.add_argument("--sizes-multi", default="1797", help="sizes for the 2-thread and contended configs")
    ap.add_argument("--steps", type=int, default=41)
    ap.add_argument("--variants", default="ll,auto,mlp-loop,mlp-batched")
    ap.add_argument("--contention", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()}", flush=True)
    model, data = train_model()
    X, y = data.x, data.y
    with torch.no_grad():
        out = model(X)
    print(f"model: 64->128->128->10, {sum(p.numel() for p in model.parameters())} parameters; "
          f"full-set loss {float(F.cross_entropy(out, y)):.4f}, accuracy {float((out.argmax(1) == y).float().mean()):.4f}")
    dirs = agreement(model, X, y, args.steps)
    results, gf = time_variants(model, X, y, dirs, args)
    rows = table(model, results, gf, args)
    n0 = int(args.sizes.split(",")[0])
    nominal, executed = slice_flops(model, n0, args.steps**2)
    print(f"\nFLOPs of the {args.steps}x{args.steps} slice at N={n0}: nominal {nominal / 1e9:.1f} GFLOP "
          f"(2·N·Σ fan_in·fan_out per point), executed by the first-layer-reuse evaluators {executed / 1e9:.1f} GFLOP")
    print(f"load average at the end: {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
