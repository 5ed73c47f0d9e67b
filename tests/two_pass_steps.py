"""Shared helpers of the SAM and AWP tests: a tiny data set, the gradients of a model at its
current weights, and one two-pass step through the optimizer registry."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import workbench as wb
from workbench.training.optim import make_optimizer


def data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return wb.data.Dataset(torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g))


def grads(model, x, y):
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    return [p.grad.detach().clone() for p in model.parameters()]


def two_pass_step(name, model, x, y, **kw):
    """One ``optimizer=name`` step as ``fit`` takes it: gradients at w, then ``step(closure)``."""
    opt = make_optimizer(name, list(model.parameters()), lr=kw.pop("lr"), weight_decay=kw.pop("weight_decay", None), **kw)
    assert opt.needs_closure

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    opt.step(closure)
    return opt
