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
  one double backward per direction (batching them with ``is_grads_batched`` was slower per
  direction on this project's CPU).
* ``ChainROperator`` (``"chain"``, ``chain_rop.py``): the R-operator written out for chains of
  Linear layers and element-wise activations; the cheapest where it applies.

Measured with ``benchmarks/bench_hessian.py`` on this project's shared 2-core CPU (one thread,
load average 1.5-1.8) for the 26k-parameter digits MLP on 1438 samples, one product (medians):
chain 5.2-5.3 ms, cached 5.9-6.4 ms, fwd-rev 11.9-12.9 ms; PyHessian's product on its cached
graph 5.7-6.0 ms. All are matrix-product bound (the same ~245k·N FLOPs for this MLP, ~3.5 ms at
this CPU's ~98 GFLOP/s); the chain route saves autograd's overhead, not arithmetic.
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
    """Double backward through one gradient graph, built here (a forward and a backward)."""

    mode = "cached"
    max_block = 1 << 30  # any number of directions; they run one after another

    def __init__(self, f: LossFunction, theta: dict[str, torch.Tensor]):
        self.leaves = {k: v.detach().clone().requires_grad_(True) for k, v in theta.items()}
        with torch.enable_grad():
            loss = f(self.leaves)
            self.grads = torch.autograd.grad(loss, list(self.leaves.values()), create_graph=True)

    def matmat(self, V: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.grads is None:
            raise RuntimeError("this engine was released; build a new HessianOperator")
        b = next(iter(V.values())).shape[0]
        names, leaves = list(self.leaves), list(self.leaves.values())
        rows = []
        with torch.enable_grad():
            for j in range(b):
                rows.append(torch.autograd.grad(self.grads, leaves, [V[k][j] for k in names], retain_graph=True))
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
        return CachedDoubleBackward(f, theta)
    return ForwardOverReverse(f, theta)
