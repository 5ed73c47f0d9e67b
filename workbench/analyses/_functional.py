"""Shared helpers for analyses that treat parameters as data (landscapes, curvature).

* ``prepare_data``: a Dataset (or an ``(x, y)`` pair) -> tensors on the model's device, with an
  optional seeded subset of ``n_samples``;
* ``functional_copy``: a copy of the model's modules in eval mode (parameters shared, never
  written), so that nothing the analysis does (modes, hooks, reparametrisation) touches the user's
  objects; with ``bn="batch"`` its BatchNorm layers normalise with batch statistics
  (``BatchStatistics``; see ``BN_MODES``); ``outputs_at`` runs it on a few samples;
* ``param_dict`` / ``buffer_dict`` / ``check_directions``: parameters as dicts name -> tensor
  (the names of ``model.named_parameters()``); ``flatten`` / ``unflatten`` / ``norm_of``: the
  same as flat vectors (with optional leading batch dimensions) and their norm;
* ``LossFunction``: ``f(params) -> mean loss`` over the data (in sample blocks, sample-weighted),
  through ``method.loss_from_outputs`` when the method has it, else through ``method.loss`` on the
  reparametrised copy. torch.func transforms (``grad``, ``jvp``, ``vmap``) apply to it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

from .._modes import eval_mode
from ..data.dataset import Dataset
from ._checks import check_int, check_labels


# ----------------------------------------------------------------------------- data
@dataclass(frozen=True)
class DataInfo:
    """What the analysis was evaluated on (stored with results)."""

    name: str
    n_samples: int
    n_total: int
    subset_seed: int | None

    def __str__(self) -> str:
        if self.n_samples == self.n_total:
            return f"{self.name} (all {self.n_total} samples)"
        return f"{self.name} ({self.n_samples} of {self.n_total} samples, subset seed {self.subset_seed})"


def prepare_data(data, device: torch.device, n_samples: int | None = None, seed: int = 0, *, what: str = "data"):
    """(x, y, info): tensors on ``device`` (y may be None), optionally a seeded random subset.
    Whether the labels suit the method is ``_checks.check_labels``'s job."""
    if isinstance(data, Dataset):
        x, y, name = data.x, data.y, data.name
    elif isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        x, y, name = data[0], data[1], "tensors"
        if y is not None and not isinstance(y, torch.Tensor):
            raise TypeError(f"{what}: y must be a tensor or None, got {type(y).__name__}")
    else:
        raise TypeError(
            f"{what} must be a wb.data.Dataset or an (x, y) pair of tensors, got "
            f"{type(data).__name__}; wrap arrays with wb.data.Dataset.from_arrays(x, y)"
        )
    if not x.dtype.is_floating_point:
        raise TypeError(f"{what}: x must be floating point, got {x.dtype}; pass x.float()")
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"{what} has no samples (x of shape {tuple(x.shape)}); pass a non-empty dataset")
    if y is not None and y.shape[0] != x.shape[0]:
        raise ValueError(f"{what}: x has {x.shape[0]} samples but y has {y.shape[0]}")
    n_total = int(x.shape[0])
    subset_seed = None
    n_samples = check_int(n_samples, "n_samples", none="all samples")
    if n_samples is not None and n_samples < n_total:
        g = torch.Generator().manual_seed(int(seed))
        idx = torch.randperm(n_total, generator=g)[:n_samples].sort().values.to(x.device)
        x = x[idx]
        y = None if y is None else y[idx]
        subset_seed = int(seed)
    if x.device != device:
        if x.device.type != "cpu":
            raise ValueError(
                f"the model is on {device} but the {what} is on {x.device}; move one of them"
            )
        x = x.to(device)
        y = None if y is None else y.to(device)
    return x, y, DataInfo(name, int(x.shape[0]), n_total, subset_seed)


# ----------------------------------------------------------------------------- models
BN_MODES = ("eval", "batch")
BN_HELP = ("'eval' (running statistics, as model.eval() uses them) or 'batch' (the statistics of each "
           "evaluated batch, as in training, without updating the running statistics)")


