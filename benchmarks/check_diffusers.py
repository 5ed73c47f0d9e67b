"""Numerical agreement of ``wb.methods.DDPM`` with diffusers' DDPMScheduler / DDIMScheduler.

diffusers comes with the ``dev`` extra (``pip install -e ".[dev]"``); it is never imported by the
workbench itself. ``tests/test_crosschecks.py`` runs the same step and chain comparisons in every
default test run; this script adds the float64 closed-form comparisons and trained-model chains.
Both sides get the same schedule, the same model outputs and the same noise (diffusers' DDPM step
draws its noise from a CPU generator; ours gets the same draws from an identically seeded one),
with ``clip_sample=False`` (diffusers' default clips x̂0 to [-1, 1]; the last rows show what that
changes). Prints the maximum absolute difference of every check.

    OMP_NUM_THREADS=1 python benchmarks/check_diffusers.py [--n 2000] [--train-steps 500]
"""

from __future__ import annotations

import argparse
import time

import torch

import workbench as wb
from workbench.methods.ddpm import DDPM


def maxdiff(a, b) -> float:
    return float((a.double() - b.double()).abs().max())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="points sampled in the chain checks")
    ap.add_argument("--train-steps", type=int, default=500, help="steps to train the moons denoiser used in chains")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import diffusers
    from diffusers import DDIMScheduler, DDPMScheduler

    print(f"diffusers {diffusers.__version__}, torch {torch.__version__}")
    rows = []

    def report(name, value, note=""):
        rows.append((name, value, note))
        print(f"{name:<62} {value:10.2e}  {note}", flush=True)

    T = 1000
    # ---------------------------------------------------------------- schedules
    for ours_name, theirs_name in [("linear", "linear"), ("cosine", "squaredcos_cap_v2")]:
        ours = DDPM(T, ours_name)
        ref = DDPMScheduler(num_train_timesteps=T, beta_schedule=theirs_name, clip_sample=False)
        rel = float(((ours.alphas_cumprod.double() - ref.alphas_cumprod.double()).abs() / ref.alphas_cumprod.double()).max())
        report(f"alphas_cumprod, {ours_name} (max relative diff)", rel)

    # ---------------------------------------------------------------- single steps
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, 2, generator=g)
    out = torch.randn(args.n, 2, generator=g)
    for pred, theirs_pred in [("epsilon", "epsilon"), ("x0", "sample"), ("v", "v_prediction")]:
        ours = DDPM(T, "linear", prediction=pred)
        ref = DDPMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=False, prediction_type=theirs_pred)
        worst = []
        for t in (999, 500, 100, 10, 1, 0):
            r = ref.step(out, t, x, generator=torch.Generator().manual_seed(t))
            z = torch.randn(x.shape, generator=torch.Generator().manual_seed(t))
            o = ours.step(out, t, x, noise=z)
            worst.append((t, maxdiff(o.prev, r.prev_sample), maxdiff(o.x0, r.pred_original_sample)))
        for t, dp, d0 in worst:
            report(f"DDPM step, {pred}-prediction, t={t}: x_prev | x0", dp, f"x0 {d0:.1e}")
    # float64 closed form of the same step, to see which side float32 rounding moves
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    ab = torch.cumprod(1 - betas, 0)
    ours = DDPM(T, "linear")
    ref = DDPMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=False)
    for t in (10, 1, 0):
        a_t, a_p = ab[t], (ab[t - 1] if t > 0 else torch.tensor(1.0, dtype=torch.float64))
        b_t = 1 - a_t / a_p
        x0 = (x.double() - (1 - a_t).sqrt() * out.double()) / a_t.sqrt()
        mean = a_p.sqrt() * b_t / (1 - a_t) * x0 + (1 - b_t).sqrt() * (1 - a_p) / (1 - a_t) * x.double()
        z = torch.randn(x.shape, generator=torch.Generator().manual_seed(t))
        exact = mean + ((b_t * (1 - a_p) / (1 - a_t)).sqrt() * z.double() if t > 0 else 0)
        r = ref.step(out, t, x, generator=torch.Generator().manual_seed(t)).prev_sample
        o = ours.step(out, t, x, noise=z).prev
        report(f"DDPM step t={t} vs float64 closed form: ours | diffusers", maxdiff(o, exact), f"diffusers {maxdiff(r, exact):.1e}")
    ours = DDPM(T, "cosine")
    ref = DDPMScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2", clip_sample=False)
    for t in (999, 500, 1):
        r = ref.step(out, t, x, generator=torch.Generator().manual_seed(t)).prev_sample
        z = torch.randn(x.shape, generator=torch.Generator().manual_seed(t))
        report(f"DDPM step, cosine schedule, t={t}", maxdiff(ours.step(out, t, x, noise=z).prev, r))
    ours = DDPM(T, "linear", variance="fixed_large")
    ref = DDPMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=False, variance_type="fixed_large")
    for t in (500, 10):
        r = ref.step(out, t, x, generator=torch.Generator().manual_seed(t)).prev_sample
        z = torch.randn(x.shape, generator=torch.Generator().manual_seed(t))
        report(f"DDPM step, fixed_large variance, t={t}", maxdiff(ours.step(out, t, x, noise=z).prev, r))

    ours = DDPM(T, "linear")
    for spacing in ("trailing", "leading"):
        ddim = DDIMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=False,
                             timestep_spacing=spacing, set_alpha_to_one=True)
        ddim.set_timesteps(50)
        ts = ours.timesteps(50, spacing)
        assert ts.tolist() == ddim.timesteps.tolist(), (ts[:5], ddim.timesteps[:5])
        for eta in (0.0, 1.0):
            worst = 0.0
            for i in range(50):
                t, tp = int(ts[i]), (int(ts[i + 1]) if i + 1 < 50 else -1)
                z = torch.randn(x.shape, generator=torch.Generator().manual_seed(i))
                r = ddim.step(out, t, x, eta=eta, variance_noise=z).prev_sample
                o = ours.step(out, t, x, t_prev=tp, sampler="ddim", eta=eta, noise=z).prev
                worst = max(worst, maxdiff(o, r))
            report(f"DDIM-50 step, {spacing} spacing, eta={eta:g} (worst of 50)", worst)
    # DDIM eta=1 steps against a float64 closed form
    b64 = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    ab64 = torch.cumprod(1 - b64, 0)
    ddim = DDIMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=False,
                         timestep_spacing="leading", set_alpha_to_one=True)
    ddim.set_timesteps(50)
    ts = ours.timesteps(50, "leading")
    w_o = w_d = 0.0
    for i in range(50):
        t, tp = int(ts[i]), (int(ts[i + 1]) if i + 1 < 50 else -1)
        z = torch.randn(x.shape, generator=torch.Generator().manual_seed(i))
        at = ab64[t]
        ap = ab64[tp] if tp >= 0 else torch.tensor(1.0, dtype=torch.float64)
        x0 = (x.double() - (1 - at).sqrt() * out.double()) / at.sqrt()
        s = ((1 - ap) / (1 - at)).sqrt() * (1 - at / ap).sqrt()
        exact = ap.sqrt() * x0 + (1 - ap - s * s).sqrt() * out.double() + s * z.double()
        w_o = max(w_o, maxdiff(ours.step(out, t, x, t_prev=tp, sampler="ddim", eta=1.0, noise=z).prev, exact))
        w_d = max(w_d, maxdiff(ddim.step(out, t, x, eta=1.0, variance_noise=z).prev_sample, exact))
    report("DDIM-50 eta=1 (leading) vs float64 closed form: ours | diffusers (worst)", w_o, f"diffusers {w_d:.1e}")

    # ---------------------------------------------------------------- whole chains with a trained model
    moons = wb.data.load("moons", n=4000, seed=0)
    den = wb.models.TimeMLP(dim=2, seed=0)
    t0 = time.perf_counter()
    wb.fit(den, DDPM(T, "linear"), moons, steps=args.train_steps, batch_size=256, lr=1e-3, progress=False)
    print(f"(trained the moons denoiser for {args.train_steps} steps in {time.perf_counter() - t0:.1f} s)")
    den.eval()

    @torch.no_grad()
    def chain_diffusers(sched, steps=None, eta=None):
        gen = torch.Generator().manual_seed(123)
        xt = torch.randn(args.n, 2, generator=gen)
        if steps is not None:
            sched.set_timesteps(steps)
        for t in sched.timesteps:
            eps = den(xt, torch.full((args.n,), int(t)))
            if eta is None:
                xt = sched.step(eps, int(t), xt, generator=gen).prev_sample
            else:
                z = torch.randn(xt.shape, generator=gen)
                xt = sched.step(eps, int(t), xt, eta=eta, variance_noise=z).prev_sample
        return xt

    @torch.no_grad()
    def chain_ours(sampler="ddpm", steps=None, eta=0.0, spacing="trailing", clip=None, always_draw=False):
        gen = torch.Generator().manual_seed(123)
        d = DDPM(T, "linear")
        xt = torch.randn(args.n, 2, generator=gen)
        ts = d.timesteps(steps, spacing).tolist()
        for i, t in enumerate(ts):
            tp = ts[i + 1] if i + 1 < len(ts) else -1
            eps = den(xt, torch.full((args.n,), t))
            z = torch.randn(xt.shape, generator=gen) if (t > 0 or always_draw) else None
            xt = d.step(eps, t, xt, t_prev=tp, sampler=sampler, eta=eta, noise=z, clip=clip).prev
        return xt

    t0 = time.perf_counter()
    ref_full = chain_diffusers(DDPMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=False))
    ours_full = chain_ours()
    report("DDPM-1000 chain, final samples (same noise)", maxdiff(ours_full, ref_full),
           f"({time.perf_counter() - t0:.0f} s for both)")
    ours_tr = wb.analyses.sample_trajectory(den, DDPM(T, "linear"), n=args.n, seed=0, record_every=None).samples
    report("  (our sample_trajectory, other seed) vs diffusers: energy distance",
           wb.analyses.energy_distance(ours_tr, ref_full), "distributional, not pointwise")
    ddim_ref = chain_diffusers(DDIMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=False,
                                             timestep_spacing="leading", set_alpha_to_one=True), steps=50, eta=0.0)
    report("DDIM-50 (leading, eta=0) chain, final samples",
           maxdiff(chain_ours("ddim", 50, 0.0, "leading", always_draw=True), ddim_ref))
    ddim1 = chain_ours("ddim", None, 1.0, always_draw=False)
    report("DDIM eta=1 on all 1000 steps vs our DDPM chain (same noise)", maxdiff(ddim1, ours_full))

    clipped = chain_diffusers(DDPMScheduler(num_train_timesteps=T, beta_schedule="linear"))  # clip_sample=True
    report("diffusers default clip_sample=True vs clip_sample=False, final samples", maxdiff(clipped, ref_full),
           f"inside |x|<=1.05: {float((clipped.abs().amax(1) <= 1.05).float().mean()):.1%} clipped vs "
           f"{float((ref_full.abs().amax(1) <= 1.05).float().mean()):.1%} unclipped")
    report("ours with clip=1.0 vs diffusers default (clipped)", maxdiff(chain_ours(clip=1.0), clipped))


if __name__ == "__main__":
    main()
