"""Hessian-vector product engines, and the one factory that picks among them.

Every engine computes ``H V`` for the Hessian of the sample-mean loss ``f`` (a
``LossFunction``) with respect to the selected parameters ``names`` at θ, for ``b`` directions
at a time: ``matmat(V)`` with ``V[name]`` of shape ``(b, *param.shape)`` returns the same
shapes; ``gradient()`` returns the loss gradient at θ; ``max_block`` is how many directions one
call takes at once (the operator splits larger requests); ``release()`` drops cached state.

* ``ForwardOverReverse`` (``"fwd-rev"``): ``H v = jvp(grad(f), (θ,), (v,))`` with ``torch.func``
  (Pearlmutter 1994): no graph is kept between products, works over sample blocks; several
  directions go through one ``vmap`` call.
* ``CachedDoubleBackward`` (``"cached"``): reverse-over-reverse through a gradient graph built
  once with ``torch.autograd.grad(create_graph=True)`` (never into ``.grad``, so nothing leaks);
  one double backward per direction on a CPU; on an accelerator a block of directions goes
  through one batched backward (``is_grads_batched``), where one backward per direction is
  launch-bound (not measured here: no GPU was available).
* ``ChainROperator`` (``"chain"``, ``chain_rop.py``): the R-operator written out for chains of
  Linear layers and element-wise activations; the cheapest where it applies.

Measured with ``benchmarks/bench_hessian.py`` on this project's shared 2-core CPU (one thread,
load average 1.5-1.8) for the 26k-parameter digits MLP on 1438 samples, one product (medians):
chain 5.2-5.3 ms, cached 5.9-6.4 ms, fwd-rev 11.9-12.9 ms; PyHessian's product on its cached
graph 5.7-6.0 ms. All are matrix-product bound (the same ~245k·N FLOPs for this MLP, ~3.5 ms at
this CPU's ~98 GFLOP/s); the chain route saves autograd's overhead, not arithmetic.

Blocks of directions on general models (``bench_hessian.py --blocks``: ConvNet(norm="batch"),
the ResNet- and ViT-style nets of ``tests/zoo.py``, 256 digits, one thread, CPU ms per direction,
load average ~14): forward-over-reverse falls from 84 / 47 / 64 (one direction per call) to
55 / 25 / 32 with blocks of 4 (blocks of 8: no better), but the cached double backward costs
47 / 24 / 28 one direction at a time, and batching it (``is_grads_batched``) changed that by
under 10 %. So on a CPU: cached for one sample block, forward-over-reverse in blocks of up to 4
(``HessianOperator``'s cap) when the data needs several blocks; trace probes and the SLQ runs of
``spectral_density`` (``lanczos_runs``) are handed over in blocks either way.

Attention runs on PyTorch's math kernel here (``_functional.math_attention``): the fused
scaled-dot-product kernels have no forward-mode derivative and no double backward.
"""

from __future__ import annotations

import torch
from torch.func import grad, jvp, vmap

from .._chain import model_chain
from .._functional import LossFunction
from .chain_rop import ChainROperator

HVP_MODES = ("auto", "chain", "cached", "fwd-rev")


class ForwardOverReverse:
    """``jvp(grad(f))`` per direction; ``vmap`` over a block of directions where it works (the
    caller's ``chunk`` sets the block)."""

    mode = "fwd-rev"

    def __init__(self, f: LossFunction, theta: dict[str, torch.Tensor], max_block: int = 1 << 30):
        self.f, self.theta, self.max_block = f, theta, max_block
        self.vmap_ok = True  # set to False after the first block that vmap cannot batch

    def _one(self, vd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return jvp(grad(self.f), (self.theta,), (vd,))[1]

    def matmat(self, V: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        b = next(iter(V.values())).shape[0]
        if b > 1 and self.vmap_ok:
            try:
                return vmap(self._one)(V)
            except RuntimeError:  # an op without a batching rule: one product at a time
                self.vmap_ok = False
        rows = [self._one({k: v[j] for k, v in V.items()}) for j in range(b)]
        return {k: torch.stack([r[k] for r in rows]) for k in V}

    def gradient(self) -> dict[str, torch.Tensor]:
        return grad(self.f)(self.theta)

    def release(self):
        pass


class CachedDoubleBackward:
    """Double backward through one gradient graph, built here (a forward and a backward).
    ``batched=True`` runs a block of directions through one batched backward
    (``is_grads_batched``, a ``vmap`` over the graph) instead of one backward each."""

    mode = "cached"
    max_block = 1 << 30  # any number of directions

    def __init__(self, f: LossFunction, theta: dict[str, torch.Tensor], batched: bool = False):
        self.leaves = {k: v.detach().clone().requires_grad_(True) for k, v in theta.items()}
        self.batched = batched
        with torch.enable_grad():
            loss = f(self.leaves)
            self.grads = torch.autograd.grad(loss, list(self.leaves.values()), create_graph=True)

    def matmat(self, V: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.grads is None:
            raise RuntimeError("this engine was released; build a new HessianOperator")
        b = next(iter(V.values())).shape[0]
        names, leaves = list(self.leaves), list(self.leaves.values())
        with torch.enable_grad():
            if b > 1 and self.batched:
                try:
                    out = torch.autograd.grad(self.grads, leaves, [V[k] for k in names], retain_graph=True,
                                              is_grads_batched=True)
                    return {k: t.detach() for k, t in zip(names, out)}
                except RuntimeError:  # an op without a batching rule: one backward per direction
                    self.batched = False
            rows = [torch.autograd.grad(self.grads, leaves, [V[k][j] for k in names], retain_graph=True)
                    for j in range(b)]
        return {k: torch.stack([r[i] for r in rows]).detach() for i, k in enumerate(names)}

    def gradient(self) -> dict[str, torch.Tensor]:
        return {k: g.detach() for k, g in zip(self.leaves, self.grads)}

    def release(self):
        self.grads = None


def make_engine(f: LossFunction, names: list[str], theta: dict[str, torch.Tensor], hvp_mode: str,
                max_block: int):
    """The HVP engine for ``hvp_mode``. ``"auto"``: the chain R-operator when the model is a
    chain whose forward it reproduces, the method has ``loss_from_outputs`` and the data is one
    block; else the cached double backward for one block; else forward-over-reverse."""
    one_block = f.batch_size >= f.n
    if hvp_mode in ("auto", "chain"):
        chain = model_chain(f.work) if one_block and f.lfo is not None else None
        if chain is not None and chain.matches(f.work, f.fixed, f.x[:16]):
            return ChainROperator(chain, f.fixed, f.method, f.lfo, f.x, f.y, names, max_block)
        if hvp_mode == "chain":
            raise ValueError(
                "hvp_mode='chain' needs a chain of Linear layers and element-wise activations "
                "(wb.models.MLP without norm layers), a method with loss_from_outputs and data in "
                "one block; use hvp_mode='auto', 'cached' or 'fwd-rev'"
            )
    if hvp_mode == "cached" or (hvp_mode == "auto" and one_block):
        return CachedDoubleBackward(f, theta, batched=f.x.device.type != "cpu")
    return ForwardOverReverse(f, theta)
