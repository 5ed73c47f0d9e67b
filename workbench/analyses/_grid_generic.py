"""Loss-landscape strategies for any model: ``functional_call`` per grid point.

All three evaluate ``origin + Σ_j c_j d_j`` (and, when buffer directions are given, the buffers
likewise) on a reparametrised copy of the model, in eval mode, block by block over the samples
(the loss is the sample-weighted mean over blocks; accuracy counts are summed):

* ``VmapPoints`` (``"vmap"``): ``torch.func.vmap`` over points, ``K`` points per call sized to
  the memory budget. The default on a GPU.
* ``LoopPoints`` (``"loop"``): one ``functional_call`` per point, all values kept as tensors
  (no ``.item()`` per point, one transfer at the end). The default on a CPU, where a naive
  ``vmap`` measured ~3x slower.
* ``MethodLossLoop`` (``"loop"`` for methods without ``loss_from_outputs``): the method's own
  ``loss(model, batch)`` per point; its scalar logs become metrics.

A batched strategy for general models (issue 13) slots in beside these: a class with
``__init__(problem)``, ``evaluate(coeffs) -> dict`` and ``describe()``, picked in
``_landscape_engine.choose_strategy``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call, vmap

from ._functional import MethodLoss, flatten, functional_copy, unflatten


@dataclass(frozen=True, eq=False)
class GridProblem:
    """What every strategy evaluates: the copy ``work`` in eval mode, the data, the origin and
    directions (dicts name -> tensor), optional buffer directions, the metrics and the budget."""

    work: nn.Module
    method: nn.Module
    lfo: object  # the method's loss_from_outputs, or None
    x: torch.Tensor
    y: torch.Tensor | None
    origin: dict[str, torch.Tensor]
    dirs: list[dict[str, torch.Tensor]]
    buffers: dict[str, torch.Tensor]
    bdirs: list[dict[str, torch.Tensor]] | None
    user_metrics: dict = field(default_factory=dict)
    is_logits: bool = False  # outputs are a classifier's logits (N, C) and integer labels exist
    want_acc: bool = False  # is_logits, and the user's metrics do not define "acc" themselves
    memory: float = 256.0 * 2**20  # bytes
    batch_size: int | None = None
    bn: str = "eval"  # "batch": a block is a batch (BatchNorm on its statistics), never split by memory

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    @property
    def k(self) -> int:
        return len(self.dirs)

    @property
    def device(self) -> torch.device:
        return self.x.device

    @property
    def metric_names(self) -> list[str]:
        return (["acc"] if self.want_acc else []) + list(self.user_metrics)

    def blocks(self, per_sample_bytes: float, fixed_bytes: float = 0.0):
        """(x, y) sample blocks: ``batch_size`` samples, or as many as fit the budget."""
        if self.batch_size is not None:
            b = int(self.batch_size)
        elif self.bn == "batch":
            b = self.n
        else:
            b = int(max(1.0, (self.memory - fixed_bytes)) // max(1.0, per_sample_bytes))
        b = max(1, min(self.n, b))
        for i in range(0, self.n, b):
            yield self.x[i : i + b], (None if self.y is None else self.y[i : i + b])

    def __post_init__(self):
        # origin and directions stacked as rows (k+1, P) when they share a dtype and device: a
        # point's parameters are then one product (1, c) @ rows and views of it, instead of 2k
        # small ops per parameter tensor (the per-point overhead that dominates small grids)
        vals = [*self.origin.values(), *(v for d in self.dirs for v in d.values())]
        names = list(self.origin)
        same = (bool(vals) and all(v.dtype == vals[0].dtype and v.device == vals[0].device for v in vals)
                and all(set(names) <= set(d) for d in self.dirs))
        rows = torch.stack([flatten(d, names) for d in (self.origin, *self.dirs)]) if same else None
        object.__setattr__(self, "_rows", rows)
        object.__setattr__(self, "_shapes", {k: v.shape for k, v in self.origin.items()})

    def point_state(self, c: torch.Tensor) -> dict[str, torch.Tensor]:
        """Parameters (and buffers) at coefficients c (k,), built from the origin."""
        if self._rows is not None:
            c1 = torch.cat([torch.ones_like(c[:1]), c]).to(self._rows.dtype)  # (k+1,)
            state = unflatten(c1 @ self._rows, self._shapes, list(self._shapes))
        else:
            state = {}
            for name, v in self.origin.items():
                for j in range(self.k):
                    v = v + c[j] * self.dirs[j][name]
                state[name] = v
        bufs = dict(self.buffers)
        if self.bdirs is not None:
            for name, b in self.buffers.items():
                if b.is_floating_point():
                    v = b
                    for j in range(self.k):
                        if name in self.bdirs[j]:
                            v = v + c[j] * self.bdirs[j][name]
                    bufs[name] = v
        state.update(bufs)
        return state

    def activation_floats(self) -> float:
        """Floats of activations per sample (summed over leaf modules, from a 4-sample probe)."""
        total = [0]

        def hook(_m, _i, o):
            if isinstance(o, torch.Tensor):
                total[0] += o.numel()

        hooks = [m.register_forward_hook(hook) for m in self.work.modules() if len(list(m.children())) == 0]
        try:
            with torch.no_grad():
                functional_call(self.work, {**self.origin, **self.buffers}, (self.x[:4],))
        finally:
            for h in hooks:
                h.remove()
        return max(1.0, total[0] / min(4, self.n)) + self.x[0].numel()

    def coefficients(self, coeffs: torch.Tensor) -> torch.Tensor:
        """(G, k) float64 CPU -> the parameters' device and dtype."""
        return coeffs.to(self.device, next(iter(self.origin.values())).dtype)


