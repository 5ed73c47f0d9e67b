"""Linear interpolation between two models and the loss barrier on the line (``interpolate``).

Goodfellow, Vinyals & Saxe, "Qualitatively characterizing neural network optimization problems"
(ICLR 2015): the loss along ``(1 - t) θ_a + t θ_b``. Frankle, Dziugaite, Roy & Carbin, "Linear
Mode Connectivity and the Lottery Ticket Hypothesis" (ICML 2020): the barrier height
``max_{t in [0, 1]} L(t) - ((1 - t) L(0) + t L(1))``. Floating-point buffers (BatchNorm running
statistics) belong to their endpoints, so by default they are interpolated too (``"interpolate"``,
the original loss-landscape code's ``--dir_type states``); ``"a"`` keeps model_a's. ``bn="batch"``
normalises with the evaluated batch's statistics instead (running statistics unused; see
``landscape.py``); dropout is off either way.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from .._device import model_device
from ._checks import check_choice, check_int, check_model, check_number, check_seed
from ._functional import buffer_dict, check_bn, check_method, param_dict, prepare_data
from ._landscape_engine import GridEvaluator

__all__ = ["interpolate", "Interpolation"]


@dataclass(frozen=True, eq=False)
class Interpolation:
    """Loss along ``(1 - t) θ_a + t θ_b``: ``ts``, ``loss``, ``metrics`` (e.g. ``"acc"``).

    ``barrier``: ``max_{t in [0,1]} L(t) - ((1 - t) L(0) + t L(1))`` (Frankle et al. 2020),
    at ``barrier_t``; ``buffers``: ``"interpolate"`` (running statistics moved along too) or ``"a"``;
    ``bn``: ``"eval"`` (running statistics) or ``"batch"`` (the batch's statistics).
    """

    ts: torch.Tensor
    loss: torch.Tensor
    metrics: dict[str, torch.Tensor]
    barrier: float
    barrier_t: float
    loss_a: float
    loss_b: float
    buffers: str
    data: str
    evaluator: str
    elapsed: float
    bn: str = "eval"

    @property
    def accuracy(self) -> torch.Tensor | None:
        return self.metrics.get("acc")

    def __repr__(self) -> str:
        return (
            f"Interpolation({len(self.ts)} points, t∈[{float(self.ts[0]):.3g}, {float(self.ts[-1]):.3g}]; "
            f"loss(a)={self.loss_a:.4g}, loss(b)={self.loss_b:.4g}, barrier={self.barrier:.4g} at t={self.barrier_t:.3g}; "
            f"buffers={self.buffers!r}{', BatchNorm on batch statistics' if self.bn == 'batch' else ''}; "
            f"data {self.data}; {self.evaluator})"
        )


def _same_structure(a: nn.Module, b: nn.Module):
    pa, pb = param_dict(a), param_dict(b)
    if list(pa) != list(pb):
        raise ValueError("model_a and model_b have different parameter names; build both with the same architecture")
    for k in pa:
        if pa[k].shape != pb[k].shape:
            raise ValueError(f"parameter {k!r} has shape {tuple(pa[k].shape)} in model_a but {tuple(pb[k].shape)} in model_b")
    if model_device(a) != model_device(b):
        raise ValueError(f"model_a is on {model_device(a)} but model_b on {model_device(b)}; put both on one device")
    return pa, pb


def _check_t_range(t_range) -> tuple[float, float]:
    if not isinstance(t_range, (tuple, list)) or len(t_range) != 2:
        raise TypeError(f"t_range must be a pair (t_min, t_max), e.g. (0, 1) or (-0.5, 1.5); got {t_range!r}")
    lo, hi = (check_number(v, "t_range's ends", positive=False) for v in t_range)
    if not (lo <= 0.0 and hi >= 1.0):
        raise ValueError(f"t_range must contain [0, 1], e.g. (0, 1) or (-0.5, 1.5); got {t_range!r}")
    return lo, hi


def interpolate(
    model_a: nn.Module,
    model_b: nn.Module,
    method,
    data,
    steps: int = 21,
    *,
    t_range: tuple[float, float] = (0.0, 1.0),
    buffers: str = "interpolate",
    n_samples: int | None = None,
    seed: int = 0,
    metrics: dict | None = None,
    evaluator: str = "auto",
    memory_mb: float = 256.0,
    batch_size: int | None = None,
    bn: str = "eval",
) -> Interpolation:
    """Loss (and accuracy) along the straight line from ``model_a`` (t=0) to ``model_b`` (t=1).

    ``t_range`` may extend past [0, 1] (e.g. (-0.5, 1.5)); t = 0 and 1 are always on the grid.
    ``buffers``: ``"interpolate"`` moves floating-point buffers (BatchNorm running statistics)
    along the line too; ``"a"`` keeps model_a's. ``bn``: ``"eval"`` (default, running statistics)
    or ``"batch"`` (each batch's statistics: all samples, or blocks of ``batch_size``). Neither
    model is changed.
    """
    t0 = time.perf_counter()
    check_model(model_a, "model_a")
    check_model(model_b, "model_b")
    method = check_method(method)
    check_seed(seed)
    check_choice(buffers, "buffers", ("interpolate", "a"))
    check_bn(bn)
    steps = check_int(steps, "steps", minimum=2, example=21)
    lo, hi = _check_t_range(t_range)
    pa, pb = _same_structure(model_a, model_b)
    d = {k: pb[k] - pa[k] for k in pa}
    bdirs = None
    if buffers == "interpolate":
        ba, bb = buffer_dict(model_a), buffer_dict(model_b)
        diff = {k: bb[k] - ba[k] for k in ba if ba[k].is_floating_point() and k in bb and not torch.equal(ba[k], bb[k])}
        if diff:
            bdirs = [diff]
    x, y, info = prepare_data(data, model_device(model_a), n_samples, seed)
    ev = GridEvaluator(model_a, method, x, y, [d], buffer_directions=bdirs, metrics=metrics,
                       evaluator=evaluator, memory_mb=memory_mb, batch_size=batch_size, bn=bn)
    ts = torch.linspace(lo, hi, steps, dtype=torch.float64)
    ts = torch.unique(torch.cat([ts, torch.tensor([0.0, 1.0], dtype=torch.float64)]))
    vals = ev(ts[:, None])
    loss = vals.pop("loss")
    i0 = int((ts == 0).nonzero()[0])
    i1 = int((ts == 1).nonzero()[0])
    la, lb = float(loss[i0]), float(loss[i1])
    inside = (ts >= 0) & (ts <= 1)
    excess = loss.double() - ((1 - ts) * la + ts * lb)
    excess[~inside] = -math.inf
    j = int(excess.argmax())
    return Interpolation(
        ts=ts.float(), loss=loss, metrics=vals, barrier=float(excess[j]), barrier_t=float(ts[j]),
        loss_a=la, loss_b=lb, buffers=buffers, data=str(info), evaluator=ev.name,
        elapsed=time.perf_counter() - t0, bn=bn,
    )
