"""The measurements behind notebook 10's closing note (CPU, one thread). Each prints JSON lines,
saved as ``benchmarks/results/diffusion_ii_<what>.jsonl``:

    OMP_NUM_THREADS=1 python benchmarks/diffusion_ii_experiments.py classifier   # gaussians8 + digits
    OMP_NUM_THREADS=1 python benchmarks/diffusion_ii_experiments.py probe        # digits probe heat map
    OMP_NUM_THREADS=1 python benchmarks/diffusion_ii_experiments.py students     # CD / iCT / DMD table
    OMP_NUM_THREADS=1 python benchmarks/diffusion_ii_experiments.py curriculum   # curriculum vs uniform
    OMP_NUM_THREADS=1 python benchmarks/diffusion_ii_experiments.py guidance     # CFG, minority, guided distillation
    OMP_NUM_THREADS=1 python benchmarks/diffusion_ii_experiments.py structure    # subspaces + D3PM

Every run states its sizes and seeds in its output; the load average is printed with each line
(the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

import workbench as wb


def log(**kw):
    kw["load"] = round(os.getloadavg()[0], 2)
    print(json.dumps(kw, default=lambda v: round(float(v), 4) if hasattr(v, "__float__") else str(v)), flush=True)


def q(sq):
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in sq.as_dict().items()}


def classifier(a):
    for seed in range(a.seeds):
        tr = wb.data.load("gaussians8", n=4000, seed=seed)
        te = wb.data.load("gaussians8", n=2000, seed=100 + seed)
        den = wb.models.TimeMLP(dim=2, n_classes=8, seed=seed)
        r = wb.recipes.generative_vs_discriminative(tr, te, denoiser=den, steps=a.steps, n_samples=(5, 25),
                                                    to_keep=(2, 1), budgets=(1, 2, 5, 10, 25, 50), seed=seed)
        log(exp="classifier", data="gaussians8", seed=seed, steps=a.steps, acc=r.diffusion.accuracy,
            evals=r.diffusion.mean_evaluations, mlp=r.discriminative_accuracy, params=r.params,
            curve=dict(zip(r.curve.evaluations.tolist(), r.curve.accuracy.tolist())), seconds=r.seconds)
    digits = wb.data.load("digits")
    d = wb.data.Dataset.from_arrays(digits.x * 2 - 1, digits.y, kind="image")
    tr, te = d.split(0.8, seed=0)
    den = wb.models.TimeMLP(dim=64, hidden=256, n_layers=3, n_classes=10, seed=0)
    r = wb.recipes.generative_vs_discriminative(tr, te, denoiser=den, ddpm=wb.methods.ConditionalDDPM(100, "cosine"),
                                                steps=a.steps * 2, n_samples=(10, 50), to_keep=(3, 1),
                                                budgets=(1, 5, 10, 25, 50), seed=0)
    log(exp="classifier", data="digits", steps=a.steps * 2, acc=r.diffusion.accuracy, evals=r.diffusion.mean_evaluations,
        mlp=r.discriminative_accuracy, params=r.params,
        curve=dict(zip(r.curve.evaluations.tolist(), r.curve.accuracy.tolist())), seconds=r.seconds)


def probe(a):
    digits = wb.data.load("digits")
    d = wb.data.Dataset.from_arrays(digits.x * 2 - 1, digits.y, kind="image")
    tr, te = d.split(0.7, seed=0)
    ddpm = wb.methods.DDPM(100, "cosine")
    den = wb.models.TimeMLP(dim=64, hidden=256, n_layers=3, seed=0)
    t0 = time.perf_counter()
    h = wb.fit(den, ddpm, tr, steps=a.steps * 2, batch_size=256, lr=1e-3, schedule="cosine", progress=False)
    log(exp="probe-train", steps=a.steps * 2, seconds=time.perf_counter() - t0, loss=float(h.loss[-100:].mean()))
    ts = [0, 5, 10, 20, 30, 45, 60, 80, 99]
    g = wb.analyses.probe_grid(den, ddpm, tr, te, ts, n_noise=1)
    log(exp="probe", timesteps=ts, sigmas=g.sigmas.tolist(), layers=list(g.layers), raw=g.input_accuracy,
        accuracy=[[round(float(v), 4) for v in r] for r in g.accuracy], best=g.best())
    rnd = wb.models.TimeMLP(dim=64, hidden=256, n_layers=3, seed=0)
    g0 = wb.analyses.probe_grid(rnd, ddpm, tr, te, [0, 20, 60])
    log(exp="probe-untrained", timesteps=[0, 20, 60], accuracy=[[round(float(v), 4) for v in r] for r in g0.accuracy])


def students(a):
    tr = wb.data.load("gaussians8", n=8000, seed=0)
    te = wb.data.load("gaussians8", n=4000, seed=1)
    ddpm = wb.methods.DDPM(100, "linear")
    teacher = wb.models.TimeMLP(dim=2, seed=0)
    t0 = time.perf_counter()
    wb.fit(teacher, ddpm, tr, steps=a.steps, batch_size=512, lr=1e-3, schedule="cosine", progress=False)
    log(exp="students-teacher", steps=a.steps, seconds=time.perf_counter() - t0)
    tab = wb.recipes.student_table(teacher, ddpm, tr, te, students=("cd", "ct", "dmd", "dmd-js"), steps=a.steps,
                                   n=2000, seed=0)
    for name, sq in tab.quality.items():
        log(exp="students", row=name, **q(sq))
    log(exp="students-seconds", **tab.seconds)


def curriculum(a):
    tr = wb.data.load("gaussians8", n=8000, seed=0)
    te = wb.data.load("gaussians8", n=2000, seed=1)
    ddpm = wb.methods.DDPM(200, "linear")

    def make(seed):
        return wb.models.TimeMLP(dim=2, seed=seed)

    cmp = wb.recipes.curriculum_comparison(make, ddpm, tr, te, steps=a.steps, seeds=range(a.seeds), n=2000,
                                           batch_size=256, lr=1e-3, schedule="cosine",
                                           schedules={"uniform": None,
                                                      "easy→hard": dict(n_clusters=20, patience=50),
                                                      "hard→easy": dict(n_clusters=20, patience=50,
                                                                        direction="hard_to_easy")})
    for name in cmp.names:
        log(exp="curriculum", schedule=name, steps=a.steps, seeds=a.seeds,
            energy=[sq.energy for sq in cmp.quality[name]], mmd=[sq.mmd for sq in cmp.quality[name]],
            precision=[sq.precision for sq in cmp.quality[name]], recall=[sq.recall for sq in cmp.quality[name]],
            in_support=[sq.in_support for sq in cmp.quality[name]], stage=cmp.stage[name].tolist(),
            loss_by_t=cmp.loss_by_t[name].mean(0).tolist())


def guidance(a):
    tr = wb.data.load("gaussians8", n=8000, seed=0)
    te = wb.data.load("gaussians8", n=2000, seed=1)
    ddpm = wb.methods.ConditionalDDPM(100, "linear", p_uncond=0.2)
    den = wb.models.TimeMLP(dim=2, n_classes=8, seed=0)
    wb.fit(den, ddpm, tr, steps=a.steps, batch_size=512, lr=1e-3, schedule="cosine", progress=False)
    sw = wb.analyses.guidance_sweep(den, ddpm, te, scales=(0, 1, 2, 3, 5), n=2000)
    for s, sq, acc in zip(sw.scales.tolist(), sw.quality, sw.class_accuracy.tolist()):
        log(exp="cfg", scale=s, class_acc=acc, **q(sq))
    gd = wb.recipes.guided_distillation(den, ddpm, tr, te, scales=(0, 1, 1.5, 2, 3, 5), scale_range=(0.0, 4.0),
                                        steps=a.steps, n=2000, sample_steps=25)
    for i, s in enumerate(gd.scales.tolist()):
        log(exp="guided-distillation", scale=s, teacher=q(gd.teacher.quality[i]), student=q(gd.student.quality[i]),
            teacher_acc=float(gd.teacher.class_accuracy[i]), student_acc=float(gd.student.class_accuracy[i]),
            x0_error=float(gd.x0_error[i]), sample_gap=float(gd.sample_gap[i]), seconds=gd.seconds)
    # minority guidance on an imbalanced mixture: modes 6 and 7 hold 1.6 % each
    w = (1, 1, 1, 1, 1, 1, 0.1, 0.1)
    itr = wb.data.load("gaussians8", n=8000, seed=0, weights=w)
    ite = wb.data.load("gaussians8", n=2000, seed=1)
    uddpm = wb.methods.DDPM(100, "linear")
    uden = wb.models.TimeMLP(dim=2, seed=0)
    wb.fit(uden, uddpm, itr, steps=a.steps, batch_size=512, lr=1e-3, schedule="cosine", progress=False)
    ms = wb.analyses.minority_score(uden, uddpm, itr, n_bins=10)
    rare = itr.y >= 6
    log(exp="minority-score", rare_mean=float(ms.score[rare].mean()), common_mean=float(ms.score[~rare].mean()),
        rare_in_top_bin=float((ms.labels[rare] == 9).float().mean()))
    clf = wb.models.TimeClassifier(2, 10, seed=0)
    wb.fit(clf, wb.methods.NoisyClassification(uddpm), ms.dataset(itr), steps=a.steps, batch_size=512, lr=3e-4,
           weight_decay=0.05, optimizer="adamw", schedule="linear", progress=False)
    msw = wb.analyses.guidance_sweep(uden, uddpm, ite, scales=(0, 1, 2, 3.5, 6), n=2000,
                                     guide=lambda s: wb.methods.MinorityGuidance(clf, s))
    for s, sq, sh in zip(msw.scales.tolist(), msw.quality, msw.mode_shares):
        log(exp="minority", scale=s, rare_share=float(sh[6:].sum()), shares=sh.tolist(), **q(sq))


def structure(a):
    for per_class in (4, 16, 64, 256):
        ds = wb.data.load("subspaces", n=3 * per_class, seed=0, dim=16, k=3, d=2)
        ddpm = wb.methods.DDPM(100, "linear")
        den = wb.models.TimeMLP(dim=16, hidden=256, n_layers=3, seed=0)
        wb.fit(den, ddpm, ds, steps=a.steps, batch_size=min(256, len(ds)), lr=1e-3, schedule="cosine", progress=False)
        ts = [1, 3, 8, 20, 50]
        rec = wb.analyses.jacobian_subspaces(den, ddpm, ds, ts, n_points=64)
        opt = wb.analyses.jacobian_subspaces(wb.analyses.molrg_denoiser(ds, ddpm), ddpm, ds, ts, n_points=64)
        log(exp="subspaces", per_class=per_class, sigmas=rec.sigmas.tolist(), rank=rec.summary()["rank"].tolist(),
            angle=rec.summary()["angle"].tolist(), optimal_rank=opt.summary()["rank"].tolist(),
            optimal_angle=opt.summary()["angle"].tolist())
    digits = wb.data.load("digits")
    binary = wb.data.Dataset.from_arrays((digits.x > 0.5).float(), digits.y, kind="image")
    tr, te = binary.split(0.8, seed=0)
    for transition in ("absorbing", "uniform"):
        d3 = wb.methods.D3PM(2, 50, transition)
        m = wb.models.TokenDenoiser(64, d3.n_total, seed=0)
        t0 = time.perf_counter()
        wb.fit(m, d3, tr, steps=a.steps, batch_size=256, lr=1e-3, schedule="cosine", grad_clip=1.0, progress=False)
        nll = d3.nll_bound(m, te.x)
        log(exp="d3pm-digits", transition=transition, steps=a.steps, T=50, bits_per_pixel=float(nll.mean()),
            seconds=time.perf_counter() - t0)
    seq = wb.data.load("sequences", n=4000, seed=0)
    for transition in ("absorbing", "uniform"):
        d3 = wb.methods.D3PM(6, 50, transition, hybrid=0.01 if transition == "absorbing" else 0.0)
        m = wb.models.TokenDenoiser(16, d3.n_total, seed=0)
        wb.fit(m, d3, seq, steps=a.steps, batch_size=256, lr=1e-3, schedule="cosine", grad_clip=1.0, progress=False)
        s = wb.analyses.sample_discrete(m, d3, n=1000, seed=0)
        log(exp="d3pm-sequences", transition=transition, stats=repr(wb.analyses.sequence_stats(s, seq)))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["classifier", "probe", "students", "curriculum", "guidance", "structure"])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    globals()[args.what](args)
    log(exp=f"{args.what}-done", seconds=time.perf_counter() - t0)
