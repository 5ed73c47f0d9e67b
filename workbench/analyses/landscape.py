"""Loss landscapes: filter-normalised 1-D/2-D slices, interpolation between models, training paths.

Paper: Li, Xu, Taylor, Studer, Goldstein, "Visualizing the Loss Landscape of Neural Nets"
(NeurIPS 2018). A slice plots ``L(θ + α d1 + β d2)`` around trained weights θ along two
directions. Random Gaussian directions mislead when compared across networks, because ReLU
networks are scale invariant: multiplying one layer by 10 and the next by 1/10 gives the same
function, yet a fixed-size step moves the first layer's filters much less. **Filter
normalisation** fixes the scale: every filter (output row of a Linear layer, output channel of a
convolution, i.e. each slice along dimension 0) of a direction is rescaled to the norm of the
same filter of θ, ``d_f <- d_f ||θ_f|| / ||d_f||``, so ``α = 1`` moves each filter by its own
length. Following the paper's figures, 1-D parameters (biases, BatchNorm/LayerNorm scales and
shifts) and 0-d parameters get a zero direction by default (``bias="ignore"``, the original
code's ``--xignore biasbn``); ``bias="keep"`` sets their direction to the parameter itself, as
the original code does when they are not ignored (moving α scales them by 1 + α).

Also here (same engine, ``_landscape_engine.py``):

* PCA directions of a training path (the paper's §7): the top-2 principal directions of the
  snapshots' differences to the final weights; each snapshot is projected onto the slice's
  plane by least squares and returned with its off-plane residual (how far the path is from the
  plane: the surface under a projected point is not the snapshot's own loss) and its true loss.
* ``interpolate``: the loss along ``(1 - t) θ_a + t θ_b`` (Goodfellow et al. 2015) and the
  barrier height of Frankle et al. 2020, ``max_t [L(t) - ((1 - t) L(0) + t L(1))]``.

Where this differs from the anchors, on purpose:

* grids are centred, odd-sized and contain the origin exactly; every point is built from the
  origin (no in-place walk): the centre equals the plain loss;
* only parameters move; buffers (BatchNorm running statistics) stay at the model's values and
  evaluation is in eval mode on a deep copy (the original's ``--dir_type weights``). For
  ``interpolate`` the floating-point buffers are interpolated too by default (``"states"``),
  because running statistics belong to their endpoints;
* directions are Gaussian, drawn on the CPU from ``torch.Generator().manual_seed(seed)``,
  ``d1`` then ``d2`` in ``named_parameters()`` order (so the 1-D slice with the same seed is the
  2-D slice's β = 0 row), then moved to the model's device;
* loss-landscapes 3.0.6 (PyPI) differs again: uniform U[0,1] directions, filter normalisation
  applied to biases element by element, a global rescale to ``||θ|| / (distance · steps)`` per
  step (the inverted ``distance`` scaling) and a snake walk that stores every odd row shifted by
  one step; its grid never contains θ for odd ``steps``. See ``benchmarks/bench_landscape.py``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .._device import model_device
from ._functional import (
    buffer_dict,
    check_directions,
    check_method,
    param_dict,
    prepare_data,
    to_cpu_dict,
)
from ._landscape_engine import EVALUATORS, GridEvaluator, evaluate_states

NORMALIZATIONS = ("filter", "layer", None)
BIAS_POLICIES = ("ignore", "keep")

__all__ = [
    "random_directions", "normalize_directions", "path_directions", "PathDirections",
    "loss_slice_1d", "loss_slice_2d", "interpolate", "project_path",
    "LossLine", "LossSurface", "Interpolation", "TrainingPath", "NORMALIZATIONS", "EVALUATORS",
]


# ============================================================================ directions
def _check_policy(normalization, bias):
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"unknown normalization {normalization!r}; valid: 'filter' (Li et al.), 'layer', "
            "or None (directions used exactly as given)"
        )
    if bias not in BIAS_POLICIES:
        raise ValueError(
            f"unknown bias policy {bias!r}; valid: 'ignore' (zero direction for 1-D parameters, "
            "as in Li et al.'s figures) or 'keep' (direction = the parameter itself)"
        )


def normalize_directions(model: nn.Module, directions, normalization: str | None = "filter",
                         bias: str = "ignore") -> tuple[dict[str, torch.Tensor], ...]:
    """Rescale directions (dicts name -> tensor) to the model's weights.

    ``"filter"``: each slice along dim 0 of a >=2-D parameter's direction gets the norm of the
    same slice of the weights (``d_f * ||w_f|| / (||d_f|| + 1e-10)``); ``"layer"``: each
    parameter's direction gets the parameter's norm; ``None``: unchanged (and ``bias`` is not
    applied). 1-D and 0-d parameters follow ``bias``: ``"ignore"`` -> 0, ``"keep"`` -> the
    parameter itself. Embeddings are treated like Linear weights (one filter per row).
    """
    _check_policy(normalization, bias)
    params = param_dict(model)
    dirs = check_directions(directions, params)
    if normalization is None:
        return tuple(dirs)
    out = []
    for d in dirs:
        nd = {}
        for k, w in params.items():
            v = d[k]
            if w.ndim <= 1:
                nd[k] = torch.zeros_like(w) if bias == "ignore" else w.clone()
            elif normalization == "filter":
                wr = w.reshape(w.shape[0], -1)
                vr = v.reshape(v.shape[0], -1)
                scale = wr.norm(dim=1) / (vr.norm(dim=1) + 1e-10)
                nd[k] = (vr * scale[:, None]).reshape(w.shape)
            else:  # layer
                nd[k] = v * (w.norm() / (v.norm() + 1e-10))
        out.append(nd)
    return tuple(out)


def random_directions(model: nn.Module, n: int = 2, *, seed: int = 0,
                      normalization: str | None = "filter", bias: str = "ignore"):
    """``n`` seeded Gaussian directions (dicts name -> tensor on the model's device), normalised.

    Drawn on the CPU from ``torch.Generator().manual_seed(seed)`` (so the same on every device),
    direction after direction, each in ``named_parameters()`` order.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    _check_seed(seed)
    _check_policy(normalization, bias)
    params = param_dict(model)
    g = torch.Generator().manual_seed(int(seed))
    raw = []
    for _ in range(n):
        raw.append({
            k: torch.randn(tuple(p.shape), generator=g, dtype=torch.float32).to(device=p.device, dtype=p.dtype)
            for k, p in params.items()
        })
    return normalize_directions(model, raw, normalization, bias)


def _check_seed(seed):
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")


# ---------------------------------------------------------------------------- training paths
def _path_states(path) -> tuple[tuple[int, ...], list[dict[str, torch.Tensor]]]:
    """(steps, state dicts) from a SnapshotSeries, a History with snapshots, or a list of dicts."""
    snaps = getattr(path, "snapshots", None) if not isinstance(path, (list, tuple)) else None
    if snaps is not None and hasattr(snaps, "params"):
        path = snaps
    if hasattr(path, "params") and hasattr(path, "steps"):
        if not path.params:
            raise ValueError(
                "the snapshots hold no parameters; record them with wb.training.Snapshots(every=k) "
                "(params=True, the default) in fit's callbacks"
            )
        return tuple(int(s) for s in path.steps), list(path.params)
    if isinstance(path, (list, tuple)) and path and all(isinstance(p, dict) for p in path):
        return tuple(range(len(path))), list(path)
    if hasattr(path, "steps") and getattr(path, "snapshots", 1) is None:
        raise ValueError(
            "this History has no snapshots; train with callbacks=[wb.training.Snapshots(every=k)] "
            "to record the path"
        )
    raise TypeError(
        f"path must be a SnapshotSeries (history.snapshots), a History with snapshots, or a list of "
        f"state dicts, got {type(path).__name__}"
    )


def _flat_params(states, names, like, device):
    rows = []
    for i, st in enumerate(states):
        missing = [k for k in names if k not in st]
        if missing:
            raise ValueError(f"snapshot {i} lacks parameters {missing[:5]}; was it taken from this model?")
        for k in names:
            if tuple(st[k].shape) != tuple(like[k].shape):
                raise ValueError(f"snapshot {i}[{k!r}] has shape {tuple(st[k].shape)}, the model {tuple(like[k].shape)}")
        rows.append(torch.cat([st[k].detach().to(device=device, dtype=torch.float64).reshape(-1) for k in names]))
    return torch.stack(rows)


@dataclass(frozen=True, eq=False)
class PathDirections:
    """Top principal directions of a training path around ``origin`` (the model's weights).

    ``directions``: dicts name -> tensor (unit-norm over all parameters, CPU);
    ``explained``: fraction of the path's variance along each; ``steps``: the snapshots' steps.
    """

    directions: tuple[dict[str, torch.Tensor], ...]
    explained: torch.Tensor
    steps: tuple[int, ...]

    def __iter__(self):
        return iter(self.directions)

    def __len__(self):
        return len(self.directions)

    def __getitem__(self, i):
        return self.directions[i]

    def __repr__(self) -> str:
        ex = ", ".join(f"{100 * float(e):.1f}%" for e in self.explained)
        return f"PathDirections({len(self.directions)} directions from {len(self.steps)} snapshots; variance explained {ex})"


def path_directions(path, model: nn.Module, n: int = 2) -> PathDirections:
    """PCA directions of a training path (Li et al. §7).

    The differences ``θ_i - θ`` of the snapshots to the model's weights θ are centred and the top
    ``n`` right singular vectors are returned (unit norm, in parameter units; use them with
    ``normalization=None``). Signs are fixed so that the first snapshot has a negative
    coordinate (the path runs towards +).
    """
    steps, states = _path_states(path)
    params = param_dict(model)
    names = list(params)
    if len(states) < n + 1:
        raise ValueError(f"need at least {n + 1} snapshots for {n} PCA directions, got {len(states)}")
    theta = torch.cat([params[k].detach().double().reshape(-1) for k in names])
    M = _flat_params(states, names, params, theta.device) - theta  # (S, P)
    Mc = M - M.mean(0, keepdim=True)
    _, s, vh = torch.linalg.svd(Mc, full_matrices=False)
    var = s**2
    explained = (var[:n] / var.sum().clamp_min(1e-300)).float().cpu()
    dirs = []
    for i in range(n):
        u = vh[i]
        if float(M[0] @ u) > 0:
            u = -u
        dirs.append({k: v.to(params[k].dtype).cpu() for k, v in _unflat(u, params, names).items()})
    return PathDirections(tuple(dirs), explained, steps)


def _unflat(v, like, names):
    out, i = {}, 0
    for k in names:
        m = like[k].numel()
        out[k] = v[i : i + m].view(like[k].shape)
        i += m
    return out


@dataclass(frozen=True, eq=False)
class TrainingPath:
    """A fit's snapshots placed on a slice's plane.

    ``coords`` (S, 2): least-squares coordinates (α, β) of ``θ_i - θ`` in the plane;
    ``residual`` (S,): the off-plane distance ``||θ_i - θ - α d1 - β d2||`` and
    ``relative_residual`` = residual / ``||θ_i - θ||`` (1 = orthogonal to the plane, typical for
    random directions; small for PCA directions); ``loss``/``acc`` (S,): the snapshots' true
    values (with their own buffers); ``plane_loss`` (S,): the surface's value under each
    projected point. Where the residual is large the two differ (tomgoldstein/loss-landscape#1).
    """

    steps: tuple[int, ...]
    coords: torch.Tensor
    residual: torch.Tensor
    relative_residual: torch.Tensor
    loss: torch.Tensor
    acc: torch.Tensor
    plane_loss: torch.Tensor

    def __len__(self):
        return len(self.steps)

    def __repr__(self) -> str:
        rr = self.relative_residual[:-1] if len(self) > 1 else self.relative_residual
        return (
            f"TrainingPath({len(self)} snapshots, steps {self.steps[0]}..{self.steps[-1]}; "
            f"median relative off-plane residual {float(rr.median()):.3f}; "
            f"loss {float(self.loss[0]):.4g} -> {float(self.loss[-1]):.4g})"
        )


def project_path(path, model: nn.Module, method, data, directions, *, n_samples: int | None = None,
                 seed: int = 0, evaluator=None) -> TrainingPath:
    """Project a fit's snapshots onto the plane of ``directions`` (d1, d2) around the model."""
    method = check_method(method)
    steps, states = _path_states(path)
    params = param_dict(model)
    names = list(params)
    dirs = check_directions(list(directions), params)
    if len(dirs) != 2:
        raise ValueError(f"project_path needs two directions, got {len(dirs)}")
    dev = model_device(model)
    theta = torch.cat([params[k].double().reshape(-1) for k in names])
    delta = _flat_params(states, names, params, dev) - theta  # (S, P)
    D = torch.stack([torch.cat([d[k].double().reshape(-1) for k in names]) for d in dirs], 1)  # (P, 2)
    gram = D.t() @ D
    if torch.linalg.matrix_rank(gram) < 2:
        raise ValueError("the two directions are parallel (or zero); the plane is undefined")
    coef = torch.linalg.solve(gram, D.t() @ delta.t()).t()  # (S, 2)
    resid = (delta - coef @ D.t()).norm(dim=1)
    dn = delta.norm(dim=1)
    rel = torch.where(dn > 0, resid / dn.clamp_min(1e-300), torch.zeros_like(dn))
    x, y, _ = prepare_data(data, dev, n_samples, seed)
    true = evaluate_states(model, method, x, y, states)
    if evaluator is None:
        evaluator = GridEvaluator(model, method, x, y, dirs)
    plane = evaluator(coef)["loss"]
    return TrainingPath(
        steps=steps, coords=coef.float().cpu(), residual=resid.float().cpu(),
        relative_residual=rel.float().cpu(), loss=true["loss"], acc=true["acc"], plane_loss=plane,
    )


# ============================================================================ results
def _fmt_range(t: torch.Tensor) -> str:
    t = t[torch.isfinite(t)]
    if t.numel() == 0:
        return "n/a"
    return f"{float(t.min()):.4g}–{float(t.max()):.4g}"


@dataclass(frozen=True, eq=False)
class LossSurface:
    """A 2-D slice ``L(θ + α d1 + β d2)``. ``loss[i, j]`` is the value at ``(alphas[i], betas[j])``.

    ``metrics``: other (steps x steps) values, e.g. ``"acc"``; ``directions``: (d1, d2) as CPU
    dicts; ``normalization``/``bias``: how they were scaled (axis units: with ``"filter"``, α = 1
    moves every filter by its own norm); ``origin_loss``: the plain loss at θ (equals the centre);
    ``path``: a ``TrainingPath`` when snapshots were given; ``evaluator``: which evaluator ran.
    """

    alphas: torch.Tensor
    betas: torch.Tensor
    loss: torch.Tensor
    metrics: dict[str, torch.Tensor]
    directions: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]
    seed: int | None
    normalization: str | None
    bias: str | None
    origin_loss: float
    data: str
    evaluator: str
    elapsed: float
    path: TrainingPath | None = None
    direction_kind: str = "random"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def accuracy(self) -> torch.Tensor | None:
        return self.metrics.get("acc")

    @property
    def centre(self) -> tuple[int, int]:
        return (len(self.alphas) // 2, len(self.betas) // 2)

    def __repr__(self) -> str:
        acc = self.accuracy
        a = f", acc {_fmt_range(acc)}" if acc is not None else ""
        p = f", path of {len(self.path)} snapshots" if self.path is not None else ""
        return (
            f"LossSurface({len(self.alphas)}x{len(self.betas)}, α∈[{float(self.alphas[0]):.3g}, "
            f"{float(self.alphas[-1]):.3g}], β∈[{float(self.betas[0]):.3g}, {float(self.betas[-1]):.3g}], "
            f"{self.direction_kind} directions, normalization={self.normalization!r}; loss {_fmt_range(self.loss)} "
            f"(centre {self.origin_loss:.4g}){a}{p}; data {self.data}; {self.evaluator}, {self.elapsed:.2f} s)"
        )


@dataclass(frozen=True, eq=False)
class LossLine:
    """A 1-D slice ``L(θ + α d)``: ``alphas`` (steps,), ``loss`` (steps,), ``metrics``."""

    alphas: torch.Tensor
    loss: torch.Tensor
    metrics: dict[str, torch.Tensor]
    direction: dict[str, torch.Tensor]
    seed: int | None
    normalization: str | None
    bias: str | None
    origin_loss: float
    data: str
    evaluator: str
    elapsed: float
    direction_kind: str = "random"

    @property
    def accuracy(self) -> torch.Tensor | None:
        return self.metrics.get("acc")

    def __repr__(self) -> str:
        return (
            f"LossLine({len(self.alphas)} points, α∈[{float(self.alphas[0]):.3g}, {float(self.alphas[-1]):.3g}], "
            f"{self.direction_kind} direction, normalization={self.normalization!r}; loss {_fmt_range(self.loss)} "
            f"(centre {self.origin_loss:.4g}); data {self.data}; {self.evaluator}, {self.elapsed:.2f} s)"
        )


@dataclass(frozen=True, eq=False)
class Interpolation:
    """Loss along ``(1 - t) θ_a + t θ_b``: ``ts``, ``loss``, ``metrics`` (e.g. ``"acc"``).

    ``barrier``: ``max_{t in [0,1]} L(t) - ((1 - t) L(0) + t L(1))`` (Frankle et al. 2020),
    at ``barrier_t``; ``buffers``: ``"interpolate"`` (running statistics moved along too) or ``"a"``.
    """

    ts: torch.Tensor
    loss: torch.Tensor
    metrics: dict[str, torch.Tensor]
    barrier: float
    barrier_t: float
    loss_a: float
    loss_b: float
    buffers: str
    data: str
    evaluator: str
    elapsed: float

    @property
    def accuracy(self) -> torch.Tensor | None:
        return self.metrics.get("acc")

    def __repr__(self) -> str:
        return (
            f"Interpolation({len(self.ts)} points, t∈[{float(self.ts[0]):.3g}, {float(self.ts[-1]):.3g}]; "
            f"loss(a)={self.loss_a:.4g}, loss(b)={self.loss_b:.4g}, barrier={self.barrier:.4g} at t={self.barrier_t:.3g}; "
            f"buffers={self.buffers!r}; data {self.data}; {self.evaluator})"
        )


# ============================================================================ slices
def _check_steps(steps, what="steps"):
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 3 or steps % 2 == 0:
        raise ValueError(
            f"{what} must be an odd int >= 3 so that the grid is centred on the model "
            f"(contains α = 0), got {steps!r}; e.g. 41"
        )
    return steps


def _axis(span: float, steps: int) -> torch.Tensor:
    c = (steps - 1) // 2
    return (torch.arange(steps, dtype=torch.float64) - c) * (float(span) / c)


def _check_span(span, what="span"):
    if isinstance(span, bool) or not isinstance(span, (int, float)) or not math.isfinite(span) or span <= 0:
        raise ValueError(f"{what} must be a positive number (the grid covers [-span, span]), got {span!r}")
    return float(span)


def _plain_loss(evaluator: GridEvaluator) -> float:
    """The loss at the origin by a plain forward of the copy (the test oracle for the centre)."""
    st = evaluate_states(evaluator.work, evaluator.method, evaluator.x, evaluator.y, [{}])
    return float(st["loss"][0])


def _resolve_directions(model, directions, n, seed, normalization, bias, path):
    """-> (dirs tuple, kind, normalization used, bias used, seed used)."""
    if directions is None or (isinstance(directions, str) and directions == "random"):
        return random_directions(model, n, seed=seed, normalization=normalization, bias=bias), "random", normalization, bias, seed
    if isinstance(directions, str):
        if directions != "pca":
            raise ValueError(f"directions must be None/'random', 'pca', or a tuple of dicts, got {directions!r}")
        if path is None:
            raise ValueError("directions='pca' needs the training path: pass path=history.snapshots")
        pd = path_directions(path, model, n)
        return check_directions(list(pd.directions), param_dict(model)), "pca", None, None, None
    if isinstance(directions, PathDirections):
        directions = directions.directions
        kind = "pca"
    else:
        kind = "given"
    if isinstance(directions, dict):
        directions = (directions,)
    directions = list(directions)
    if len(directions) != n:
        raise ValueError(f"expected {n} direction(s), got {len(directions)}")
    if kind == "pca" and normalization is not None:
        normalization = None  # PCA directions live in parameter units
    dirs = normalize_directions(model, directions, normalization, bias)
    return dirs, kind, normalization, (bias if normalization is not None else None), None


def loss_slice_2d(
    model: nn.Module,
    method,
    data,
    span=1.0,
    steps=41,
    seed: int = 0,
    directions=None,
    normalization: str | None = "filter",
    *,
    bias: str = "ignore",
    n_samples: int | None = None,
    metrics: dict | None = None,
    path=None,
    evaluator: str = "auto",
    memory_mb: float = 256.0,
    batch_size: int | None = None,
) -> LossSurface:
    """The loss over a centred ``steps x steps`` grid ``θ + α d1 + β d2``, α, β in [-span, span].

    directions: None (seeded random, normalised by ``normalization``/``bias``), ``"pca"`` (the
        top-2 PCA directions of ``path``, in parameter units: never normalised, the result
        records ``normalization=None``), a ``PathDirections`` (likewise), or
        ``(d1, d2)`` dicts name -> tensor like ``model.named_parameters()`` (missing names = 0),
        normalised unless ``normalization=None``, which uses them exactly as given.
    span: a number, ``(span_α, span_β)``, or ``"auto"`` to fit the projected ``path`` (+25 %).
    steps: an odd int (or a pair): the grid contains θ, and ``loss[c, c]`` is the plain loss.
    n_samples: evaluate on a seeded random subset (default: every sample of ``data``).
    metrics: extra ``{name: fn(outputs, y) -> mean}``; accuracy ``"acc"`` is added for logits.
    path: snapshots of a fit (``history`` or ``history.snapshots``) to project onto the plane.
    evaluator: ``"auto"`` (see ``_landscape_engine``), ``"mlp-loop"``, ``"mlp-batched"``,
        ``"vmap"`` or ``"loop"``; ``memory_mb`` bounds the working memory, ``batch_size`` the
        samples per block.
    """
    t0 = time.perf_counter()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    method = check_method(method)
    _check_seed(seed)
    _check_policy(normalization, bias)
    sa_steps, sb_steps = (steps, steps) if not isinstance(steps, (tuple, list)) else tuple(steps)
    _check_steps(sa_steps)
    _check_steps(sb_steps)
    dirs, kind, norm_used, bias_used, seed_used = _resolve_directions(
        model, directions, 2, seed, normalization, bias, path
    )
    dev = model_device(model)
    x, y, info = prepare_data(data, dev, n_samples, seed)
    ev = GridEvaluator(model, method, x, y, list(dirs), metrics=metrics, evaluator=evaluator,
                       memory_mb=memory_mb, batch_size=batch_size)
    tpath = None
    if path is not None:
        tpath = project_path(path, model, method, (x, y), dirs, evaluator=ev)
    if isinstance(span, str):
        if span != "auto":
            raise ValueError(f"span must be a number, a pair, or 'auto', got {span!r}")
        if tpath is None:
            raise ValueError("span='auto' fits the training path; pass path=history.snapshots or a number")
        ext = tpath.coords.abs().max(0).values * 1.25
        sa, sb = (float(max(e, 1e-6)) for e in ext)
    elif isinstance(span, (tuple, list)):
        if len(span) != 2:
            raise ValueError(f"span as a pair must have two numbers, got {span!r}")
        sa, sb = _check_span(span[0]), _check_span(span[1])
    else:
        sa = sb = _check_span(span)
    alphas, betas = _axis(sa, sa_steps), _axis(sb, sb_steps)
    A, B = torch.meshgrid(alphas, betas, indexing="ij")
    coeffs = torch.stack([A.reshape(-1), B.reshape(-1)], 1)
    vals = ev(coeffs)
    loss = vals.pop("loss").view(sa_steps, sb_steps)
    mets = {k: v.view(sa_steps, sb_steps) for k, v in vals.items()}
    origin = _plain_loss(ev)
    return LossSurface(
        alphas=alphas.float(), betas=betas.float(), loss=loss, metrics=mets,
        directions=tuple(to_cpu_dict(d) for d in dirs), seed=seed_used, normalization=norm_used,
        bias=bias_used, origin_loss=origin, data=str(info), evaluator=ev.name,
        elapsed=time.perf_counter() - t0, path=tpath, direction_kind=kind,
        info={"n_samples": info.n_samples, "timings": ev.timings},
    )


def loss_slice_1d(
    model: nn.Module,
    method,
    data,
    span: float = 1.0,
    steps: int = 41,
    seed: int = 0,
    direction=None,
    normalization: str | None = "filter",
    *,
    bias: str = "ignore",
    n_samples: int | None = None,
    metrics: dict | None = None,
    evaluator: str = "auto",
    memory_mb: float = 256.0,
    batch_size: int | None = None,
) -> LossLine:
    """The loss along a centred line ``θ + α d``, α in [-span, span] (``steps`` odd).

    direction: None (the seeded random direction, i.e. d1 of ``loss_slice_2d`` with the same
    seed), or a dict name -> tensor (e.g. ``hessian_eigs(...).eigenvector(0)`` with
    ``normalization=None``); see ``loss_slice_2d`` for the other arguments.
    """
    t0 = time.perf_counter()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    method = check_method(method)
    _check_seed(seed)
    _check_policy(normalization, bias)
    _check_steps(steps)
    span = _check_span(span)
    dirs, kind, norm_used, bias_used, seed_used = _resolve_directions(
        model, direction, 1, seed, normalization, bias, None
    )
    dev = model_device(model)
    x, y, info = prepare_data(data, dev, n_samples, seed)
    ev = GridEvaluator(model, method, x, y, list(dirs), metrics=metrics, evaluator=evaluator,
                       memory_mb=memory_mb, batch_size=batch_size)
    alphas = _axis(span, steps)
    vals = ev(alphas[:, None])
    loss = vals.pop("loss")
    return LossLine(
        alphas=alphas.float(), loss=loss, metrics=vals, direction=to_cpu_dict(dirs[0]), seed=seed_used,
        normalization=norm_used, bias=bias_used, origin_loss=_plain_loss(ev), data=str(info),
        evaluator=ev.name, elapsed=time.perf_counter() - t0, direction_kind=kind,
    )


# ============================================================================ interpolation
def _same_structure(a: nn.Module, b: nn.Module):
    pa, pb = param_dict(a), param_dict(b)
    if list(pa) != list(pb):
        raise ValueError("model_a and model_b have different parameter names; build both with the same architecture")
    for k in pa:
        if pa[k].shape != pb[k].shape:
            raise ValueError(f"parameter {k!r} has shape {tuple(pa[k].shape)} in model_a but {tuple(pb[k].shape)} in model_b")
    if model_device(a) != model_device(b):
        raise ValueError(f"model_a is on {model_device(a)} but model_b on {model_device(b)}; put both on one device")
    return pa, pb


def interpolate(
    model_a: nn.Module,
    model_b: nn.Module,
    method,
    data,
    steps: int = 21,
    *,
    t_range: tuple[float, float] = (0.0, 1.0),
    buffers: str = "interpolate",
    n_samples: int | None = None,
    seed: int = 0,
    metrics: dict | None = None,
    evaluator: str = "auto",
    memory_mb: float = 256.0,
) -> Interpolation:
    """Loss (and accuracy) along the straight line from ``model_a`` (t=0) to ``model_b`` (t=1).

    ``t_range`` may extend past [0, 1] (e.g. (-0.5, 1.5)); t = 0 and 1 are always on the grid.
    ``buffers``: ``"interpolate"`` moves floating-point buffers (BatchNorm running statistics)
    along the line too; ``"a"`` keeps model_a's. Neither model is changed.
    """
    t0 = time.perf_counter()
    for m, nm in ((model_a, "model_a"), (model_b, "model_b")):
        if not isinstance(m, nn.Module):
            raise TypeError(f"{nm} must be a torch.nn.Module, got {type(m).__name__}")
    method = check_method(method)
    if buffers not in ("interpolate", "a"):
        raise ValueError(f"buffers must be 'interpolate' or 'a', got {buffers!r}")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 2:
        raise ValueError(f"steps must be an int >= 2, got {steps!r}")
    lo, hi = (float(v) for v in t_range)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= 0.0 and hi >= 1.0):
        raise ValueError(f"t_range must contain [0, 1], e.g. (0, 1) or (-0.5, 1.5); got {t_range!r}")
    pa, pb = _same_structure(model_a, model_b)
    d = {k: pb[k] - pa[k] for k in pa}
    bdirs = None
    if buffers == "interpolate":
        ba, bb = buffer_dict(model_a), buffer_dict(model_b)
        diff = {k: bb[k] - ba[k] for k in ba if ba[k].is_floating_point() and k in bb and not torch.equal(ba[k], bb[k])}
        if diff:
            bdirs = [diff]
    dev = model_device(model_a)
    x, y, info = prepare_data(data, dev, n_samples, seed)
    ev = GridEvaluator(model_a, method, x, y, [d], buffer_directions=bdirs, metrics=metrics,
                       evaluator=evaluator, memory_mb=memory_mb)
    ts = torch.linspace(lo, hi, steps, dtype=torch.float64)
    ts = torch.unique(torch.cat([ts, torch.tensor([0.0, 1.0], dtype=torch.float64)]))
    vals = ev(ts[:, None])
    loss = vals.pop("loss")
    i0 = int((ts == 0).nonzero()[0])
    i1 = int((ts == 1).nonzero()[0])
    la, lb = float(loss[i0]), float(loss[i1])
    inside = (ts >= 0) & (ts <= 1)
    excess = loss.double() - ((1 - ts) * la + ts * lb)
    excess[~inside] = -math.inf
    j = int(excess.argmax())
    return Interpolation(
        ts=ts.float(), loss=loss, metrics=vals, barrier=float(excess[j]), barrier_t=float(ts[j]),
        loss_a=la, loss_b=lb, buffers=buffers, data=str(info), evaluator=ev.name,
        elapsed=time.perf_counter() - t0,
    )
