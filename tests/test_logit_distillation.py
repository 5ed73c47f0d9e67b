"""The logit-distillation family (SinKD, DHKD, BD-KD, TAID, PHI-S) against hand computations.

Golden values: /work/shared/references/distillation_ii.md §4 (float64 numpy).
"""

import math

import pytest
import torch
import torch.nn.functional as F

import workbench as wb
from workbench.methods.bdkd import entropy_rows, kl_rows, reverse_weight
from workbench.methods.dhkd import align_gradient, binary_kl, binary_kl_norm
from workbench.methods.phis import fit_normalizer, hadamard
from workbench.methods.sinkd import sinkhorn_distance, sinkhorn_plan
from workbench.methods.taid import taid_target

D64 = torch.float64


def _reader(n_in, cols, out=3, hidden=()):
    """A linear workbench model whose logits are the input columns ``cols``."""
    m = wb.models.MLP(n_in, hidden, out, seed=0)
    with torch.no_grad():
        m.fc.weight.zero_()
        m.fc.weight[:, cols] = torch.eye(out)
        m.fc.bias.zero_()
    return m


def _t(rows):
    return torch.tensor(rows, dtype=D64)


# --------------------------------------------------------------------------- SinKD
ZS = [[2, 0, 0], [0, 2, 0], [0, 0, 2]]
ZT = [[3, 1, 0], [0, 3, 1], [1, 0, 3]]


def test_sinkhorn_cost_plan_and_loss_match_the_golden_values():
    total, plan, cost = sinkhorn_distance(_t(ZS), _t(ZT), temperature=2.0, epsilon=0.1, iterations=20)
    c = [[0.143394, 0.871745, 0.833180], [0.833180, 0.143394, 0.871745], [0.871745, 0.833180, 0.143394]]
    p = [[0.998306, 0.000686, 0.001008], [0.001008, 0.998306, 0.000686], [0.000686, 0.001008, 0.998306]]
    torch.testing.assert_close(cost, _t(c), atol=1e-6, rtol=0)
    torch.testing.assert_close(plan, _t(p), atol=1e-6, rtol=0)
    assert float(total) == pytest.approx(0.433768, abs=1e-6)
    assert float(plan.sum()) == pytest.approx(3.0, abs=1e-6)


def test_sinkhorn_plan_has_unit_marginals():
    c2 = _t([[0, 1, 2], [1, 0, 1], [2, 1, 0]])
    one = sinkhorn_plan(c2, 1.0, 1)
    torch.testing.assert_close(one.sum(0), torch.ones(3, dtype=D64), atol=1e-12, rtol=0)  # columns last: exact
    torch.testing.assert_close(one.sum(1), _t([1.010542, 0.978916, 1.010542]), atol=1e-6, rtol=0)
    twenty = sinkhorn_plan(c2, 1.0, 20)
    want = [[0.682385, 0.225264, 0.092351], [0.225264, 0.549471, 0.225264], [0.092351, 0.225264, 0.682385]]
    torch.testing.assert_close(twenty, _t(want), atol=1e-6, rtol=0)
    for dim in (0, 1):
        torch.testing.assert_close(twenty.sum(dim), torch.ones(3, dtype=D64), atol=1e-6, rtol=0)
    # any batch, any cost: row and column sums 1 after enough passes
    g = torch.Generator().manual_seed(0)
    p = sinkhorn_plan(torch.rand(7, 7, generator=g, dtype=D64), 0.5, 200)
    torch.testing.assert_close(p.sum(0), torch.ones(7, dtype=D64), atol=1e-8, rtol=0)
    torch.testing.assert_close(p.sum(1), torch.ones(7, dtype=D64), atol=1e-8, rtol=0)


def test_sinkhorn_is_blind_to_a_permutation_of_samples():
    pt = F.softmax(_t(ZT) / 2, -1)
    zs = 2 * pt[[1, 2, 0]].log()  # the student gives sample i the teacher's prediction for another sample
    total, _, _ = sinkhorn_distance(zs, _t(ZT), temperature=2.0)
    assert float(total) == pytest.approx(3.36e-4, rel=0.02)
    assert float((F.softmax(zs / 2, -1) - pt).abs().sum()) == pytest.approx(2.93, abs=0.01)


