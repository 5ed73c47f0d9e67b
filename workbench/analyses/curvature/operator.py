"""The Hessian of the sample-mean loss as an operator on flat vectors, and the public ``hvp``.

``HessianOperator`` fixes what the Hessian is of: the sample mean loss over (x, y) (sample
blocks weighted by their sizes), with respect to the selected parameters (``params=``: all, names,
or a predicate name -> bool), at the model's weights, evaluated in eval mode on a copy of the
model (the user's model is only read). Products go through an engine from ``engines.py``.

BatchNorm (``bn=``): ``"eval"`` (default) differentiates the network with its running statistics
fixed (BatchNorm is then a fixed affine map per channel); ``"batch"`` normalises with the
statistics of the evaluated batch (all samples, or blocks of ``batch_size``), which depend on the
weights and are differentiated through, as in a training step. Dropout is off in both.
"""

from __future__ import annotations

import torch
from torch import nn

from ..._device import model_device
from .._checks import check_choice, check_int, check_labels, check_model, check_number, check_seed
from .._functional import (
    LossFunction,
    check_bn,
    check_directions,
    check_method,
    flatten,
    param_dict,
    prepare_data,
    unflatten,
)
from .engines import HVP_MODES, make_engine

__all__ = ["HessianOperator", "hvp", "setup", "HVP_MODES"]


def select_params(names: list[str], params) -> list[str]:
    """The parameter names ``params`` selects: None (all), a name, names, or a predicate."""
    if params is None:
        return list(names)
    if callable(params):
        sel = [n for n in names if params(n)]
    else:
        if isinstance(params, str):
            params = [params]
        if not all(isinstance(p, str) for p in params):
            raise TypeError("params must be None, a parameter name, a list of names, or a predicate name -> bool")
        params = list(params)
        unknown = [p for p in params if p not in names]
        if unknown:
            raise ValueError(f"unknown parameter names {unknown[:5]}; valid: {list(names)[:10]}...")
        sel = [n for n in names if n in params]
    if not sel:
        raise ValueError("params= selected no parameter; pass None (all), names, or a predicate name -> bool")
    return sel


