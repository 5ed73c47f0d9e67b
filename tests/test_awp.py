"""AWP as an optimizer choice in fit: the two-pass update against a hand computation, which
tensors are perturbed, warm-up, BatchNorm, reproducibility, and that other optimizers are
untouched."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from two_pass_steps import data, grads, two_pass_step

import workbench as wb
from workbench.training.optim import make_optimizer


def _manual_awp(model, x, y, gamma, lr, weight_decay=0.0):
    """The official update with plain SGD: v_l = γ‖w_l‖ g_l/‖g_l‖ on weights (ndim > 1), the
    gradient at w + v, the SGD step at w + v (weight decay there), then v subtracted."""
    ref = copy.deepcopy(model)
    g = grads(ref, x, y)
    w = [p.detach().clone() for p in ref.parameters()]
    v = [gamma * wi.norm() * gi / (gi.norm() + 1e-20) if wi.ndim > 1 else torch.zeros_like(wi) for wi, gi in zip(w, g)]
    with torch.no_grad():
        for p, vi in zip(ref.parameters(), v):
            p.add_(vi)
    g2 = grads(ref, x, y)
    return [(wi + vi - lr * (g2i + weight_decay * (wi + vi))) - vi for wi, vi, g2i in zip(w, v, g2)], v


@pytest.mark.parametrize("gamma,wd", [(0.01, 0.0), (0.2, 0.1)])
def test_one_step_matches_the_official_update(gamma, wd):
    ds = data()
    model = wb.models.MLP(4, (6,), 3, seed=0)
    want, v = _manual_awp(model, ds.x, ds.y, gamma=gamma, lr=0.1, weight_decay=wd)
    two_pass_step("awp", model, ds.x, ds.y, lr=0.1, gamma=gamma, weight_decay=wd)
    for p, w in zip(model.parameters(), want):
        torch.testing.assert_close(p.detach(), w, rtol=1e-5, atol=1e-6)
    # the perturbation is layer-wise relative: ‖v_l‖ = γ‖w_l‖ for weights, 0 for biases
    for (name, p), vi in zip(wb.models.MLP(4, (6,), 3, seed=0).named_parameters(), v):
        if name.endswith("bias"):
            assert float(vi.norm()) == 0
        else:
            assert float(vi.norm()) == pytest.approx(gamma * float(p.detach().norm()), rel=1e-5)


def test_the_perturbation_raises_the_loss_and_is_undone():
    ds = data()
    model = wb.models.MLP(4, (6,), 3, seed=0)
    opt = make_optimizer("awp", list(model.parameters()), lr=0.1, weight_decay=None, gamma=0.05, momentum=0.0)
    opt.zero_grad()
    clean = F.cross_entropy(model(ds.x), ds.y)
    clean.backward()
    w = [p.detach().clone() for p in model.parameters()]
    opt.perturb()
    with torch.no_grad():
        assert float(F.cross_entropy(model(ds.x), ds.y)) > float(clean)
    opt.restore()
    for p, wi in zip(model.parameters(), w):
        torch.testing.assert_close(p.detach(), wi)


def test_warmup_steps_are_plain_sgd():
    ds = data(128)
    kw = dict(steps=3, lr=0.1, batch_size=32, progress=False)
    a, b = wb.models.MLP(4, (6,), 3, seed=0), wb.models.MLP(4, (6,), 3, seed=0)
    wb.fit(a, wb.methods.CrossEntropy(), ds, optimizer="awp", gamma=0.05, awp_warmup=3, **kw)
    wb.fit(b, wb.methods.CrossEntropy(), ds, optimizer="sgd", **kw)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    c = wb.models.MLP(4, (6,), 3, seed=0)
    wb.fit(c, wb.methods.CrossEntropy(), ds, optimizer="awp", gamma=0.05, awp_warmup=2, **kw)
    assert not torch.equal(c.fc.weight, b.fc.weight)


def test_fit_with_awp_is_reproducible_and_recorded():
    ds = data(128)
    runs = []
    for _ in range(2):
        m = wb.models.MLP(4, (6,), 3, seed=0)
        h = wb.fit(m, wb.methods.CrossEntropy(), ds, steps=12, lr=0.1, batch_size=32, optimizer="awp",
                   gamma=0.02, base="adam", progress=False)
        runs.append((m, h))
    (m1, h1), (m2, h2) = runs
    assert h1.status == "completed" and h1.config["gamma"] == 0.02 and h1.config["optimizer"] == "awp"
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))


def test_batchnorm_keeps_the_clean_pass_statistics():
    ds = data(64)
    kw = dict(steps=1, lr=0.1, batch_size=64, progress=False)
    a = wb.models.MLP(4, (6,), 3, norm="batch", seed=0)
    b = wb.models.MLP(4, (6,), 3, norm="batch", seed=0)
    wb.fit(a, wb.methods.CrossEntropy(), ds, optimizer="awp", gamma=0.05, **kw)
    wb.fit(b, wb.methods.CrossEntropy(), ds, optimizer="sgd", **kw)
    assert torch.equal(a.body[1].running_mean, b.body[1].running_mean)
    assert int(a.body[1].num_batches_tracked) == 1


def test_options_and_errors():
    params = list(wb.models.MLP(4, (6,), 3, seed=0).parameters())
    opt = make_optimizer("awp", params, lr=0.1, weight_decay=None, gamma=0.01, base="adam", betas=(0.8, 0.99))
    assert isinstance(opt.base_optimizer, torch.optim.Adam) and "AWP(gamma=0.01" in repr(opt)
    for bad, err, match in [(dict(gamma=0), ValueError, "gamma"), (dict(gamma="x"), TypeError, "gamma"),
                            (dict(awp_warmup=-1), ValueError, "awp_warmup"), (dict(base="sam"), ValueError, "base='sam'"),
                            (dict(base="nope"), ValueError, "unknown optimizer")]:
        with pytest.raises(err, match=match):
            make_optimizer("awp", params, lr=0.1, weight_decay=None, **bad)
    with pytest.raises(ValueError, match="closure"):
        opt.step()
    with pytest.raises(ValueError, match="gamma"):   # checked by fit before anything changes
        wb.fit(wb.models.MLP(4, (6,), 3, seed=0), wb.methods.CrossEntropy(), data(), steps=1, optimizer="awp",
               gamma=-1, progress=False)


@pytest.mark.parametrize("name,options", [("awp", dict(gamma=0.1)), ("sam", dict(rho=0.5))])
def test_a_closure_that_raises_leaves_the_weights_where_they_were(name, options):
    """Both two-pass optimizers move the weights before the closure; if the closure raises
    (out of memory, a user's bug), the weights are back at w and the base optimizer has not
    stepped."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    ds = data()
    before = [p.detach().clone() for p in model.parameters()]
    opt = make_optimizer(name, list(model.parameters()), lr=0.1, weight_decay=None, **options)
    grads(model, ds.x, ds.y)

    def closure():
        raise RuntimeError("boom in the second pass")

    with pytest.raises(RuntimeError, match="boom"):
        opt.step(closure)
    for p, b in zip(model.parameters(), before):  # AWP subtracts v again: w + v − v, equal up to rounding
        torch.testing.assert_close(p.detach(), b, rtol=0, atol=1e-6)
    assert not opt.base_optimizer.state  # no momentum buffer: the base step did not run
    with pytest.raises(ValueError, match="closure"):
        opt.step()
    with pytest.raises(ValueError, match="base='awp' is not allowed"):
        make_optimizer(name, list(model.parameters()), lr=0.1, weight_decay=None, base="awp", **options)
