"""The longer diffusion experiments behind the figures in the issue-5 report (CPU, one thread).

Two experiments, each a few minutes on one core:

``hallucination``: train a DDPM denoiser on the 5x5 ``gaussian_grid`` (the paper's gaussian25),
sample with DDPM recording every step, label samples (``hallucination_flags``: in-support within
3 mode std, hallucination beyond 1/4 of the mode spacing from every mode) and report, for
several noise-level windows sigma_max and step-count windows k_last, the AUROC of the trajectory
variance and the share of hallucinations removed at 96 % of in-support samples kept.

``student``: train (or reuse) a teacher, distil a consistency student, and print the quality
table (energy distance, MMD, k-NN precision/recall, in-support/hallucination shares, modes) of
teacher DDIM at 1, 2, 4 steps, teacher DDIM-50, teacher DDPM at full steps, and the student at
1, 2, 4 steps, all against held-out data.

    OMP_NUM_THREADS=1 python benchmarks/diffusion_experiments.py hallucination --model plain --train-steps 6000
    OMP_NUM_THREADS=1 python benchmarks/diffusion_experiments.py student --data gaussian_grid
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

import workbench as wb


def log(**kw):
    print(json.dumps(kw), flush=True)


def make_teacher(args, data):
    emb = None if args.model == "plain" else "sinusoidal"
    den = wb.models.TimeMLP(dim=2, hidden=args.hidden, n_layers=3, input_embedding=emb, seed=args.seed)
    ddpm = wb.methods.DDPM(n_steps=args.T, schedule=args.schedule, variance=args.variance,
                           beta_start=args.beta_start, beta_end=args.beta_end)
    path = args.cache and os.path.join(args.cache, f"teacher_{args.data}_{args.model}_{args.schedule}{args.T}_{args.train_steps}x{args.batch}.pt")
    if path and os.path.exists(path):
        den.load_state_dict(torch.load(path))
        log(event="teacher loaded", path=path)
        return den, ddpm
    t0 = time.perf_counter()
    h = wb.fit(den, ddpm, data, steps=args.train_steps, batch_size=args.batch, lr=args.lr, schedule="cosine",
               progress=False, seed=args.seed)
    log(event="teacher trained", seconds=round(time.perf_counter() - t0, 1), steps=args.train_steps,
        batch=args.batch, final_loss=float(h.loss[-200:].mean()),
        params=sum(p.numel() for p in den.parameters()), ddpm=repr(ddpm))
    if path:
        os.makedirs(args.cache, exist_ok=True)
        torch.save(den.state_dict(), path)
    return den, ddpm


def hallucination(args):
    data = wb.data.load("gaussian_grid", n=args.n_train, k=5, seed=0)
    den, ddpm = make_teacher(args, data)
    t0 = time.perf_counter()
    tr = wb.analyses.sample_trajectory(den, ddpm, n=args.n_samples, sampler="ddpm", seed=args.seed, record_every=1)
    log(event="sampled", seconds=round(time.perf_counter() - t0, 1), trajectory=repr(tr))
    flags = wb.analyses.hallucination_flags(tr.samples, data)
    fr = flags.fractions()
    far = float((flags.distance > 6 * data.meta["std"]).float().mean())
    log(event="flags", **{k: round(v, 5) for k, v in fr.items()}, beyond_6std=round(far, 5),
        n_hallucination=int(flags.hallucination.sum()), n_in_support=int(flags.in_support.sum()),
        spacing=data.meta["spacing"], std=data.meta["std"])
    sp = data.meta["spacing"]
    windows = [("sigma_max", s) for s in (0.03, 0.05, sp / 16, sp / 10, sp / 8, sp / 6, sp / 4)] + \
              [("k_last", k) for k in (5, 10, 20, 50)]
    for kind, v in windows:
        try:
            tv = wb.analyses.trajectory_variance(tr, **{kind: v})
        except ValueError as err:
            log(event="window", kind=kind, value=v, error=str(err))
            continue
        rep = wb.analyses.hallucination_filter(tv, flags, keep=0.96)
        # the repo's "sort filter": keep the lowest-variance samples, as many as are in-support
        keep_n = int(flags.in_support.sum())
        kept = tv.score.argsort()[:keep_n]
        after = float((flags.flag[kept] == 1).float().mean())
        log(event="window", kind=kind, value=round(float(v), 4), frames=len(tv.frames),
            t_range=[int(tv.timesteps[0]), int(tv.timesteps[-1])],
            sigma_range=[round(float(tv.sigmas[-1]), 4), round(float(tv.sigmas[0]), 4)],
            auroc=round(rep.auroc, 4), removed_at_96=round(rep.removed, 4), kept=round(rep.kept, 4),
            removed_total=round(rep.removed_total, 4), hallucination_after_sort_filter=round(after, 5))


def student(args):
    kw = dict(k=5) if args.data == "gaussian_grid" else {}
    data = wb.data.load(args.data, n=args.n_train, seed=0, **kw)
    test = wb.data.load(args.data, n=4000, seed=1, **kw)
    den, ddpm = make_teacher(args, data)
    rows = {}

    def q(name, tr, seconds):
        r = wb.analyses.sample_quality(tr.samples, test)
        rows[name] = r
        log(event="quality", sampler=name, seconds=round(seconds, 2), **{k: (round(v, 5) if isinstance(v, float) else v)
                                                                       for k, v in r.as_dict().items()})

    n = args.n_eval
    for k in (1, 2, 4, 50):
        t0 = time.perf_counter()
        tr = wb.analyses.sample_trajectory(den, ddpm, n=n, sampler="ddim", steps=k, seed=1, record_every=None)
        q(f"teacher DDIM-{k}", tr, time.perf_counter() - t0)
    t0 = time.perf_counter()
    tr = wb.analyses.sample_trajectory(den, ddpm, n=n, sampler="ddpm", seed=1, record_every=None)
    q(f"teacher DDPM-{ddpm.n_steps}", tr, time.perf_counter() - t0)
    st = wb.models.TimeMLP(dim=2, hidden=args.hidden, n_layers=3, seed=args.seed + 1)
    cd = wb.methods.ConsistencyDistillation(den, ddpm, n_intervals=args.intervals, student_prediction=args.student_prediction,
                                            target=args.target, ode_steps=args.ode_steps, bank_size=args.bank)
    t0 = time.perf_counter()
    h = wb.fit(st, cd, data, steps=args.student_steps, batch_size=512, lr=1e-3, schedule="cosine", progress=False)
    log(event="student trained", seconds=round(time.perf_counter() - t0, 1), target=args.target,
        steps=args.student_steps, intervals=args.intervals, final_loss=float(h.loss[-100:].mean()))
    for k in (1, 2, 4):
        t0 = time.perf_counter()
        tr = wb.analyses.sample_trajectory(st, cd, n=n, steps=k, seed=1, record_every=None)
        q(f"student {k}-step", tr, time.perf_counter() - t0)
    print()
    cols = ["energy", "mmd", "precision", "recall", "in_support", "hallucination", "modes_covered"]
    print("| sampler | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for name, r in rows.items():
        vals = []
        for c in cols:
            v = getattr(r, c)
            vals.append("–" if v is None else (f"{v:.4f}" if c in ("energy", "mmd") else (f"{v}" if isinstance(v, int) else f"{v:.1%}")))
        print(f"| {name} | " + " | ".join(vals) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", choices=["hallucination", "student"])
    ap.add_argument("--data", default="gaussian_grid")
    ap.add_argument("--model", choices=["plain", "fourier"], default="fourier",
                    help="TimeMLP without (plain) or with sinusoidal input features")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--T", type=int, default=1000)
    ap.add_argument("--schedule", default="linear")
    ap.add_argument("--variance", default="fixed_small")
    ap.add_argument("--beta-start", type=float, default=None)
    ap.add_argument("--beta-end", type=float, default=None)
    ap.add_argument("--n-train", type=int, default=20000)
    ap.add_argument("--train-steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--n-samples", type=int, default=20000)
    ap.add_argument("--n-eval", type=int, default=4000)
    ap.add_argument("--student-steps", type=int, default=3000)
    ap.add_argument("--student-prediction", default="x0")
    ap.add_argument("--target", default="ode")
    ap.add_argument("--intervals", type=int, default=20)
    ap.add_argument("--ode-steps", type=int, default=100)
    ap.add_argument("--bank", type=int, default=16384)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default="benchmarks/results", help="folder for trained teachers ('' = none)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    log(event="start", args=vars(args), torch=torch.__version__, load=os.getloadavg())
    {"hallucination": hallucination, "student": student}[args.experiment](args)


if __name__ == "__main__":
    main()
