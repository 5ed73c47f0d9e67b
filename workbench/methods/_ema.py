"""An exponential-moving-average copy of a model, shared by the semi-supervised methods.

Mean teacher (Tarvainen & Valpola 2017) and FixMatch's evaluation model keep θ' = EMA of the
student's parameters: at the k-th update (k = 0, 1, ...) θ' ← a_k θ' + (1 − a_k) θ with
a_k = min(1 − 1/(k + 1), a_max), so update 0 copies the student, update 1 averages the two
halves, and the decay reaches ``a_max`` after 1/(1 − a_max) updates (the official mean-teacher
code's ramp). Only **parameters** are averaged; buffers (batch-norm statistics) stay the copy's
own: the teacher runs on its own inputs and keeps its own running statistics, as the official
code does.

The copy is transient training state (like an optimiser's moments): it is not a registered
submodule of the method, so ``fit`` never optimises it and checkpoints do not hold it.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_decay(k: int, a_max: float) -> float:
    """a_k = min(1 − 1/(k + 1), a_max) for the k-th update (k = 0 copies the student)."""
    return min(1.0 - 1.0 / (k + 1), float(a_max))


class EMACopy:
    """``update(model)`` blends the model's parameters into a private copy; ``module`` is it."""

    def __init__(self, a_max: float):
        self.a_max = float(a_max)
        self.module: nn.Module | None = None
        self.updates = 0
        self._source = None

    def reset(self) -> None:
        self.module, self.updates, self._source = None, 0, None

    @torch.no_grad()
    def update(self, model: nn.Module) -> nn.Module:
        if self.module is None or self._stale(model):
            self.module = copy.deepcopy(model)
            for p in self.module.parameters():
                p.requires_grad_(False)
                p.grad = None
            self.updates = 1
            self._source = id(model)
            return self.module
        a = ema_decay(self.updates, self.a_max)
        for t, s in zip(self.module.parameters(), model.parameters()):
            t.mul_(a).add_(s.detach(), alpha=1.0 - a)
        self.updates += 1
        return self.module

    def _stale(self, model: nn.Module) -> bool:
        if id(model) != self._source:  # another model: start a new average
            return True
        mine = [p.shape for p in self.module.parameters()]
        theirs = [p.shape for p in model.parameters()]
        dev = next(model.parameters()).device
        return mine != theirs or next(self.module.parameters()).device != dev
