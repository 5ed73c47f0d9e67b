"""Detectors that score through the classifier's linear head (ViM, Residual, fDBD, ReAct, ASH,
SCALE, GradNorm): the head as an affine map logits = W z + b, from any model.

``HeadDetector.fit(model_or_bank, id_train)`` takes the head from ``model.head`` (a bank's
model for a ``FeatureBank``); ``fit_features(z, y)`` needs it as the ``head=`` hyperparameter:
an ``nn.Linear``, a ``(W, b)`` pair (W (C, d), b (C,) or None) or any callable that is affine
(a wrapped model's head). A callable that is not an ``nn.Linear`` is read by probing: b = h(0),
W = h(I) − b, then checked on a random point; a head that is not affine (an MLP head) is refused,
since these detectors are defined for a linear last layer. The head is read under ``eval_mode``
and no grad, so the model is not changed. W and b are kept in float64 as ``weight_``/``bias_``.
"""

from __future__ import annotations

import torch
from torch import nn

from .._modes import eval_mode
from .bank import FeatureBank
from .base import Detector

__all__ = ["HeadDetector", "affine_of", "energy", "shaping_parts"]


def affine_of(head, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(W (C, d), b (C,)) float64 CPU tensors of an affine ``head`` on d-dimensional features."""
    if isinstance(head, (tuple, list)):
        if len(head) != 2 or not isinstance(head[0], torch.Tensor):
            raise TypeError("head=(W, b) must be a pair of tensors: W (C, d) and b (C,) or None")
        w = head[0].detach().cpu().double()
        b = torch.zeros(w.shape[0], dtype=torch.float64) if head[1] is None else head[1].detach().cpu().double()
    elif isinstance(head, nn.Linear):
        w = head.weight.detach().cpu().double()
        b = torch.zeros(w.shape[0], dtype=torch.float64) if head.bias is None else head.bias.detach().cpu().double()
    elif callable(head):
        w, b = _probe(head, d)
    else:
        raise TypeError(f"head must be an nn.Linear, a (W, b) pair or an affine callable, got {type(head).__name__}")
    if w.ndim != 2 or w.shape[1] != d or b.shape != (w.shape[0],):
        raise ValueError(f"the head maps {tuple(w.shape)[1:]} features to {w.shape[0]} logits with bias "
                         f"{tuple(b.shape)}, but the features are {d}-dimensional; pass the head that "
                         "reads these features")
    if not (torch.isfinite(w).all() and torch.isfinite(b).all()):
        raise ValueError("the head's weights contain NaN or inf")
    return w.contiguous(), b.contiguous()


def _probe(head, d: int):
    params = list(head.parameters()) if isinstance(head, nn.Module) else []
    dev = params[0].device if params else torch.device("cpu")
    dt = params[0].dtype if params and params[0].dtype.is_floating_point else torch.float32
    probe = torch.cat([torch.zeros(1, d), torch.eye(d), torch.randn(2, d, generator=torch.Generator().manual_seed(0))])
    with torch.no_grad(), eval_mode(head if isinstance(head, nn.Module) else nn.Identity()):
        out = head(probe.to(dev, dt)).detach().cpu().double()
    if out.ndim != 2 or out.shape[0] != d + 3:
        raise ValueError(f"the head returned shape {tuple(out.shape)} for {d + 3} feature rows; it must map "
                         "(N, d) features to (N, C) logits")
    b = out[0]
    w = (out[1 : d + 1] - b).T                                       # (C, d)
    want = probe[d + 1 :].double() @ w.T + b
    tol = 1e-4 if dt == torch.float32 else 1e-9
    if not torch.allclose(out[d + 1 :], want, rtol=tol * 10, atol=tol * (1 + float(out.abs().max()))):
        raise ValueError("the model's head is not affine (logits = W z + b); this detector is defined "
                         "for a linear last layer: pass head=(W, b) of the linear part, or use a "
                         "feature-space detector (KNN, Mahalanobis, ...)")
    return w, b


def energy(logits: torch.Tensor) -> torch.Tensor:
    """logsumexp over classes (N,)."""
    return torch.logsumexp(logits, dim=1)


def shaping_parts(h: torch.Tensor, percentile: float):
    """ASH/SCALE's pieces for activations h (N, n): the mask of the top k = n − round(n·p/100)
    values per row (Python's round, half to even, as numpy's), s1 = row sums, s2 = kept sums."""
    n = h.shape[1]
    k = n - round(n * percentile / 100)
    if k < 1:
        raise ValueError(f"percentile={percentile} keeps no unit of {n}; pass a smaller percentile")
    top = h.topk(k, dim=1).indices
    mask = torch.zeros_like(h, dtype=torch.bool).scatter_(1, top, True)
    return mask, k, h.sum(1), (h * mask).sum(1)


class HeadDetector(Detector):
    """Base of the detectors that need the linear head (see the module docstring)."""

    space = "backbone"

    def fit(self, source, data=None):
        model = source.model if isinstance(source, FeatureBank) else source
        self._source_head = getattr(model, "head", None) if isinstance(model, nn.Module) else None
        try:
            return super().fit(source, data)
        finally:
            self.__dict__.pop("_source_head", None)

    def _read_head(self, d: int, device) -> None:
        head = self.head if self.head is not None else self.__dict__.get("_source_head")
        if head is None:
            name = type(self).__name__
            raise ValueError(f"{name} scores through the classifier's linear head: use fit(model, id_train) "
                             f"with a model that has head(z), or {name}(head=model.head) (or head=(W, b)) "
                             "with fit_features or precomputed Embeddings")
        w, b = affine_of(head, d)
        self.weight_, self.bias_ = w.to(device), b.to(device)

    def _logits(self, z: torch.Tensor) -> torch.Tensor:
        return z.double() @ self.weight_.T + self.bias_