def test_sinkhorn_kd_method_equals_the_sum_of_its_parts():
    x = torch.cat([_t(ZS), _t(ZT)], 1).float()
    y = torch.tensor([0, 1, 2])
    teacher, student = _reader(6, slice(3, 6)), _reader(6, slice(0, 3))
    m = wb.methods.SinkhornKD(teacher, temperature=4.0, alpha=0.9, beta=0.8)
    loss, logs = m.loss(student, (x, y))
    zs, zt = _t(ZS), _t(ZT)
    ce = F.cross_entropy(zs, y)
    kl = F.kl_div(F.log_softmax(zs / 4, -1), F.log_softmax(zt / 4, -1), reduction="batchmean", log_target=True)
    want = 0.1 * ce + 0.9 * 16 * kl + 0.8 * 0.001 * 0.433768
    assert float(loss.detach()) == pytest.approx(float(want), abs=5e-6)  # float32 through the models
    assert float(logs["sinkhorn"]) == pytest.approx(4.33768e-4, rel=1e-3)


# --------------------------------------------------------------------------- DHKD
def test_binary_kl_norm_and_binary_kl_golden():
    zs, zt = _t([[2, -1, 0.5]]), _t([[3, -2, 0]])
    assert float(binary_kl_norm(zs, zt, 2.0)) == pytest.approx(0.278607, abs=1e-6)
    assert float(binary_kl(zs, zt, 2.0)) == pytest.approx(0.219090, abs=1e-6)
    # not shift-invariant, unlike softmax-KL
    assert float(binary_kl_norm(zs, zt + 5, 2.0)) == pytest.approx(7.285122, abs=1e-6)
    assert float(F.kl_div(F.log_softmax(zs, -1), F.log_softmax(zt + 5, -1), log_target=True, reduction="sum")) == \
        pytest.approx(float(F.kl_div(F.log_softmax(zs, -1), F.log_softmax(zt, -1), log_target=True, reduction="sum")))
    assert float(binary_kl_norm(zt, zt, 2.0)) == pytest.approx(0.0, abs=1e-12)


def test_gradient_alignment_golden():
    torch.testing.assert_close(align_gradient(_t([1, 0]), _t([-1, 1])), _t([0, 1]))
    assert (_t([1, 0]) + align_gradient(_t([1, 0]), _t([-1, 1]))).tolist() == [1, 1]
    torch.testing.assert_close(align_gradient(_t([1, 0]), _t([1, 1])), _t([1, 1]))


def test_dual_head_loss_and_aligned_gradient_by_hand():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 4, generator=g), torch.arange(8) % 3
    teacher = wb.models.MLP(4, (5,), 3, seed=1)
    student = wb.models.MLP(4, (6,), 3, seed=2)
    m = wb.methods.DualHeadKD(teacher, temperature=2.0, gamma=0.7, alpha=0.5, gradient_alignment=True)
    m.setup(student)
    loss, logs = m.loss(student, (x, y))
    h = student.features(x)
    ce = 0.7 * F.cross_entropy(student.head(h), y)
    bkl = 0.5 * binary_kl_norm(m.aux(h), teacher(x), 2.0)
    assert float(loss.detach()) == pytest.approx(float(ce + bkl), rel=1e-6)
    assert float(logs["ce"]) == pytest.approx(float(ce), rel=1e-6)
    # the surrogate's gradient is g_CE + aligned g_KD
    params = [*student.parameters(), *m.aux.parameters()]
    got = torch.cat([gr.reshape(-1) for gr in torch.autograd.grad(loss, params)])
    g1 = torch.cat([(gr if gr is not None else torch.zeros_like(p)).reshape(-1)
                    for gr, p in zip(torch.autograd.grad(ce, params, retain_graph=True, allow_unused=True), params)])
    g2 = torch.cat([(gr if gr is not None else torch.zeros_like(p)).reshape(-1)
                    for gr, p in zip(torch.autograd.grad(bkl, params, allow_unused=True), params)])
    torch.testing.assert_close(got, g1 + align_gradient(g1, g2), atol=1e-6, rtol=1e-5)


