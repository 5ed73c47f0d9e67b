"""The evaluator behind loss landscapes: loss (and metrics) at ``origin + Σ_j c_j d_j`` for every
row ``c`` of a coefficient matrix, without touching the user's model.

``GridEvaluator`` checks its inputs, builds the problem (a copy of the model in eval mode, the
data, origin, directions, metrics) and hands it to one strategy, picked by ``choose_strategy``:

==================  ========================================================================
``ChainLoop``       ``"mlp-loop"``: chain models (``_grid_chain.py``), one point at a time,
                    split over threads on a multi-threaded CPU
``ChainBatched``    ``"mlp-batched"``: chain models, K points per batched call (K tuned on
                    the first points on an accelerator)
``FoldedPoints``    ``"fold"``: any model with a lever: eval-mode BatchNorm folded into the
                    conv/linear layer before it per point, activations in place on fresh layer
                    outputs, and for wide convolutions channels-last and the first convolution
                    on precomputed patches (``_grid_folded.py``); checked against the plain
                    forward when built. The default on a CPU when a lever applies
``VmapPoints``      ``"vmap"``: any model, ``vmap`` over K points (``_grid_generic.py``)
``LoopPoints``      ``"loop"``: any model, one ``functional_call`` per point
``MethodLossLoop``  ``"loop"`` for methods without ``loss_from_outputs``: ``method.loss`` per point
==================  ========================================================================

Every strategy computes each point from the origin (no in-place walk, so no drift), in eval
mode on a copy; the loss is the sample-weighted mean over sample blocks. BatchNorm layers use
their running statistics (``bn="eval"``) or the statistics of each sample block (``bn="batch"``,
``_functional.BatchStatistics``; the blocks are then the batches and never split by memory).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call

from ._chain import model_chain
from ._checks import check_choice, check_int, check_labels, check_number
from ._functional import (
    MethodLoss,
    buffer_dict,
    check_batch_blocks,
    check_bn,
    check_method,
    functional_copy,
    outputs_at,
    outputs_loss,
    param_dict,
)
from ._grid_chain import ChainBatched, ChainLoop
from ._grid_folded import FoldedPoints, folded_model
from ._grid_generic import GridProblem, LoopPoints, MethodLossLoop, VmapPoints

EVALUATORS = ("auto", "mlp", "mlp-loop", "mlp-batched", "fold", "vmap", "loop")
_CHAIN_EVALUATORS = ("mlp", "mlp-loop", "mlp-batched")


def usable_chain(pb: GridProblem):
    """(the model's chain or None, a note): a chain only without buffer directions and when it
    reproduces the model's own forward at the origin."""
    chain = model_chain(pb.work) if pb.bdirs is None else None
    if chain is not None and not chain.matches(pb.work, {**pb.origin, **pb.buffers}, pb.x[:16]):
        return None, "the model's forward differs from its layer chain; generic evaluator used"
    return chain, ""


def choose_strategy(pb: GridProblem, requested: str):
    """(strategy, note) for ``evaluator=requested``; the rules, in order."""
    cpu = pb.device.type == "cpu"
    if pb.lfo is None:  # only the method's own loss: one call per point
        if requested not in ("auto", "loop"):
            raise ValueError(_NEEDS_LFO.format(requested, type(pb.method).__name__))
        return MethodLossLoop(pb), "method.loss per point (the method has no loss_from_outputs)"
    chain, note = usable_chain(pb) if requested in ("auto", *_CHAIN_EVALUATORS) else (None, "")
    if chain is None and requested in _CHAIN_EVALUATORS:
        raise ValueError(_NEEDS_CHAIN.format(requested))
    if chain is not None and requested == "mlp-batched":
        return ChainBatched(pb, chain, k=8 if cpu else 64), note
    if chain is not None:  # auto / mlp / mlp-loop: the per-point loop measured fastest on CPUs
        return (ChainLoop(pb, chain) if cpu or requested == "mlp-loop" else ChainBatched(pb, chain)), note
    if requested == "vmap" or (requested == "auto" and not cpu):
        return VmapPoints(pb), note
    fm, why = folded_model(pb) if requested in ("auto", "fold") else (None, "")
    if fm is not None:  # BatchNorm folded / channels-last / patches: x1.1-1.7 over the loop (CPU)
        return FoldedPoints(pb, fm), "; ".join(t for t in (note, why) if t)
    return LoopPoints(pb), (why if requested == "fold" else note)


_NEEDS_LFO = ("evaluator={!r} needs a method with loss_from_outputs(outputs, y); {} has none, so its "
              "loss(model, batch) is called once per point: pass evaluator='loop' (or 'auto')")
_NEEDS_CHAIN = ("evaluator={!r} needs a chain of Linear layers and element-wise activations (wb.models.MLP "
                "without norm layers, or such an nn.Sequential), without buffer directions; pass "
                "evaluator='auto', 'vmap' or 'loop'")


class GridEvaluator:
    """Loss and metrics at ``origin + C @ directions`` for a coefficient matrix ``C`` (G, k).

    ``metrics``: dict name -> ``fn(outputs, y) -> 0-d tensor`` (a mean over the samples); the
    accuracy ``"acc"`` is added for classifiers' logits when labels exist. ``buffer_directions``
    (generic strategies only) moves floating-point buffers along with the parameters (used to
    interpolate BatchNorm statistics between two models). ``bn``: ``"eval"`` (running statistics)
    or ``"batch"`` (each sample block's own statistics; the blocks are then ``batch_size``
    samples, or all of them, never split by ``memory_mb``). ``name``: the strategy that ran (and
    why, when it is not the requested one); ``timings``: the tuner's seconds per point, if any.
    """

    def __init__(
        self,
        model: nn.Module,
        method,
        x: torch.Tensor,
        y: torch.Tensor | None,
        directions: list[dict[str, torch.Tensor]],
        *,
        origin: dict[str, torch.Tensor] | None = None,
        buffer_origin: dict[str, torch.Tensor] | None = None,
        buffer_directions: list[dict[str, torch.Tensor]] | None = None,
        metrics: dict[str, Callable] | None = None,
        evaluator: str = "auto",
        memory_mb: float = 256.0,
        batch_size: int | None = None,
        bn: str = "eval",
    ):
        check_choice(evaluator, "evaluator", EVALUATORS)
        check_bn(bn)
        memory_mb = check_number(memory_mb, "memory_mb")
        batch_size = check_int(batch_size, "batch_size", none="as many samples as fit memory_mb")
        if metrics is not None and not isinstance(metrics, dict):
            raise TypeError(f"metrics must be a dict name -> fn(outputs, y), got {type(metrics).__name__}")
        for k_, f in (metrics or {}).items():
            if not callable(f):
                raise TypeError(f"metrics[{k_!r}] must be a function (outputs, y) -> scalar tensor")
        self.method = check_method(method)
        self.work = functional_copy(model, bn)
        self.x, self.y = x, y
        check_batch_blocks(self.work, int(x.shape[0]), batch_size or int(x.shape[0]), bn)
        lfo = outputs_loss(self.method)
        origin = param_dict(self.work) if origin is None else origin
        buffers = {**buffer_dict(self.work), **(buffer_origin or {})}
        out = outputs_at(self.work, {**origin, **buffers}, x) if lfo is not None else None
        check_labels(self.method, y, out, reads_outputs=lfo is not None)
        is_logits = (out is not None and y is not None and out.ndim == 2 and out.shape[1] > 1
                     and y.dtype in (torch.int64, torch.int32))
        self.problem = GridProblem(
            work=self.work, method=self.method, lfo=lfo, x=x, y=y, origin=origin, dirs=list(directions),
            buffers=buffers, bdirs=buffer_directions, user_metrics=dict(metrics or {}), is_logits=bool(is_logits),
            want_acc=bool(is_logits and "acc" not in (metrics or {})), memory=memory_mb * 2**20,
            batch_size=batch_size, bn=bn,
        )
        self.strategy, self.note = choose_strategy(self.problem, evaluator)

    @property
    def k(self) -> int:
        return self.problem.k

    @property
    def name(self) -> str:
        return self.strategy.describe() + (f" ({self.note})" if self.note else "")

    @property
    def timings(self) -> dict[str, float]:
        return dict(self.strategy.timings)

    def __call__(self, coeffs: torch.Tensor) -> dict[str, torch.Tensor]:
        """coeffs: (G, k) -> {"loss": (G,), metric: (G,)} as float32 CPU tensors."""
        coeffs = torch.as_tensor(coeffs, dtype=torch.float64)
        if coeffs.ndim != 2 or coeffs.shape[1] != self.k:
            raise ValueError(f"coefficients must have shape (G, {self.k}), got {tuple(coeffs.shape)}")
        with torch.no_grad():
            out = self.strategy.evaluate(coeffs)
        return {k: v.detach().float().cpu() for k, v in out.items()}


# ----------------------------------------------------------------------------- explicit points
def evaluate_states(model, method, x, y, states: list[dict[str, torch.Tensor]], *, batch_size: int | None = None,
                    bn: str = "eval"):
    """Loss (and accuracy for logits) of the model at full state dicts (parameters and,
    where present, buffers): e.g. the snapshots of a fit. Returns {"loss": (S,), "acc": (S,)}.
    ``batch_size`` samples per forward (None: all at once); ``bn`` as for ``GridEvaluator``."""
    method = check_method(method)
    work = functional_copy(model, bn)
    base = {**param_dict(work), **buffer_dict(work)}
    lfo = outputs_loss(method)
    n = x.shape[0]
    bs = n if batch_size is None else max(1, min(n, batch_size))
    wrapper = None if lfo is not None else MethodLoss(work, functional_copy(method))
    losses, accs = [], []
    with torch.no_grad():
        for st in states:
            state = dict(base)
            for k, v in st.items():
                if k in state:
                    state[k] = v.to(device=state[k].device, dtype=state[k].dtype)
            tot = torch.zeros((), dtype=torch.float64, device=x.device)
            correct = torch.zeros((), dtype=torch.float64, device=x.device)
            have_acc = False
            for i in range(0, n, bs):
                xb = x[i : i + bs]
                yb = None if y is None else y[i : i + bs]
                if lfo is not None:
                    out = functional_call(work, state, (xb,))
                    tot += lfo(out, yb).double() * xb.shape[0]
                else:
                    l_, _ = functional_call(wrapper, {f"model.{k}": v for k, v in state.items()}, (xb, yb))
                    tot += l_.double() * xb.shape[0]
                    out = functional_call(work, state, (xb,))
                if yb is not None and out.ndim == 2 and out.shape[1] > 1:
                    correct += (out.argmax(1) == yb).sum()
                    have_acc = True
            losses.append(tot / n)
            accs.append(correct / n if have_acc else torch.full((), float("nan"), dtype=torch.float64))
    return {"loss": torch.stack(losses).float().cpu(), "acc": torch.stack(accs).float().cpu()}
