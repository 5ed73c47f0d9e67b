"""mixup and VAT: the loss against hand computations, VAT's adversarial direction against the
closed-form Hessian of the KL (and a brute-force search), BatchNorm statistics, eval mode."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import workbench as wb
from workbench.methods.vat import _normalize, kl_with_logits, vat_perturbation


# --------------------------------------------------------------------------- mixup
def test_mixup_loss_is_ce_against_the_mixed_target():
    g = torch.Generator().manual_seed(0)
    model = wb.models.MLP(5, (7,), 3, seed=0)
    x, y = torch.randn(8, 5, generator=g), torch.randint(0, 3, (8,), generator=g)
    perm = torch.randperm(8, generator=g)
    lam = 0.3
    loss, _ = wb.methods.mixup_loss(model, x, y, lam, perm)
    logits = model(lam * x + (1 - lam) * x[perm])
    target = lam * F.one_hot(y, 3).float() + (1 - lam) * F.one_hot(y[perm], 3).float()
    hand = -(target * F.log_softmax(logits, 1)).sum(1).mean()
    torch.testing.assert_close(loss, hand)


def test_mixup_draws_beta_and_reduces_to_ce():
    m = wb.methods.Mixup(alpha=0.2)
    torch.manual_seed(0)
    lams = torch.tensor([m.sample(4, "cpu")[0] for _ in range(4000)])
    # Beta(0.2, 0.2): mean 1/2, variance 1 / (4 (2·0.2 + 1)) = 0.1786
    assert float(lams.mean()) == pytest.approx(0.5, abs=0.03)
    assert float(lams.var()) == pytest.approx(1 / 5.6, abs=0.01)
    model = wb.models.MLP(5, (7,), 3, seed=0)
    x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
    loss, logs = wb.methods.Mixup(alpha=0.0).loss(model, (x, y))
    torch.testing.assert_close(loss, F.cross_entropy(model(x), y))
    m.eval()
    loss, logs = m.loss(model, (x, y))          # eval mode: clean cross-entropy, clean accuracy
    torch.testing.assert_close(loss, F.cross_entropy(model(x), y))
    assert "lam" not in logs


def test_mixup_fit_is_seeded_and_checks_labels():
    ds = wb.data.load("moons", n=256, seed=0)
    out = []
    for _ in range(2):
        model = wb.models.MLP(2, (16,), 2, seed=0)
        h = wb.fit(model, wb.methods.Mixup(alpha=1.0), ds, steps=20, lr=1e-2, batch_size=64, progress=False)
        out.append((model, h))
    assert list(out[0][1].series("lam")) == list(out[1][1].series("lam"))
    assert torch.equal(out[0][0].fc.weight, out[1][0].fc.weight)
    with pytest.raises(ValueError, match="out_dim"):
        wb.methods.Mixup().loss(wb.models.MLP(2, (), 2, seed=0), (torch.randn(3, 2), torch.tensor([0, 1, 4])))
    with pytest.raises(ValueError, match="alpha"):
        wb.methods.Mixup(alpha=-1)


# --------------------------------------------------------------------------- VAT
def _linear(w, b):
    lin = nn.Linear(w.shape[1], w.shape[0]).double()
    with torch.no_grad():
        lin.weight.copy_(w)
        lin.bias.copy_(b)
    return lin


def _hessians(w, b, x):
    """Per-sample Hessian of KL(p(x) ‖ p(x + r)) in r at 0 for a linear softmax model, divided
    by the batch size as the batch-mean KL: Wᵀ (diag p − p pᵀ) W / B."""
    p = torch.softmax(x @ w.T + b, 1)
    return torch.stack([w.T @ (torch.diag(pi) - torch.outer(pi, pi)) @ w for pi in p]) / x.shape[0]


@pytest.mark.parametrize("xi", [1e-6, None])
def test_one_power_iteration_is_the_hessian_times_the_start(xi):
    g = torch.Generator().manual_seed(0)
    w, b = torch.randn(4, 6, generator=g, dtype=torch.float64), torch.randn(4, generator=g, dtype=torch.float64)
    x = torch.randn(5, 6, generator=g, dtype=torch.float64)
    model = _linear(w, b)
    r = vat_perturbation(model, x, model(x), xi=xi, eps=0.7, n_power=1, generator=torch.Generator().manual_seed(3))
    d0 = torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    hd = torch.einsum("bij,bj->bi", _hessians(w, b, x), _normalize(d0))
    want = 0.7 * _normalize(hd)
    # finite differences at ξ = 1e-6 in float64: relative error O(ξ); the exact product: rounding
    torch.testing.assert_close(r, want, rtol=1e-4 if xi else 1e-10, atol=1e-7 if xi else 1e-12)
    # the official normalisation divides by sqrt(1e-6 + Σd²) after scaling the largest entry to 1
    torch.testing.assert_close(r.norm(dim=1), torch.full((5,), 0.7, dtype=torch.float64), rtol=1e-6, atol=0)


def test_power_iteration_finds_the_top_eigenvector():
    g = torch.Generator().manual_seed(1)
    w, b = torch.randn(5, 8, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)
    x = torch.randn(6, 8, generator=g, dtype=torch.float64)
    model = _linear(w, b)
    r = vat_perturbation(model, x, model(x), xi=None, eps=1.0, n_power=60, generator=torch.Generator().manual_seed(0))
    top = torch.linalg.eigh(_hessians(w, b, x)).eigenvectors[..., -1]        # (B, D)
    cos = F.cosine_similarity(r, top, dim=1).abs()
    assert float(cos.min()) > 1 - 1e-8


def test_adversarial_direction_beats_a_brute_force_search():
    """On a small nonlinear model and a small radius, the KL at r_adv is the largest KL over 4000
    random directions of the same length (per sample) to within 0.1 % (the quadratic model of the
    KL that the power iteration maximises is exact only as eps -> 0)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 4)).double()
    x = torch.randn(3, 3, dtype=torch.float64)
    eps = 1e-3
    logits = model(x).detach()
    r = vat_perturbation(model, x, logits, xi=1e-6, eps=eps, n_power=30, generator=torch.Generator().manual_seed(0))

    def kl_each(xp):
        q = torch.softmax(logits, 1)
        return (q * (torch.log_softmax(logits, 1) - torch.log_softmax(model(xp), 1))).sum(1)

    with torch.no_grad():
        best_adv = kl_each(x + r)
        dirs = F.normalize(torch.randn(4000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)), dim=1) * eps
        for i in range(3):
            q = torch.softmax(logits[i : i + 1], 1)
            kls = (q * (torch.log_softmax(logits[i : i + 1], 1) - torch.log_softmax(model(x[i] + dirs), 1))).sum(1)
            assert float(best_adv[i]) >= float(kls.max()) * (1 - 1e-3)


