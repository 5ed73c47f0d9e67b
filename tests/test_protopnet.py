"""Prototype-part networks: ProtoPNet, ST-ProtoPNet, the CBC/RBF head; push and explanations.

Golden values are the reference notes' (``/work/shared/references/prototypes_ii.md`` §1.8, §2, §3).
"""

from __future__ import annotations

import math

import pytest
import torch

import workbench as wb
from workbench.methods.cbc import cbc_margin_loss, robustness
from workbench.methods.protopnet import cluster_separation, wrong_class_l1
from workbench.methods.st_protopnet import closeness, discrimination, orthogonality
from workbench.models.cbc import stable_cbc
from workbench.models.conv_trunk import conv_trunk
from workbench.models.protopnet import class_connection_weights, log_similarity


@pytest.fixture(scope="module")
def digits16():
    ds = wb.data.resize(wb.data.load("digits", n=300, seed=0), 16)
    return ds.split(0.7, seed=0)


@pytest.fixture(scope="module")
def trained(digits16):
    """A ProtoPNet after a few warm and joint steps (prototypes away from any patch)."""
    train, _ = digits16
    model = wb.models.ProtoPNet(n_classes=10, prototypes_per_class=2, prototype_dim=8, width=8, seed=0)
    loss = wb.methods.ProtoPNetLoss()
    with model.stage("joint"):
        wb.fit(model, loss, train, steps=15, batch_size=64, lr=3e-3, progress=False)
    return model


# ----------------------------------------------------------------------------- golden values
def test_log_similarity_golden():
    d = torch.tensor([0.0, 1e-4, 0.5, 1.0, 4.0, 127.0], dtype=torch.float64)
    want = [9.210340, 8.517293, 1.098412, 0.693047, 0.223119, 0.007842]
    assert torch.allclose(log_similarity(d), torch.tensor(want, dtype=torch.float64), atol=1e-6)


def test_cluster_separation_l1_and_logits_golden():
    dmin = torch.tensor([[0.3, 1.2, 2.0, 0.9], [4.0, 3.0, 0.5, 2.5]])
    y = torch.tensor([0, 1])
    pc = torch.tensor([0, 0, 1, 1])  # prototype j of class j // 2
    clst, sep = cluster_separation(dmin, y, pc)
    assert math.isclose(float(clst), 0.4, abs_tol=1e-6) and math.isclose(float(sep), 1.95, abs_tol=1e-6)
    assert math.isclose(float(0.8 * clst - 0.08 * sep), 0.164, abs_tol=1e-6)
    w = class_connection_weights(pc, 2)
    assert torch.equal(w, torch.tensor([[1, 1, -0.5, -0.5], [-0.5, -0.5, 1, 1]]))
    assert float(wrong_class_l1(w, pc)) == 2.0
    logits = log_similarity(dmin) @ w.T
    assert torch.allclose(logits, torch.tensor([[1.495797, 0.116490], [-0.206655, 1.179461]]), atol=1e-5)


def test_protopnet_loss_combines_the_terms_with_official_coefficients(monkeypatch):
    model = wb.models.ProtoPNet((1, 8, 8), 2, prototypes_per_class=2, prototype_dim=4, width=4, n_pools=1, seed=0)
    dmin = torch.tensor([[0.3, 1.2, 2.0, 0.9], [4.0, 3.0, 0.5, 2.5]])
    monkeypatch.setattr(model, "min_distances", lambda x: dmin)
    loss, logs = wb.methods.ProtoPNetLoss().loss(model, (torch.zeros(2, 1, 8, 8), torch.tensor([0, 1])))
    ce = torch.nn.functional.cross_entropy(log_similarity(dmin) @ model.last_layer.weight.T, torch.tensor([0, 1]))
    assert math.isclose(float(loss.detach()), float(ce.detach()) + 0.164 + 1e-4 * 2.0, rel_tol=1e-6)
    assert math.isclose(float(logs["clst"]), 0.4, abs_tol=1e-6) and math.isclose(float(logs["l1"]), 2.0)


def test_st_protopnet_prototype_terms_golden():
    ang = torch.tensor([0.0, 60.0, 150.0, 210.0]) * math.pi / 180
    p = torch.stack([ang.cos(), ang.sin()], 1)
    pc = torch.tensor([0, 0, 1, 1])
    assert math.isclose(float(closeness(p, pc)), 0.866025, abs_tol=1e-6)
    assert math.isclose(float(discrimination(p, pc)), 0.0, abs_tol=1e-6)
    assert math.isclose(float(orthogonality(p, pc)), 2.0, abs_tol=1e-6)