def test_dual_head_trains_and_round_trips(tmp_path):
    data = wb.data.load("gaussians8", n=64, seed=0)
    teacher = wb.models.MLP(2, (16,), 8, seed=0)
    student = wb.models.MLP(2, (8,), 8, seed=1)
    m = wb.methods.DualHeadKD(teacher)
    hist = wb.fit(student, m, data, steps=3, batch_size=32, progress=False)
    assert hist.status == "completed" and m.config["feature_dim"] == 8
    wb.save_checkpoint(tmp_path / "c", student, m)
    _, m2 = wb.load_checkpoint(tmp_path / "c")
    torch.testing.assert_close(m2.aux.weight, m.aux.weight)


# --------------------------------------------------------------------------- TAID
def test_taid_target_interpolates_logits_not_probabilities():
    zs, zt = _t([[1, 0, -1]]), _t([[3, 0, 0]])
    golden = {0.0: ([0.665241, 0.244728, 0.090031], 0.832396, 0.0),
              0.4: ([0.796168, 0.131606, 0.072227], 0.683665, 0.045485),
              1.0: ([0.909443, 0.045279, 0.045279], 0.543441, 0.176848)}
    log_ps = F.log_softmax(zs, -1)
    for t, (p, ce, kl) in golden.items():
        pt = taid_target(zs, zt, t)
        torch.testing.assert_close(pt, _t([p]), atol=1e-6, rtol=0)
        assert float(-(pt * log_ps).sum()) == pytest.approx(ce, abs=1e-6)
        assert float((pt * (pt.log() - log_ps)).sum()) == pytest.approx(kl, abs=1e-6)
    mixed = 0.6 * F.softmax(zs, -1) + 0.4 * F.softmax(zt, -1)
    torch.testing.assert_close(mixed, _t([[0.762922, 0.164948, 0.072130]]), atol=1e-6, rtol=0)
    assert not torch.allclose(taid_target(zs, zt, 0.4), mixed, atol=1e-3)


def test_taid_schedule_golden_and_linear_floor():
    m = wb.methods.TAID(wb.models.MLP(3, (), 3), total_steps=1000)
    assert m.update_t(1.0) == pytest.approx(0.4)  # the first call only stores the loss
    assert m.update_t(0.9) == pytest.approx(0.4006, abs=1e-9)
    assert float(m.momentum) == pytest.approx(0.001, abs=1e-12)
    assert m.update_t(0.85) == pytest.approx(0.4012, abs=1e-9)
    assert float(m.momentum) == pytest.approx(0.001546, abs=1e-6)
    # a loss falling fast with a large alpha jumps ahead of the linear floor
    fast = wb.methods.TAID(wb.models.MLP(3, (), 3), total_steps=1000, alpha=0.5)
    fast.update_t(1.0)
    t = fast.update_t(0.1)
    delta = 0.5 * (1 / (1 + math.exp(-0.009))) * 0.6
    assert t == pytest.approx(0.4 + delta, abs=1e-9)


def test_taid_loss_through_models_and_schedule_advances_only_in_training():
    x = torch.cat([_t([[1, 0, -1]]), _t([[3, 0, 0]])], 1).float()
    m = wb.methods.TAID(_reader(6, slice(3, 6)), total_steps=10)
    student = _reader(6, slice(0, 3))
    m.eval()
    loss, logs = m.loss(student, (x, None))
    assert float(loss) == pytest.approx(0.683665, abs=1e-5) and logs["t"] == pytest.approx(0.4)
    assert int(m.step) == 0
    m.train()
    m.loss(student, (x, None))
    assert int(m.step) == 1 and not m.needs_labels


# --------------------------------------------------------------------------- BD-KD
def test_bdkd_divergences_golden():
    zs, zt = _t([[2, 1, 0.1]]), _t([[3, 1, -1]])
    ls, lt = F.log_softmax(zs, -1), F.log_softmax(zt, -1)
    assert float(kl_rows(lt, ls)) == pytest.approx(0.123448, abs=1e-6)
    assert float(kl_rows(ls, lt)) == pytest.approx(0.175323, abs=1e-6)
    assert float(entropy_rows(ls)) == pytest.approx(0.846738, abs=1e-6)
    assert float(entropy_rows(lt)) == pytest.approx(0.441057, abs=1e-6)
    l4s, l4t = F.log_softmax(zs / 4, -1), F.log_softmax(zt / 4, -1)
    assert float(kl_rows(l4t, l4s)) * 16 == pytest.approx(0.333854, abs=1e-6)
    assert float(kl_rows(l4s, l4t)) * 16 == pytest.approx(0.345850, abs=1e-6)
    w = float(reverse_weight(ls, lt, "half"))
    assert (1 - w) * float(kl_rows(lt, ls)) + w * float(kl_rows(ls, lt)) == pytest.approx(0.149385, abs=1e-6)
    # entropy gap: the student is less sure than the teacher here, so reverse KL weighs more
    assert float(reverse_weight(ls, lt, "entropy")) == pytest.approx(1 / (1 + math.exp(-(0.846738 - 0.441057))), abs=1e-6)


