"""Distillation methods (KD, PS-KD, random teachers) and teacher-student diagnostics."""

import math

import pytest
import torch
from torch import nn

import workbench as wb
from workbench.analyses import distillation as D
from workbench.methods.kd import kd_loss


def _mlp(seed=0, hidden=(8,), in_dim=4, out=3):
    return wb.models.MLP(in_dim, hidden, out, seed=seed)


def _data(n=64, seed=0, in_dim=4, classes=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, in_dim, generator=g)
    y = torch.arange(n) % classes
    x[:, 0] += y.float()  # a little signal
    return wb.data.Dataset(x, y)


# --------------------------------------------------------------------------- KD loss
def test_kd_loss_equals_hand_computed_value():
    s = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    t = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    y = torch.tensor([0, 2])
    T, a = 2.0, 0.9

    def softmax(v):
        e = [math.exp(u) for u in v]
        return [u / sum(e) for u in e]

    ce = kl = 0.0
    for i in range(2):
        ce += -math.log(softmax(s[i].tolist())[y[i]])
        ps = softmax((s[i] / T).tolist())
        pt = softmax((t[i] / T).tolist())
        kl += sum(p * math.log(p / q) for p, q in zip(pt, ps))
    ce, kl = ce / 2, kl / 2
    expected = (1 - a) * ce + a * T * T * kl
    loss, ce_t, kd_t = kd_loss(s.double(), t.double(), y, temperature=T, alpha=a)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert ce_t.item() == pytest.approx(ce, rel=1e-12)
    assert kd_t.item() == pytest.approx(T * T * kl, rel=1e-12)
    assert kd_loss(s, t, y, temperature=T, alpha=a)[0].item() == pytest.approx(expected, rel=1e-5)
    # the method gives the same number through models: linear models reading x = [s, t]
    student = wb.models.MLP(6, (), 3)
    teacher = wb.models.MLP(6, (), 3)
    with torch.no_grad():
        for mdl, cols in ((student, slice(0, 3)), (teacher, slice(3, 6))):
            mdl.fc.weight.zero_()
            mdl.fc.weight[:, cols] = torch.eye(3)
            mdl.fc.bias.zero_()
    m = wb.methods.KnowledgeDistillation(teacher, temperature=T, alpha=a)
    l2, logs = m.loss(student, (torch.cat([s, t], 1), y))
    assert l2.item() == pytest.approx(expected, rel=1e-5)
    assert logs["agree"].item() == 0.5 and logs["acc"].item() == 0.5


def test_kd_alpha_extremes():
    s, t, y = torch.randn(5, 4), torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0])
    l0, ce, _ = kd_loss(s, t, y, temperature=3.0, alpha=0.0)
    assert l0.item() == pytest.approx(torch.nn.functional.cross_entropy(s, y).item(), rel=1e-6)
    l1, _, kd = kd_loss(s, t, None, temperature=3.0, alpha=1.0)
    assert l1.item() == pytest.approx(kd.item())
    with pytest.raises(ValueError, match="needs labels"):
        kd_loss(s, t, None, alpha=0.5)
    with pytest.raises(ValueError, match="as many classes"):
        kd_loss(s, t[:, :3], y)


def test_kd_teacher_is_a_frozen_eval_copy_and_fit_never_trains_it():
    teacher = wb.models.MLP(4, (8,), 3, dropout=0.5, seed=0)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    m = wb.methods.KnowledgeDistillation(teacher, temperature=4.0, alpha=0.9)
    assert m.teacher is not teacher
    assert all(p.requires_grad for p in teacher.parameters())       # the caller's model untouched
    assert not any(p.requires_grad for p in m.teacher.parameters())
    m.train()
    assert m.training and not m.teacher.training                   # stays in eval mode
    student = _mlp(seed=1)
    data = _data()
    hist = wb.fit(student, m, data, steps=5, batch_size=16, lr=1e-2, seed=0, progress=False)
    assert hist.status == "completed"
    for k, v in m.teacher.state_dict().items():
        assert torch.equal(v, before[k])
    assert not m.teacher.training
    assert {"ce", "kd", "agree", "acc"} <= set(hist.records[-1])
    # the teacher's dropout is off: two calls give identical logits
    x = data.x[:8]
    assert torch.equal(m.teacher_logits(x), m.teacher_logits(x))