class BatchStatistics(nn.Module):
    """A BatchNorm layer of an analysis copy for ``bn="batch"``: it normalises with the mean and
    (biased) variance of the batch it is given, per channel, as a BatchNorm layer in train mode
    does, and never writes its running statistics (kept as buffers under the same names, so
    state dicts still map). Its affine parameters are the original layer's (shared)."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm):
        super().__init__()
        self.register_parameter("weight", bn.weight)
        self.register_parameter("bias", bn.bias)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            self.register_buffer(name, getattr(bn, name, None))
        self.eps = bn.eps
        self.kind = type(bn).__name__

    def forward(self, x):
        return F.batch_norm(x, None, None, self.weight, self.bias, training=True, momentum=0.0, eps=self.eps)

    def extra_repr(self) -> str:
        return f"{self.kind}, batch statistics, eps={self.eps}"


def set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    """Replace the submodule ``name`` (dotted) of ``root`` (an analysis copy, never the user's)."""
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


def check_bn(bn) -> str:
    if not any(type(bn) is type(v) and bn == v for v in BN_MODES):
        raise ValueError(f"unknown bn {bn!r}; valid: {BN_HELP}")
    return bn


def functional_copy(module: nn.Module, bn: str = "eval") -> nn.Module:
    """A structural copy in eval mode for ``functional_call``: the modules (and their mode flags,
    hooks, buffers) are copied, the parameters are shared, not copied — analyses always pass
    their own parameter tensors, so the user's are only ever read. The copy is taken while the
    module is in eval mode (``eval_mode`` restores every submodule's flag afterwards), so it is
    in eval mode as ``module.eval()`` would set it (dropout off, BatchNorm on running statistics),
    and the user's modules are left as they were. Buffers are copied (eval-mode BatchNorm does not
    write them, but a custom module might). ``bn="batch"``: every BatchNorm layer of the copy is
    replaced by ``BatchStatistics`` (batch statistics, nothing written); the rest stays in eval mode."""
    check_bn(bn)
    memo = {id(p): p for p in module.parameters()}
    with eval_mode(module):
        work = copy.deepcopy(module, memo)
    if bn == "batch":
        for name, m in list(work.named_modules()):
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                set_submodule(work, name, BatchStatistics(m))
    return work


def has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(m, (nn.modules.batchnorm._BatchNorm, BatchStatistics)) for m in module.modules())


def outputs_at(work: nn.Module, state: dict[str, torch.Tensor], x: torch.Tensor, n: int = 4) -> torch.Tensor:
    """The copy's outputs on the first ``n`` samples (a probe: output shape, label range)."""
    with torch.no_grad():
        return functional_call(work, state, (x[:n],))


def param_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{name: detached tensor}`` of ``model.named_parameters()`` (tied weights appear once)."""
    return {k: v.detach() for k, v in model.named_parameters()}


def buffer_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach() for k, v in model.named_buffers()}


def check_directions(directions, params: dict[str, torch.Tensor], what: str = "direction"):
    """Validate user directions (dicts name -> tensor); missing names are zero. Returns dicts on
    the parameters' devices and dtypes, covering every parameter name."""
    out = []
    for i, d in enumerate(directions):
        if isinstance(d, nn.Module):
            d = param_dict(d)
        if not isinstance(d, dict):
            raise TypeError(
                f"{what} {i} must be a dict name -> tensor like dict(model.named_parameters()), "
                f"got {type(d).__name__}"
            )
        unknown = [k for k in d if k not in params]
        if unknown:
            raise ValueError(
                f"{what} {i} names parameters the model does not have: {unknown[:5]}; "
                f"valid names: {list(params)[:10]}{'...' if len(params) > 10 else ''}"
            )
        full = {}
        for k, p in params.items():
            v = d.get(k)
            if v is None:
                full[k] = torch.zeros_like(p)
                continue
            if not isinstance(v, torch.Tensor):
                raise TypeError(f"{what} {i}[{k!r}] must be a tensor, got {type(v).__name__}")
            if tuple(v.shape) != tuple(p.shape):
                raise ValueError(
                    f"{what} {i}[{k!r}] has shape {tuple(v.shape)} but the parameter has {tuple(p.shape)}"
                )
            if not torch.isfinite(v).all():
                raise ValueError(f"{what} {i}[{k!r}] contains NaN or inf")
            full[k] = v.detach().to(device=p.device, dtype=p.dtype)
        out.append(full)
    return out


def flatten(d: dict[str, torch.Tensor], names, batch_dims: int = 0) -> torch.Tensor:
    """Concatenate ``d[k]`` over ``names`` into one vector (``(..., P)`` with ``batch_dims``
    leading batch dimensions kept)."""
    if batch_dims == 0:
        return torch.cat([d[k].reshape(-1) for k in names])
    lead = next(iter(d.values())).shape[:batch_dims]
    return torch.cat([d[k].reshape(*lead, -1) for k in names], batch_dims)


def unflatten(v: torch.Tensor, shapes: dict[str, torch.Size], names) -> dict[str, torch.Tensor]:
    """Views of ``v`` (..., P) as ``{k: (..., *shapes[k])}`` over ``names`` (the inverse of ``flatten``)."""
    out, i = {}, 0
    lead = v.shape[:-1]
    for k in names:
        n = math.prod(shapes[k])
        out[k] = v[..., i : i + n].reshape(*lead, *shapes[k])
        i += n
    return out


def norm_of(d: dict[str, torch.Tensor]) -> float:
    """The Euclidean norm over all tensors of a dict (in float64)."""
    return math.sqrt(sum(float(v.double().pow(2).sum()) for v in d.values()))


def to_cpu_dict(d: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in d.items()}