class _OutputPoints:
    """Shared by ``VmapPoints`` and ``LoopPoints``: the per-point loss and metrics from the
    model's outputs, accumulated over sample blocks. Subclasses say how a block of points runs."""

    def __init__(self, pb: GridProblem):
        self.pb = pb
        self.timings: dict[str, float] = {}
        self.chosen = self.name

    def describe(self) -> str:
        return self.chosen

    def _point(self, c, xb, yb):
        return self.values(functional_call(self.pb.work, self.pb.point_state(c), (xb,)), yb)

    def extra_floats(self) -> float:
        """Floats per sample a strategy keeps beside the activations (none here)."""
        return 0.0

    def values(self, out, yb):
        """(1 + metrics,) from one point's outputs: the loss, the correct count, user metrics."""
        pb = self.pb
        vals = [pb.lfo(out, yb)]
        if pb.want_acc:
            vals.append((out.argmax(-1) == yb).sum().to(out.dtype))
        for f in pb.user_metrics.values():
            vals.append(torch.as_tensor(f(out, yb)).to(out.dtype))
        return torch.stack(vals)

    def evaluate(self, coeffs: torch.Tensor) -> dict[str, torch.Tensor]:
        pb = self.pb
        G = coeffs.shape[0]
        per_sample = 4.0 * (pb.activation_floats() * 2 + self.extra_floats())
        n_params = sum(v.numel() for v in pb.origin.values())
        # one point's activations for a block must fit; vmap multiplies by K
        blocks = list(pb.blocks(per_sample, 4.0 * n_params * (pb.k + 2)))
        names = ["loss", *pb.metric_names]
        totals = {n: torch.zeros(G, dtype=torch.float64, device=pb.device) for n in names}
        cdev = pb.coefficients(coeffs)
        for xb, yb in blocks:
            nb = xb.shape[0]
            res = self._block(cdev, xb, yb, per_sample * nb + 4.0 * n_params)  # (G, 1 + metrics)
            for i, name in enumerate(names):
                totals[name] += res[:, i].double() * (1.0 if name == "acc" else nb / pb.n)
        if "acc" in totals:
            totals["acc"] /= pb.n
        return totals


class VmapPoints(_OutputPoints):
    """``vmap`` over K grid points per call, K sized to the memory budget."""

    name = "vmap"

    def _block(self, cdev, xb, yb, per_point_bytes):
        G = cdev.shape[0]
        K = int(max(1, min(G, self.pb.memory // max(1.0, per_point_bytes))))
        self.chosen = f"vmap (K={K})"
        f = vmap(self._point, in_dims=(0, None, None))
        return torch.cat([f(cdev[s : s + K], xb, yb) for s in range(0, G, K)])


class LoopPoints(_OutputPoints):
    """One ``functional_call`` per grid point."""

    name = "loop"

    def _block(self, cdev, xb, yb, per_point_bytes):
        return torch.stack([self._point(cdev[g], xb, yb) for g in range(cdev.shape[0])])


class MethodLossLoop:
    """The method's ``loss(model, batch)`` per grid point on the reparametrised copy (for methods
    without ``loss_from_outputs``); scalar logs become metrics."""

    name = "loop"

    def __init__(self, pb: GridProblem):
        self.pb = pb
        self.wrapper = MethodLoss(pb.work, functional_copy(pb.method))
        self.timings: dict[str, float] = {}

    def describe(self) -> str:
        return self.name

    def _point_values(self, c, xb, yb) -> dict[str, torch.Tensor]:
        pb = self.pb
        state = pb.point_state(c)
        loss, logs = functional_call(self.wrapper, {f"model.{k}": v for k, v in state.items()}, (xb, yb))
        vals = {"loss": loss}
        for k, v in logs.items():
            if isinstance(v, (int, float)) or (isinstance(v, torch.Tensor) and v.numel() == 1):
                vals[k] = torch.as_tensor(v, device=pb.device, dtype=torch.float64).reshape(())
        if pb.user_metrics:
            out = functional_call(pb.work, state, (xb,))
            for name, f in pb.user_metrics.items():
                vals[name] = torch.as_tensor(f(out, yb))
        return vals

    def evaluate(self, coeffs: torch.Tensor) -> dict[str, torch.Tensor]:
        pb = self.pb
        blocks = list(pb.blocks(4.0 * pb.activation_floats() * 4))
        cdev = pb.coefficients(coeffs)
        sums: dict[str, torch.Tensor] = {}
        counts = torch.zeros((), dtype=torch.float64)
        for xb, yb in blocks:
            nb = xb.shape[0]
            rows = [self._point_values(cdev[g], xb, yb) for g in range(cdev.shape[0])]
            for key in rows[0]:
                col = torch.stack([r[key].double().reshape(()) for r in rows]) * nb
                sums[key] = sums.get(key, 0) + col
            counts += nb
        return {k: v / counts for k, v in sums.items()}
