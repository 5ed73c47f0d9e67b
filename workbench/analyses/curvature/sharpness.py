"""SAM's sharpness of the loss around the model's weights (``sharpness``).

Foret, Kleiner, Mobahi & Neyshabur, "Sharpness-Aware Minimization" (ICLR 2021):
``max_{||ε|| <= ρ} L(θ + ε) - L(θ)``. SAM approximates the maximiser to first order by
``ε = ρ g / ||g||`` (``one_step``); here projected normalised gradient ascent continues from that
point for ``steps`` gradients (step ``ρ / sqrt(t + 1)``, projected back onto the ball), and the
largest loss found is reported: a lower bound of the maximum. ``adaptive=True`` uses ASAM's
ball ``||ε / |θ| || <= ρ`` (Kwon, Kim, Park & Choi 2021): the ascent runs in the scaled variable
``δ = ε / |θ|``, whose gradient is ``|θ| ⊙ g``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import grad

from .._checks import check_int, check_number
from .._functional import LossFunction, norm_of, param_dict
from .operator import auto_block, select_params, setup
from .per_class import per_class as _per_class


@dataclass(frozen=True, eq=False)
class Sharpness:
    """SAM's sharpness ``max_{||ε|| <= ρ} L(θ + ε) - L(θ)`` (a lower bound: the best point found).

    ``loss`` = L(θ); ``max_loss``; ``one_step``: L(θ + ρ g/||g||) - L(θ) (SAM's first-order
    solution); ``history``: the loss after each ascent step; ``adaptive``: ASAM's ball.
    """

    sharpness: float
    loss: float
    max_loss: float
    one_step: float
    rho: float
    adaptive: bool
    steps: int
    history: torch.Tensor
    data: str
    elapsed: float
    bn: str = "eval"  # BatchNorm statistics: "eval" (running) or "batch"

    def __repr__(self) -> str:
        ball = "adaptive (ASAM) " if self.adaptive else ""
        return (
            f"Sharpness({self.sharpness:.4g} in the {ball}ρ={self.rho:g} ball: loss {self.loss:.4g} -> max "
            f"{self.max_loss:.4g}; first-order step {self.one_step:.4g}; {self.steps} ascent steps; data {self.data})"
        )


class _Ascent:
    """The loss and the unit ascent direction at θ + ε, in the plain or the ASAM ball."""

    def __init__(self, f: LossFunction, theta: dict, adaptive: bool):
        self.f, self.theta, self.names = f, theta, list(theta)
        self.scale = {k: v.abs() for k, v in theta.items()} if adaptive else None  # |θ| (ASAM)
        self.gfun = grad(lambda p: f(p))

    def to_eps(self, delta: dict) -> dict:
        """ε from the ball's variable δ (ε = |θ| ⊙ δ for ASAM)."""
        return {k: self.scale[k] * delta[k] for k in self.names} if self.scale is not None else delta

    def loss(self, delta: dict) -> float:
        eps = self.to_eps(delta)
        with torch.no_grad():
            return float(self.f({k: self.theta[k] + eps[k] for k in self.names}))

    def direction(self, delta: dict) -> dict:
        eps = self.to_eps(delta)
        gd = self.gfun({k: self.theta[k] + eps[k] for k in self.names})
        if self.scale is not None:  # in the scaled variable: gradient |θ| g
            gd = {k: self.scale[k] * gd[k] for k in self.names}
        nrm = norm_of(gd)
        return {k: v / max(nrm, 1e-12) for k, v in gd.items()}


def sharpness(
    model: nn.Module,
    method,
    data,
    rho: float = 0.05,
    *,
    adaptive: bool = False,
    steps: int = 10,
    n_samples: int | None = None,
    seed: int = 0,
    params=None,
    per_class: bool = False,
    batch_size: int | None = None,
    memory_mb: float = 512.0,
    bn: str = "eval",
):
    """SAM's sharpness by projected normalised gradient ascent (``steps`` gradients)."""
    if per_class:
        return _per_class(sharpness, model, method, data, n_samples, seed, rho=rho, adaptive=adaptive,
                          steps=steps, params=params, batch_size=batch_size, memory_mb=memory_mb, bn=bn)
    t0 = time.perf_counter()
    rho = check_number(rho, "rho")
    steps = check_int(steps, "steps", example=10)
    memory_mb = check_number(memory_mb, "memory_mb")
    batch_size = check_int(batch_size, "batch_size", none="an automatic block size")
    method, x, y, info = setup(model, method, data, n_samples, seed, bn=bn)
    if batch_size is None:
        batch_size = auto_block(model, x, memory_mb, bn)
    f = LossFunction(model, method, x, y, batch_size=batch_size, bn=bn)
    allp = param_dict(f.work)
    theta = {k: allp[k] for k in select_params(list(allp), params)}
    asc = _Ascent(f, theta, bool(adaptive))
    zero = {k: torch.zeros_like(v) for k, v in theta.items()}
    l0 = asc.loss(zero)
    delta = {k: rho * v for k, v in asc.direction(zero).items()}  # SAM's first-order solution
    hist = [asc.loss(delta)]
    for t in range(1, steps):
        u = asc.direction(delta)
        step = rho / (t + 1) ** 0.5
        delta = {k: delta[k] + step * u[k] for k in delta}
        nrm = norm_of(delta)
        if nrm > rho:  # project back onto the ball
            delta = {k: v * (rho / nrm) for k, v in delta.items()}
        hist.append(asc.loss(delta))
    best = max(hist)
    return Sharpness(
        sharpness=best - l0, loss=l0, max_loss=best, one_step=hist[0] - l0, rho=float(rho), adaptive=bool(adaptive),
        steps=steps, history=torch.tensor(hist), data=str(info), elapsed=time.perf_counter() - t0, bn=bn,
    )