def test_bdkd_method_loss_by_hand_and_peer_is_trained():
    x = torch.cat([_t([[2, 1, 0.1], [0, 1, 0]]), _t([[3, 1, -1], [1, 0, 0]])], 1).float()
    y = torch.tensor([0, 1])
    peer = _reader(6, slice(3, 6))
    m = wb.methods.BalancedDivergenceKD(peer, temperature=1.0, student_weight=0.5, teacher_weight=0.25)
    loss, _ = m.loss(_reader(6, slice(0, 3)), (x, y))
    zs, zt = x[:, :3].double(), x[:, 3:].double()
    ls, lt = F.log_softmax(zs, -1), F.log_softmax(zt, -1)
    w = torch.sigmoid(entropy_rows(ls) - entropy_rows(lt))
    student = F.cross_entropy(zs, y) + 0.5 * ((1 - w) * kl_rows(lt, ls) + w * kl_rows(ls, lt)).mean()
    teacher = F.cross_entropy(zt, y) + 0.25 * kl_rows(lt, ls).mean()
    assert float(loss.detach()) == pytest.approx(float(student + teacher), rel=1e-5)
    assert all(p.requires_grad for p in m.teacher.parameters()) and m.teacher is not peer
    data = wb.data.load("gaussians8", n=64, seed=0)
    t0 = wb.models.MLP(2, (8,), 8, seed=3)
    bd = wb.methods.BalancedDivergenceKD(t0)
    before = [p.clone() for p in bd.teacher.parameters()]
    wb.fit(wb.models.MLP(2, (8,), 8, seed=4), bd, data, steps=3, batch_size=32, progress=False)
    assert any(not torch.equal(a, b) for a, b in zip(before, bd.teacher.parameters()))  # online: the peer learns
    assert all(torch.equal(a, b) for a, b in zip(before, t0.parameters()))  # your model is not touched


# --------------------------------------------------------------------------- PHI-S
def test_phi_s_golden_covariance_and_alpha():
    h = hadamard(4)
    torch.testing.assert_close(h @ h.T, torch.eye(4, dtype=D64))
    # features with covariance exactly diag(4, 1, 0.25, 0): orthonormal zero-mean columns scaled
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(200, 4, generator=g, dtype=D64) - 0)
    q = q - q.mean(0)
    q, _ = torch.linalg.qr(q)
    x = math.sqrt(199) * q * _t([2, 1, 0.5, 0])
    mu, fwd, inv = fit_normalizer(x, "phi-s")
    y = (x - mu) @ fwd.T
    cov = torch.cov(y.T)
    assert math.sqrt(float(torch.cov(x.T).trace()) / 4) == pytest.approx(1.145644, abs=1e-6)
    torch.testing.assert_close(cov.diagonal(), torch.ones(4, dtype=D64), atol=1e-9, rtol=0)
    off = {(0, 1): 0.619048, (0, 2): 0.904762, (0, 3): 0.523810, (1, 2): 0.523810, (1, 3): 0.904762, (2, 3): 0.619048}
    for (i, j), v in off.items():
        assert float(cov[i, j]) == pytest.approx(v, abs=1e-6)


def test_phi_s_on_random_data_is_isotropic_and_invertible():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2000, 4, generator=g, dtype=D64) @ _t([[3, 1, 0, 0], [0, 1, 0, 0], [0, 0.2, 0.5, 0], [1, 0, 0, 0.1]])
    mu, fwd, inv = fit_normalizer(x, "phi-s")
    y = (x - mu) @ fwd.T
    torch.testing.assert_close(y.var(0), torch.ones(4, dtype=D64), atol=1e-10, rtol=0)
    alpha = 1 / float(fwd.norm(dim=1).max())  # every row of H Uᵀ / α has norm 1 / α
    assert 4 * alpha**2 == pytest.approx(float(torch.cov(x.T).trace()), rel=1e-10)
    torch.testing.assert_close(y @ inv.T + mu, x, atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match="powers of 2"):
        hadamard(12)


