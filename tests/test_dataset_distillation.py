"""Dataset distillation: DM, MTT/DATM, CV-DD, expert trajectories as runs, ECE, the synthetic map.
Golden values: /work/shared/references/distillation_ii.md §4."""

import pytest
import torch
from torch import nn

import workbench as wb
from workbench.analyses.ece import calibration_of_logits, top_label_ece
from workbench.recipes import _synthetic as S
from workbench.recipes.distill_cvdd import (
    bn_statistics_loss,
    committee_votes,
    committee_voting,
    train_committee,
)
from workbench.recipes.distill_dm import distribution_matching, dm_loss
from workbench.recipes.distill_mtt import (
    datm_soft_labels,
    functional_forward,
    mtt_loss,
    trajectory_matching,
    unrolled_sgd,
)
from workbench.recipes.experts import flat_params, load_experts, train_experts


@pytest.fixture(scope="module")
def small():
    data = wb.data.load("digits", n=120, seed=0)
    return data.split(0.75, seed=0)


def _tiny_net(seed=0):
    return wb.models.DistillConvNet((1, 8, 8), 10, width=4, depth=2, seed=seed)


# --------------------------------------------------------------------------- losses by hand
def test_dm_loss_golden():
    real = [torch.tensor([[1.0, 0.0], [3.0, 0.0]]), torch.tensor([[0.0, 2.0], [0.0, 4.0]])]
    syn = [torch.tensor([[1.5, 0.5]]), torch.tensor([[0.0, 2.0]])]
    assert float(dm_loss(real, syn)) == pytest.approx(1.5)


def test_mtt_loss_golden():
    assert float(mtt_loss(torch.tensor([0.5, 2, 1]), torch.tensor([1.0, 2, 2]), torch.zeros(3))) == \
        pytest.approx(0.138889, abs=1e-6)


class _Scalar(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1, dtype=torch.float64))

    def forward(self, x):
        return x * self.w


def test_unrolled_sgd_scalar_golden_and_its_gradient_in_the_step_size():
    model, x, t = _Scalar(), torch.tensor([[2.0]], dtype=torch.float64), torch.tensor([[1.0]], dtype=torch.float64)

    def sq(out, target):
        return ((out - target) ** 2).sum()

    alpha = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
    w = unrolled_sgd(model, torch.zeros(1, dtype=torch.float64), x, t, alpha, 3, loss_fn=sq)
    assert float(w.detach()) == pytest.approx(0.496, abs=1e-12)  # 0.5 − 0.5 · 0.2³
    (grad,) = torch.autograd.grad(w.sum(), alpha)
    eps = 1e-6
    fd = [float(unrolled_sgd(model, torch.zeros(1, dtype=torch.float64), x, t, a, 3, loss_fn=sq, create_graph=False))
          for a in (0.1 + eps, 0.1 - eps)]
    assert float(grad) == pytest.approx((fd[0] - fd[1]) / (2 * eps), rel=1e-6)


def test_mtt_inner_step_equals_a_plain_sgd_step():
    net = _tiny_net(3)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(6, 1, 8, 8, generator=g), torch.arange(6) % 10
    start = flat_params(net)
    got = unrolled_sgd(net, start, x, y, 0.05, 1, create_graph=False)
    ref = _tiny_net(3)
    opt = torch.optim.SGD(ref.parameters(), lr=0.05)
    nn.functional.cross_entropy(ref(x), y).backward()
    opt.step()
    torch.testing.assert_close(got.detach(), flat_params(ref), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(functional_forward(net, start, x), net(x))


def test_datm_soft_label_init_golden():
    logits = torch.tensor([[[2.0, 1, 0], [0, 1, 3]], [[3.0, 0, 0], [0, 2, 1]], [[0.0, 2, 1], [1, 3, 0]]])
    init = datm_soft_labels(logits, torch.tensor([0, 1]))
    torch.testing.assert_close(init, torch.tensor([[2.5, 0.5, 0.0], [0.5, 2.5, 0.5]]))
    torch.testing.assert_close(init.softmax(-1), torch.tensor([[0.821409, 0.111166, 0.067425],
                                                               [0.106507, 0.786986, 0.106507]]), atol=1e-6, rtol=0)
    none = datm_soft_labels(logits, torch.tensor([2, 1]))  # no expert calls image 0 a 2: mean over all
    torch.testing.assert_close(none[0], logits[:, 0].mean(0))


def test_cvdd_votes_golden_and_bn_statistics_loss():
    torch.testing.assert_close(committee_votes([63, 65.3], 5), torch.tensor([0.386986, 0.613014]), atol=1e-6, rtol=0)
    torch.testing.assert_close(committee_votes([63, 65.3, 68.5, 67.6, 67.4], 10),
                               torch.tensor([0.140279, 0.176556, 0.243140, 0.222213, 0.217813]), atol=1e-6, rtol=0)
    bn = nn.BatchNorm1d(2)
    bn.running_mean.copy_(torch.tensor([1.0, 0.0]))
    bn.running_var.copy_(torch.tensor([1.0, 4.0]))
    stats = [(torch.tensor([1.0, 3.0]), torch.tensor([1.0, 0.0]))]
    assert float(bn_statistics_loss(stats, [bn], first_weight=10)) == pytest.approx(10 * (3.0 + 4.0))


def test_ece_golden_and_bins():
    assert top_label_ece([0.95, 0.92, 0.55, 0.65, 0.99], [1, 0, 1, 0, 1]) == pytest.approx(0.392, abs=1e-12)
    # (lo, hi]: 0.5 belongs to the first of two bins
    assert top_label_ece([0.5, 1.0], [0, 1], n_bins=2) == pytest.approx(0.25)
    c = calibration_of_logits(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))
    assert c.accuracy == 0.5 and c.max_logit_mean == pytest.approx(1.5)
    with pytest.raises(ValueError):
        top_label_ece([1.2], [1])