# ----------------------------------------------------------------------------- loss
class MethodLoss(nn.Module):
    """Wraps ``method.loss(model, (x, y))`` so ``functional_call`` can reparametrise the model
    (its state is addressed as ``model.<name>``)."""

    def __init__(self, model: nn.Module, method: nn.Module):
        super().__init__()
        self.model = model
        self.method = method

    def forward(self, x, y):
        loss, logs = self.method.loss(self.model, (x, y))
        return loss, logs


def check_method(method):
    from .. import methods as _methods

    if isinstance(method, str):
        method = _methods.create(method)
    if not (isinstance(method, nn.Module) and callable(getattr(method, "loss", None))):
        raise TypeError(
            f"method must be a workbench method (an nn.Module with loss(model, batch)), got "
            f"{type(method).__name__}; e.g. wb.methods.CrossEntropy()"
        )
    return method


def outputs_loss(method):
    """The method's ``loss_from_outputs`` when it has one (a callable), else None."""
    lfo = getattr(method, "loss_from_outputs", None)
    return lfo if callable(lfo) else None


def declared_loss_form(method):
    """The loss form a workbench method declares (``Method.loss_form``), or None (also for
    objects that are not ``wb.methods.Method``: they declare nothing)."""
    from ..methods.base import Method

    return method.loss_form if isinstance(method, Method) else None


def math_attention():
    """Attention (``F.scaled_dot_product_attention``, ``nn.MultiheadAttention``) on PyTorch's
    composite "math" kernel: the fused CPU/GPU kernels have no forward-mode derivative and no
    double backward, which every Hessian-vector product needs; the math kernel computes the same
    function with ordinary differentiable ops."""
    return sdpa_kernel([SDPBackend.MATH])


def check_batch_blocks(work: nn.Module, n: int, block: int, bn: str) -> None:
    """With batch statistics every sample block is a batch: a block of one sample has no
    variance to normalise by (for 2-D features), so refuse it with a clear message."""
    if bn != "batch" or not has_batchnorm(work):
        return
    last = n - (n - 1) // block * block
    if min(block, last) < 2:
        raise ValueError(
            f"bn='batch' normalises each block of samples by its own statistics, but a block of {n} samples "
            f"in batches of {block} has one of a single sample; pass a batch_size >= 2 that leaves no "
            "single-sample batch (or batch_size=None: all samples at once), or bn='eval'"
        )


class LossFunction:
    """``f(params) -> mean loss`` over (x, y) for the model's parameters given as a dict.

    ``params`` may cover a subset of the parameter names (the rest stay at ``fixed``). The data
    is processed in blocks of ``batch_size`` samples and the block means are weighted by the
    block sizes, so the value is the sample mean over the whole set. ``uses`` says whether the
    method's ``loss_from_outputs`` ("outputs") or its ``loss`` ("method.loss") is used; ``lfo``
    is that function (None for "method.loss"). The labels are checked against the method and
    the model's outputs before anything is evaluated (``check_labels``). ``bn``: see ``BN_MODES``
    (with ``"batch"`` each block is one batch, so its statistics depend on ``batch_size``).
    """

    def __init__(self, model: nn.Module, method, x, y, *, batch_size: int | None = None, bn: str = "eval"):
        self.method = check_method(method)
        self.bn = check_bn(bn)
        self.work = functional_copy(model, bn)
        self.x, self.y = x, y
        self.n = int(x.shape[0])
        self.batch_size = self.n if batch_size is None else max(1, min(int(batch_size), self.n))
        check_batch_blocks(self.work, self.n, self.batch_size, bn)
        self.fixed = {**param_dict(self.work), **buffer_dict(self.work)}
        self.names = list(param_dict(self.work))
        self.lfo = outputs_loss(self.method)
        self.uses = "outputs" if self.lfo is not None else "method.loss"
        probe = outputs_at(self.work, self.fixed, x) if self.lfo is not None else None
        check_labels(self.method, y, probe, reads_outputs=self.lfo is not None)
        self.wrapper = None if self.lfo is not None else MethodLoss(self.work, functional_copy(self.method))

    def blocks(self):
        for i in range(0, self.n, self.batch_size):
            yb = None if self.y is None else self.y[i : i + self.batch_size]
            yield self.x[i : i + self.batch_size], yb

    def block_loss(self, params: dict[str, torch.Tensor], xb, yb) -> torch.Tensor:
        state = {**self.fixed, **params}
        with math_attention():
            if self.lfo is not None:
                out = functional_call(self.work, state, (xb,))
                return self.lfo(out, yb)
            state = {f"model.{k}": v for k, v in state.items()}
            loss, _ = functional_call(self.wrapper, state, (xb, yb))
            return loss

    def __call__(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.batch_size >= self.n:
            return self.block_loss(params, self.x, self.y)
        total = None
        for xb, yb in self.blocks():
            v = self.block_loss(params, xb, yb) * (xb.shape[0] / self.n)
            total = v if total is None else total + v
        return total