def test_vat_loss_hand_computation_and_batchnorm():
    model = wb.models.MLP(4, (8,), 3, norm="batch", seed=0)
    x, y = torch.randn(16, 4, generator=torch.Generator().manual_seed(0)), torch.arange(16) % 3
    ref = wb.models.MLP(4, (8,), 3, norm="batch", seed=0)
    method = wb.methods.VAT(eps=0.5, xi=1e-6, n_power=1)
    torch.manual_seed(7)
    loss, logs = method.loss(model, (x, y))
    # by hand, with the same random start
    logits = ref(x)
    torch.manual_seed(7)
    r = vat_perturbation(ref, x, logits, xi=1e-6, eps=0.5, n_power=1)
    want = F.cross_entropy(logits, y) + kl_with_logits(logits.detach(), ref(x + r))
    torch.testing.assert_close(loss, want)
    assert logs["vat"] > 0
    # only the clean forward moved the BatchNorm statistics
    clean = wb.models.MLP(4, (8,), 3, norm="batch", seed=0)
    clean(x)
    assert torch.equal(model.body[1].running_mean, clean.body[1].running_mean)
    assert int(model.body[1].num_batches_tracked) == 1


def test_vat_semi_supervised_and_eval_mode():
    model = wb.models.MLP(4, (8,), 3, seed=0)
    x, y = torch.randn(6, 4), torch.tensor([0, 1, -1, -1, 2, -1])
    method = wb.methods.VAT(eps=0.5)
    loss, logs = method.loss(model, (x, y))
    torch.testing.assert_close(logs["ce"], F.cross_entropy(model(x)[y >= 0], y[y >= 0]).detach())
    method.eval()
    loss, logs = method.loss(model, (x, y))
    torch.testing.assert_close(loss, F.cross_entropy(model(x)[y >= 0], y[y >= 0]))
    with pytest.raises(ValueError, match="eps"):
        wb.methods.VAT(eps=0)
    with pytest.raises(ValueError, match="n_power"):
        wb.methods.VAT(n_power=-1)


def test_vat_fit_on_moons():
    ds = wb.data.load("moons", n=256, seed=0)
    model = wb.models.MLP(2, (16,), 2, seed=0)
    h = wb.fit(model, wb.methods.VAT(eps=0.3, xi=None), ds, steps=60, lr=1e-2, batch_size=64, val=ds, progress=False)
    assert h.status == "completed" and h.final("acc") > 0.85
