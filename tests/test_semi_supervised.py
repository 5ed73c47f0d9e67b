"""Semi-supervised distillation: FixMatch, mean teacher, WAD, the SimCLRv2 recipe, pseudo-label
analyses. Golden values: /work/shared/references/distillation_ii.md §4."""

import math

import pytest
import torch
import torch.nn.functional as F

import workbench as wb
from workbench.methods._ema import EMACopy, ema_decay
from workbench.methods.fixmatch import fixmatch_unlabelled_loss
from workbench.methods.mean_teacher import sigmoid_rampup, softmax_mse
from workbench.methods.wad import margin_weights
from workbench.recipes.semi_supervised import few_labels, semi_supervised
from workbench.recipes.wad import (
    _nearest_class_cosines,
    teacher_pseudo_labels,
    weight_aware_distillation,
)


def _t(rows):
    return torch.tensor(rows, dtype=torch.float64)


# --------------------------------------------------------------------------- FixMatch
def test_fixmatch_unlabelled_loss_golden():
    weak = _t([[5, 0, 0], [1, 0.9, 0], [0, 0, 4]])
    strong = _t([[2, 1, 0], [0, 1, 0], [0, 3, 1]])
    lu, mask, conf, pseudo = fixmatch_unlabelled_loss(weak, strong, 0.95)
    torch.testing.assert_close(conf, _t([0.986703, 0.440002, 0.964663]), atol=1e-6, rtol=0)
    assert pseudo.tolist() == [0, 0, 2] and mask.tolist() == [1, 0, 1]
    assert float(lu) == pytest.approx(0.859151, abs=1e-6)  # mean over all 3, not over the 2 kept
    ce = F.cross_entropy(strong, pseudo, reduction="none")
    torch.testing.assert_close(ce, _t([0.407606, 1.551445, 2.169846]), atol=1e-6, rtol=0)


def _linear(n_in=3, out=3, seed=0):
    return wb.models.MLP(n_in, (), out, seed=seed)


def test_fixmatch_method_on_mixed_batches_by_hand():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, generator=g)
    y = torch.tensor([0, 1, -1, -1, -1, -1])
    model = _linear()
    m = wb.methods.FixMatch(0.5, lambda_u=2.0, weak="none", strong="none")
    loss, logs = m.loss(model, (x, y))
    z = model(x).double()
    sup = F.cross_entropy(z[:2], y[:2])
    lu, mask, _, _ = fixmatch_unlabelled_loss(z[2:], z[2:], 0.5)
    assert float(loss.detach()) == pytest.approx(float(sup + 2 * lu.detach()), rel=1e-5)
    assert float(logs["mask"]) == pytest.approx(float(mask.mean()))


def test_fixmatch_pool_draws_mu_b_rows_reproducibly_and_ema_teacher():
    data = wb.data.load("gaussians8", n=160, seed=0)
    lab, unl = few_labels(data, 2, seed=0)
    assert len(lab) == 16 and len(unl) == 144 and torch.bincount(lab.y).tolist() == [2] * 8
    outs = []
    for _ in range(2):
        model = wb.models.MLP(2, (8,), 8, seed=0)
        m = wb.methods.FixMatch(0.5, mu=3, teacher="ema", ema=0.9)
        m.set_unlabelled(unl)
        assert m.pool.shape == (144, 2) and "pool" not in m.state_dict()
        hist = wb.fit(model, m, lab, steps=4, batch_size=8, seed=0, progress=False)
        outs.append(hist.series("loss"))
        assert m.teacher is not None and all(not p.requires_grad for p in m.teacher.parameters())
    assert (outs[0] == outs[1]).all()
    conf, label = m.pseudo_labels(model, unl.x)
    assert conf.shape == (144,) and ((conf > 0) & (conf <= 1)).all() and label.max() < 8


def test_fixmatch_default_augmentations_for_digits():
    from workbench.methods.fixmatch import strong_augmentation, weak_augmentation

    x = torch.rand(4, 1, 8, 8)
    w, s = weak_augmentation("image"), strong_augmentation("image")
    assert w.rotate == 0 and w.shift == 1 and s.rotate == 15 and s.erase == 1.0
    assert w(x).shape == x.shape and s(x).shape == x.shape


