"""Per-example GraNd (torch.func vmap) against a plain per-sample autograd loop, and the fit +
predict time of every OOD detector (both waves) on digit features.

Run:  OMP_NUM_THREADS=1 python benchmarks/bench_scores.py [--n 512] [--rounds 5]

GraNd: the reference notes' 64-128-128-10 MLP on ``n`` digits; the loop computes each example's
loss gradient with ``torch.autograd.grad`` over all parameters (the data_diet recipe with batch
size 1). Rounds are interleaved (vmap, loop, vmap, loop, ...) so a busy machine hits both alike;
medians and the ratio are printed with the largest difference between the two scores. Detectors:
fit on the 1797 digits' features, score them once; medians over rounds. The 1-minute load average
is printed: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from _common import train_model

import workbench as wb


def grand_loop(model, data):
    out = []
    with wb._modes.eval_mode(model):
        for i in range(len(data)):
            loss = torch.nn.functional.cross_entropy(model(data.x[i : i + 1]), data.y[i : i + 1])
            grads = torch.autograd.grad(loss, list(model.parameters()))
            out.append(torch.cat([g.flatten() for g in grads]).norm())
    return torch.stack(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, data = train_model()
    sub = data.subset(torch.arange(args.n))
    t_vmap, t_loop, diff = [], [], 0.0
    for _ in range(args.rounds):
        t = time.perf_counter()
        a = wb.analyses.grand(model, sub, chunk=128).scores
        t_vmap.append(time.perf_counter() - t)
        t = time.perf_counter()
        b = grand_loop(model, sub)
        t_loop.append(time.perf_counter() - t)
        diff = max(diff, float((a - b).abs().max() / b.abs().max()))
    mv, ml = statistics.median(t_vmap), statistics.median(t_loop)
    print(f"GraNd, {args.n} digits, all {sum(p.numel() for p in model.parameters())} parameters: "
          f"vmap {mv * 1e3:.1f} ms, per-sample loop {ml * 1e3:.1f} ms, loop/vmap {ml / mv:.1f}x; "
          f"max relative difference {diff:.1e}")
    bank = wb.ood.FeatureBank(model)
    feats = bank.features(data)
    names = [n for n in wb.ood.available() if n != "PrototypeScore"]
    times = {n: [] for n in names}
    for _ in range(args.rounds):
        for n in names:
            kw = {"epsilon": 0.0} if n == "ODIN" else {}
            t = time.perf_counter()
            det = wb.ood.create(n, **kw).fit(bank, data)
            det.predict(bank, feats)
            times[n].append(time.perf_counter() - t)
    print(f"detectors, fit + predict on {len(data)} digits (128-d features, 10 logits), median ms:")
    print("  " + ", ".join(f"{n} {statistics.median(v) * 1e3:.1f}" for n, v in times.items()))
    print(f"load average (1 min) {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
