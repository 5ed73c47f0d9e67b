"""The measured figures of issue 18 (distillation, second wave), as printed tables.

    python benchmarks/distillation_ii_experiments.py kd   [--seeds 0 1 2 3 4]   # the KD-family table
    python benchmarks/distillation_ii_experiments.py ssl  [--seeds 0 1 2] [--steps 2000]  # 50 labels: SSL vs supervised
    python benchmarks/distillation_ii_experiments.py wad  [--seeds 0 1 2]       # 1/3 unseen-class unlabelled data
    python benchmarks/distillation_ii_experiments.py simclr [--seeds 0 1 2]     # SimCLRv2 at ~1 % / 10 % labels
    python benchmarks/distillation_ii_experiments.py dd   [--seeds 0 1 2] [--ipc 1 10 50]
        [--methods random DM MTT CV-DD] [--dm-iterations 500] [--mtt-iterations 300] [--experts 8]
        [--eval-nets 3] [--eval-epochs 300]                                 # smaller sizes: say so

Each prints a markdown table of mean ± std over the seeds (and the per-seed values), the
wall time and the load average, and writes the raw numbers as JSON next to ``--out``. One torch
thread (the machine is shared). Sizes are stated in each table's title.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

import workbench as wb
from workbench.recipes import _synthetic as S
from workbench.recipes.semi_supervised import few_labels, semi_supervised

torch.set_num_threads(1)


def _digits():
    return wb.data.load("digits").split(0.8, seed=0)


def _table(title, rows: dict[str, list[float]], fmt="{:.4f}"):
    print(f"\n### {title}\n")
    print("| row | mean ± std | per seed |\n|---|---|---|")
    for name, vals in rows.items():
        v = np.asarray(vals, dtype=float)
        print(f"| {name} | {fmt.format(v.mean())} ± {fmt.format(v.std(ddof=1) if len(v) > 1 else 0.0)} | "
              f"{', '.join(fmt.format(x) for x in v)} |")


def _acc_ece(model, test):
    from workbench.analyses.ece import calibration_of_logits

    p = wb.analyses.predict(model, test)
    c = calibration_of_logits(p.logits, test.y)
    return c.accuracy, c.ece


# --------------------------------------------------------------------------- KD family
def kd_family(seeds):
    """Issue-7 protocol: teacher MLP 64-256-256-10 (600 Adam steps on the 80 % split), student
    MLP 64-16-10 (seed 100 + s) on 200 labelled digits (split seed s), 1000 steps, batch 128,
    lr 1e-3, T = 4, alpha = 0.9 where the method has them."""
    train, test = _digits()
    teacher = wb.models.MLP(64, (256, 256), 10, seed=0)
    wb.fit(teacher, wb.methods.CrossEntropy(), train, steps=600, lr=1e-3, batch_size=128, seed=0, progress=False)
    second = wb.models.MLP(64, (128, 128), 10, seed=7)
    wb.fit(second, wb.methods.CrossEntropy(), train, steps=600, lr=1e-3, batch_size=128, seed=1, progress=False)
    print(f"teacher test accuracy {wb.analyses.predict(teacher, test).accuracy:.4f}; second teacher "
          f"{wb.analyses.predict(second, test).accuracy:.4f}")
    steps = 1000
    methods = {
        "cross-entropy (no teacher)": lambda: wb.methods.CrossEntropy(),
        "KD (Hinton)": lambda: wb.methods.KnowledgeDistillation(teacher, 4.0, 0.9),
        "SinKD (KD + 0.8 Sinkhorn)": lambda: wb.methods.SinkhornKD(teacher, 4.0, 0.9),
        "DHKD (dual head)": lambda: wb.methods.DualHeadKD(teacher),
        "DHKD + gradient alignment": lambda: wb.methods.DualHeadKD(teacher, gradient_alignment=True),
        "TAID (no labels, alpha 5e-3)": lambda: wb.methods.TAID(teacher, total_steps=steps, alpha=5e-3),
        "BD-KD online (peer from scratch, T 4)": lambda: wb.methods.BalancedDivergenceKD(
            wb.models.MLP(64, (256, 256), 10, seed=0), 4.0),
        "DML online (peer from scratch, T 4)": lambda: wb.methods.BalancedDivergenceKD(
            wb.models.MLP(64, (256, 256), 10, seed=0), 4.0, weighting="forward", teacher_divergence="forward"),
        "PHI-S 2 teachers + CE": lambda: wb.methods.MultiTeacherDistillation([teacher, second], label_weight=1.0),
        "no normalisation 2 teachers + CE": lambda: wb.methods.MultiTeacherDistillation(
            [teacher, second], normalization="none", label_weight=1.0),
    }
    acc = {k: [] for k in methods}
    ece = {k: [] for k in methods}
    agree = {k: [] for k in methods}
    for s in seeds:
        few, _ = train.split(200 / len(train), seed=s)
        for name, make in methods.items():
            student = wb.models.MLP(64, (16,), 10, seed=100 + s)
            wb.fit(student, make(), few, steps=steps, lr=1e-3, batch_size=128, seed=s, progress=False)
            a, e = _acc_ece(student, test)
            acc[name].append(a)
            ece[name].append(e)
            agree[name].append(wb.analyses.agreement(teacher, student, test).agreement)
            print(f"seed {s} {name}: acc {a:.4f} ECE {e:.4f}", flush=True)
    _table(f"KD family, test accuracy ({len(seeds)} seeds, 16-unit student, 200 labels)", acc)
    _table("KD family, ECE (10 bins)", ece)
    _table("KD family, agreement with the teacher", agree)
    return {"accuracy": acc, "ece": ece, "agreement": agree}


# --------------------------------------------------------------------------- semi-supervised, 50 labels
def ssl(seeds, steps=2000):
    """50 labelled digits (5 per class, drawn with seed s) + the rest of the 80 % split unlabelled;
    MLP 64-256-256-10, Adam lr 1e-3, labelled batch 32, mu 7 (FixMatch) / 3 (mean teacher)."""
    train, test = _digits()
    rows = {k: [] for k in ("supervised only", "FixMatch (tau 0.95)", "FixMatch + EMA teacher (0.99)",
                            "mean teacher (EMA 0.99)")}
    for s in seeds:
        lab, unl = few_labels(train, 5, seed=s)
        m = wb.models.MLP(64, (256, 256), 10, seed=s)
        wb.fit(m, wb.methods.CrossEntropy(), lab, steps=steps, lr=1e-3, batch_size=32, seed=s, progress=False)
        rows["supervised only"].append(wb.analyses.predict(m, test).accuracy)
        for name, meth in (("FixMatch (tau 0.95)", wb.methods.FixMatch(0.95, mu=7)),
                           ("FixMatch + EMA teacher (0.99)", wb.methods.FixMatch(0.95, mu=7, teacher="ema", ema=0.99)),
                           ("mean teacher (EMA 0.99)", wb.methods.MeanTeacher(0.99, epoch_steps=steps // 20))):
            m = wb.models.MLP(64, (256, 256), 10, seed=s)
            r = semi_supervised(m, meth, lab, unl, steps=steps, batch_size=32, lr=1e-3, test=test, seed=s)
            rows[name].append(r.test_accuracy)
            print(f"seed {s} {name}: {r.test_accuracy:.4f}  {r.trace!r}", flush=True)
        print(f"seed {s} supervised: {rows['supervised only'][-1]:.4f}", flush=True)
    _table(f"50 labelled digits, test accuracy ({len(seeds)} seeds, {steps} steps)", rows)
    return rows


def _mismatch_split(train, test, seed, per_class=8, known=6):
    kn = train.subset(train.y < known)
    lab, unl_known = few_labels(kn, per_class, seed=seed)
    unknown = train.subset(train.y >= known)
    n_ood = len(unl_known) // 2  # one third of the unlabelled set
    g = torch.Generator().manual_seed(seed)
    ood = unknown.subset(torch.randperm(len(unknown), generator=g)[:n_ood]).with_labels(torch.full((n_ood,), -1))
    unl = wb.data.dataset.concat([unl_known, ood])
    return lab, unl, test.subset(test.y < known)


def _simclr_encoder(train, seed, steps=1000):
    enc = wb.models.MLP(64, (256, 256), 10, seed=seed)
    sim = wb.methods.SupCon(0.5, supervised=False, feature_dim=enc.feature_dim, seed=seed)
    wb.fit(enc, sim, wb.data.Dataset(train.x, kind="image"), steps=steps, batch_size=256, lr=1e-3, seed=seed,
           progress=False)
    return enc


def wad(seeds, steps=1000):
    """Known classes 0-5, 8 labelled per class (48); unlabelled = the other known-class training
    digits (~819) + unseen classes 6-9 (~409, one third); teacher = SimCLR MLP 64-256-256
    (1000 steps, all 1438 training images, no labels); student MLP 64-256-256-6, 1000 steps,
    batch 32, mu 2; test on the known-class test digits."""
    from workbench.recipes.wad import weight_aware_distillation

    train, test = _digits()
    rows = {k: [] for k in ("supervised only", "plain pseudo-labels (w = 1)", "WAD margin (as the code)",
                            "WAD margin, mean-normalised", "rank of wb.ood.KNN(k=1) distance")}
    aurocs = {k: [] for k in rows if k not in ("supervised only", "plain pseudo-labels (w = 1)")}
    for s in seeds:
        lab, unl, test6 = _mismatch_split(train, test, s)
        enc = _simclr_encoder(train, s)
        m = wb.models.MLP(64, (256, 256), 6, seed=s)
        wb.fit(m, wb.methods.CrossEntropy(), lab, steps=steps, batch_size=32, lr=1e-3, seed=s, progress=False)
        rows["supervised only"].append(wb.analyses.predict(m, test6).accuracy)
        for name, kw in (("plain pseudo-labels (w = 1)", dict(weights="none")),
                         ("WAD margin (as the code)", dict(weights="margin")),
                         ("WAD margin, mean-normalised", dict(weights="margin", normalize=True)),
                         ("rank of wb.ood.KNN(k=1) distance", dict(weights="knn"))):
            st = wb.models.MLP(64, (256, 256), 6, seed=s)
            r = weight_aware_distillation(st, enc, lab, unl, steps=steps, batch_size=32, mu=2, test=test6, seed=s,
                                          lr=1e-3, **kw)
            rows[name].append(r.test_accuracy)
            if name in aurocs:
                aurocs[name].append(r.weight_auroc)
            print(f"seed {s} {name}: {r!r}", flush=True)
        print(f"seed {s} supervised: {rows['supervised only'][-1]:.4f}", flush=True)
    _table(f"class mismatch (1/3 of the unlabelled data unseen classes), known-class test accuracy "
           f"({len(seeds)} seeds, {steps} steps)", rows)
    _table("weights as a known-vs-unseen score (AUROC)", aurocs)
    return {"accuracy": rows, "auroc": aurocs}


def simclr(seeds):
    """SimCLRv2 recipe: teacher MLP 64-256-256-10 (SimCLR 1000 steps on the 1438 training images,
    fine-tune 300 steps on 1 or 14 labels per class = 0.7 % / 9.7 %), student MLP 64-16-10
    distilled 1000 steps on all training images (tau 1); supervised baselines of both sizes."""
    from workbench.recipes.simclr_v2 import simclr_v2

    train, test = _digits()
    rows = {}
    for per in (1, 14):
        for k in ("teacher supervised only", "student supervised only", "teacher SimCLR + fine-tune",
                  "student distilled"):
            rows[f"{per}/class: {k}"] = []
    for s in seeds:
        for per in (1, 14):
            lab, _ = few_labels(train, per, seed=s)
            t, st = wb.models.MLP(64, (256, 256), 10, seed=s), wb.models.MLP(64, (16,), 10, seed=100 + s)
            wb.fit(t, wb.methods.CrossEntropy(), lab, steps=300, lr=1e-3, batch_size=min(256, len(lab)), seed=s,
                   progress=False)
            wb.fit(st, wb.methods.CrossEntropy(), lab, steps=300, lr=1e-3, batch_size=min(256, len(lab)), seed=s,
                   progress=False)
            rows[f"{per}/class: teacher supervised only"].append(wb.analyses.predict(t, test).accuracy)
            rows[f"{per}/class: student supervised only"].append(wb.analyses.predict(st, test).accuracy)
            t, st = wb.models.MLP(64, (256, 256), 10, seed=s), wb.models.MLP(64, (16,), 10, seed=100 + s)
            r = simclr_v2(t, st, train, lab, test=test, seed=s)
            rows[f"{per}/class: teacher SimCLR + fine-tune"].append(r.accuracy["teacher (fine-tuned)"])
            rows[f"{per}/class: student distilled"].append(r.accuracy["student (distilled)"])
            print(f"seed {s} {per}/class: {r!r}", flush=True)
    _table(f"SimCLRv2 recipe ({len(seeds)} seeds)", rows)
    return rows


# --------------------------------------------------------------------------- dataset distillation
def dd(seeds, ipcs=(1, 10, 50), eval_nets=3, eval_epochs=300, methods=("random", "DM", "MTT", "CV-DD"),
       dm_iterations=500, mtt_iterations=300, n_experts=8):
    """Digits 80 % split; DD ConvNet (width 64, depth 2, instance norm); evaluation = eval_nets
    fresh ConvNets x eval_epochs epochs SGD (lr 0.01 or MTT's learned lr, momentum 0.9, wd 5e-4,
    DSA), accuracy and ECE on the 359 test digits. DM 500 iterations; MTT: 8 experts x 10 epochs
    (SGD lr 0.05) saved as runs, N 20, M 2, T+ 4 (ipc 1) / 6, 300 iterations (ipc 50: 100);
    CV-DD: committee of 3 BN nets, 300 recovery iterations."""
    from workbench.recipes.distill_dm import distribution_matching
    from workbench.recipes.distill_mtt import trajectory_matching
    from workbench.recipes.experts import train_experts

    train, test = _digits()
    acc, ece = {}, {}

    def record(name, ev):
        acc.setdefault(name, []).append(ev.accuracy)
        ece.setdefault(name, []).append(ev.ece)
        print(f"{name}: {ev!r}", flush=True)

    for s in seeds:
        experts = None
        if "MTT" in methods:
            store = os.path.join(os.environ.get("TMPDIR", "/tmp"), "workbench-dd-experts")
            experts = train_experts(train, n_experts=n_experts, epochs=10, lr=0.05, test=test, store=store, seed=s)
            print(f"seed {s}: {experts!r}", flush=True)
        committee = None
        for ipc in ipcs:
            t0 = time.time()
            if "random" in methods:
                record(f"random real, {ipc}/class", S.evaluate_synthetic(S.random_real_subset(train, ipc, seed=s), test,
                                                                        n_models=eval_nets, epochs=eval_epochs, seed=s))
            if "DM" in methods:
                syn = distribution_matching(train, ipc, iterations=dm_iterations, seed=s)
                record(f"DM, {ipc}/class", S.evaluate_synthetic(syn, test, n_models=eval_nets, epochs=eval_epochs, seed=s))
            if "MTT" in methods:
                its = min(100, mtt_iterations) if ipc >= 50 else mtt_iterations
                syn = trajectory_matching(train, experts, ipc, iterations=its, max_start_epoch=4 if ipc == 1 else 6,
                                          seed=s)
                record(f"MTT, {ipc}/class", S.evaluate_synthetic(syn, test, n_models=eval_nets, epochs=eval_epochs, seed=s))
            if "CV-DD" in methods:
                from workbench.recipes.distill_cvdd import committee_voting, train_committee

                committee = committee or train_committee(train, seed=s)
                syn = committee_voting(train, ipc, committee=committee, iterations=300, seed=s)
                record(f"CV-DD, {ipc}/class", S.evaluate_synthetic(syn, test, n_models=eval_nets, epochs=eval_epochs, seed=s))
            print(f"seed {s} ipc {ipc}: {time.time() - t0:.0f} s", flush=True)
    _table(f"dataset distillation, test accuracy ({len(seeds)} seeds x {eval_nets} nets, {eval_epochs} epochs; "
           f"DM {dm_iterations} iterations, MTT {n_experts} experts, {mtt_iterations} iterations)", acc)
    _table("dataset distillation, ECE (10 bins)", ece)
    return {"accuracy": acc, "ece": ece}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["kd", "ssl", "wad", "simclr", "dd"])
    ap.add_argument("--seeds", type=int, nargs="+", default=None)
    ap.add_argument("--ipc", type=int, nargs="+", default=[1, 10, 50])
    ap.add_argument("--methods", nargs="+", default=["random", "DM", "MTT", "CV-DD"])
    ap.add_argument("--steps", type=int, default=None, help="ssl / wad training steps (default 2000 / 1000)")
    ap.add_argument("--eval-epochs", type=int, default=300, help="dd: epochs of each evaluation network")
    ap.add_argument("--eval-nets", type=int, default=3, help="dd: evaluation networks per set")
    ap.add_argument("--dm-iterations", type=int, default=500, help="dd: DM iterations")
    ap.add_argument("--mtt-iterations", type=int, default=300, help="dd: MTT iterations (ipc 50: at most 100)")
    ap.add_argument("--experts", type=int, default=8, help="dd: MTT expert trajectories")
    ap.add_argument("--out", default="/tmp/distillation_ii")
    a = ap.parse_args()
    seeds = a.seeds or ([0, 1, 2, 3, 4] if a.what == "kd" else [0, 1, 2])
    t0 = time.time()
    fn = {"kd": kd_family, "ssl": ssl, "wad": wad, "simclr": simclr}.get(a.what)
    if a.what in ("ssl", "wad") and a.steps is not None:
        res = fn(seeds, steps=a.steps)
    elif fn:
        res = fn(seeds)
    else:
        res = dd(seeds, tuple(a.ipc), eval_nets=a.eval_nets, eval_epochs=a.eval_epochs, methods=tuple(a.methods),
                 dm_iterations=a.dm_iterations, mtt_iterations=a.mtt_iterations, n_experts=a.experts)
    print(f"\n{a.what}: {time.time() - t0:.0f} s wall, {time.process_time():.0f} s CPU (one thread), "
          f"load average {os.getloadavg()}")
    with open(f"{a.out}_{a.what}.json", "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
