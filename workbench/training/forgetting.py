"""``ForgettingEvents``: a callback recording, at every step, which examples of the batch the
model classifies correctly, for forgetting-event counts (Toneva et al., ICLR 2019; the counting
is ``wb.analyses.data_scores.forgetting_events``).

At ``on_batch_start`` (the step's batch is drawn, nothing is updated yet) the model is run on
the batch in eval mode under no grad: no BatchNorm statistics move, no dropout noise is drawn
from the global generator, and every submodule's mode is restored, so a fit with this callback
gives bit-identical weights to one without it. It costs one extra forward pass per step. The
paper's code reads correctness from the training step's own (train-mode) logits instead.
"""

from __future__ import annotations

import torch

from .._modes import eval_mode
from .callbacks import Callback

__all__ = ["ForgettingEvents"]


class ForgettingEvents(Callback):
    """Record (example index, correct) at every presentation. Count the events with
    ``wb.analyses.data_scores.forgetting_events(*cb.record(), n=len(train))`` (training never
    imports analyses)."""

    def __init__(self):
        self.index: list[torch.Tensor] = []
        self.correct: list[torch.Tensor] = []

    def on_fit_start(self, state):
        self.index, self.correct = [], []

    def on_batch_start(self, state):
        x, y = state.batch
        if y is None or y.ndim != 1:
            raise ValueError("ForgettingEvents needs class labels y (N,) in the training data")
        with torch.no_grad(), eval_mode(state.model):
            pred = state.model(x).argmax(1)
        self.index.append(state.batch_index.detach().cpu())
        self.correct.append((pred == y).detach().cpu())

    def record(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(index (M,), correct (M,)) of every presentation, in order."""
        if not self.index:
            return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.bool)
        return torch.cat(self.index), torch.cat(self.correct)
