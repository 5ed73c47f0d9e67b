"""Classification losses on logits: golden values (hand computations, float64), the limits that
equal cross-entropy, shift/scale invariance, the declared per-sample form, and fit on digits."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import workbench as wb
from workbench.methods import LogitLoss
from workbench.methods.asl import asymmetric_loss

L = torch.tensor([[2.0, 0.5, -1.0]], dtype=torch.float64)
Y = torch.tensor([0])
P = torch.softmax(L, 1)[0]
CE = 0.241311


def _hand_ce():
    return -math.log(float(P[0]))


def test_golden_logits_are_the_notes():
    assert torch.allclose(P, torch.tensor([0.785597, 0.175290, 0.039113], dtype=torch.float64), atol=1e-6)
    assert _hand_ce() == pytest.approx(CE, abs=1e-6)


@pytest.mark.parametrize("gamma,want", [(0.0, CE), (2.0, 0.011093)])
def test_focal_golden(gamma, want):
    hand = -((1 - float(P[0])) ** gamma) * math.log(float(P[0]))
    assert hand == pytest.approx(want, abs=1e-6)
    assert float(wb.methods.focal_loss(L, Y, gamma=gamma)) == pytest.approx(hand, abs=1e-12)


@pytest.mark.parametrize("eps,want", [(1.0, 0.455714), (2.0, 0.670117), (-1.0, 0.026908)])
def test_poly1_golden(eps, want):
    hand = _hand_ce() + eps * (1 - float(P[0]))
    assert hand == pytest.approx(want, abs=1e-6)
    assert float(wb.methods.poly1_loss(L, Y, epsilon=eps)) == pytest.approx(hand, abs=1e-12)


def test_squentropy_golden():
    hand = _hand_ce() + (0.5**2 + 1.0**2) / 2
    assert hand == pytest.approx(0.866311, abs=1e-6)
    assert float(wb.methods.squentropy_loss(L, Y)) == pytest.approx(hand, abs=1e-12)


@pytest.mark.parametrize("a,b,want", [(1.0, 0.0, 0.257609), (2.0, 1.0, 0.246724)])
def test_zloss_golden_and_invariance(a, b, want):
    mu = sum(L[0].tolist()) / 3
    sd = math.sqrt(sum((v - mu) ** 2 for v in L[0].tolist()) / 3)
    z = (2.0 - mu) / sd
    assert z == pytest.approx(1.224745, abs=1e-6)
    hand = math.log1p(math.exp(a * (b - z))) / a
    assert hand == pytest.approx(want, abs=1e-6)
    assert float(wb.methods.z_loss(L, Y, a=a, b=b)) == pytest.approx(hand, abs=1e-9)
    assert float(wb.methods.z_loss(3 * L + 7, Y, a=a, b=b)) == pytest.approx(hand, abs=1e-9)


@pytest.mark.parametrize("tau,want", [(1.0, 0.582008), (0.5, 0.294840)])
def test_logitnorm_golden(tau, want):
    q = L[0] / (tau * (L[0].norm() + 1e-7))
    hand = float(torch.logsumexp(q, 0) - q[0])
    assert hand == pytest.approx(want, abs=1e-6)
    assert float(wb.methods.logitnorm_loss(L, Y, tau=tau)) == pytest.approx(hand, abs=1e-12)


def test_logz_penalty_is_ce_plus_squared_log_partition():
    lse = math.log(sum(math.exp(v) for v in L[0].tolist()))
    assert float(wb.methods.logz_penalty_loss(L, Y, coef=0.5)) == pytest.approx(_hand_ce() + 0.5 * lse**2, abs=1e-12)


@pytest.mark.parametrize("gn,gp,m,want", [(4, 1, 0.05, 0.310574), (4, 0, 0.05, 0.804121), (0, 0, 0.0, 1.400557)])
def test_asl_golden(gn, gp, m, want):
    x = torch.tensor([[1.5, -0.5, 0.2, -2.0]], dtype=torch.float64)
    y = torch.tensor([[1, 0, 1, 0]])
    hand = 0.0
    for xc, yc in zip(x[0].tolist(), y[0].tolist()):
        s = 1 / (1 + math.exp(-xc))
        if yc:
            hand -= (1 - s) ** gp * math.log(s)
        else:
            sm = max(s - m, 0.0)
            hand -= sm**gn * math.log(1 - sm)
    assert hand == pytest.approx(want, abs=1e-6)
    got = asymmetric_loss(x, y, gamma_neg=gn, gamma_pos=gp, clip=m)
    assert float(got) == pytest.approx(hand, abs=1e-12)
    if (gn, gp, m) == (0, 0, 0.0):
        assert float(got) == pytest.approx(float(F.binary_cross_entropy_with_logits(x, y.double(), reduction="sum")), abs=1e-12)


def test_asl_focal_weight_gradients():
    x = torch.tensor([[1.5, -0.5, 0.2, -2.0]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[1, 0, 1, 0]])
    g_det = torch.autograd.grad(asymmetric_loss(x, y, gamma_pos=1.0), x)[0]
    g_full = torch.autograd.grad(asymmetric_loss(x, y, gamma_pos=1.0, detach_focal_weight=False), x)[0]
    assert not torch.allclose(g_det, g_full)
    # detached weights: the gradient is the weighted BCE gradient with the weights as constants
    s = torch.sigmoid(x.detach())
    neg = (1 - s + 0.05).clamp(max=1)
    w = torch.where(y.bool(), (1 - s), (1 - neg) ** 4)
    dlog = torch.where(y.bool(), 1 - s, torch.where(neg < 1, -s * (1 - s) / neg, torch.zeros_like(s)))
    torch.testing.assert_close(g_det, -w * dlog)


@pytest.mark.parametrize("make", [lambda: wb.methods.FocalLoss(gamma=0.0), lambda: wb.methods.PolyLoss(epsilon=0.0)])
def test_limits_equal_cross_entropy_on_a_batch(make):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 5, generator=g, requires_grad=True)
    y = torch.randint(0, 5, (16,), generator=g)
    got = make().loss_from_outputs(logits, y)
    want = F.cross_entropy(logits, y)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(torch.autograd.grad(got, logits)[0], torch.autograd.grad(want, logits)[0],
                               rtol=1e-5, atol=1e-7)


METHODS = [
    lambda: wb.methods.FocalLoss(gamma=2.0), lambda: wb.methods.PolyLoss(epsilon=1.0),
    lambda: wb.methods.Squentropy(), lambda: wb.methods.ZLoss(a=1.0, b=0.0),
    lambda: wb.methods.LogitNorm(tau=0.5), lambda: wb.methods.LogZPenalty(coef=1e-2),
]


@pytest.mark.parametrize("make", METHODS)
def test_declared_per_sample_form(make):
    method = make()
    form = method.loss_form
    assert isinstance(form, LogitLoss) and isinstance(form, wb.methods.LossOnLogits)
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 7, 5, generator=g)   # a stack of 4 logit sets of 7 samples
    y = torch.randint(0, 5, (7,), generator=g)
    per = form.per_sample(logits[0], y)
    assert per.shape == (7,)
    torch.testing.assert_close(per.mean(), method.loss_from_outputs(logits[0], y))
    want = torch.stack([method.loss_from_outputs(lg, y) for lg in logits])
    torch.testing.assert_close(form.batched(logits, y), want)
    torch.testing.assert_close(form.batched(logits.transpose(1, 2), y, class_dim=-2), want)
    assert method.config == type(method)(**method.config).config


def test_cross_entropy_form_has_per_sample_too():
    form = wb.methods.CrossEntropy(label_smoothing=0.1).loss_form
    logits, y = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    torch.testing.assert_close(form.per_sample(logits, y).mean(), F.cross_entropy(logits, y, label_smoothing=0.1))


def test_argument_and_label_errors():
    with pytest.raises(ValueError, match="gamma"):
        wb.methods.FocalLoss(gamma=-1)
    with pytest.raises(ValueError, match="epsilon"):
        wb.methods.PolyLoss(epsilon=-2)
    with pytest.raises(ValueError, match="tau"):
        wb.methods.LogitNorm(tau=0)
    with pytest.raises(ValueError, match="a must"):
        wb.methods.ZLoss(a=0)
    with pytest.raises(TypeError, match="gamma"):
        wb.methods.FocalLoss(gamma="2")
    with pytest.raises(ValueError, match="reduction"):
        wb.methods.focal_loss(L, Y, reduction="avg")
    with pytest.raises(ValueError, match="C >= 2"):
        wb.methods.z_loss(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long))
    model = wb.models.MLP(4, (), 3, seed=0)
    with pytest.raises(ValueError, match="multi-label"):
        wb.methods.FocalLoss().loss(model, (torch.randn(2, 4), torch.ones(2, 3, dtype=torch.long)))
    with pytest.raises(ValueError, match="-1"):
        wb.methods.PolyLoss().loss(model, (torch.randn(2, 4), torch.tensor([0, -1])))
    with pytest.raises(ValueError, match="out_dim"):
        wb.methods.Squentropy().loss(model, (torch.randn(2, 4), torch.tensor([0, 5])))
    with pytest.raises(ValueError, match="multi-label targets"):
        asymmetric_loss(torch.zeros(2, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="0/1"):
        asymmetric_loss(torch.zeros(2, 3), torch.full((2, 3), 2))


@pytest.fixture(scope="module")
def digits():
    return wb.data.load("digits").split(0.8, seed=0)


@pytest.mark.parametrize("make", METHODS[:5])
def test_each_loss_trains_digits(make, digits):
    train, test = digits
    model = wb.models.MLP(64, (64,), 10, seed=0)
    hist = wb.fit(model, make(), train, steps=150, lr=3e-3, batch_size=128, val=test, progress=False)
    assert hist.status == "completed" and hist.final("acc") > 0.85