# --------------------------------------------------------------------------- mean teacher
def test_mean_teacher_ema_schedule_rampup_and_consistency_golden():
    assert [ema_decay(k, 0.999) for k in range(4)] == pytest.approx([0, 0.5, 2 / 3, 0.75])
    assert ema_decay(10_000, 0.99) == 0.99
    assert [round(sigmoid_rampup(e, 5), 4) for e in range(6)] == [0.0067, 0.0408, 0.1653, 0.4493, 0.8187, 1.0]
    assert float(softmax_mse(_t([[2, 0, 0], [0, 1, 0]]), _t([[1, 0, 0], [0, 1, 1]]))) == pytest.approx(0.022969, abs=1e-6)


def test_ema_copy_averages_parameters_only():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    ema = EMACopy(0.9)
    t = ema.update(model)
    assert all(torch.equal(a, b) for a, b in zip(t.parameters(), model.parameters()))  # update 0 copies
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
        model[1].running_mean.fill_(5.0)
    old = [p.clone() for p in t.parameters()]
    ema.update(model)  # a = 0.5
    for o, p, n in zip(old, model.parameters(), t.parameters()):
        torch.testing.assert_close(n, 0.5 * o + 0.5 * p)
    assert float(t[1].running_mean.abs().max()) == 0.0  # buffers stay the copy's own


def test_mean_teacher_loss_by_hand():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, generator=g)
    y = torch.tensor([2, -1, 0, -1])
    model = _linear(seed=1)
    m = wb.methods.MeanTeacher(0.99, consistency=10.0, rampup_epochs=5, epoch_steps=2, augment="none")
    loss, logs = m.loss(model, (x, y))  # step 0: teacher = copy of the student → consistency 0
    lab = y >= 0
    z = model(torch.cat([x[lab], x[~lab]])).double()
    ce = F.cross_entropy(z[:2], y[lab], reduction="sum") / 4
    assert float(loss.detach()) == pytest.approx(float(ce), rel=1e-5)
    assert logs["weight"] == pytest.approx(10 * math.exp(-5)) and int(m.step) == 1


# --------------------------------------------------------------------------- WAD
def test_wad_margin_golden_and_class_scores_from_wb_ood():
    labels, w = margin_weights(_t([[0.8, 0.5, 0.1], [0.6, 0.58, 0.55]]))
    assert labels.tolist() == [0, 0]
    torch.testing.assert_close(w, _t([0.3, 0.02]), atol=1e-12, rtol=0)
    g = torch.Generator().manual_seed(0)
    z_l, z_u = torch.randn(9, 5, generator=g), torch.randn(4, 5, generator=g)
    y_l = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    got = _nearest_class_cosines(z_u, z_l, y_l, 3)
    cos = F.normalize(z_u, dim=1) @ F.normalize(z_l, dim=1).T
    want = torch.stack([cos[:, y_l == c].max(1).values for c in range(3)], 1)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_wad_student_loss_by_hand():
    g = torch.Generator().manual_seed(2)
    x_l, y_l = torch.randn(2, 3, generator=g), torch.tensor([0, 1])
    x_u = torch.randn(5, 3, generator=g)
    pl, w = torch.tensor([2, 0, 1, 1, 0]), torch.tensor([0.5, 0.0, 1.0, 0.25, 0.1])
    m = wb.methods.WeightAwareDistillation(lambda_u=0.5, mu=1, augment="none")
    m.set_pseudo_labels(x_u, pl, w)
    model = _linear(seed=2)
    torch.manual_seed(0)
    loss, logs = m.loss(model, (x_l, y_l))
    torch.manual_seed(0)
    idx = torch.randint(0, 5, (2,))
    z_l, z_u = model(x_l).double(), model(x_u[idx]).double()
    want = F.cross_entropy(z_l, y_l) + 0.5 * (w[idx].double() * F.cross_entropy(z_u, pl[idx], reduction="none")).mean()
    assert float(loss.detach()) == pytest.approx(float(want), rel=1e-5)


def test_weight_aware_distillation_downweights_unseen_classes():
    """Raw pixels as the teacher's features (a linear MLP's features are its flattened input):
    WAD's margin ranks unseen-class digits below known ones (AUROC 0.84 here), plain weights do not."""
    data = wb.data.load("digits", n=400, seed=0)
    known = data.subset(data.y < 6)
    lab, unl_known = few_labels(known, 3, seed=0)
    n = len(unl_known) // 2
    unl = wb.data.dataset.concat([unl_known, data.subset(data.y >= 6)[:n].with_labels(torch.full((n,), -1))])
    teacher = wb.models.MLP(64, (), 6)
    pseudo = teacher_pseudo_labels(teacher, lab, unl)
    assert pseudo.weights.shape == (len(unl),) and (pseudo.weights >= 0).all()
    assert teacher_pseudo_labels(teacher, lab, unl, weights="none").weights.eq(1).all()
    knn = teacher_pseudo_labels(teacher, lab, unl, weights="knn").weights
    assert float(knn.max()) == 1.0 and float(knn.min()) == 0.0
    r = weight_aware_distillation(wb.models.MLP(64, (8,), 6, seed=1), teacher, lab, unl, steps=5, batch_size=6,
                                  test=known)
    assert 0.0 <= r.test_accuracy <= 1.0 and r.weight_auroc > 0.8 and r.pseudo_accuracy > 0.8
    normal = teacher_pseudo_labels(teacher, lab, unl, normalize=True)
    assert float(normal.weights.mean()) == pytest.approx(1.0, rel=1e-5)


