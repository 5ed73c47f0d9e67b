"""A model as a chain of typed ops, shared by the landscape evaluator and the curvature R-operator.

Many small classifiers are a plain chain ``x -> flatten -> Linear -> σ -> Linear -> ... ->
logits`` (``wb.models.MLP`` without normalisation layers, or an ``nn.Sequential`` of Linear,
element-wise activations, Dropout and Flatten). For such a chain two analyses have fast exact
routes: loss landscapes evaluate many weight vectors with a handful of matrix products per
point, and Hessian-vector products run Pearlmutter's R-operator written out layer by layer.
Both read the chain described here:

* ``Flatten``: ``(N, *shape) -> (N, F)``;
* ``Linear(weight, bias)``: the names of the layer's parameters in ``named_parameters()``
  (``weight`` (out, in), ``bias`` (out,) or None);
* ``Activation``: an element-wise function with its in-place form (for evaluation), whether it
  is piecewise linear (second derivative zero almost everywhere: ReLU, LeakyReLU, identity) and
  its first derivative where it is cheap to write down.

``model_chain(module)`` returns the ``Chain`` or None; ``Chain.matches`` checks it against the
module's own forward (a model may override ``forward``), and callers fall back to a generic route
when it does not match. Dropout is the identity here: analyses evaluate in eval mode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

__all__ = ["Flatten", "Linear", "Activation", "Chain", "model_chain", "activation_derivatives"]


@dataclass(frozen=True)
class Flatten:
    """``(N, *shape) -> (N, F)`` (``nn.Flatten()`` with its default dims, or MLP's own flatten)."""


@dataclass(frozen=True)
class Linear:
    """``h -> h Wᵀ + b``; ``weight``/``bias`` are parameter names (``bias`` None when absent)."""

    weight: str
    bias: str | None


@dataclass(frozen=True)
class Activation:
    """An element-wise ``σ``: ``fn`` (pure), ``fn_`` (in place, for evaluation), ``piecewise_linear``
    (σ'' = 0 almost everywhere), ``d1`` (σ' as a function of the pre-activation, or None: then
    ``activation_derivatives`` differentiates ``fn``)."""

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    fn_: Callable[[torch.Tensor], torch.Tensor]
    piecewise_linear: bool
    d1: Callable[[torch.Tensor], torch.Tensor] | None = None


Op = Flatten | Linear | Activation


def _relu_d1(a):
    return (a > 0).to(a.dtype)


def _tanh_d1(a):
    return 1 - torch.tanh(a) ** 2


def _sigmoid_d1(a):
    s = torch.sigmoid(a)
    return s * (1 - s)


def _ones(a):
    return torch.ones_like(a)


def _identity(h):
    return h


def _activation(mod: nn.Module) -> Activation | None:
    """The typed op for an element-wise activation module, or None for anything else."""
    if isinstance(mod, nn.ReLU):
        return Activation("relu", F.relu, torch.relu_, True, _relu_d1)
    if isinstance(mod, nn.LeakyReLU):
        s = mod.negative_slope
        return Activation(
            "leaky_relu", lambda h: F.leaky_relu(h, s), lambda h: F.leaky_relu_(h, s), True,
            lambda a: torch.where(a > 0, torch.ones_like(a), torch.full_like(a, s)),
        )
    if isinstance(mod, nn.GELU):
        ap = mod.approximate
        f = lambda h: F.gelu(h, approximate=ap)  # noqa: E731
        return Activation("gelu", f, f, False)
    if isinstance(mod, nn.SiLU):
        return Activation("silu", F.silu, lambda h: F.silu(h, inplace=True), False)
    if isinstance(mod, nn.Tanh):
        return Activation("tanh", torch.tanh, torch.tanh_, False, _tanh_d1)
    if isinstance(mod, nn.Sigmoid):
        return Activation("sigmoid", torch.sigmoid, torch.sigmoid_, False, _sigmoid_d1)
    if isinstance(mod, (nn.Identity, nn.Dropout)):
        return Activation("identity", _identity, _identity, True, _ones)
    return None


def activation_derivatives(act: Activation, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(σ'(a), σ''(a))`` element-wise at the pre-activation ``a`` (σ'' None when piecewise
    linear). Where no closed form is given, by autograd on ``fn`` (the Jacobian of an element-wise
    function is diagonal, so the gradient of the sum is σ', and the gradient of σ'(a)'s sum σ'')."""
    if act.piecewise_linear:
        return act.d1(a), None
    with torch.enable_grad():
        t = a.detach().requires_grad_(True)
        if act.d1 is not None:
            s1 = act.d1(t)
        else:
            (s1,) = torch.autograd.grad(act.fn(t).sum(), t, create_graph=True)
        (s2,) = torch.autograd.grad(s1.sum(), t)
    return s1.detach(), s2.detach()


@dataclass(frozen=True)
class Chain:
    """The ops of a chain model in order; ``linears`` are its ``Linear`` ops."""

    ops: tuple[Op, ...]

    @property
    def linears(self) -> tuple[Linear, ...]:
        return tuple(op for op in self.ops if isinstance(op, Linear))

    def forward(self, state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """The chain's output for parameters ``state`` (a plain forward, no in-place ops)."""
        h = x
        for op in self.ops:
            if isinstance(op, Flatten):
                h = h.reshape(h.shape[0], -1)
            elif isinstance(op, Linear):
                h = F.linear(h, state[op.weight], None if op.bias is None else state[op.bias])
            else:
                h = op.fn(h)
        return h

    def matches(self, work: nn.Module, state: dict[str, torch.Tensor], xb: torch.Tensor) -> bool:
        """Whether the chain gives ``work``'s own output on ``xb`` (parameters and buffers ``state``)."""
        with torch.no_grad():
            ref = functional_call(work, state, (xb,))
            h = self.forward(state, xb)
        return isinstance(ref, torch.Tensor) and h.shape == ref.shape and torch.allclose(h, ref, rtol=1e-4, atol=1e-5)


class _NotChain(Exception):
    pass


def model_chain(work: nn.Module) -> Chain | None:
    """The model as a ``Chain``, or None when it is not a chain of Linear layers and element-wise
    activations (callers then check ``Chain.matches`` against the model's forward)."""
    from ..models import MLP

    names = {id(m): n for n, m in work.named_modules()}
    if isinstance(work, MLP):
        mods = [Flatten(), *list(work.body), work.fc]
    elif isinstance(work, nn.Sequential):
        mods = list(work)
    else:
        return None
    ops: list[Op] = []

    def add(m):
        if isinstance(m, Flatten):
            ops.append(m)
        elif isinstance(m, nn.Sequential):
            for c in m:
                add(c)
        elif isinstance(m, nn.Linear):
            n = names[id(m)]
            ops.append(Linear(f"{n}.weight", None if m.bias is None else f"{n}.bias"))
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise _NotChain
            ops.append(Flatten())
        else:
            act = _activation(m)
            if act is None:
                raise _NotChain
            ops.append(act)

    try:
        for m in mods:
            add(m)
    except _NotChain:
        return None
    if not any(isinstance(op, Linear) for op in ops):
        return None
    return Chain(tuple(ops))