def test_kd_checkpoint_round_trip_keeps_the_teacher(tmp_path):
    teacher = _mlp(seed=3)
    with torch.no_grad():
        teacher.fc.weight.mul_(2.0)  # "trained": differs from its seeded init
    m = wb.methods.KnowledgeDistillation(teacher, temperature=2.0, alpha=0.7)
    student = _mlp(seed=4)
    path = wb.save_checkpoint(tmp_path / "kd.safetensors", student, m)
    s2, m2 = wb.load_checkpoint(path)
    assert isinstance(m2, wb.methods.KnowledgeDistillation)
    assert m2.temperature == 2.0 and m2.alpha == 0.7
    for (k, a), (_, b) in zip(m.teacher.state_dict().items(), m2.teacher.state_dict().items()):
        assert torch.equal(a, b), k
    assert not any(p.requires_grad for p in m2.teacher.parameters())


def test_kd_without_labels_only_for_alpha_one():
    x = _data().x
    unlabelled = wb.data.Dataset(x)
    pure = wb.methods.KnowledgeDistillation(_mlp(), alpha=1.0)
    assert pure.needs_labels is False
    wb.fit(_mlp(seed=1), pure, unlabelled, steps=2, batch_size=16, progress=False)
    with pytest.raises(ValueError, match="needs labels"):
        wb.fit(_mlp(seed=1), wb.methods.KnowledgeDistillation(_mlp(), alpha=0.5), unlabelled, steps=2,
               progress=False)


def test_kd_bad_arguments():
    with pytest.raises(TypeError, match="teacher"):
        wb.methods.KnowledgeDistillation("not a model")
    with pytest.raises(TypeError, match="config"):
        wb.methods.KnowledgeDistillation(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="temperature"):
        wb.methods.KnowledgeDistillation(_mlp(), temperature=0)
    with pytest.raises(ValueError, match="alpha"):
        wb.methods.KnowledgeDistillation(_mlp(), alpha=1.5)
    m = wb.methods.KnowledgeDistillation(_mlp(out=3))
    with pytest.raises(ValueError, match="as many classes"):
        m.loss(_mlp(out=4), (torch.randn(2, 4), torch.tensor([0, 1])))


# --------------------------------------------------------------------------- PS-KD
def test_pskd_schedule_and_targets():
    m = wb.methods.PSKD(epochs=4, epoch_steps=2, alpha_T=0.8)
    assert [m.alpha_at(e) for e in range(6)] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 0.8])
    model = _mlp(seed=0)
    x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    m.train()
    loss0, logs0 = m.loss(model, (x, y))  # epoch 0: plain cross-entropy
    assert loss0.item() == pytest.approx(torch.nn.functional.cross_entropy(model(x), y).item(), rel=1e-6)
    assert logs0["alpha"] == 0.0
    m.loss(model, (x, y))
    with torch.no_grad():
        model.fc.bias.add_(1.0)  # the model moves on; the frozen copy is taken at the epoch start
    before = model(x).detach().softmax(-1)
    loss1, logs1 = m.loss(model, (x, y))  # first step of epoch 1: copy taken now, alpha = 0.2
    assert logs1["alpha"] == pytest.approx(0.2)
    target = 0.8 * torch.nn.functional.one_hot(y, 3).float() + 0.2 * before
    expected = -(target * model(x).log_softmax(-1)).sum(-1).mean()
    assert loss1.item() == pytest.approx(expected.item(), rel=1e-6)
    assert int(m.step) == 3
    m.eval()
    m.loss(model, (x, y))
    assert int(m.step) == 3  # evaluation does not advance the schedule