# --------------------------------------------------------------------------- SimCLRv2
def test_simclr_v2_distillation_loss_is_the_soft_cross_entropy():
    zt, zs = _t([[2, 0.5, -1]]), _t([[1, 1, 0]])
    x = torch.cat([zs, zt], 1).float()
    from test_logit_distillation import _reader

    kd = wb.methods.KnowledgeDistillation(_reader(6, slice(3, 6)), temperature=1.0, alpha=1.0)
    loss, _ = kd.loss(_reader(6, slice(0, 3)), (x, None))
    pt = F.softmax(zt, -1)
    entropy = float(-(pt * pt.log()).sum())
    assert float(loss.detach()) + entropy == pytest.approx(0.901107, abs=1e-5)


def test_simclr_v2_recipe_runs_the_three_stages():
    from workbench.recipes.simclr_v2 import simclr_v2

    data = wb.data.load("digits", n=120, seed=0)
    lab, _ = few_labels(data, 2, seed=0)
    teacher, student = wb.models.MLP(64, (16,), 10, seed=0), wb.models.MLP(64, (4,), 10, seed=1)
    r = simclr_v2(teacher, student, data, lab, pretrain_steps=2, finetune_steps=2, distill_steps=2,
                  batch_size=32, test=data)
    assert set(r.histories) == {"pretrain", "finetune", "distill"}
    assert set(r.accuracy) == {"teacher (fine-tuned)", "student (distilled)"}


# --------------------------------------------------------------------------- the recipe and its trace
def test_semi_supervised_recipe_records_a_trace():
    data = wb.data.load("gaussians8", n=240, seed=0)
    lab, unl = few_labels(data, 2, seed=0)
    r = semi_supervised(wb.models.MLP(2, (8,), 8, seed=0), wb.methods.FixMatch(0.6, mu=2), lab, unl, steps=6,
                        batch_size=8, record_every=3, test=data)
    tr = r.trace
    assert tr.steps.tolist() == [0, 3, 6] and tr.confidence.shape == (3, len(unl)) and tr.coords.shape == (3, len(unl), 2)
    assert tr.quantity.shape == (3, len(tr.thresholds)) and tr.threshold == 0.6
    df = tr.summary()
    assert list(df.index) == [0, 3, 6] and (df["kept"] <= 1).all()


def test_threshold_tradeoff_by_hand():
    conf = torch.tensor([0.9, 0.6, 0.99, 0.3])
    lab, truth = torch.tensor([1, 2, 0, 0]), torch.tensor([1, 0, 0, -1])
    c = wb.analyses.threshold_tradeoff(conf, lab, truth, thresholds=[0.0, 0.5, 0.95, 0.995])
    assert c.quantity.tolist() == [1.0, 0.75, 0.25, 0.0]
    assert c.quality[:3].tolist() == pytest.approx([0.5, 2 / 3, 1.0]) and math.isnan(float(c.quality[3]))
    assert c.overall == 0.5 and c.at(0.5) == pytest.approx((0.75, 2 / 3))


def test_semi_supervised_bad_input():
    data = wb.data.load("gaussians8", n=64, seed=0)
    with pytest.raises(TypeError, match="unlabelled pool"):
        semi_supervised(wb.models.MLP(2, (4,), 8), wb.methods.CrossEntropy(), data, data, steps=1)
    with pytest.raises(ValueError, match="per_class"):
        few_labels(data, 100)
    with pytest.raises(ValueError, match="threshold"):
        wb.methods.FixMatch(1.5)
    with pytest.raises(ValueError, match="teacher"):
        wb.methods.FixMatch(teacher="peer")
    m = wb.methods.WeightAwareDistillation()
    with pytest.raises(ValueError, match="set_pseudo_labels"):
        m.loss(wb.models.MLP(2, (4,), 8), (data.x, data.y))
