"""SAM as an optimizer choice in fit: the two-step update, ASAM, BatchNorm, weight decay."""

from __future__ import annotations

import copy

import pytest
import torch
from two_pass_steps import data, grads, two_pass_step

import workbench as wb
from workbench.training.optim import make_optimizer


def _manual_sam(model, x, y, rho, lr, adaptive=False, weight_decay=0.0):
    """The paper's update with plain SGD (first step of momentum SGD = plain step)."""
    ref = copy.deepcopy(model)
    g = grads(ref, x, y)
    w = [p.detach().clone() for p in ref.parameters()]
    if adaptive:
        norm = torch.stack([(wi.abs() * gi).norm() for wi, gi in zip(w, g)]).norm()
        eps = [rho * wi.pow(2) * gi / (norm + 1e-12) for wi, gi in zip(w, g)]
    else:
        norm = torch.stack([gi.norm() for gi in g]).norm()
        eps = [rho * gi / (norm + 1e-12) for gi in g]
    with torch.no_grad():
        for p, e in zip(ref.parameters(), eps):
            p.add_(e)
    g2 = grads(ref, x, y)
    return [wi - lr * (g2i + weight_decay * wi) for wi, g2i in zip(w, g2)]


@pytest.mark.parametrize("adaptive,rho", [(False, 0.05), (True, 0.5)])
def test_one_step_matches_the_paper(adaptive, rho):
    ds = data()
    model = wb.models.MLP(4, (6,), 3, seed=0)
    want = _manual_sam(model, ds.x, ds.y, rho=rho, lr=0.1, adaptive=adaptive)
    two_pass_step("sam", model, ds.x, ds.y, lr=0.1, rho=rho, adaptive=adaptive)
    for p, w in zip(model.parameters(), want):
        torch.testing.assert_close(p.detach(), w, rtol=1e-5, atol=1e-6)


def test_weight_decay_is_not_in_the_ascent_direction():
    ds = data()
    model = wb.models.MLP(4, (6,), 3, seed=0)
    want = _manual_sam(model, ds.x, ds.y, rho=0.05, lr=0.1, weight_decay=0.1)
    two_pass_step("sam", model, ds.x, ds.y, lr=0.1, rho=0.05, weight_decay=0.1)
    for p, w in zip(model.parameters(), want):
        torch.testing.assert_close(p.detach(), w, rtol=1e-5, atol=1e-6)


def test_options_and_errors():
    params = list(wb.models.MLP(4, (6,), 3, seed=0).parameters())
    opt = make_optimizer("sam", params, lr=0.1, rho=0.1, base="adam", weight_decay=None, betas=(0.8, 0.99))
    assert isinstance(opt.base_optimizer, torch.optim.Adam) and opt.param_groups[0]["betas"] == (0.8, 0.99)
    assert opt.param_groups is opt.base_optimizer.param_groups and "SAM(rho=0.1" in repr(opt)
    with pytest.raises(ValueError, match="rho"):
        make_optimizer("sam", params, lr=0.1, weight_decay=None, rho=-1)
    with pytest.raises(ValueError, match="base='sam'"):
        make_optimizer("sam", params, lr=0.1, weight_decay=None, base="sam")
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("sam", params, lr=0.1, weight_decay=None, base="lbfgs")
    with pytest.raises(ValueError, match="closure"):
        opt.step()


def test_fit_with_sam_is_reproducible_and_scheduled():
    ds = data(128)
    runs = []
    for _ in range(2):
        m = wb.models.MLP(4, (6,), 3, seed=0)
        h = wb.fit(m, wb.methods.CrossEntropy(), ds, steps=12, lr=0.1, batch_size=32, optimizer="sam",
                   rho=0.05, schedule="cosine", progress=False)
        runs.append((m, h))
    (m1, h1), (m2, h2) = runs
    assert h1.status == "completed" and h1.config["rho"] == 0.05 and h1.config["optimizer"] == "sam"
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert h1.series("lr")[-1] < h1.series("lr")[0]
    sgd = wb.models.MLP(4, (6,), 3, seed=0)
    wb.fit(sgd, wb.methods.CrossEntropy(), ds, steps=12, lr=0.1, batch_size=32, optimizer="sgd", progress=False)
    assert not torch.equal(sgd.fc.weight, m1.fc.weight)


def test_batchnorm_keeps_the_clean_pass_statistics():
    ds = data(64)
    kw = dict(steps=1, lr=0.1, batch_size=64, progress=False)
    a = wb.models.MLP(4, (6,), 3, norm="batch", seed=0)
    b = wb.models.MLP(4, (6,), 3, norm="batch", seed=0)
    wb.fit(a, wb.methods.CrossEntropy(), ds, optimizer="sam", rho=0.05, **kw)
    wb.fit(b, wb.methods.CrossEntropy(), ds, optimizer="sgd", **kw)
    # the first (clean) pass is the same forward in both fits: same running statistics
    bn_a, bn_b = a.body[1], b.body[1]
    assert torch.equal(bn_a.running_mean, bn_b.running_mean)
    assert torch.equal(bn_a.running_var, bn_b.running_var)
    assert int(bn_a.num_batches_tracked) == 1


def test_fit_passes_one_closure_defined_once_that_sees_each_steps_batch():
    from workbench.training.sam import SAM
    from workbench.training.step import OptimizerStep

    ds = data(96)
    seen = []

    class RecordingSAM(SAM):
        def step(self, closure=None):
            seen.append((closure, closure.__self__.batch[0].clone()))
            return super().step(closure)

    def recording_sam(params, *, lr, weight_decay=None):
        return RecordingSAM(params, lr=lr, weight_decay=weight_decay)

    m = wb.models.MLP(4, (6,), 3, seed=0)
    wb.fit(m, wb.methods.CrossEntropy(), ds, steps=3, lr=0.1, batch_size=32, optimizer=recording_sam,
           progress=False)
    closures = [c for c, _ in seen]
    assert len(seen) == 3 and all(c.__func__ is OptimizerStep.closure for c in closures)
    assert closures[0].__self__ is closures[1].__self__ is closures[2].__self__
    assert closures[0].__self__.batch is None  # released after each step
    batches = [b for _, b in seen]
    assert not torch.equal(batches[0], batches[1]) and not torch.equal(batches[1], batches[2])
