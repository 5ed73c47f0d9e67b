"""PALM: Sinkhorn weights against a hand-computed case, the training step's semantics (EMA with
its gradient path, top-k from the pre-update weights, code vs paper MLE), sub-cluster recovery on
a synthetic mixture, buffers and checkpoints, CenterLoss."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import workbench as wb
from workbench.methods.palm import sinkhorn, topk_mask


class Identity(nn.Module):
    """A fixed backbone: features(x) = x."""

    def __init__(self, d):
        super().__init__()
        self.feature_dim = d

    def features(self, x):
        return x


# --------------------------------------------------------------------------- Sinkhorn
def test_sinkhorn_tiny_case_by_hand():
    # 2 samples x 2 prototypes, ε = 1 and S = log K0 so that the kernel is K0 = [[2, 1], [1, 1]]
    # (rows = prototypes, columns = samples). Three rounds of "rows to 1/2, columns to 1/2",
    # done by hand with fractions, then x N = 2 and transposed:
    #   W = [[140/239, 99/239], [70/169, 99/169]]
    s = torch.tensor([[math.log(2.0), 0.0], [0.0, 0.0]], dtype=torch.float64)
    w = sinkhorn(s, epsilon=1.0, iters=3)
    expected = torch.tensor([[140 / 239, 99 / 239], [70 / 169, 99 / 169]], dtype=torch.float64)
    assert torch.allclose(w, expected, rtol=0, atol=1e-12)
    assert torch.allclose(w.sum(1), torch.ones(2, dtype=torch.float64))  # rows sum to 1
    # equipartition before masking: each prototype gets N / Kt = 1 (up to 3 iterations' error)
    mass = Fraction(140, 239) + Fraction(70, 169)
    assert w.sum(0)[0].item() == pytest.approx(float(mass), abs=1e-12)
    assert abs(float(mass) - 1) < 3e-5
    # masked to the class: sample 0 is class 0, sample 1 class 1; prototype j belongs to class j
    m = wb.methods.PALM(n_classes=2, n_prototypes=1, top_k=1, head=None, dim=2, epsilon=1.0)
    mask = m.class_mask(torch.tensor([0, 1]))
    wm = m._weights(s, mask)
    assert torch.allclose(wm, torch.tensor([[140 / 239, 0.0], [0.0, 99 / 169]], dtype=torch.float64))


def test_sinkhorn_equipartition_converges_and_rows_sum_to_one():
    g = torch.Generator().manual_seed(0)
    s = F.normalize(torch.randn(40, 6, generator=g, dtype=torch.float64), dim=1)
    w3 = sinkhorn(s, 0.05, 3)
    assert torch.allclose(w3.sum(1), torch.ones(40, dtype=torch.float64), atol=1e-9)
    w = sinkhorn(s, 0.5, 200)
    assert torch.allclose(w.sum(0), torch.full((6,), 40 / 6, dtype=torch.float64), atol=1e-6)
    # a large shift of the scores changes nothing (no overflow: the max is subtracted)
    assert torch.allclose(sinkhorn(s + 1000.0, 0.05, 3), w3, atol=1e-9)


def test_per_class_sinkhorn_equals_separate_runs():
    g = torch.Generator().manual_seed(1)
    c, k, n = 3, 2, 12
    pclass = torch.arange(c).repeat(k)
    y = torch.arange(n) % c
    s = torch.randn(n, c * k, generator=g, dtype=torch.float64)
    mask = y[:, None] == pclass[None, :]
    w = sinkhorn(s, 0.3, 3, mask=mask)
    for cls in range(c):
        rows, cols = (y == cls).nonzero().flatten(), (pclass == cls).nonzero().flatten()
        sub = sinkhorn(s[rows][:, cols], 0.3, 3)
        assert torch.allclose(w[rows][:, cols], sub, atol=1e-12)
        assert torch.all(w[rows][:, pclass != cls] == 0)


def test_topk_mask():
    w = torch.tensor([[0.1, 0.5, 0.4, 0.0], [0.3, 0.3, 0.0, 0.4]])
    k = topk_mask(w, 2)
    assert k[0].tolist() == [False, True, True, False]
    assert k.sum(1).tolist() == [2, 2] and bool(k[1, 3])


# --------------------------------------------------------------------------- state
def test_prototypes_buffer_init_and_ownership():
    m = wb.methods.PALM(n_classes=3, n_prototypes=4, top_k=2, dim=5, feature_dim=7, seed=0)
    p = m.prototypes
    assert p.shape == (12, 5)
    assert torch.allclose(p.norm(dim=1), torch.ones(12), atol=1e-6)
    assert (p >= 0).all()  # uniform [0, 1) then normalised: positive orthant
    assert m.proto_class.tolist() == [0, 1, 2] * 4  # interleaved ownership, as the official code
    sd = m.state_dict()
    assert "protos" in sd and "proto_class" in sd
    assert all(t is not m.protos for t in m.parameters())
    again = wb.methods.PALM(n_classes=3, n_prototypes=4, top_k=2, dim=5, feature_dim=7, seed=0)
    assert torch.equal(again.prototypes, p)


def _step_setup(momentum=0.5):
    torch.manual_seed(0)
    model = wb.models.MLP(6, (8,), 3, seed=0)
    m = wb.methods.PALM(n_classes=3, n_prototypes=3, top_k=2, dim=4, feature_dim=8, momentum=momentum,
                        augment=None, n_views=1, seed=0)
    x = torch.randn(9, 6, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2])
    return model, m, x, y


def test_training_step_ema_update_and_topk_from_pre_update_weights():
    model, m, x, y = _step_setup()
    p_old = m.prototypes.clone()
    with torch.no_grad():
        z = m.embed(model, x)
    mask = m.class_mask(y)
    w = sinkhorn(z @ p_old.T, m.epsilon, m.sinkhorn_iters) * mask
    keep = topk_mask(w, m.top_k)
    u = F.normalize(F.normalize(w * keep, p=1, dim=1), p=1, dim=0)
    expected = F.normalize(m.momentum * p_old + (1 - m.momentum) * u.T @ z, dim=1)
    m.train()
    loss, logs = m.loss(model, (x, y))
    assert torch.allclose(m.prototypes, expected, atol=1e-6)
    a = m.last_assignment
    assert torch.allclose(a.sum(1), torch.ones(9), atol=1e-6)
    assert torch.all(a[~mask] == 0)  # masked to the class
    assert torch.all(a[~keep] == 0)  # restricted to the pre-update top-k set
    assert set(logs) >= {"mle", "proto", "proto_acc"}
    assert torch.isfinite(loss)


def test_eval_mode_leaves_prototypes_alone():
    model, m, x, y = _step_setup()
    p_old = m.prototypes.clone()
    m.eval()
    m.loss(model, (x, y))
    assert torch.equal(m.prototypes, p_old)
    ev = m.evaluate(model, wb.data.Dataset(x, y))
    assert torch.equal(m.prototypes, p_old)
    assert "proto_acc" in ev and "acc" not in ev


def test_proto_loss_reaches_encoder_only_through_the_ema_term():
    model, m, x, y = _step_setup(momentum=0.5)
    m.train()
    m.lambda_proto = 1.0
    # isolate L_proto: its gradient on the model comes only from (1 - m) * target
    p_old = m.prototypes.clone()
    z = m.embed(model, x)
    mask = m.class_mask(y)
    with torch.no_grad():
        w = sinkhorn(z @ p_old.T, m.epsilon, m.sinkhorn_iters) * mask
        keep = topk_mask(w, m.top_k)
    u = F.normalize(F.normalize(w * keep, p=1, dim=1), p=1, dim=0)
    p_new = F.normalize(m.momentum * p_old + (1 - m.momentum) * u.T @ z, dim=1)
    m.proto_contrastive(p_new).backward()
    g = model.body[0].weight.grad
    assert g is not None and g.abs().sum() > 0
    # in eval mode there is no EMA term, so L_proto is a constant for the encoder
    model.zero_grad()
    m.eval()
    l_p = m.proto_contrastive(m.prototypes)
    assert not l_p.requires_grad


def test_mle_code_form_bounds_paper_form():
    model, m, x, y = _step_setup()
    m.eval()
    code, logs_code = m.loss(model, (x, y))
    m.mle = "paper"
    paper, logs_paper = m.loss(model, (x, y))
    assert logs_code["mle"] >= logs_paper["mle"] - 1e-6  # Jensen: Σ w l <= log Σ w exp(l)
    assert logs_code["proto"] == pytest.approx(float(logs_paper["proto"]))


def test_palm_argument_and_label_errors():
    with pytest.raises(ValueError, match="top_k"):
        wb.methods.PALM(n_prototypes=3, top_k=5)
    with pytest.raises(ValueError, match="sinkhorn"):
        wb.methods.PALM(sinkhorn="local")
    with pytest.raises(ValueError, match="mle"):
        wb.methods.PALM(mle="exact")
    with pytest.raises(ValueError, match="momentum"):
        wb.methods.PALM(momentum=1.0)
    with pytest.raises(ValueError, match="dim="):
        wb.methods.PALM(head=None)
    model, m, x, y = _step_setup()
    with pytest.raises(ValueError, match="-1"):
        m.loss(model, (x, torch.full_like(y, -1)))
    with pytest.raises(ValueError, match="labels"):
        m.loss(model, (x, None))
    with pytest.raises(ValueError, match="out_dim|classes"):
        m.loss(model, (x, y + 5))


# --------------------------------------------------------------------------- recovery
def _mixture(c=4, s=3, d=16, n=3000, noise=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(c * s, d, generator=g), dim=1)
    sub = torch.randint(0, c * s, (n,), generator=g)
    x = F.normalize(centres[sub] + noise * torch.randn(n, d, generator=g), dim=1)
    return x, sub // s, centres


@pytest.mark.parametrize("mode", ["global", "per-class"])
def test_palm_prototypes_recover_every_subcluster(mode):
    """4 classes, each a mixture of 3 tight sub-clusters on S^15; fixed (identity) features;
    K = 6 prototypes per class: every true sub-cluster centre has a prototype of its own class
    with cosine >= 0.95."""
    x, y, centres = _mixture()
    m = wb.methods.PALM(n_classes=4, n_prototypes=6, top_k=5, head=None, dim=16, momentum=0.9,
                        augment=None, n_views=1, sinkhorn=mode, seed=0)
    model = Identity(16)
    m.train()
    g = torch.Generator().manual_seed(1)
    for _ in range(300):
        idx = torch.randint(0, len(x), (512,), generator=g)
        m.loss(model, (x[idx], y[idx]))
    cos = centres @ m.prototypes.T  # (12, 24)
    own = (torch.arange(12)[:, None] // 3) == m.proto_class[None, :]
    best = cos.masked_fill(~own, -2).max(1).values
    assert best.min() >= 0.95, best


# --------------------------------------------------------------------------- fit, checkpoint
def test_palm_fit_snapshots_and_checkpoint(tmp_path):
    ds = wb.data.load("gaussians8", n=256, seed=0)
    model = wb.models.MLP(2, (16,), 8, seed=0)
    m = wb.methods.PALM(n_classes=8, n_prototypes=2, top_k=2, dim=8, feature_dim=16, momentum=0.9)
    p0 = m.prototypes.clone()
    snaps = wb.training.Snapshots(every=5, embed=ds, embed_fn=m.embed)
    h = wb.fit(model, m, ds, steps=10, batch_size=64, progress=False, callbacks=[snaps])
    assert h.status == "completed"
    assert not torch.equal(p0, m.prototypes)
    st = h.snapshots.method_states
    assert torch.equal(st[0]["protos"], p0) and torch.equal(st[-1]["protos"], m.prototypes)
    path = wb.save_checkpoint(tmp_path / "palm.safetensors", model, m)
    model2, m2 = wb.load_checkpoint(path)
    assert torch.equal(m2.prototypes, m.prototypes) and torch.equal(m2.proto_class, m.proto_class)
    assert m2.momentum == 0.9 and m2.sinkhorn_mode == "global"


def test_palm_setup_then_fit_without_feature_dim():
    ds = wb.data.load("gaussians8", n=128, seed=0)
    model = wb.models.MLP(2, (16,), 8, seed=0)
    m = wb.methods.PALM(n_classes=8, n_prototypes=2, top_k=1, dim=8)
    try:  # a fit that calls method.setup(model, data) before building the optimiser just works
        h = wb.fit(model, m, ds, steps=2, batch_size=64, progress=False)
    except ValueError as err:  # otherwise the message says what to do
        assert "setup" in str(err) and "feature_dim=16" in str(err)
        m.setup(model)
        h = wb.fit(model, m, ds, steps=2, batch_size=64, progress=False)
    assert h.status == "completed" and m.config["feature_dim"] == 16


# --------------------------------------------------------------------------- center loss
def test_center_loss_update_rule_and_training():
    model = wb.models.MLP(2, (4,), 2, seed=0)
    c = wb.methods.CenterLoss(n_classes=2, weight=0.5, alpha=0.5)
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 0, 0, 1, 1, 0])
    c.train()
    loss, logs = c.loss(model, (x, y))
    with torch.no_grad():
        h = model.features(x)
    # centres start at 0; Δc_j = Σ (c_j - h_i) / (1 + n_j), c_j <- c_j - α Δc_j
    exp0 = 0.5 * h[y == 0].sum(0) / (1 + 4)
    exp1 = 0.5 * h[y == 1].sum(0) / (1 + 2)
    assert torch.allclose(c.centers[0], exp0, atol=1e-6) and torch.allclose(c.centers[1], exp1, atol=1e-6)
    assert c.config["feature_dim"] == 4
    ce = F.cross_entropy(model(x), y)
    assert loss.item() == pytest.approx(ce.item() + 0.5 * 0.5 * (h ** 2).sum(1).mean().item(), rel=1e-5)
    before = c.centers.clone()
    c.eval()
    c.loss(model, (x, y))
    assert torch.equal(c.centers, before)
    ds = wb.data.load("moons", n=256, seed=0)
    m2 = wb.models.MLP(2, (16,), 2, seed=0)
    h2 = wb.fit(m2, wb.methods.CenterLoss(2, weight=0.1), ds, steps=60, batch_size=64, lr=1e-2, progress=False)
    assert h2.series("center")[-5:].mean() < h2.series("center")[:5].mean() + 1e-9
    with pytest.raises(ValueError, match="n_classes=2"):
        wb.methods.CenterLoss(3).loss(m2, (ds.x[:4], ds.y[:4]))


@pytest.mark.slow
def test_palm_digits_knn_accuracy():
    """Done-when check: PALM (official hyperparameters) on digits reaches kNN accuracy >= 0.95."""
    from workbench.analyses import embed, knn_accuracy

    train, test = wb.data.load("digits").split(0.8, seed=0)
    model = wb.models.MLP(64, (256, 256), 10, seed=0)
    method = wb.methods.PALM(n_classes=10, n_prototypes=6, feature_dim=model.feature_dim)
    wb.fit(model, method, train, steps=1000, batch_size=256, lr=1e-3, schedule="cosine", seed=0, progress=False)
    feats = knn_accuracy(embed(model, train), train.y, embed(model, test), test.y)
    head = knn_accuracy(embed(model, train, fn=method.embed), train.y, embed(model, test, fn=method.embed), test.y)
    proto = float((method.predict_class(embed(model, test, fn=method.embed)) == test.y).float().mean())
    print(f"PALM digits kNN accuracy: features {feats:.4f}, head {head:.4f}; nearest-prototype {proto:.4f}")
    assert feats >= 0.95 and head >= 0.95
