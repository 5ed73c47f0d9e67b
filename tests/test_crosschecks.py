"""The workbench against reference libraries on the same inputs, in the default run (no skips):
diffusers' schedulers, loss-landscapes' ``random_plane`` and PyHessian. The reference
libraries come with the ``dev`` extra (the README's install command).

Tolerances are stated where they are set, with the reason; the models are tiny.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch.func import functional_call

import workbench as wb
from workbench.methods.ddpm import DDPM

T = 1000

pytestmark = pytest.mark.filterwarnings(
    # PyHessian calls loss.backward(create_graph=True) in its constructor, by design
    "ignore:Using backward\\(\\) with create_graph=True:UserWarning"
)


def _maxdiff(a, b) -> float:
    return float((a.double() - b.double()).abs().max())


# =========================================================================== diffusers
from diffusers import DDIMScheduler, DDPMScheduler  # noqa: E402

_SCHEDULES = [("linear", "linear"), ("cosine", "squaredcos_cap_v2")]
_PREDICTIONS = [("epsilon", "epsilon"), ("x0", "sample"), ("v", "v_prediction")]


def _step_inputs(n=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=g), torch.randn(n, 2, generator=g)


@pytest.mark.parametrize("ours_name,theirs_name", _SCHEDULES)
def test_schedules_match_diffusers(ours_name, theirs_name):
    ours = DDPM(T, ours_name)
    ref = DDPMScheduler(num_train_timesteps=T, beta_schedule=theirs_name, clip_sample=False)
    rel = (ours.alphas_cumprod.double() - ref.alphas_cumprod.double()).abs() / ref.alphas_cumprod.double()
    # diffusers accumulates ᾱ in float32 (cumprod of 1000 factors); ours in float64, then rounds
    assert float(rel.max()) < 2e-5
    assert torch.allclose(ours.betas.double(), ref.betas.double(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("variance", ["fixed_small", "fixed_large"])
@pytest.mark.parametrize("pred,theirs_pred", _PREDICTIONS)
@pytest.mark.parametrize("ours_name,theirs_name", _SCHEDULES)
def test_ddpm_step_matches_diffusers(ours_name, theirs_name, pred, theirs_pred, variance):
    """One reverse step x_t -> x_{t-1} with the same model output and the same noise draw
    (clip_sample=False). Differences are float32 rounding: at most ~2e-4 (t = 1, where x̂0 divides
    by √ᾱ_t ≈ 1 after a cancellation), measured 1e-7..9e-4."""
    x, out = _step_inputs()
    ours = DDPM(T, ours_name, prediction=pred, variance=variance)
    ref = DDPMScheduler(num_train_timesteps=T, beta_schedule=theirs_name, clip_sample=False,
                        prediction_type=theirs_pred, variance_type=variance)
    # cosine: ᾱ_999 ~ 1e-9 turns x̂0 = (x - √(1-ᾱ)ε)/√ᾱ into an ill-conditioned quotient
    # (float32 ᾱ differences of 1e-5 become O(1) in x̂0), so t = 999 is checked on linear only
    ts = (999, 500, 100, 10, 1, 0) if ours_name == "linear" else (500, 100, 10, 1, 0)
    for t in ts:
        r = ref.step(out, t, x, generator=torch.Generator().manual_seed(t))
        z = torch.randn(x.shape, generator=torch.Generator().manual_seed(t))  # the same draw
        o = ours.step(out, t, x, noise=z)
        assert _maxdiff(o.prev, r.prev_sample) < 1e-3, t
        assert torch.allclose(o.x0, r.pred_original_sample, rtol=1e-4, atol=2e-5), t


@pytest.mark.parametrize("spacing", ["trailing", "leading"])
def test_ddim_steps_match_diffusers(spacing):
    """Every one of 50 DDIM steps (linear schedule), eta 0 and 1 with the same variance noise."""
    x, out = _step_inputs()
    ours = DDPM(T, "linear")
    ddim = DDIMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=False,
                         timestep_spacing=spacing, set_alpha_to_one=True)
    ddim.set_timesteps(50)
    ts = ours.timesteps(50, spacing)
    assert ts.tolist() == ddim.timesteps.tolist()
    for eta in (0.0, 1.0):
        worst = 0.0
        for i in range(50):
            t, tp = int(ts[i]), (int(ts[i + 1]) if i + 1 < 50 else -1)
            z = torch.randn(x.shape, generator=torch.Generator().manual_seed(i))
            r = ddim.step(out, t, x, eta=eta, variance_noise=z).prev_sample
            o = ours.step(out, t, x, t_prev=tp, sampler="ddim", eta=eta, noise=z).prev
            worst = max(worst, _maxdiff(o, r))
        assert worst < 1e-5, (eta, worst)  # measured 1.9e-6 (trailing), 2.9e-6 (leading)


def test_sampling_chains_match_diffusers():
    """Whole chains of ``wb.analyses.sample_trajectory`` against a diffusers loop with one
    denoiser: ancestral DDPM over all 1000 steps (x_T and every step's noise drawn from one
    generator seeded alike, in diffusers' order: no draw at t = 0) and deterministic DDIM-50
    from the same x_T."""
    den = wb.models.TimeMLP(dim=2, seed=0)
    n = 64

    @torch.no_grad()
    def diffusers_chain(sched, gen, x, **step_kw):
        for t in sched.timesteps:
            eps = den(x, torch.full((n,), int(t)))
            x = sched.step(eps, int(t), x, **step_kw).prev_sample
        return x

    ref = DDPMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=False)
    gen = torch.Generator().manual_seed(123)
    x_T = torch.randn(n, 2, generator=gen)
    theirs = diffusers_chain(ref, gen, x_T, generator=gen)
    ours = wb.analyses.sample_trajectory(den, DDPM(T, "linear"), n=n, seed=123, record_every=None)
    assert torch.equal(ours.x[0], x_T)
    assert torch.isfinite(theirs).all()
    assert _maxdiff(ours.samples, theirs) < 1e-3 * max(1.0, float(theirs.abs().max()))  # 1000 float32 steps

    ddim = DDIMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=False,
                         timestep_spacing="trailing", set_alpha_to_one=True)
    ddim.set_timesteps(50)
    theirs = diffusers_chain(ddim, None, x_T, eta=0.0)
    ours = wb.analyses.sample_trajectory(den, DDPM(T, "linear"), sampler="ddim", steps=50, x_T=x_T,
                                         record_every=None)
    # an untrained denoiser sends samples to |x| ~ 400: compare relative to that scale
    assert ours.timesteps[0] == 999 and _maxdiff(ours.samples, theirs) < 1e-5 * max(1.0, float(theirs.abs().max()))


# =========================================================================== loss-landscapes
import loss_landscapes  # noqa: E402
from loss_landscapes.metrics import Loss  # noqa: E402
from loss_landscapes.model_interface.model_parameters import orthogonal_to, rand_u_like  # noqa: E402
from loss_landscapes.model_interface.model_wrapper import wrap_model  # noqa: E402


def _tiny_classifier(seed=0):
    ds = wb.data.load("gaussians8", n=96, seed=seed)
    model = wb.models.MLP(2, (8,), 8, seed=seed)
    return model, ds


def test_loss_slice_matches_loss_landscapes_random_plane():
    """loss-landscapes 3.0.6 ``random_plane(normalization=None)`` draws its two directions from
    torch's global RNG, scales each step to |θ|/(distance·steps) and walks the grid in place,
    column by column, with odd columns one step lower than even ones. Re-drawing its
    directions with its own helpers after the same seed gives their exact step vectors s1, s2;
    our slice with ``directions=(s1, s2)``, ``normalization=None``, span S/2 and S+1 steps
    contains every point it visits, so the two grids are compared point by point."""
    model, ds = _tiny_classifier()
    S = 10
    crit = torch.nn.CrossEntropyLoss()
    metric = Loss(crit, ds.x, ds.y)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(7)
    ref = loss_landscapes.random_plane(model, metric, distance=1, steps=S, normalization=None,
                                       deepcopy_model=True)  # (S, S)
    # their direction draws, replayed
    torch.manual_seed(7)
    start = wrap_model(copy.deepcopy(model)).get_module_parameters()
    d1 = rand_u_like(start)
    d2 = orthogonal_to(d1)
    d1.mul_(start.model_norm() / S / d1.model_norm())
    d2.mul_(start.model_norm() / S / d2.model_norm())
    names = [n for n, _ in model.named_parameters()]
    s1 = {n: d1[i].clone() for i, n in enumerate(names)}
    s2 = {n: d2[i].clone() for i, n in enumerate(names)}

    land = wb.analyses.loss_slice_2d(model, wb.methods.CrossEntropy(), ds, span=S / 2, steps=S + 1,
                                     directions=(s1, s2), normalization=None)
    assert torch.allclose(land.alphas.double(), torch.arange(-S / 2, S / 2 + 1, dtype=torch.float64), atol=1e-6)
    ours = land.loss.double().numpy()
    # their row i sits at α = i - S/2; even rows at β = j + 1 - S/2, odd rows at β = j - S/2
    for i in range(S):
        shift = 1 if i % 2 == 0 else 0
        np.testing.assert_allclose(ref[i], ours[i, shift:shift + S], rtol=2e-5, atol=1e-6, err_msg=f"row {i}")
    # and the unshifted reading would be wrong: the quirk is real (guards the mapping itself)
    assert not np.allclose(ref[0], ours[0, :S], rtol=1e-3)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# =========================================================================== PyHessian
from pyhessian import hessian as pyhessian_hessian  # noqa: E402


def _exact_hessian(model, x, y) -> torch.Tensor:
    """The full (P, P) float64 Hessian of the mean cross-entropy, by ``torch.func.hessian``."""
    m64 = copy.deepcopy(model).double()
    names = [k for k, _ in m64.named_parameters()]
    shapes = [p.shape for _, p in m64.named_parameters()]
    flat0 = torch.cat([p.detach().reshape(-1) for _, p in m64.named_parameters()])

    def loss(flat):
        parts = torch.split(flat, [s.numel() for s in shapes])
        p = {k: t.reshape(s) for k, t, s in zip(names, parts, shapes)}
        return torch.nn.functional.cross_entropy(functional_call(m64, p, (x.double(),)), y)

    return torch.func.hessian(loss)(flat0)


def _curvature_case():
    ds = wb.data.load("gaussians8", n=128, seed=1)
    model = wb.models.MLP(2, (12,), 8, seed=1)
    wb.fit(model, wb.methods.CrossEntropy(), ds, steps=60, lr=1e-2, batch_size=64, seed=0, progress=False)
    return model, ds


def test_top_eigenvalue_matches_pyhessian():
    """Against the exact top eigenvalue (``eigvalsh`` of the full float64 Hessian, 140
    parameters): our Lanczos within 1e-4 (measured 1e-6). PyHessian's power iteration stops
    when two successive Rayleigh quotients differ by less than 1e-3 (relative), which says
    little about the error when the gap is small: here λ2/λ1 = 0.93 and it stopped 0.2-0.7 %
    low over start seeds 0-4, so it is held to 2 %."""
    model, ds = _curvature_case()
    h = _exact_hessian(model, ds.x, ds.y)
    exact = float(torch.linalg.eigvalsh(h)[-1])
    ours = float(wb.analyses.hessian_eigs(model, wb.methods.CrossEntropy(), ds, k=1).eigenvalues[0])
    torch.manual_seed(0)
    ref_model = copy.deepcopy(model)
    eig, _ = pyhessian_hessian(ref_model, torch.nn.CrossEntropyLoss(), data=(ds.x, ds.y), cuda=False).eigenvalues(top_n=1)
    theirs = float(eig[0])
    assert abs(ours - exact) <= 1e-4 * abs(exact)
    assert abs(theirs - exact) <= 2e-2 * abs(exact)
    assert abs(ours - theirs) <= 2e-2 * abs(exact)


def test_trace_matches_pyhessian():
    """Hutchinson on both sides: PyHessian with 300 Rademacher probes (tol=0: it never stops
    early) and ours with 300; each within 4 standard errors of the exact trace and of each
    other, and our ``estimator="exact"`` equal to it."""
    model, ds = _curvature_case()
    exact = float(torch.diagonal(_exact_hessian(model, ds.x, ds.y)).sum())
    assert exact > 0  # PyHessian's relative stopping rule divides by the running trace
    torch.manual_seed(0)
    samples = pyhessian_hessian(copy.deepcopy(model), torch.nn.CrossEntropyLoss(), data=(ds.x, ds.y),
                                cuda=False).trace(maxIter=300, tol=0.0)
    samples = np.asarray(samples)
    assert samples.size == 300
    theirs, se_theirs = samples.mean(), samples.std(ddof=1) / np.sqrt(samples.size)
    tr = wb.analyses.hessian_trace(model, wb.methods.CrossEntropy(), ds, seed=0, n_probes=300)
    assert abs(theirs - exact) <= 4 * se_theirs
    assert abs(tr.trace - exact) <= 4 * tr.stderr
    assert abs(tr.trace - theirs) <= 4 * np.hypot(tr.stderr, se_theirs)
    ex = wb.analyses.hessian_trace(model, wb.methods.CrossEntropy(), ds, estimator="exact")
    assert ex.trace == pytest.approx(exact, rel=1e-4)