def test_multi_teacher_loss_by_hand_and_setup():
    data = wb.data.load("gaussians8", n=96, seed=0)
    t1, t2 = wb.models.MLP(2, (8,), 8, seed=0), wb.models.MLP(2, (4,), 8, seed=1)
    m = wb.methods.MultiTeacherDistillation([t1, t2], adaptor="linear")
    student = wb.models.MLP(2, (6,), 8, seed=2)
    with pytest.raises(ValueError, match="not set up"):
        m.loss(student, (data.x, None))
    m.setup(student, data)
    assert all(bool(n.fitted) for n in m.normalizers) and not m.needs_labels
    loss, logs = m.loss(student, (data.x[:10], None))
    h = student.features(data.x[:10])
    want = 0.0
    for a, t, n in zip(m.adaptors, (t1, t2), m.normalizers):
        z = t.features(data.x[:10]).detach().double()
        target = (z - n.mean.double()) @ n.forward_map.double().T
        want += float(((a(h).double() - target) ** 2).mean())
    assert float(loss.detach()) == pytest.approx(want, rel=1e-5)
    with pytest.raises(ValueError, match="powers of 2"):
        wb.methods.MultiTeacherDistillation([wb.models.MLP(2, (6,), 8)])
    hist = wb.fit(student, m, wb.data.Dataset(data.x), steps=3, batch_size=32, progress=False)
    assert hist.status == "completed"


def test_bad_arguments_are_refused():
    t = wb.models.MLP(3, (), 3)
    for call, err in ((lambda: wb.methods.SinkhornKD(t, epsilon=0), ValueError),
                      (lambda: wb.methods.SinkhornKD("teacher"), TypeError),
                      (lambda: wb.methods.DualHeadKD(t, aux="conv"), ValueError),
                      (lambda: wb.methods.TAID(t, total_steps=0), ValueError),
                      (lambda: wb.methods.TAID(t, total_steps=5, t_start=0.9, t_end=0.5), ValueError),
                      (lambda: wb.methods.BalancedDivergenceKD(t, weighting="mixed"), ValueError),
                      (lambda: wb.methods.MultiTeacherDistillation(t), TypeError),
                      (lambda: wb.methods.MultiTeacherDistillation([t], normalization="pca"), ValueError)):
        with pytest.raises(err):
            call()


@pytest.mark.parametrize("name", ["SinkhornKD", "DualHeadKD", "TAID", "BalancedDivergenceKD", "MultiTeacherDistillation",
                                  "FixMatch", "MeanTeacher", "WeightAwareDistillation"])
def test_new_methods_fit_and_round_trip_through_checkpoints(name, tmp_path):
    data = wb.data.load("gaussians8", n=64, seed=0)
    t, t2 = wb.models.MLP(2, (8,), 8, seed=0), wb.models.MLP(2, (4,), 8, seed=1)
    make = {"SinkhornKD": lambda: wb.methods.SinkhornKD(t), "DualHeadKD": lambda: wb.methods.DualHeadKD(t),
            "TAID": lambda: wb.methods.TAID(t, total_steps=5), "BalancedDivergenceKD": lambda: wb.methods.BalancedDivergenceKD(t),
            "MultiTeacherDistillation": lambda: wb.methods.MultiTeacherDistillation([t, t2]),
            "FixMatch": lambda: wb.methods.FixMatch(), "MeanTeacher": lambda: wb.methods.MeanTeacher(),
            "WeightAwareDistillation": lambda: wb.methods.WeightAwareDistillation()}
    m = make[name]()
    if name in ("FixMatch", "MeanTeacher"):
        m.set_unlabelled(data)
    if name == "WeightAwareDistillation":
        m.set_pseudo_labels(data.x, data.y, torch.ones(len(data)))
    student = wb.models.MLP(2, (8,), 8, seed=2)
    assert wb.fit(student, m, data, steps=2, batch_size=16, progress=False).status == "completed"
    wb.save_checkpoint(tmp_path / "c", student, m)
    _, m2 = wb.load_checkpoint(tmp_path / "c")
    a, b = m.state_dict(), m2.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