def test_pskd_fits_and_round_trips(tmp_path):
    data = _data()
    model = _mlp(seed=0)
    m = wb.methods.PSKD(epochs=3, epoch_steps=len(data) // 16)
    hist = wb.fit(model, m, data, epochs=3, batch_size=16, lr=1e-2, progress=False, seed=0)
    assert hist.status == "completed" and hist.records[-1]["alpha"] == pytest.approx(0.8 * 2 / 3)
    _, m2 = wb.load_checkpoint(wb.save_checkpoint(tmp_path / "p.safetensors", model, m))
    assert int(m2.step) == int(m.step) == 12
    with pytest.raises(ValueError, match="epoch_steps"):
        wb.methods.PSKD(epochs=3, epoch_steps=0)
    with pytest.raises(ValueError, match="alpha_T"):
        wb.methods.PSKD(epochs=3, epoch_steps=2, alpha_T=2)


# --------------------------------------------------------------------------- random teachers
def test_random_teacher_locality_init():
    teacher = _mlp(seed=0)
    m = wb.methods.RandomTeacherDistillation(teacher, out_dim=32, hidden=16, bottleneck=8, seed=0)
    same = m.make_student(seed=5, locality=0.0)
    for a, b in zip(same.parameters(), m.teacher.parameters()):
        assert torch.equal(a, b)
    fresh = m.make_student(seed=5, locality=1.0)
    ref = _mlp(seed=5)
    for a, b in zip(fresh.parameters(), ref.parameters()):
        assert torch.allclose(a, b)
    half = m.make_student(seed=5, locality=0.5)
    for a, t, f in zip(half.parameters(), m.teacher.parameters(), ref.parameters()):
        assert torch.allclose(a, (t + f) / 2 / math.sqrt(0.5), atol=1e-6)
    assert all(p.requires_grad for p in half.parameters())
    with pytest.raises(ValueError, match="locality"):
        m.make_student(seed=5, locality=2.0)
    with pytest.raises(ValueError, match="teacher's own seed"):
        m.make_student(seed=0)


def test_random_teacher_trains_the_student_without_labels(tmp_path):
    teacher = _mlp(seed=0)
    m = wb.methods.RandomTeacherDistillation(teacher, out_dim=32, hidden=16, bottleneck=8, seed=0)
    assert m.needs_labels is False
    t_before = {k: v.clone() for k, v in m.state_dict().items() if k.startswith("teacher")}
    student = m.make_student(seed=1)
    s_before = [p.clone() for p in student.parameters()]
    data = wb.data.Dataset(_data().x)  # no labels
    hist = wb.fit(student, m, data, steps=4, batch_size=16, lr=1e-2, seed=0, progress=False)
    assert hist.status == "completed" and {"kl", "agree"} <= set(hist.records[-1])
    assert hist.records[-1]["kl"] >= 0
    for k, v in m.state_dict().items():
        if k.startswith("teacher"):
            assert torch.equal(v, t_before[k]), k
    assert any(not torch.equal(a, b) for a, b in zip(student.parameters(), s_before))
    assert not m.teacher.training and not m.teacher_head.training
    # loss = cross-entropy = KL + teacher entropy >= KL
    loss, logs = m.loss(student, (data.x[:8], None))
    assert loss.item() >= logs["kl"].item()
    _, m2 = wb.load_checkpoint(wb.save_checkpoint(tmp_path / "rt.safetensors", student, m))
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), k
    with pytest.raises(ValueError, match="teacher's architecture"):
        m.loss(_mlp(hidden=(5,)), (data.x[:4], None))
    with pytest.raises(TypeError, match="features"):
        wb.methods.RandomTeacherDistillation(torch.nn.Linear(2, 2))


def test_l2_bottleneck_head_outputs_cosines():
    head = wb.methods.L2BottleneckHead(6, hidden=8, bottleneck=4, out_dim=10)
    out = head(torch.randn(5, 6) * 100)
    assert out.shape == (5, 10) and out.abs().max() <= 1.0 + 1e-6


# --------------------------------------------------------------------------- CKA
def test_cka_of_a_representation_with_itself_is_one():
    x = torch.randn(50, 7, generator=torch.Generator().manual_seed(0))
    assert wb.analyses.linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)


