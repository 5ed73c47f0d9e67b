"""Exact Hessian-vector products for chain models: Pearlmutter's R-operator written out.

Pearlmutter, "Fast exact multiplication by the Hessian" (Neural Computation 1994). For a chain
of Linear layers and element-wise activations (``_chain.Chain``: ``wb.models.MLP`` without norm
layers, or such an ``nn.Sequential``) and a loss of the outputs ``L(z)``, the product ``H v``
is the derivative of the gradient along ``v``: run the forward and the backward pass once at θ,
keep what they computed, then push the tangent ``R{·} = d/dt (·)(θ + t v)|₀`` through both.

At θ (``__init__``), per ``Linear`` layer ``a = u Wᵀ + b``: its input ``u``; per activation
``h = σ(a)``: ``σ'(a)`` and, unless σ is piecewise linear, ``σ''(a)``; the backward's ``δ`` at
every op's output (δ = ∂L/∂output); the loss's Hessian in output space (``OutputHessian``).

A product (``matmat``), with ``V`` = the direction's weights (``Vw``, ``Vb``) per layer:

* tangent forward, layer by layer: ``R{a} = R{u} Wᵀ + u Vwᵀ + Vb`` and ``R{h} = σ'(a) ⊙ R{a}``;
* at the outputs: ``R{δ_z} = ∇²L(z) R{z}``;
* tangent backward: ``(H v)_W = R{δ}ᵀ u + δᵀ R{u}``, ``(H v)_b = Σ_n R{δ}``,
  ``R{δ_u} = R{δ} W + δ Vw`` and ``R{δ_a} = σ'(a) ⊙ R{δ_h} + σ''(a) ⊙ δ_h ⊙ R{a}``.

That is six matrix products per hidden layer (two in the first layer, whose input has no
tangent), no autograd graph. ``matmat`` takes ``b`` directions at once: tangents are kept as
``(N, b, F)``, so the products with the shared ``u``, ``δ``, ``W`` become single wider matrix
products. Exact (tested against ``torch.func.hessian``).

The output-space Hessian ``∇²L(z)`` (``output_hessian``): when the method declares its loss as
softmax cross-entropy on logits (``loss_form``, any label smoothing) the closed form
``(diag p_n - p_n p_nᵀ) / N`` per sample, applied without forming it; else, when the loss is a
mean of per-sample terms (checked on a random vector), the ``(N, C, C)`` per-sample blocks from
``torch.func.hessian``; else ``torch.func`` forward-over-reverse on the outputs per product.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import grad, hessian, jvp, vmap

from ...methods.base import CrossEntropyOnLogits
from .._chain import Activation, Chain, Flatten, Linear, activation_derivatives
from .._functional import declared_loss_form


# ============================================================================ output Hessians
class SoftmaxCrossEntropyHessian:
    """∇²L(z) for the mean softmax cross-entropy: ``(p ⊙ r - p (pᵀ r)) / N`` (label smoothing
    only adds terms linear in z, so it does not change the Hessian)."""

    kind = "softmax cross-entropy (closed form)"

    def __init__(self, z: torch.Tensor):
        self.p = z.softmax(1)[:, None, :]  # (N, 1, C)
        self.n = z.shape[0]

    def __call__(self, rz: torch.Tensor) -> torch.Tensor:  # (N, b, C) -> (N, b, C)
        p = self.p
        return (p * rz - p * (p * rz).sum(2, keepdim=True)) / self.n


class PerSampleHessian:
    """∇²L(z) as per-sample ``(C, C)`` blocks ``A`` (N, C, C), for losses that are a mean of
    per-sample terms."""

    kind = "per-sample blocks"

    def __init__(self, blocks: torch.Tensor):
        self.A = blocks  # (N, C, C)

    def __call__(self, rz: torch.Tensor) -> torch.Tensor:  # (N, b, C) -> (N, b, C)
        return torch.einsum("ncd,nbd->nbc", self.A, rz)


class AutodiffOutputHessian:
    """∇²L(z) r by ``torch.func`` forward-over-reverse on the outputs (any loss of the outputs)."""

    kind = "torch.func on the outputs"

    def __init__(self, lfo, z: torch.Tensor, y):
        self.lfo, self.z, self.y = lfo, z, y

    def _one(self, r):  # (N, C) -> (N, C)
        return jvp(lambda zz: grad(lambda q: self.lfo(q, self.y))(zz), (self.z,), (r,))[1]

    def __call__(self, rz: torch.Tensor) -> torch.Tensor:  # (N, b, C) -> (N, b, C)
        return torch.stack([self._one(rz[:, j]) for j in range(rz.shape[1])], 1)


def _per_sample_blocks(lfo, z, y):
    """(N, C, C) blocks if the loss is a mean of per-sample terms (checked), else None."""
    if y is None or z.shape[1] > 64:
        return None
    try:
        A = vmap(lambda zi, yi: hessian(lambda q: lfo(q[None], yi[None]))(zi))(z, y) / z.shape[0]
    except Exception:  # a loss that vmap cannot batch per sample
        return None
    r = torch.randn(z.shape, generator=torch.Generator().manual_seed(0)).to(z)
    ref = AutodiffOutputHessian(lfo, z, y)._one(r)
    got = torch.bmm(A, r[:, :, None])[:, :, 0]
    if not torch.allclose(got, ref, rtol=1e-4, atol=1e-6 * float(ref.abs().max()) + 1e-12):
        return None  # not separable over samples
    return A


def output_hessian(method, lfo, z: torch.Tensor, y, loss_at_z: torch.Tensor):
    """The cheapest exact form of ∇²L(z) (rules in the module docstring); ``loss_at_z`` is
    ``lfo(z, y)``, against which a declared form is checked before it is trusted."""
    form = declared_loss_form(method)
    if isinstance(form, CrossEntropyOnLogits) and z.ndim == 2 and y is not None:
        if torch.allclose(form.batched(z, y), loss_at_z, rtol=1e-5, atol=1e-6):  # the declaration holds here
            return SoftmaxCrossEntropyHessian(z)
    if z.ndim == 2:
        A = _per_sample_blocks(lfo, z, y)
        if A is not None:
            return PerSampleHessian(A)
    return AutodiffOutputHessian(lfo, z, y)


def loss_and_output_gradient(lfo, z: torch.Tensor, y) -> tuple[torch.Tensor, torch.Tensor]:
    """(L(z), ∂L/∂z) by one backward through the loss alone."""
    with torch.enable_grad():
        zz = z.detach().requires_grad_(True)
        loss = lfo(zz, y)
        (gz,) = torch.autograd.grad(loss, zz)
    return loss.detach(), gz


# ============================================================================ the R-operator
class ChainROperator:
    """``H V`` for a chain model, ``b`` directions at a time (see the module docstring).

    ``matmat(V)``: V[name] (b, *shape) for every name in ``names`` -> the same; ``gradient()``:
    the loss gradient at θ from the cached backward. ``state``: parameters and buffers at θ;
    ``max_block``: directions per call (the operator sizes it to its memory budget).
    """

    mode = "chain"

    def __init__(self, chain: Chain, state: dict, method, lfo, x: torch.Tensor, y, names: list[str],
                 max_block: int = 16):
        self.chain, self.state, self.names, self.max_block = chain, state, names, max_block
        self.n = x.shape[0]
        self.workspace: dict = {}  # (N, b, F) buffers reused by every product (``_buffer``)
        # leading Flattens act on the input, which has no tangent: nothing to propagate into
        self.first = next(i for i, op in enumerate(chain.ops) if not isinstance(op, Flatten))
        with torch.no_grad():
            # per op: u (Linear), (σ', σ'') (Activation), the input shape (Flatten); z (N, C)
            self.saved, self.z = self._forward(x)
            loss, gz = loss_and_output_gradient(lfo, self.z, y)  # L(z), ∂L/∂z (N, C)
            self.out_hess = output_hessian(method, lfo, self.z, y, loss)
            self.deltas = self._backward(gz)  # δ at each op's output
            # δ_h ⊙ σ''(a) for curved activations, used by every product
            self.d2 = [
                d * sv[1] if isinstance(op, Activation) and sv[1] is not None else None
                for op, sv, d in zip(chain.ops, self.saved, self.deltas)
            ]

    # ------------------------------------------------------------------ at θ
    def _forward(self, x):
        saved, h = [], x
        for op in self.chain.ops:
            if isinstance(op, Flatten):
                saved.append(h.shape)
                h = h.reshape(h.shape[0], -1)
            elif isinstance(op, Linear):
                saved.append(h)  # u: the layer's input (N, in)
                h = F.linear(h, self.state[op.weight], None if op.bias is None else self.state[op.bias])
            else:
                saved.append(activation_derivatives(op, h))  # σ'(a), σ''(a) (N, F) each
                h = op.fn(h)
        return saved, h.detach()

    def _backward(self, gz):
        ops, deltas, d = self.chain.ops, [None] * len(self.chain.ops), gz
        for i in range(len(ops) - 1, self.first - 1, -1):
            deltas[i] = d
            op = ops[i]
            if i == self.first:
                break
            if isinstance(op, Flatten):
                d = d.reshape(self.saved[i])
            elif isinstance(op, Linear):
                d = d @ self.state[op.weight]
            else:
                d = d * self.saved[i][0]
        return deltas

    def release(self):
        self.workspace.clear()

    def gradient(self) -> dict[str, torch.Tensor]:
        out = {}
        for op, u, d in zip(self.chain.ops, self.saved, self.deltas):
            if isinstance(op, Linear) and d is not None:
                out[op.weight] = d.t() @ u
                if op.bias is not None:
                    out[op.bias] = d.sum(0)
        return {k: out[k] for k in self.names}

    # ------------------------------------------------------------------ products
    def _full(self, V: dict, b: int) -> dict:
        """Directions over every parameter of the chain (unselected ones are zero)."""
        return {k: V[k] if k in V else torch.zeros(b, *self.state[k].shape, dtype=self.z.dtype,
                                                   device=self.z.device)
                for op in self.chain.linears for k in (op.weight, op.bias) if k is not None}

    def _buffer(self, key, shape) -> torch.Tensor:
        """A workspace tensor reused across products: fresh (N, b, F) activations each product
        cost ~40 % more time here, in page faults of the allocator, than the products' matmuls."""
        buf = self.workspace.get(key)
        if buf is None or buf.shape != shape:
            buf = self.workspace[key] = torch.empty(shape, dtype=self.z.dtype, device=self.z.device)
        return buf

    def _tangent_forward(self, V: dict, b: int):
        """R{·} at every op's input ((N, b, F) or None for zero) and R{z} (N, b, C)."""
        n, st = self.n, self.state
        r, rin = None, []
        for i, (op, saved) in enumerate(zip(self.chain.ops, self.saved)):
            rin.append(r)
            if isinstance(op, Flatten):
                r = None if r is None else r.reshape(n, b, -1)
            elif isinstance(op, Linear):
                u, Vw = saved, V[op.weight]  # (N, in), (b, out, in)
                fo, fi = Vw.shape[1], Vw.shape[2]
                if b == 1 and fo <= 32:  # a thin layer: the (out, N) product runs ~2x faster here
                    out_t = torch.mm(Vw[0], u.t(), out=self._buffer(("fwd", i), (fo, n)))  # (u Vwᵀ)ᵀ
                    if r is not None:
                        out_t.addmm_(st[op.weight], r.reshape(n, fi).t())  # + (R{u} Wᵀ)ᵀ
                    out = out_t.t()[:, None]  # (N, 1, out), a view
                else:
                    out = self._buffer(("fwd", i), (n, b, fo))
                    torch.mm(u, Vw.reshape(b * fo, fi).t(), out=out.view(n, b * fo))  # u Vwᵀ
                    if r is not None:
                        out.view(n * b, fo).addmm_(r.reshape(n * b, fi), st[op.weight].t())  # + R{u} Wᵀ
                if op.bias is not None:
                    out += V[op.bias]  # + Vb, broadcast over samples
                r = out
            elif r is not None:
                s1, s2 = saved
                # R{h} = σ'(a) R{a}; R{a} stays in rin for the σ'' term when σ is curved
                r = r.mul_(s1[:, None]) if s2 is None else torch.mul(r, s1[:, None], out=self._buffer(("act", i), r.shape))
        return rin, (torch.zeros(n, b, self.z.shape[1], dtype=self.z.dtype, device=self.z.device) if r is None else r)

    def matmat(self, V: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        b = next(iter(V.values())).shape[0]
        n, st, ops = self.n, self.state, self.chain.ops
        V = self._full(V, b)
        with torch.no_grad():
            rin, rz = self._tangent_forward(V, b)
            rd = self.out_hess(rz)  # R{δ_z} (N, b, C), a new tensor: the backward may work in place
            out = {}
            for i in range(len(ops) - 1, self.first - 1, -1):
                op, delta, ri = ops[i], self.deltas[i], rin[i]
                if isinstance(op, Flatten):
                    rd = rd.reshape(n, b, *self.saved[i][1:])
                elif isinstance(op, Linear):
                    u, Vw = self.saved[i], V[op.weight]  # (N, in), (b, out, in)
                    fo, fi = Vw.shape[1], Vw.shape[2]
                    gw = (rd.reshape(n, b * fo).t() @ u).view(b, fo, fi)  # R{δ}ᵀ u
                    if ri is not None and b == 1:
                        gw[0].addmm_(delta.t(), ri.reshape(n, fi))  # + δᵀ R{u}
                    elif ri is not None:
                        gw += (delta.t() @ ri.reshape(n, b * fi)).view(fo, b, fi).transpose(0, 1)
                    out[op.weight] = gw
                    if op.bias is not None:
                        out[op.bias] = rd.sum(0)  # (b, out)
                    if i > self.first:
                        nxt = self._buffer(("bwd", i), (n, b, fi))
                        torch.mm(rd.reshape(n * b, fo), st[op.weight], out=nxt.view(n * b, fi))  # R{δ} W
                        nxt.view(n, b * fi).addmm_(delta, Vw.transpose(0, 1).reshape(fo, b * fi))  # + δ Vw
                        rd = nxt
                else:
                    rd = rd.mul_(self.saved[i][0][:, None])  # σ'(a) R{δ_h}
                    if self.d2[i] is not None and ri is not None:
                        rd.addcmul_(self.d2[i][:, None], ri)  # + σ''(a) δ_h R{a}
        return {k: out[k] for k in self.names}
