"""Batch-norm statistics measured on data: a copy of a model, recalibrated, weights unchanged.

A network left at its random initialisation (a random teacher, Sarnthein et al. 2023) has never
updated its batch-norm running statistics, so in eval mode it normalises with mean 0 and
variance 1, which is not what its pre-activations on real data look like; a student trained in
train mode has data statistics. Comparing their features fairly needs the teacher with its
statistics measured on the data and no weight change: ``batchnorm_recalibrated`` returns that.

How: every batch-norm layer of a deep copy gets its running statistics reset and its momentum
set to None (PyTorch's cumulative average over the batches seen), and the data is passed
through once with the batch-norm layers in train mode. Unlike ``torch.optim.swa_utils.update_bn``,
which puts the whole model in train mode, every other layer stays in eval mode (dropout off),
so the statistics are those of the pre-activations the eval-mode network sees.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .._device import model_device
from .._modes import eval_mode, train_mode

__all__ = ["batchnorm_recalibrated"]


@torch.no_grad()
def batchnorm_recalibrated(model: nn.Module, data, *, batch_size: int | None = None) -> nn.Module:
    """A copy of ``model`` whose batch-norm running statistics are recomputed on ``data``.

    ``batch_size=None`` (default) measures them on the whole of ``data`` in one pass (exact
    mean and unbiased variance); a number (≥ 2) averages the statistics of batches of that size
    (for data too big for one pass; a last batch of one sample is skipped). The copy comes back
    in eval mode, ready to embed; its weights equal the model's. The model you pass is not
    changed; a model without batch norm comes back as a plain copy (in eval mode).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(getattr(data, "loader", None)):
        raise TypeError(f"data must be a wb.data.Dataset (the samples to measure), got {type(data).__name__}")
    if len(data) < 2:
        raise ValueError(f"data has {len(data)} sample(s); batch-norm statistics need at least 2")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2):
        raise ValueError(f"batch_size must be None (one pass over all the data) or an int ≥ 2, got {batch_size!r}")
    out = copy.deepcopy(model)
    bns = [m for m in out.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if bns:
        _measure(out, bns, data, batch_size or len(data))
    return out.eval()


def _measure(model: nn.Module, bns: list[nn.Module], data, batch_size: int) -> None:
    """Reset the running statistics of ``bns`` (batch-norm layers of ``model``) and measure
    them on ``data``, with only those layers in train mode; their momenta are kept."""
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
    with eval_mode(model), train_mode(*bns):
        for x, _ in data.loader(batch_size, shuffle=False, device=model_device(model)):
            if x.shape[0] > 1:  # batch norm needs two samples
                model(x)
    for m, mom in zip(bns, momenta):
        m.momentum = mom