def test_cka_invariant_to_orthogonal_transforms_and_isotropic_scaling():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 6, generator=g, dtype=torch.float64)
    y = torch.randn(40, 9, generator=g, dtype=torch.float64) + x @ torch.randn(6, 9, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    base = wb.analyses.linear_cka(x, y)
    assert 0 < base < 1
    assert wb.analyses.linear_cka(x.double() @ q * 3.7, y) == pytest.approx(base, abs=1e-10)
    assert wb.analyses.linear_cka(x, 0.01 * y) == pytest.approx(base, abs=1e-10)
    assert wb.analyses.linear_cka(x.double() @ q, x) == pytest.approx(1.0, abs=1e-10)
    # translation does not matter (features are centred) ...
    assert wb.analyses.linear_cka(x + 5.0, y) == pytest.approx(base, abs=1e-10)
    # ... but anisotropic scaling does
    s = torch.ones(6, dtype=torch.float64)
    s[0] = 10.0
    assert abs(wb.analyses.linear_cka(x * s, x) - 1.0) > 1e-3
    # N < d takes the Gram-matrix route: same value
    small_x, small_y = x[:5], y[:5]
    a, b = small_x.double() - small_x.double().mean(0), small_y.double() - small_y.double().mean(0)
    ref = (b.T @ a).pow(2).sum() / ((a.T @ a).norm() * (b.T @ b).norm())
    assert wb.analyses.linear_cka(small_x, small_y) == pytest.approx(float(ref), rel=1e-10)


def test_cka_errors():
    with pytest.raises(ValueError, match="same samples"):
        wb.analyses.linear_cka(torch.randn(5, 2), torch.randn(6, 2))
    with pytest.raises(ValueError, match="constant"):
        wb.analyses.linear_cka(torch.ones(5, 2), torch.randn(5, 2))
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        wb.analyses.linear_cka(torch.randn(5), torch.randn(5, 2))
    with pytest.raises(ValueError, match="NaN"):
        wb.analyses.linear_cka(torch.tensor([[float("nan")], [1.0]]), torch.randn(2, 1))


# --------------------------------------------------------------------------- relative reps, agreement
def test_relative_representations_are_invariant_to_rotation_and_scale():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(30, 5, generator=g)
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=g))
    r = wb.analyses.relative_similarity(z, 4.0 * z @ q, anchors=10, seed=0)
    assert r.cosine == pytest.approx(1.0, abs=1e-6) and r.top1 == 1.0
    assert r.absolute_cosine < 0.9  # the absolute coordinates do differ
    rel = wb.analyses.relative_representation(z, z[:3])
    assert rel.shape == (30, 3) and torch.allclose(rel[:3].diagonal(), torch.ones(3))
    other = wb.analyses.relative_similarity(z, torch.randn(30, 8, generator=g), anchors=[0, 1, 2, 3])
    assert other.cosine < 0.9 and math.isnan(other.absolute_cosine)
    with pytest.raises(ValueError, match="anchors"):
        wb.analyses.relative_similarity(z, z, anchors=100)


