"""The two pieces of ``fit``'s step that hold state: the last good state, and the update.

``LastGoodState`` keeps a copy of every parameter and buffer of the model and the method. The
loop saves it just before each update (the weights that gave the last finite loss) and
restores it when the next loss is not finite, or when an interrupt strikes in the middle of an
update (``with guard.update(): ...``).

``OptimizerStep`` is one optimiser update from a loss: back-propagate, clip, step. An optimizer
with ``needs_closure = True`` (SAM) gets ``self.closure``, a bound method defined once, which
re-evaluates the loss on the batch of the current step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


def _unique(tensors) -> list[torch.Tensor]:
    return list({id(t): t for t in tensors}.values())


class LastGoodState:
    """Copies of the parameters and buffers of ``modules`` (taken at construction, then by
    ``save``); ``restore`` writes them back in place."""

    def __init__(self, *modules: nn.Module):
        self.tracked = _unique(
            t for m in modules for t in [*m.parameters(), *m.buffers()]
        )
        self.good = [t.detach().clone() for t in self.tracked]

    def save(self) -> None:
        with torch.no_grad():
            torch._foreach_copy_(self.good, [t.detach() for t in self.tracked])

    def restore(self) -> None:
        with torch.no_grad():
            for t, g in zip(self.tracked, self.good):
                t.copy_(g)

    @contextlib.contextmanager
    def update(self) -> Iterator[None]:
        """Save, run the body (one update); a KeyboardInterrupt inside it restores the saved
        state (a half-applied update is worse than none) and is re-raised."""
        self.save()
        try:
            yield
        except KeyboardInterrupt:
            self.restore()
            raise


class OptimizerStep:
    """``step(loss, batch)``: ``loss.backward()``, clip the gradient norm to ``grad_clip``
    (if given), ``optimizer.step()`` (with ``self.closure`` when the optimizer needs one).

    The closure's second pass must not update buffers: BatchNorm running statistics and a
    method's state keep the clean first pass's values (as the official SAM code does), so it
    copies them before the pass and writes them back after.
    """

    def __init__(self, model: nn.Module, method: nn.Module, optimizer, params, grad_clip):
        self.model, self.method, self.optimizer = model, method, optimizer
        self.params, self.grad_clip = params, grad_clip
        self.needs_closure = bool(getattr(optimizer, "needs_closure", False))
        self.buffers = _unique([*model.buffers(), *method.buffers()])
        self.batch = None  # the current step's batch, read by the closure

    def _clip(self) -> None:
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)

    def step(self, loss: torch.Tensor, batch) -> None:
        loss.backward()
        self._clip()
        if not self.needs_closure:
            self.optimizer.step()
            return
        self.batch = batch
        try:
            self.optimizer.step(self.closure)
        finally:
            self.batch = None

    def closure(self) -> torch.Tensor:
        """Zero the gradients, recompute the loss on the current batch, back-propagate, clip;
        the buffers come back as they were."""
        self.optimizer.zero_grad(set_to_none=True)
        kept = [b.detach().clone() for b in self.buffers]
        loss, _ = self.method.loss(self.model, self.batch)
        loss.backward()
        with torch.no_grad():
            for b, k in zip(self.buffers, kept):
                b.copy_(k)
        self._clip()
        return loss
