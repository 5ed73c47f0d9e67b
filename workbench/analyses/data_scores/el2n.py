"""EL2N: the error L2 norm (Paul, Ganguli & Dziugaite, "Deep Learning on a Data Diet: Finding
Important Examples Early in Training", NeurIPS 2021).

In words: EL2N(x, y) = E over training runs of ‖softmax(f(x)) − onehot(y)‖₂, computed early in
training (the paper: epoch 20 of 200 on CIFAR-10) on the un-augmented training set; examples
with high EL2N are hard, and pruning keeps the highest scores. Pass one model or several
(independently trained; the paper averages 10 runs).

Here the models are run in eval mode (no dropout, BatchNorm running statistics) and left as
they were; the paper's code scores with the network's evaluation mode as well.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..._device import model_device
from ..._modes import eval_mode
from ._result import SampleScores, labelled, logits_of

__all__ = ["el2n"]


def _models(models) -> list[nn.Module]:
    ms = [models] if isinstance(models, nn.Module) else list(models)
    if not ms or not all(isinstance(m, nn.Module) for m in ms):
        raise TypeError("pass a model (nn.Module) or a non-empty list of models")
    return ms


@torch.no_grad()
def el2n(models, data, *, batch_size: int = 1024) -> SampleScores:
    """EL2N score (N,) of each example of the labelled ``data``, averaged over ``models``."""
    ms = _models(models)
    ds = labelled(data, "el2n")
    total = torch.zeros(len(ds), dtype=torch.float64)
    for m in ms:
        out = []
        with eval_mode(m):
            for x, y in ds.loader(batch_size, shuffle=False, device=model_device(m)):
                p = logits_of(m, x).double().softmax(1)
                out.append((p - F.one_hot(y, p.shape[1]).double()).norm(dim=1).cpu())
        total += torch.cat(out)
    return SampleScores((total / len(ms)).float(), "el2n", len(ms))