# --------------------------------------------------------------------------- the recipes on tiny runs
def test_dsa_is_siamese_and_differentiable():
    x = torch.rand(5, 1, 8, 8, requires_grad=True)
    for fam in S.DSA_FAMILIES:
        a = S.dsa(x, torch.Generator().manual_seed(3), families=(fam,))
        b = S.dsa(x[:2], torch.Generator().manual_seed(3), families=(fam,))
        torch.testing.assert_close(a[:2], b)  # one draw for the whole batch
        assert a.shape == x.shape
    S.dsa(x, torch.Generator().manual_seed(0)).sum().backward()
    assert x.grad is not None


def test_distribution_matching_and_evaluation_tiny(small):
    train, test = small
    syn = distribution_matching(train, 1, iterations=4, batch_real=8, record_every=2,
                                make_net=lambda s: _tiny_net(s), seed=0)
    assert syn.images.shape == (10, 1, 8, 8) and syn.labels.tolist() == list(range(10))
    assert syn.frames.shape == (3, 10, 1, 8, 8) and syn.frame_steps.tolist() == [0, 2, 4] and len(syn.losses) == 4
    again = distribution_matching(train, 1, iterations=4, batch_real=8, make_net=lambda s: _tiny_net(s), seed=0)
    torch.testing.assert_close(again.images, syn.images)  # reproducible
    ev = S.evaluate_synthetic(syn, test, make_model=_tiny_net, n_models=2, epochs=2)
    assert 0 <= ev.accuracy <= 1 and 0 <= ev.ece <= 1 and len(ev.calibrations) == 2
    base = S.random_real_subset(train, 1, seed=0)
    assert base.method == "random real" and len(base) == 10


def test_experts_saved_as_runs_and_trajectory_matching_tiny(small, tmp_path):
    train, test = small
    ex = train_experts(train, n_experts=2, epochs=2, lr=0.05, batch_size=30, make_model=_tiny_net, test=test,
                       store=tmp_path / "runs")
    assert len(ex.run_ids) == 2 and ex.epochs == 2 and ex.trajectories[0].shape[0] == 3
    back = load_experts(ex.run_ids, store=tmp_path / "runs")
    for a, b in zip(ex.trajectories, back.trajectories):
        torch.testing.assert_close(a, b)
    assert back.lr == pytest.approx(0.05) and back.model_name == "DistillConvNet"
    syn = trajectory_matching(train, back, 1, syn_steps=2, expert_epochs=1, max_start_epoch=1, iterations=2,
                              lr_img=1.0, seed=0)
    assert syn.method == "MTT" and syn.lr > 0 and len(syn.losses) == 2 and syn.frames.shape[0] == 3
    datm = trajectory_matching(train, back, 1, syn_steps=2, expert_epochs=1, start_schedule=(1, 2, 2),
                               soft_labels=True, init="correct", skip_loss_above=1e9, iterations=2, seed=0)
    assert datm.method == "DATM" and datm.soft_labels.shape == (10, 10)
    ev = S.evaluate_synthetic(datm, test, make_model=_tiny_net, n_models=1, epochs=1)
    assert 0 <= ev.accuracy <= 1


def test_committee_voting_tiny(small):
    train, test = small
    members = {"a": wb.models.MLP(64, (8,), 10, norm="batch", seed=0),
               "b": wb.models.ConvNet((1, 8, 8), 10, width=4, feature_dim=8, norm="batch", seed=1)}
    com = train_committee(train, members=members, steps=3, seed=0)
    assert com.priors.shape == (2,)
    before = [b.clone() for b in members["a"].buffers()]
    grads = [None if p.grad is None else p.grad.clone() for m in members.values() for p in m.parameters()]
    syn = committee_voting(train, 2, committee=com, iterations=2, seed=0)
    assert syn.method == "CV-DD" and syn.images.min() >= 0 and syn.images.max() <= 1 and syn.temperature == 20
    ev = S.evaluate_synthetic(syn, test, make_model=_tiny_net, n_models=1, epochs=1)
    assert 0 <= ev.accuracy <= 1
    assert all(torch.equal(a, b) for a, b in zip(before, members["a"].buffers()))  # relabelling leaves them
    after = [p.grad for m in members.values() for p in m.parameters()]
    assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(grads, after))  # pixels only
    with pytest.raises(ValueError, match="batch norm"):
        train_committee(train, members={"x": wb.models.MLP(64, (4,), 10)}, steps=1)


def test_synthetic_map_places_frames_in_the_real_map(small):
    train, _ = small
    syn = S.random_real_subset(train, 2, seed=0)
    frames = torch.stack([syn.images, syn.images + 0.1])
    smap = wb.analyses.synthetic_map(_tiny_net(), train, frames, labels=syn.labels, steps=[0, 5], method="toy")
    assert smap.coords.shape == (2, 20, 2) and smap.real_coords.shape == (len(train), 2) and smap.ipc == 2
    assert smap.drift.shape == (2,) and "toy" in repr(smap)
    with pytest.raises(ValueError, match="labels"):
        wb.analyses.synthetic_map(_tiny_net(), train, frames)


def test_distill_convnet_shapes_and_bad_input():
    net = wb.models.DistillConvNet(seed=0)
    assert net.feature_dim == 256 and sum(p.numel() for p in net.parameters()) == 40394
    assert net(torch.rand(2, 64)).shape == (2, 10)
    with pytest.raises(ValueError, match="depth"):
        wb.models.DistillConvNet(depth=4)
    with pytest.raises(ValueError, match="norm"):
        wb.models.DistillConvNet(norm="layer")