def test_stable_cbc_and_robust_loss_golden():
    d = torch.tensor([[0.25, 0.5, 1.0], [1.0, 0.0, 0.0]])
    r = torch.tensor([[0.5, 0.0], [0.0, 0.5], [0.0, 0.0]])
    a = torch.tensor([[0.5, 0.5], [0.25, 0.0], [0.25, 0.5]])
    assert torch.allclose(stable_cbc(d, a * r, a * (1 - r)).sum(-1), torch.tensor([[0.375, 0.375], [0.75, 0.5]]))
    r = torch.tensor([[0.9, 0.1], [0.1, 0.9]])
    a = torch.full((2, 2), 0.5)
    d = torch.tensor([[0.9, 0.2], [0.9, 0.2]])
    p = stable_cbc(d, a * r, a * (1 - r)).sum(-1)
    assert torch.allclose(p[0], torch.tensor([0.78, 0.22]))
    rho = robustness(d, a * r, a * (1 - r), torch.tensor([0, 1]), 1.0)
    assert torch.allclose(rho, torch.tensor([0.561502, -0.561502]), atol=1e-6)
    # a lower bound: brute force over per-component distance shifts of size eps flips at 0.752
    eps = 0.56
    worst = min(float((lambda dd: (stable_cbc(dd, a * r, a * (1 - r)).sum(-1)[0, 0]
                                   - stable_cbc(dd, a * r, a * (1 - r)).sum(-1)[0, 1]))(
        torch.tensor([[0.9 * math.exp(s0 * eps), 0.2 * math.exp(s1 * eps)]])))
        for s0 in (-1, 1) for s1 in (-1, 1))
    assert worst > 0  # at ρ the decision has not flipped yet
    assert float(cbc_margin_loss(torch.tensor([[0.78, 0.22]]), torch.tensor([0]))) == 0.0


# ----------------------------------------------------------------------------- geometry
def test_receptive_boxes_match_a_perturbation_oracle():
    """Every input pixel in a cell's box changes that cell, none outside it does (positive weights,
    so a large bump always propagates through ReLU and max-pool)."""
    model = wb.models.ProtoPNet((1, 16, 16), 2, width=2, seed=0)
    trunk = conv_trunk(1, 2, 2)
    with torch.no_grad():
        for m in trunk.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.uniform_(0.1, 1.0)
                m.bias.zero_()
    x0 = torch.rand(1, 1, 16, 16)
    base = trunk(x0)
    boxes = model.cell_boxes
    for r in range(16):
        for c in range(16):
            x = x0.clone()
            x[0, 0, r, c] += 1000.0
            changed = (trunk(x) - base).abs().sum(1)[0] > 0  # (h, w)
            inside = (boxes[..., 0] <= r) & (r < boxes[..., 1]) & (boxes[..., 2] <= c) & (c < boxes[..., 3])
            assert torch.equal(changed, inside), (r, c)


# ----------------------------------------------------------------------------- push and explanations
def test_push_puts_every_prototype_exactly_on_a_training_patch(trained, digits16):
    train, _ = digits16
    model = trained
    proj = wb.analyses.project_prototypes(model, train)
    # the search is exact: no patch of the prototype's class is closer
    d = model.distance_maps(train.x).detach().flatten(2)  # (N, P, h*w)
    own = train.y[:, None, None] == model.prototype_class[None, :, None]
    best = d.masked_fill(~own, float("inf")).permute(1, 0, 2).reshape(d.shape[1], -1).min(1).values
    assert torch.allclose(proj.distance, best, rtol=1e-5, atol=1e-6)
    model.push_(proj)
    w = model.map_size[1]
    for j in range(model.n_prototypes):
        n = int(proj.image_index[j])
        assert int(train.y[n]) == int(model.prototype_class[j])  # class-specific
        z = model.latents(train.x[n][None])[0][0]  # (D, h, w), the image alone
        r, c = proj.cell[j].tolist()
        assert torch.equal(model.prototypes[j].detach(), z[:, r, c].detach())  # exactly that patch
        assert float(model.min_distances(train.x[n][None])[0, j].detach()) < 1e-5
        assert 0 <= r * w + c < w * model.map_size[0]
    assert proj.n_unique <= model.n_prototypes and "PatchProjection" in repr(proj)


@pytest.mark.parametrize("name", ["ProtoPNet", "STProtoPNet", "DeepCBC"])
def test_contributions_sum_to_the_outputs(name, digits16):
    _, test = digits16
    model = getattr(wb.models, name)(n_classes=10, prototypes_per_class=2, prototype_dim=8, width=8, seed=1)
    ex = wb.analyses.explain_predictions(model, test, range(12))
    assert torch.allclose(ex.contributions.sum(-1), ex.outputs, atol=1e-5)
    b = ex.breakdown(3, 4)
    assert math.isclose(b["total"], b["output"], rel_tol=1e-5, abs_tol=1e-5)
    assert math.isclose(float(b["contribution"].sum()) + b["rest"], b["total"], rel_tol=1e-5, abs_tol=1e-5)
    if ex.weights is not None:
        assert torch.allclose(b["activation"] * b["weight"], b["contribution"], atol=1e-6)
    assert ex.boxes.shape == (12, model.n_prototypes, 4)