def test_agreement_from_logits_by_hand():
    t = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0]])
    s = torch.tensor([[2.0, 0.0], [2.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    y = torch.tensor([0, 1, 1, 1])
    a = D.agreement_from_logits(t, s, y)
    assert a.agreement == 0.75
    assert a.per_class_agreement.tolist() == pytest.approx([1.0, 2 / 3])
    assert a.per_class_count.tolist() == [1, 3]
    assert a.teacher_accuracy == 0.75 and a.student_accuracy == 0.5
    p = torch.softmax(torch.tensor([0.0, 2.0]), 0)
    kl_one = float((p * (p.log() - p.flip(0).log())).sum())
    assert a.kl == pytest.approx(kl_one / 4, rel=1e-6)
    assert a.disagree.tolist() == [False, True, False, False]
    b = D.agreement_from_logits(t, s)  # no labels: grouped by the teacher's prediction
    assert b.grouped_by == "teacher" and math.isnan(b.teacher_accuracy)
    assert "agreement=0.7500" in repr(a)
    with pytest.raises(ValueError, match="same classes"):
        D.agreement_from_logits(t, s[:, :1])
    with pytest.raises(ValueError, match="labels go up to 5"):
        D.agreement_from_logits(t, s, torch.tensor([0, 1, 5, 1]))


def test_report_and_trajectory_on_a_tiny_fit():
    data = _data(n=90)
    train, test = data.split(0.5, seed=0)
    teacher = _mlp(seed=0, hidden=(16,))
    wb.fit(teacher, wb.methods.CrossEntropy(), train, steps=30, batch_size=16, lr=1e-2, progress=False)
    student = _mlp(seed=1, hidden=(6,))
    snaps = wb.training.Snapshots(every=5, embed=test, params=False)
    wb.fit(student, wb.methods.KnowledgeDistillation(teacher), train, steps=10, batch_size=16, lr=1e-2,
           progress=False, callbacks=[snaps])
    rep = D.teacher_student_report(teacher, student, train, test, k=5, anchors=10)
    assert rep.agreement is not None and 0 <= rep.cka <= 1 + 1e-9
    assert set(D.reports_table({"kd": rep}).columns) >= {"agreement", "cka", "student_probe"}
    traj = D.distillation_trajectory(teacher, snaps.result(), test, k=5)
    assert len(traj) == 3 and traj.coords.shape == (3, len(test), 2)
    assert traj.teacher_coords.shape == (len(test), 2) and traj.steps.tolist() == [0, 5, 10]
    named = D.distillation_trajectory(teacher, {"kd": student, "teacher": teacher}, test, k=5)
    assert named.names == ("kd", "teacher") and named.agreements[1].agreement == 1.0
    assert float(named.cka[1]) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(TypeError, match="SnapshotSeries"):
        D.distillation_trajectory(teacher, [1, 2], test)


def test_kernel_self_distillation_matches_ridge_and_powers_of_the_hat_matrix():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(20, 1, generator=g, dtype=torch.float64)
    y = torch.sin(6 * x[:, 0]) + 0.1 * torch.randn(20, generator=g, dtype=torch.float64)
    xq = torch.linspace(0, 1, 7, dtype=torch.float64)[:, None]
    lam, gamma = 0.05, 5.0
    r = wb.analyses.kernel_self_distillation(x, y, xq, torch.sin(6 * xq[:, 0]), lam=lam, gamma=gamma,
                                   alphas=(0.0, 1.0), steps=3)
    k = torch.exp(-gamma * torch.cdist(x, x) ** 2)
    kq = torch.exp(-gamma * torch.cdist(xq, x) ** 2)
    inv = torch.linalg.inv(k + lam * torch.eye(20, dtype=torch.float64))
    # step 0 = ordinary kernel ridge regression
    assert torch.allclose(r.test_pred[0, 0].double(), kq @ inv @ y, atol=1e-5)
    # alpha = 0: step tau fits the previous fit: train values A^(tau+1) y
    hat = k @ inv
    f = y
    for tau in range(4):
        targets = f
        f = hat @ targets
        assert torch.allclose(r.test_pred[0, tau].double(), kq @ inv @ targets, atol=1e-5)
    # alpha = 1: every step refits the labels: identical fits
    assert torch.allclose(r.test_pred[1, 0], r.test_pred[1, 3])
    assert r.norm[0, 3] < r.norm[0, 0]  # regularisation amplified
    with pytest.raises(ValueError, match="lam"):
        wb.analyses.kernel_self_distillation(x, y, xq, lam=0)


def test_batchnorm_recalibrated_copies_and_measures_the_data():
    model = wb.models.MLP(4, (8,), 3, norm="batch", seed=0)
    data = _data(n=50)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cal = wb.analyses.batchnorm_recalibrated(model, data)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k  # the model passed in is untouched
    bn = cal.body[1]
    with torch.no_grad():
        h = model.body[0](data.x)
    assert torch.allclose(bn.running_mean, h.mean(0), atol=1e-5)
    assert torch.allclose(bn.running_var, h.var(0), atol=1e-5)
    assert not cal.training and bn.momentum == model.body[1].momentum
    batched = wb.analyses.batchnorm_recalibrated(model, data, batch_size=25)  # mean of two batch means
    assert torch.allclose(batched.body[1].running_mean, h.mean(0), atol=1e-5)
    for (k, a), (_, b) in zip(model.named_parameters(), cal.named_parameters()):
        assert torch.equal(a, b), k
    plain = wb.analyses.batchnorm_recalibrated(_mlp(), data)
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), _mlp().parameters()))