def auto_block(model: nn.Module, x: torch.Tensor, memory_mb: float, bn: str = "eval") -> int:
    """Samples per block: all of them unless a rough activation estimate exceeds the budget
    (always all of them for ``bn="batch"``, where a block is the batch the statistics are of)."""
    if bn == "batch":
        return int(x.shape[0])
    widths = [p.shape[0] for p in model.parameters() if p.ndim >= 1]
    per_sample = 4.0 * 12 * (sum(widths) + x[0].numel())  # forward + tangents + backward, generous
    b = int(memory_mb * 2**20 // max(1.0, per_sample))
    return max(1, min(int(x.shape[0]), b))


def setup(model, method, data, n_samples, seed, what: str = "data", bn: str = "eval"):
    """Checked (method, x, y, info) for a curvature entry point."""
    check_model(model)
    method = check_method(method)
    check_seed(seed)
    check_bn(bn)
    x, y, info = prepare_data(data, model_device(model), n_samples, seed, what=what)
    check_labels(method, y, None, reads_outputs=False, what=what)  # presence and -1 (the range: in LossFunction)
    return method, x, y, info


class HessianOperator:
    """``H v`` for flat vectors over the selected parameters (float32 in, float32 out).

    ``matvec(v)``: one product; ``matmat(V)``: rows of V (m, P), ``chunk`` directions per engine
    call. ``n_matvecs`` counts products; ``mode`` names the engine; ``gradient()`` is the loss
    gradient at θ. Build it with the same arguments as ``hvp``.
    """

    def __init__(self, model: nn.Module, method, x, y, *, params=None, hvp_mode: str = "auto",
                 memory_mb: float = 512.0, batch_size: int | None = None, bn: str = "eval"):
        check_choice(hvp_mode, "hvp_mode", HVP_MODES)
        memory_mb = check_number(memory_mb, "memory_mb")
        batch_size = check_int(batch_size, "batch_size", none="an automatic block size")
        if batch_size is None:
            batch_size = auto_block(model, x, memory_mb, bn)
        self.f = LossFunction(model, method, x, y, batch_size=batch_size, bn=bn)
        self.bn = bn
        allp = param_dict(self.f.work)
        self.names = select_params(list(allp), params)
        self.theta = {k: allp[k] for k in self.names}
        self.shapes = {k: v.shape for k, v in self.theta.items()}
        self.dim = sum(v.numel() for v in self.theta.values())
        self.dtype = next(iter(self.theta.values())).dtype
        self.device = x.device
        # directions per engine call: their tangents (~3 floats per unit and sample) fit the
        # budget; on a CPU at most 4 (blocks of 2-4 cost 7-25 % less CPU time per direction than
        # single ones for the digits MLP at 64 to 1797 samples, blocks of 8-16 up to 30 % more)
        units = sum(p.shape[0] for p in allp.values() if p.ndim >= 1)
        per_direction = 4.0 * 3 * self.f.n * max(1, units)
        cap = 4 if x.device.type == "cpu" else 64
        max_block = int(max(1, min(cap, memory_mb * 2**20 // per_direction)))
        self.engine = make_engine(self.f, self.names, self.theta, hvp_mode, max_block)
        self.mode = self.engine.mode
        self.n_matvecs = 0

    # flat <-> dict
    def unflat(self, v: torch.Tensor) -> dict[str, torch.Tensor]:
        """``v`` (..., P) -> {name: (..., *shape)} (views)."""
        return unflatten(v, self.shapes, self.names)

    def flat(self, d: dict[str, torch.Tensor], batch: int | None = None) -> torch.Tensor:
        """The inverse of ``unflat``: (P,), or (batch, P) when the tensors have a leading batch dim."""
        return flatten(d, self.names, 0 if batch is None else 1)

    # products
    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """``H v`` for one flat vector v (P,)."""
        return self.matmat(v[None])[0]

    def matmat(self, V: torch.Tensor, chunk: int = 16) -> torch.Tensor:
        """Rows of V (m, P) -> (H v_i)_i (m, P), up to ``chunk`` directions per engine call."""
        V = V.to(device=self.device, dtype=self.dtype)
        step = max(1, min(int(chunk), self.engine.max_block))
        outs = []
        for s in range(0, V.shape[0], step):
            B = V[s : s + step]  # (b, P)
            outs.append(self.flat(self.engine.matmat(self.unflat(B)), B.shape[0]).detach())
            self.n_matvecs += B.shape[0]
        return torch.cat(outs)

    def gradient(self) -> torch.Tensor:
        """The loss gradient at θ (flat, over the selected parameters), from the engine's cached
        backward where it has one."""
        return self.flat(self.engine.gradient()).detach()

    def release(self):
        self.engine.release()


def hvp(model: nn.Module, method, data, v, *, params=None, n_samples: int | None = None,
        seed: int = 0, batch_size: int | None = None, bn: str = "eval") -> dict[str, torch.Tensor]:
    """One Hessian-vector product, forward-over-reverse with ``torch.func``.

    ``v``: a dict name -> tensor (missing names = 0) over the selected ``params``; returns
    ``H v`` as a dict of CPU tensors. The loss is the sample mean over ``data``; ``bn``: see the
    module docstring.
    """
    method, x, y, _ = setup(model, method, data, n_samples, seed, bn=bn)
    if not isinstance(v, dict):
        raise TypeError(
            f"v must be a dict name -> tensor like dict(model.named_parameters()) (missing names = 0), "
            f"got {type(v).__name__}"
        )
    op = HessianOperator(model, method, x, y, params=params, hvp_mode="fwd-rev", batch_size=batch_size, bn=bn)
    vd = check_directions([v], param_dict(model), what="v")[0]
    out = op.unflat(op.matvec(flatten(vd, op.names)))
    return {k: t.detach().cpu() for k, t in out.items()}