def test_st_push_stores_unit_patches(digits16):
    train, _ = digits16
    model = wb.models.STProtoPNet(n_classes=10, prototypes_per_class=1, prototype_dim=8, width=8, seed=0)
    proj = wb.analyses.project_prototypes(model, train)
    model.push_(proj)
    for b, sl in zip(model.branches, model.branch_slices()):
        assert torch.allclose(b.prototypes.detach().norm(dim=1), torch.ones(b.n_prototypes))
        assert torch.allclose(b.prototypes.detach(), torch.nn.functional.normalize(proj.vectors[sl], dim=1))


# ----------------------------------------------------------------------------- stages and the recipe
def test_stages_switch_only_their_groups_and_restore(trained):
    model = trained
    g = model.parameter_groups()
    with model.stage("warm"):
        assert all(p.requires_grad for p in g["add_on"] + g["prototypes"])
        assert not any(p.requires_grad for p in g["features"] + g["last_layer"])
    with model.stage("last"):
        assert [p for p in model.parameters() if p.requires_grad] == g["last_layer"]
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="valid"):
        with model.stage("nope"):
            pass


def test_last_layer_stage_changes_only_the_last_layer(digits16):
    train, _ = digits16
    model = wb.models.ProtoPNet(n_classes=10, prototypes_per_class=1, prototype_dim=8, width=8, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with model.stage("last"):
        wb.fit(model, wb.methods.ProtoPNetLoss(), train, steps=3, batch_size=32, lr=1e-2, progress=False)
    after = model.state_dict()
    assert not torch.equal(before["last_layer.weight"], after["last_layer.weight"])
    assert all(torch.equal(before[k], after[k]) for k in before if k != "last_layer.weight")


@pytest.mark.parametrize("name", ["ProtoPNet", "STProtoPNet", "DeepCBC"])
def test_recipe_runs_the_three_stages(name, digits16):
    train, test = digits16
    model = getattr(wb.models, name)(n_classes=10, prototypes_per_class=1, prototype_dim=8, width=8, seed=0)
    r = wb.recipes.train_protopnet(model, train, val=test, warm_epochs=1, joint_epochs=1, last_epochs=1, batch_size=64)
    assert set(r.accuracy) == {"joint", "push", "last"} and set(r.histories) == {"warm", "joint", "last"}
    assert r.projection is not None and name in repr(r)
    # the model now holds the pushed prototypes
    vec = torch.cat([b.prototypes.detach() for b in model.branches])
    want = r.projection.vectors if name != "STProtoPNet" else torch.nn.functional.normalize(r.projection.vectors, dim=1)
    assert torch.allclose(vec, want)


def test_analyses_leave_the_model_unchanged(trained, digits16):
    train, test = digits16
    model = trained
    model.train()
    model.branches[0].add_on.eval()  # a mixed-mode model must come back as it was
    flags = [m.training for m in model.modules()]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    wb.analyses.project_prototypes(model, train)
    wb.analyses.explain_predictions(model, test, [0, 1])
    assert [m.training for m in model.modules()] == flags
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    model.train()


# ----------------------------------------------------------------------------- errors
def test_clear_errors(digits16):
    train, _ = digits16
    model = wb.models.ProtoPNet(n_classes=10, prototypes_per_class=1, prototype_dim=4, width=4, seed=0)
    with pytest.raises(ValueError, match="no image in the push data"):
        wb.analyses.project_prototypes(model, train.subset(train.y < 5))
    with pytest.raises(ValueError, match="in_shape"):
        model(torch.zeros(2, 1, 8, 8))
    with pytest.raises(TypeError, match="STProtoPNetLoss"):
        wb.methods.ProtoPNetLoss().loss(wb.models.STProtoPNet(n_classes=10, width=4, prototype_dim=4),
                                        (train.x[:2], train.y[:2]))
    with pytest.raises(TypeError, match="prototype-part"):
        wb.analyses.project_prototypes(wb.models.MLP(256, (8,), 10), train)
    with pytest.raises(ValueError, match="valid"):
        wb.models.DeepCBC(head="svm")
    with pytest.raises(ValueError, match="valid"):
        wb.methods.CBCLoss("hinge")
    with pytest.raises(ValueError, match="resize"):
        wb.data.resize(wb.data.load("moons", n=10), 16)