def test_batchnorm_recalibrated_measures_what_the_eval_mode_network_sees():
    # a user's network: dropout before batch norm, and a fine-tuning set-up (model in train mode,
    # its batch norm frozen in eval mode); neither flags nor tensors of it may change
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.Dropout(0.5), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    net.train()
    net[2].eval()
    flags = [m.training for m in net.modules()]
    state = {k: v.clone() for k, v in net.state_dict().items()}
    data = _data(n=40)
    cal = wb.analyses.batchnorm_recalibrated(net, data)
    assert [m.training for m in net.modules()] == flags
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    with torch.no_grad():
        h = net[0](data.x)  # (N, 6): dropout is off in eval mode, so batch norm sees these
    assert torch.allclose(cal[2].running_mean, h.mean(0), atol=1e-5)
    assert torch.allclose(cal[2].running_var, h.var(0), atol=1e-5)
    assert not any(m.training for m in cal.modules()) and cal[2].momentum == 0.1


def test_batchnorm_recalibrated_on_4d_features_and_bad_input():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Flatten())
    x = torch.randn(12, 1, 6, 6) * 2 + 1
    data = wb.data.Dataset(x, torch.arange(12) % 2, kind="image")
    cal = wb.analyses.batchnorm_recalibrated(net, data)
    with torch.no_grad():
        h = net[0](x)  # (N, 3, 4, 4): statistics over N, H, W per channel
    assert torch.allclose(cal[1].running_mean, h.mean((0, 2, 3)), atol=1e-5)
    assert torch.allclose(cal[1].running_var, h.transpose(0, 1).reshape(3, -1).var(1), atol=1e-4)
    with pytest.raises(ValueError, match="batch_size"):
        wb.analyses.batchnorm_recalibrated(net, data, batch_size=1)
    with pytest.raises(TypeError, match="Dataset"):
        wb.analyses.batchnorm_recalibrated(net, x)
    with pytest.raises(TypeError, match="nn.Module"):
        wb.analyses.batchnorm_recalibrated("net", data)
    with pytest.raises(ValueError, match="at least 2"):
        wb.analyses.batchnorm_recalibrated(net, wb.data.Dataset(x[:1], kind="image"))


def test_kernel_self_distillation_bad_input():
    x, y = torch.rand(10, 1), torch.rand(10)
    xq = torch.rand(4, 1)
    for kwargs, match in (({"gamma": 0.0}, "gamma"), ({"steps": True}, "steps"), ({"steps": -1}, "steps"),
                          ({"alphas": ()}, "alphas"), ({"alphas": (0.5, 1.5)}, "alphas")):
        with pytest.raises(ValueError, match=match):
            wb.analyses.kernel_self_distillation(x, y, xq, **kwargs)
    with pytest.raises(ValueError, match="NaN"):
        wb.analyses.kernel_self_distillation(x, torch.full((10,), float("nan")), xq)
    with pytest.raises(ValueError, match=r"\(N,\) or \(N, p\)"):
        wb.analyses.kernel_self_distillation(torch.rand(10, 1, 1), y, xq)
    with pytest.raises(ValueError, match="features"):
        wb.analyses.kernel_self_distillation(x, y, torch.rand(4, 2))
    # a 1-D x is N points of one feature; numpy in, same numbers out
    a = wb.analyses.kernel_self_distillation(x[:, 0], y, xq, y_test=torch.rand(4), steps=2)
    b = wb.analyses.kernel_self_distillation(x.numpy(), y.numpy(), xq.numpy(), y_test=a.y_test.numpy(), steps=2)
    assert torch.equal(a.test_pred, b.test_pred) and a.test_mse.shape == (3, 3)
