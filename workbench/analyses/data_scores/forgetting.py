"""Forgetting events (Toneva, Sordoni, Combes, Trischler, Bengio & Gordon, "An Empirical Study of
Example Forgetting during Deep Neural Network Learning", ICLR 2019).

In words: record, at every presentation of an example during training, whether the network
classifies it correctly; a forgetting event is a transition correct → incorrect between two
consecutive presentations of the same example. The score is the number of events; examples
never classified correctly get +∞ (unforgettable examples have 0). The state before the first
presentation counts as "incorrect", so the first presentation cannot be an event.

``forgetting_events(index, correct, n)`` counts from a record of presentations (in order); the
``wb.training.ForgettingEvents`` callback makes that record during ``wb.fit``. Difference from
the paper's code: the correctness there comes from the training step's own logits (train mode,
augmented batch); the callback re-runs the model on the step's batch in eval mode just before
the update (so the fit itself is unchanged: no BatchNorm statistics move, no random numbers are
drawn).
"""

from __future__ import annotations

import torch

from ..._checks import check_int
from ._result import SampleScores

__all__ = ["forgetting_events"]


def forgetting_events(index, correct, n: int) -> SampleScores:
    """Forgetting-event counts (N,) from presentations: ``index`` (M,) example ids in
    presentation order and ``correct`` (M,) bools; ``n`` examples in all (inf = never learned;
    an example never presented scores +inf too)."""
    n = check_int(n, "n", min=1)
    idx = torch.as_tensor(index).detach().cpu().long().flatten()
    ok = torch.as_tensor(correct).detach().cpu().bool().flatten()
    if idx.shape != ok.shape:
        raise ValueError(f"index and correct must have one length, got {idx.numel()} and {ok.numel()}")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise ValueError(f"index must lie in [0, {n}), got values from {int(idx.min())} to {int(idx.max())}")
    order = torch.sort(idx, stable=True).indices                         # group by example, keep time order
    i, c = idx[order], ok[order]
    same = torch.zeros_like(c)
    same[1:] = i[1:] == i[:-1]
    prev = torch.zeros_like(c)
    prev[1:] = c[:-1]
    events = same & prev & ~c                                            # correct -> incorrect
    counts = torch.zeros(n, dtype=torch.float64).index_add_(0, i, events.double())
    ever = torch.zeros(n, dtype=torch.float64).index_add_(0, i, c.double()) > 0
    return SampleScores(torch.where(ever, counts, torch.full_like(counts, float("inf"))).float(), "forgetting")
