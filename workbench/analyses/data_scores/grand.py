"""GraNd: the gradient norm (Paul, Ganguli & Dziugaite, "Deep Learning on a Data Diet", NeurIPS 2021).

In words: GraNd(x, y) = E over runs of ‖∇_θ CE(f_θ(x), y)‖₂, the per-example gradient over all
parameters (the paper's headline uses it at initialisation). Computed here exactly with
``torch.func`` (``functional_call`` + ``vmap`` of ``grad``) on chunks of examples, in eval mode,
so BatchNorm uses its running statistics and each example's gradient is its own.

``params``: None (all trainable parameters, the paper's) or a list of parameter names (e.g. the
head's ``["fc.weight", "fc.bias"]``: a cheaper last-layer score; for a linear softmax head with a
bias it equals ‖p − y‖·√(‖z‖² + 1)). Reproduction note (Kirsch 2023, arXiv 2303.14753): GraNd at
initialisation does not reproduce (it tracks the input norm); EL2N early in training does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from ..._checks import check_int
from ..._device import model_device
from ..._modes import eval_mode
from ._result import SampleScores, labelled, logits_of

__all__ = ["grand"]


def _select(model: nn.Module, params):
    named = {k: v for k, v in model.named_parameters() if v.requires_grad}
    if params is None:
        return named
    names = [params] if isinstance(params, str) else list(params)
    unknown = [n for n in names if n not in named]
    if unknown or not names:
        raise ValueError(f"unknown parameter names {unknown}; valid: {', '.join(named)}")
    return {k: named[k] for k in names}


def grand(models, data, *, params=None, chunk: int = 64) -> SampleScores:
    """GraNd score (N,) of each example of the labelled ``data``, averaged over ``models``."""
    from .el2n import _models

    ms = _models(models)
    ds = labelled(data, "grand")
    chunk = check_int(chunk, "chunk", min=1)
    total = torch.zeros(len(ds), dtype=torch.float64)
    for m in ms:
        total += _grand_one(m, ds, params, chunk)
    return SampleScores((total / len(ms)).float(), "grand", len(ms))


def _grand_one(model, ds, params, chunk) -> torch.Tensor:
    train = _select(model, params)
    fixed = {k: v.detach() for k, v in model.named_parameters() if k not in train}
    buffers = dict(model.named_buffers())
    train = {k: v.detach() for k, v in train.items()}

    def loss(p, x, y):
        out = logits_of(lambda inp: functional_call(model, {**p, **fixed, **buffers}, (inp,)), x[None])
        return F.cross_entropy(out, y[None])

    per_sample = vmap(grad(loss), in_dims=(None, 0, 0))
    out = []
    with eval_mode(model):
        for x, y in ds.loader(chunk, shuffle=False, device=model_device(model)):
            g = per_sample(train, x, y)                                  # name -> (B, *shape)
            sq = sum(v.reshape(v.shape[0], -1).double().square().sum(1) for v in g.values())
            out.append(sq.sqrt().cpu())
    return torch.cat(out)
