"""Loss landscapes: filter-normalised 1-D/2-D slices around trained weights.

Paper: Li, Xu, Taylor, Studer, Goldstein, "Visualizing the Loss Landscape of Neural Nets"
(NeurIPS 2018). A slice plots ``L(θ + α d1 + β d2)`` around trained weights θ along two
directions, filter-normalised so that ``α = 1`` moves every filter by its own norm
(``landscape_directions.py``). The same module family has:

* ``landscape_directions.py``: ``random_directions``, ``normalize_directions``;
* ``landscape_paths.py``: PCA directions of a training path and snapshots projected onto a plane
  (``path_directions``, ``project_path``, the paper's §7);
* ``interpolation.py``: ``interpolate`` between two models and the barrier height;
* ``_landscape_engine.py``: the evaluator and its strategies, shared by all of them.

Where this differs from the anchors, on purpose:

* grids are centred, odd-sized and contain the origin exactly; every point is built from the
  origin (no in-place walk): the centre equals the plain loss;
* only parameters move; buffers (BatchNorm running statistics) stay at the model's values and
  evaluation is in eval mode on a copy (the original's ``--dir_type weights``). For
  ``interpolate`` the floating-point buffers are interpolated too by default (``"states"``),
  because running statistics belong to their endpoints;
* BatchNorm, explicitly (``bn=``): ``"eval"`` (default) evaluates the loss at every point with
  the model's running statistics, i.e. the network the model is in eval mode, as used after
  training; ``"batch"`` normalises every layer with the statistics of the evaluated batch (all
  samples at once, or blocks of ``batch_size``), as in a training step, at every point: the loss
  the optimiser saw, whose landscape is smoother where weights move the statistics. Neither writes
  the running statistics; dropout is off in both (the rest of the model is in eval mode). The
  original code evaluates in train mode, i.e. ``"batch"`` with its own batch size;
* loss-landscapes 3.0.6 (PyPI) differs again: uniform U[0,1] directions, filter normalisation
  applied to biases element by element, a global rescale to ``||θ|| / (distance · steps)`` per
  step (the inverted ``distance`` scaling) and a snake walk that stores every odd row shifted by
  one step; its grid never contains θ for odd ``steps``. See ``benchmarks/bench_landscape.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .._device import model_device
from ._checks import check_int, check_model, check_number, check_seed
from ._functional import (
    BN_MODES,
    check_bn,
    check_directions,
    check_method,
    param_dict,
    prepare_data,
    to_cpu_dict,
)
from ._landscape_engine import EVALUATORS, GridEvaluator, evaluate_states
from .interpolation import Interpolation, interpolate
from .landscape_directions import (
    BIAS_POLICIES,
    NORMALIZATIONS,
    as_direction_list,
    check_policy,
    normalize_directions,
    random_directions,
)
from .landscape_paths import PathDirections, TrainingPath, path_directions, project_path

__all__ = [
    "random_directions", "normalize_directions", "path_directions", "PathDirections",
    "loss_slice_1d", "loss_slice_2d", "interpolate", "project_path",
    "LossLine", "LossSurface", "Interpolation", "TrainingPath", "NORMALIZATIONS", "BIAS_POLICIES",
    "EVALUATORS", "BN_MODES",
]


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
    ``path``: a ``TrainingPath`` when snapshots were given; ``evaluator``: which evaluator ran;
    ``bn``: the BatchNorm statistics used (``"eval"``: running, ``"batch"``: the batch's).
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
    bn: str = "eval"

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
        p += ", BatchNorm on batch statistics" if self.bn == "batch" else ""
        return (
            f"LossSurface({len(self.alphas)}x{len(self.betas)}, α∈[{float(self.alphas[0]):.3g}, "
            f"{float(self.alphas[-1]):.3g}], β∈[{float(self.betas[0]):.3g}, {float(self.betas[-1]):.3g}], "
            f"{self.direction_kind} directions, normalization={self.normalization!r}; loss {_fmt_range(self.loss)} "
            f"(centre {self.origin_loss:.4g}){a}{p}; data {self.data}; {self.evaluator}, {self.elapsed:.2f} s)"
        )


@dataclass(frozen=True, eq=False)
class LossLine:
    """A 1-D slice ``L(θ + α d)``: ``alphas`` (steps,), ``loss`` (steps,), ``metrics``; ``bn`` as
    for ``LossSurface``."""

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
    bn: str = "eval"

    @property
    def accuracy(self) -> torch.Tensor | None:
        return self.metrics.get("acc")

    def __repr__(self) -> str:
        b = ", BatchNorm on batch statistics" if self.bn == "batch" else ""
        return (
            f"LossLine({len(self.alphas)} points, α∈[{float(self.alphas[0]):.3g}, {float(self.alphas[-1]):.3g}], "
            f"{self.direction_kind} direction, normalization={self.normalization!r}; loss {_fmt_range(self.loss)} "
            f"(centre {self.origin_loss:.4g}){b}; data {self.data}; {self.evaluator}, {self.elapsed:.2f} s)"
        )


# ============================================================================ slices
def _check_steps(steps, what="steps") -> int:
    steps = check_int(steps, what, minimum=3, example=41)
    if steps % 2 == 0:
        raise ValueError(
            f"{what} must be an odd int >= 3 so that the grid is centred on the model "
            f"(contains α = 0), got {steps!r}; e.g. {steps + 1}"
        )
    return steps


def _grid_steps(steps) -> tuple[int, int]:
    """``steps`` as (α steps, β steps): an odd int or a pair of odd ints."""
    if isinstance(steps, (tuple, list)):
        if len(steps) != 2:
            raise ValueError(f"steps as a pair must have two odd ints, e.g. (41, 21); got {steps!r}")
        return _check_steps(steps[0], "steps[0]"), _check_steps(steps[1], "steps[1]")
    s = _check_steps(steps)
    return s, s


def _check_span(span, what="span") -> float:
    try:
        return check_number(span, what)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{what} must be a positive number (the grid covers [-span, span]), got {span!r}") from None


def _span_form(span):
    """The checked span: a float, a pair of floats, or "auto" (fitted to the path later)."""
    if isinstance(span, str):
        if span != "auto":
            raise ValueError(f"span must be a number, a pair of numbers, or 'auto', got {span!r}")
        return span
    if isinstance(span, (tuple, list)):
        if len(span) != 2:
            raise ValueError(f"span as a pair must have two numbers, e.g. (1.0, 0.5); got {span!r}")
        return _check_span(span[0], "span[0]"), _check_span(span[1], "span[1]")
    s = _check_span(span)
    return s, s


def _axis(span: float, steps: int) -> torch.Tensor:
    c = (steps - 1) // 2
    return (torch.arange(steps, dtype=torch.float64) - c) * (float(span) / c)


def _plain_loss(evaluator: GridEvaluator) -> float:
    """The loss at the origin by a plain forward of the copy (the test oracle for the centre)."""
    pb = evaluator.problem
    st = evaluate_states(evaluator.work, evaluator.method, evaluator.x, evaluator.y, [{}],
                         batch_size=pb.batch_size, bn=pb.bn)
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
    kind = "pca" if isinstance(directions, PathDirections) else "given"
    directions = as_direction_list(directions.directions if kind == "pca" else directions,
                                   "directions" if n > 1 else "direction")
    if len(directions) != n:
        raise ValueError(f"expected {n} direction(s), got {len(directions)}")
    if kind == "pca" and normalization is not None:
        normalization = None  # PCA directions live in parameter units
    dirs = normalize_directions(model, directions, normalization, bias)
    return dirs, kind, normalization, (bias if normalization is not None else None), None


def _common_checks(model, method, seed, normalization, bias, bn):
    check_model(model)
    method = check_method(method)
    check_seed(seed)
    check_policy(normalization, bias)
    check_bn(bn)
    return method


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
    bn: str = "eval",
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
        ``"fold"``, ``"vmap"`` or ``"loop"``; ``memory_mb`` bounds the working memory,
        ``batch_size`` the samples per block.
    bn: ``"eval"`` (default: BatchNorm on its running statistics at every point) or ``"batch"``
        (on the statistics of the evaluated batch: all samples, or blocks of ``batch_size``);
        see the module docstring. Dropout is off either way; the model is never changed.
    """
    t0 = time.perf_counter()
    method = _common_checks(model, method, seed, normalization, bias, bn)
    sa_steps, sb_steps = _grid_steps(steps)
    spans = _span_form(span)
    if spans == "auto" and path is None:
        raise ValueError("span='auto' fits the training path; pass path=history.snapshots or a number")
    dirs, kind, norm_used, bias_used, seed_used = _resolve_directions(
        model, directions, 2, seed, normalization, bias, path
    )
    x, y, info = prepare_data(data, model_device(model), n_samples, seed)
    ev = GridEvaluator(model, method, x, y, list(dirs), metrics=metrics, evaluator=evaluator,
                       memory_mb=memory_mb, batch_size=batch_size, bn=bn)
    tpath = None if path is None else project_path(path, model, method, (x, y), dirs, evaluator=ev, bn=bn)
    if spans == "auto":  # the path's extent, +25 %
        spans = tuple(float(max(e, 1e-6)) for e in tpath.coords.abs().max(0).values * 1.25)
    alphas, betas = _axis(spans[0], sa_steps), _axis(spans[1], sb_steps)
    A, B = torch.meshgrid(alphas, betas, indexing="ij")
    vals = ev(torch.stack([A.reshape(-1), B.reshape(-1)], 1))
    loss = vals.pop("loss").view(sa_steps, sb_steps)
    return LossSurface(
        alphas=alphas.float(), betas=betas.float(), loss=loss,
        metrics={k: v.view(sa_steps, sb_steps) for k, v in vals.items()},
        directions=tuple(to_cpu_dict(d) for d in dirs), seed=seed_used, normalization=norm_used,
        bias=bias_used, origin_loss=_plain_loss(ev), data=str(info), evaluator=ev.name,
        elapsed=time.perf_counter() - t0, path=tpath, direction_kind=kind,
        info={"n_samples": info.n_samples, "timings": ev.timings}, bn=bn,
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
    bn: str = "eval",
) -> LossLine:
    """The loss along a centred line ``θ + α d``, α in [-span, span] (``steps`` odd).

    direction: None (the seeded random direction, i.e. d1 of ``loss_slice_2d`` with the same
    seed), or a dict name -> tensor (e.g. ``hessian_eigs(...).eigenvector(0)`` with
    ``normalization=None``); see ``loss_slice_2d`` for the other arguments.
    """
    t0 = time.perf_counter()
    method = _common_checks(model, method, seed, normalization, bias, bn)
    steps = _check_steps(steps)
    span = _check_span(span)
    dirs, kind, norm_used, bias_used, seed_used = _resolve_directions(
        model, direction, 1, seed, normalization, bias, None
    )
    x, y, info = prepare_data(data, model_device(model), n_samples, seed)
    ev = GridEvaluator(model, method, x, y, list(dirs), metrics=metrics, evaluator=evaluator,
                       memory_mb=memory_mb, batch_size=batch_size, bn=bn)
    alphas = _axis(span, steps)
    vals = ev(alphas[:, None])
    loss = vals.pop("loss")
    return LossLine(
        alphas=alphas.float(), loss=loss, metrics=vals, direction=to_cpu_dict(dirs[0]), seed=seed_used,
        normalization=norm_used, bias=bias_used, origin_loss=_plain_loss(ev), data=str(info),
        evaluator=ev.name, elapsed=time.perf_counter() - t0, direction_kind=kind, bn=bn,
    )
