"""Loss-landscape strategy for any model with eval-mode BatchNorm: ``FoldedPoints`` (``"fold"``).

In eval mode a BatchNorm layer is an affine map per channel, ``y = (z - μ) s + β`` with
``s = γ / sqrt(σ² + ε)`` (μ, σ² its running statistics). When it reads the output ``z = W * x + b``
of a convolution or a linear layer, and nothing else reads ``z``, the two are one layer with
weight ``W s`` (each output channel scaled) and bias ``(b - μ) s + β``: exact, up to rounding. A
grid point then costs one convolution per pair instead of a convolution and a normalisation pass.
Per grid point this strategy builds the point's parameters and buffers from the origin (as every
strategy does), folds each pair, and runs a rewritten copy of the model (the BatchNorm modules
replaced by ``Identity``, a zero bias given to layers without one) with ``functional_call``.
Two more levers, each exact:

* **channels-last**: 4-D inputs and 4-D weights are passed in channels-last memory order (the
  CPU convolution kernels then skip a layout conversion per call);
* **first convolution on patches**: a ``Conv2d`` that reads the model's input directly sees the
  same samples at every point, so its input patches (im2col) are unfolded once per sample block
  and each point pays one matrix product ``(n·L, C·kh·kw) @ (C·kh·kw, out)``, whose result is
  already the channels-last output. (The linear-combination trick of the MLP chain, ``k + 1``
  convolutions once and a weighted sum per point, measured ~4x slower than this product here.)

How the pairs are found: one probe forward of the copy with hooks on its leaf modules records
which module's output each BatchNorm reads (tensor identity) and which ``Conv2d`` reads the
model's input. The rewritten copy is then checked against the plain copy on a few samples, at the
origin and at a random state where every BatchNorm is far from the identity (so a ``z`` that is
also read elsewhere, e.g. by a residual branch, changes the output and is caught); if either
differs, ``choose_strategy`` falls back to the plain loop and says so.

Measured on this project's 2-core CPU (``benchmarks/bench_landscape_general.py``): see that
script's docstring for the figures; batching grid points with ``vmap`` (grouped convolutions) ran
~3x slower per point than this loop, and sample blocks of 256-512 were no faster than one block.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ._functional import functional_copy, set_submodule
from ._grid_generic import GridProblem, LoopPoints

_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@dataclass(frozen=True)
class FoldPair:
    """A layer (``Conv*d``/``Linear`` module name) whose only reader is an eval-mode BatchNorm."""

    layer: str
    norm: str
    has_bias: bool
    eps: float
    affine: bool


def _is_eval_bn(m: nn.Module) -> bool:
    return (isinstance(m, nn.modules.batchnorm._BatchNorm) and not m.training
            and m.running_mean is not None and m.running_var is not None)


@dataclass(frozen=True)
class Probe:
    """What one probe forward found: ``pairs`` to fold, ``first`` (a ``Conv2d`` reading the
    model's input directly, or None), ``inplace`` (activation modules with an ``inplace`` switch
    whose input is a fresh output of a conv/linear/BatchNorm layer)."""

    pairs: tuple[FoldPair, ...]
    first: str | None
    inplace: tuple[str, ...]


def find_folds(work: nn.Module, state: dict[str, torch.Tensor], xb: torch.Tensor) -> Probe:
    """One probe forward of ``work`` on ``xb`` with hooks on its leaf modules; tensor identity
    says which module's output each BatchNorm and activation reads (every module involved must
    run once). Whether a folded/in-place tensor is *also* read elsewhere the hooks cannot see:
    ``folded_model`` checks the rewritten copy against the plain one for that."""
    names = {id(m): n for n, m in work.named_modules()}
    calls: dict[str, int] = {}
    produced: dict[int, tuple[str, torch.Tensor]] = {}  # id(output) -> (module name, tensor kept alive)
    reads: list[tuple[str, nn.Module, torch.Tensor]] = []
    first: list[str] = []

    def hook(mod, inputs, output):
        n = names[id(mod)]
        calls[n] = calls.get(n, 0) + 1
        x0 = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
        if isinstance(mod, (*_LAYERS, nn.modules.batchnorm._BatchNorm)) and isinstance(output, torch.Tensor):
            produced[id(output)] = (n, output)
            if isinstance(mod, nn.Conv2d) and x0 is xb:
                first.append(n)
        if x0 is not None and (_is_eval_bn(mod) or getattr(mod, "inplace", None) is False):
            reads.append((n, mod, x0))

    leaves = [m for m in work.modules() if len(list(m.children())) == 0]
    hooks = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            functional_call(work, state, (xb,))
    finally:
        for h in hooks:
            h.remove()
    mods = dict(work.named_modules())
    pairs, inplace = [], []
    for name, mod, z in reads:
        src = produced.get(id(z))
        if src is None or src[1] is not z or calls.get(name) != 1 or calls.get(src[0]) != 1:
            continue
        if not _is_eval_bn(mod):  # an activation reading a fresh layer output
            inplace.append(name)
            continue
        layer = mods[src[0]]
        if not isinstance(layer, _LAYERS):
            continue
        out_ch = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
        if out_ch != mod.num_features or (isinstance(layer, nn.Linear) and z.ndim != 2):
            continue
        pairs.append(FoldPair(src[0], name, layer.bias is not None, float(mod.eps), bool(mod.affine)))
    first_conv = first[0] if len(first) == 1 and calls.get(first[0]) == 1 else None
    if first_conv is not None:
        conv = mods[first_conv]
        if conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            first_conv = None
    return Probe(tuple(pairs), first_conv, tuple(inplace))


class _PatchConv(nn.Module):
    """A ``Conv2d`` of the model's input computed from patches unfolded once per sample block:
    ``(n·L, C·kh·kw) @ Wᵀ + b`` viewed as the (n, out, Ho, Wo) channels-last output. Falls back to
    the convolution when the input is not the block the patches were made from."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.weight = conv.weight
        self.bias = conv.bias
        self.conv = dict(stride=conv.stride, padding=conv.padding, dilation=conv.dilation)
        self.kernel = conv.kernel_size
        self.source: torch.Tensor | None = None
        self.patches: torch.Tensor | None = None
        self.out_hw: tuple[int, int] = (0, 0)

    def set_block(self, xb: torch.Tensor | None):
        self.source = xb
        if xb is None:
            self.patches = None
            return
        cols = F.unfold(xb, self.kernel, **self.conv)  # (n, C·kh·kw, L)
        self.patches = cols.transpose(1, 2).reshape(-1, cols.shape[1]).contiguous()  # (n·L, C·kh·kw)
        h, w = xb.shape[-2:]
        s, p, d = self.conv["stride"], self.conv["padding"], self.conv["dilation"]
        self.out_hw = tuple((size + 2 * p[i] - d[i] * (self.kernel[i] - 1) - 1) // s[i] + 1 for i, size in enumerate((h, w)))

    def forward(self, x):
        if x is not self.source or self.patches is None:
            return F.conv2d(x, self.weight, self.bias, **self.conv)
        w = self.weight.reshape(self.weight.shape[0], -1)  # (out, C·kh·kw)
        out = torch.addmm(self.bias, self.patches, w.t()) if self.bias is not None else self.patches @ w.t()
        return out.view(x.shape[0], *self.out_hw, w.shape[0]).permute(0, 3, 1, 2)  # channels-last view


class FoldedModel:
    """The rewritten copy and the state map: BatchNorm pairs folded, the first conv on patches,
    4-D tensors channels-last, activations in place."""

    def __init__(self, work: nn.Module, pairs, first: str | None, channels_last: bool, inplace=()):
        self.pairs, self.first, self.channels_last, self.inplace = pairs, first, channels_last, tuple(inplace)
        self.rw = functional_copy(work)
        for name in self.inplace:  # the copy's activations overwrite the fresh layer outputs they read
            self.rw.get_submodule(name).inplace = True
        for p in pairs:
            layer = self.rw.get_submodule(p.layer)
            if layer.bias is None:  # the fold gives every layer a bias (a parameter of the copy only)
                out = layer.weight.shape[0]
                layer.bias = nn.Parameter(torch.zeros(out, device=layer.weight.device, dtype=layer.weight.dtype))
            set_submodule(self.rw, p.norm, nn.Identity())
        self.patch = None
        if first is not None:
            self.patch = _PatchConv(self.rw.get_submodule(first))
            set_submodule(self.rw, first, self.patch)
        self.keys = set(dict(self.rw.named_parameters())) | set(dict(self.rw.named_buffers()))

    def state(self, st: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The rewritten copy's state from the model's state at a point (parameters and buffers)."""
        st = dict(st)
        for p in self.pairs:
            w, var, mean = st[p.layer + ".weight"], st[p.norm + ".running_var"], st[p.norm + ".running_mean"]
            s = torch.rsqrt(var + p.eps)
            if p.affine:
                s = s * st[p.norm + ".weight"]
            b = st[p.layer + ".bias"] - mean if p.has_bias else -mean
            b = b * s
            if p.affine:
                b = b + st[p.norm + ".bias"]
            st[p.layer + ".weight"] = w * s.reshape(-1, *([1] * (w.ndim - 1)))
            st[p.layer + ".bias"] = b
        out = {k: v for k, v in st.items() if k in self.keys}
        if self.channels_last:
            out = {k: (v.contiguous(memory_format=torch.channels_last) if v.ndim == 4 else v) for k, v in out.items()}
        return out

    def prepare(self, xb: torch.Tensor) -> torch.Tensor:
        """The block as the rewritten copy takes it (channels-last; patches unfolded)."""
        if self.channels_last and xb.ndim == 4:
            xb = xb.contiguous(memory_format=torch.channels_last)
        if self.patch is not None:
            self.patch.set_block(xb)
        return xb

    def release(self):
        if self.patch is not None:
            self.patch.set_block(None)


def _scrambled_state(pb: GridProblem, pairs, g: torch.Generator) -> dict[str, torch.Tensor]:
    """Origin parameters randomly perturbed (10 % of their mean size), the buffers as they are,
    except every folded BatchNorm's statistics and affine parameters: far from the identity."""
    st = dict(pb.buffers)
    for k, v in pb.origin.items():
        r = torch.randn(v.shape, generator=g, dtype=torch.float32).to(v.device, v.dtype)
        st[k] = v + 0.1 * r * (v.abs().mean() + 1e-3)
    for p in pairs:
        for suffix, lo, hi in ((".running_var", 0.5, 2.0), (".weight", 0.5, 1.5)):
            k = p.norm + suffix
            if k in st and (suffix != ".weight" or p.affine):
                u = torch.rand(st[k].shape, generator=g, dtype=torch.float32).to(st[k].device, st[k].dtype)
                st[k] = lo + (hi - lo) * u
        for suffix in (".running_mean", ".bias"):
            k = p.norm + suffix
            if k in st and (suffix != ".bias" or p.affine):
                st[k] = st[k] + torch.randn(st[k].shape, generator=g).to(st[k].device, st[k].dtype)
    return st


# Channels-last and the first convolution on patches pay off for convolutions at least this wide
# (the CPU kernels work on 16-float vectors); measured (bench_landscape_general.py --levers, CPU
# time per point): ConvNet(norm="batch") with widths 32/64, N=1797: fold alone x1.25, + both
# levers x1.70 over the plain loop; the ResNet-style net with widths 8/16: fold alone x1.13, the
# levers x0.98 (its 8-channel convolutions ran slower channels-last).
WIDE = 16


def choose_levers(work: nn.Module, x: torch.Tensor) -> tuple[bool, bool]:
    """(channels_last, patches): both when the input is 4-D and every ``Conv2d`` of the model has
    at least ``WIDE`` output channels."""
    convs = [m for m in work.modules() if isinstance(m, nn.Conv2d)]
    wide = x.ndim == 4 and bool(convs) and min(m.out_channels for m in convs) >= WIDE
    return wide, wide


def _reproduces(pb: GridProblem, fm: FoldedModel, xb: torch.Tensor) -> str:
    """"" when the rewritten copy gives the copy's outputs on ``xb`` at the origin and at a
    scrambled state, else why not."""
    origin = {**pb.origin, **pb.buffers}
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for st in (origin, _scrambled_state(pb, fm.pairs, g)):
            ref = functional_call(pb.work, st, (xb,))
            got = functional_call(fm.rw, fm.state(st), (fm.prepare(xb),))
            fm.release()
            if not (isinstance(ref, torch.Tensor) and isinstance(got, torch.Tensor) and ref.shape == got.shape):
                return "the rewritten copy's output differs in type or shape"
            scale = float(ref.abs().max()) + 1e-6
            if not torch.allclose(got, ref, rtol=1e-3, atol=1e-4 * scale):
                levers = (["in-place activations"] if fm.inplace else []) + (["folding BatchNorm"] if fm.pairs else [])
                return (f"the model's output changes with {' and '.join(levers) or 'the layout levers'} (a "
                        "tensor overwritten or folded is also read elsewhere)")
    return ""


def folded_model(pb: GridProblem, *, channels_last: bool | None = None, patches: bool | None = None,
                 inplace: bool = True):
    """(FoldedModel or None, note): the rewritten copy with every lever that reproduces the model;
    tried in order: all levers; without in-place activations; without the BatchNorm pairs (the
    layout levers alone). None when no lever applies or none reproduces the model.
    ``channels_last``/``patches``: None = ``choose_levers``; ``inplace``: allow in-place activations."""
    xb = pb.x[:16]
    probe = find_folds(pb.work, {**pb.origin, **pb.buffers}, xb)
    cl_auto, pt_auto = choose_levers(pb.work, pb.x)
    cl = (cl_auto if channels_last is None else channels_last) and pb.x.ndim == 4
    first = probe.first if (pt_auto if patches is None else patches) else None
    attempts = [(probe.pairs, probe.inplace if inplace else ()), (probe.pairs, ()), ((), ())]
    notes: list[str] = []
    for pairs, acts in dict.fromkeys(attempts):  # in order, without repeats
        if not (pairs or cl or first or acts):
            continue
        fm = FoldedModel(pb.work, pairs, first, cl, acts)
        why = _reproduces(pb, fm, xb)
        if not why:
            return fm, "; ".join(notes)
        notes.append(why)
    if notes:
        return None, "; ".join(notes) + "; plain loop used"
    return None, "no eval-mode BatchNorm reads a conv/linear output alone and no wide convolution"


class FoldedPoints(LoopPoints):
    """One ``functional_call`` per grid point on the rewritten copy (BatchNorm folded per point)."""

    name = "fold"

    def __init__(self, pb: GridProblem, fm: FoldedModel):
        super().__init__(pb)
        self.fm = fm
        levers = [f"{len(fm.pairs)} BatchNorm folded"] if fm.pairs else []
        if fm.inplace:
            levers.append(f"{len(fm.inplace)} activation{'s' if len(fm.inplace) > 1 else ''} in place")
        if fm.patch is not None:
            levers.append("first conv on patches")
        if fm.channels_last:
            levers.append("channels-last")
        self.chosen = f"fold ({', '.join(levers)})"

    def extra_floats(self) -> float:
        """Per sample: the channels-last copy of the input and the first convolution's patches."""
        x = self.pb.x
        extra = x[0].numel() if self.fm.channels_last else 0
        if self.fm.patch is not None:
            p = self.fm.patch
            self.fm.prepare(x[:1])
            extra += p.patches.numel()
            self.fm.release()
        return float(extra)

    def _point(self, c, xb, yb):
        pb = self.pb
        out = functional_call(self.fm.rw, self.fm.state(pb.point_state(c)), (xb,))
        return self.values(out, yb)

    def _block(self, cdev, xb, yb, per_point_bytes):
        xr = self.fm.prepare(xb)
        try:
            return torch.stack([self._point(cdev[g], xr, yb) for g in range(cdev.shape[0])])
        finally:
            self.fm.release()
