"""The figures of issue 16 (prototypes, second wave), measured on sklearn's digits.

    python benchmarks/prototypes_ii_experiments.py protopnet   # ProtoPNet vs the linear head
    python benchmarks/prototypes_ii_experiments.py variants    # ST-ProtoPNet and deep CBC, one seed
    python benchmarks/prototypes_ii_experiments.py gcd         # 5 old + 5 new classes, unknown K
    python benchmarks/prototypes_ii_experiments.py fscil       # TEEN vs class means
    python benchmarks/prototypes_ii_experiments.py online      # OnPro vs experience replay

Every part prints one line per seed and a mean ± std summary. One torch thread (the machine is
shared); the load average is printed at the start and end of each part.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import workbench as wb

torch.set_num_threads(1)


def load():
    return f"load {os.getloadavg()[0]:.1f}"


def ms(vals):
    vals = [float(v) for v in vals]
    return f"{statistics.mean(vals):.4f} ± {statistics.stdev(vals) if len(vals) > 1 else 0.0:.4f}"


def protopnet(seeds, variants=False):
    ds = wb.data.resize(wb.data.load("digits"), 16)
    train, test = ds.split(0.7, seed=0)
    print(f"digits 16x16: {len(train)} train / {len(test)} test; {load()}", flush=True)
    names = ["STProtoPNet", "DeepCBC"] if variants else ["ProtoPNet"]
    for name in names:
        rows = []
        for seed in seeds:
            t0 = time.time()
            model = getattr(wb.models, name)(n_classes=10, prototypes_per_class=3, prototype_dim=32, width=32, seed=seed)
            r = wb.recipes.train_protopnet(model, train, val=test, warm_epochs=5, joint_epochs=35, last_epochs=20,
                                           batch_size=64, seed=seed)
            t1 = time.time()
            lin = None
            if not variants:
                _, lin = wb.recipes.linear_head_baseline(model, train, val=test, epochs=40, batch_size=64, seed=seed)
            rows.append((r.accuracy, lin, r.projection.n_unique))
            print(f"{name} seed {seed}: {r.accuracy}; linear head {lin}; {r.projection.n_unique}/{model.n_prototypes} "
                  f"distinct pushed "
                  f"patches; {t1 - t0:.0f}s + {time.time() - t1:.0f}s; {load()}", flush=True)
        for k in ("joint", "push", "last"):
            print(f"  {name} {k}: {ms([a[k] for a, _, _ in rows])}")
        if not variants:
            print(f"  linear head (40 epochs): {ms([lin for _, lin, _ in rows])}")


def gcd(seeds):
    from sklearn.cluster import KMeans

    ds = wb.data.load("digits")
    print(f"digits: {len(ds)} samples, old classes 0-4 (50% of them labelled), new 5-9; {load()}", flush=True)
    rows = []
    for seed in seeds:
        g = torch.Generator().manual_seed(seed)
        lab = (ds.y < 5) & (torch.rand(len(ds), generator=g) < 0.5)
        data = ds.with_labels(torch.where(lab, ds.y, -1))
        model = wb.models.MLP(64, (256, 256), 10, seed=seed)
        t0 = time.time()
        res = wb.recipes.discover_categories(
            model, data, true_labels=ds.y, method=wb.methods.GPCLoss(unsup_temperature=0.1, seed=seed), k_init=15,
            max_rounds=8, steps_per_round=150, warmup_steps=300, pca_dim=32, seed=seed)
        z = torch.nn.functional.normalize(wb.analyses.embed(model, ds), dim=1).numpy()
        u = ~lab
        km = KMeans(10, n_init=10, random_state=seed).fit(z)
        base = wb.analyses.cluster_accuracy(ds.y[u], torch.as_tensor(km.labels_)[u], range(5))
        rows.append((res, base))
        print(f"seed {seed}: {res} | k-means(10) on the same features: {base}; {time.time() - t0:.0f}s; {load()}",
              flush=True)
    for part in ("all", "old", "new"):
        print(f"  GPC {part}: {ms([getattr(r.accuracy, part) for r, _ in rows])}   "
              f"k-means(10) {part}: {ms([getattr(b, part) for _, b in rows])}")
    print(f"  estimated K: {[r.estimated_k for r, _ in rows]} (true 10)")


def fscil(seeds):
    ds = wb.data.load("digits")
    train, test = ds.split(0.7, seed=0)
    print(f"digits: 6 base classes + 2 sessions of 2-way 5-shot, random class order per seed; {load()}", flush=True)
    table = {}
    for seed in seeds:
        order = torch.randperm(10, generator=torch.Generator().manual_seed(seed)).tolist()
        for alpha in (0.1, 0.5):
            model = wb.models.MLP(64, (256, 256), 10, seed=seed)
            r = wb.recipes.fscil_teen(model, train, test, base_classes=order[:6], sessions=[order[6:8], order[8:]],
                                      shots=5, base_steps=600, alpha=alpha, seed=seed)
            table.setdefault(alpha, []).append(r)
            print(f"seed {seed} α={alpha}: {r}; novel plain {r.novel_accuracy['plain'].tolist()} "
                  f"calibrated {r.novel_accuracy['calibrated'].tolist()}", flush=True)
    for alpha, rs in table.items():
        for s in range(3):
            p = [float(r.accuracy["plain"][s]) for r in rs]
            c = [float(r.accuracy["calibrated"][s]) for r in rs]
            print(f"  α={alpha} session {s}: plain {ms(p)}  calibrated {ms(c)}  (calibrated − plain "
                  f"{statistics.mean(c) - statistics.mean(p):+.4f})")


def online(seeds):
    ds = wb.data.load("digits")
    train, test = ds.split(0.7, seed=0)
    tasks = [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    print(f"digits: 5 tasks x 2 classes, one pass, batch 10, buffer 200, replay 64, Adam 3e-3; {load()}", flush=True)
    cfgs = {"OnPro": {}, "ER": dict(ope_weight=0, apf=False, ocm_weight=0),
            "fine-tune": dict(buffer_size=0, ope_weight=0, apf=False, ocm_weight=0)}
    out = {}
    for name, kw in cfgs.items():
        for seed in seeds:
            model = wb.models.MLP(64, (256, 256), 10, seed=seed)
            method = wb.methods.OnPro(10, feature_dim=256, seed=seed, **kw)
            t0 = time.time()
            r = wb.recipes.online_continual(model, method, train, test, tasks=tasks, lr=3e-3, seed=seed)
            out.setdefault(name, []).append(r)
            print(f"{name} seed {seed}: {r}; {time.time() - t0:.0f}s; {load()}", flush=True)
    for name, rs in out.items():
        print(f"  {name}: final {ms([r.metrics.final_accuracy for r in rs])}, AIA "
              f"{ms([r.metrics.average_incremental_accuracy for r in rs])}, forgetting (Chaudhry) "
              f"{ms([r.metrics.forgetting for r in rs])}, forgetting (OnPro) "
              f"{ms([r.matrices.metrics('onpro').forgetting for r in rs])}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("part", choices=["protopnet", "variants", "gcd", "fscil", "online"])
    ap.add_argument("--seeds", type=int, nargs="+", default=None)
    a = ap.parse_args()
    default = {"protopnet": [0, 1, 2], "variants": [0], "gcd": [0, 1, 2], "fscil": [0, 1, 2, 3, 4],
               "online": [0, 1, 2]}[a.part]
    seeds = a.seeds or default
    if a.part in ("protopnet", "variants"):
        protopnet(seeds, variants=a.part == "variants")
    else:
        globals()[a.part](seeds)
    print(f"done; {load()}")
