"""Training paths on loss landscapes: PCA directions of a path, and snapshots projected on a plane.

Li, Xu, Taylor, Studer & Goldstein (NeurIPS 2018), §7: random directions are nearly orthogonal
to a training path in high dimensions, so a path drawn on a random plane looks like it barely
moves. Instead, the top principal directions of the snapshots' differences to the final
weights span the plane (``path_directions``), and each snapshot is projected onto a plane by
least squares (``project_path``), with its off-plane residual (how far the path is from the plane:
the surface under a projected point is not the snapshot's own loss; tomgoldstein/loss-landscape#1)
and its true loss, evaluated with its own buffers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .._device import model_device
from ._checks import check_int, check_model, check_seed
from ._functional import (
    check_bn,
    check_directions,
    check_method,
    flatten,
    param_dict,
    prepare_data,
    unflatten,
)
from ._landscape_engine import GridEvaluator, evaluate_states
from .landscape_directions import as_direction_list

__all__ = ["path_directions", "PathDirections", "project_path", "TrainingPath"]


def path_states(path) -> tuple[tuple[int, ...], list[dict[str, torch.Tensor]]]:
    """(steps, state dicts) from a SnapshotSeries, a History with snapshots, or a list of dicts
    (duck-typed: analyses do not import ``workbench.training``)."""
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


def flat_states(states, names, like, device) -> torch.Tensor:
    """Snapshots' parameters as rows (S, P) in float64, checked against the model's shapes."""
    rows = []
    for i, st in enumerate(states):
        missing = [k for k in names if k not in st]
        if missing:
            raise ValueError(f"snapshot {i} lacks parameters {missing[:5]}; was it taken from this model?")
        for k in names:
            if tuple(st[k].shape) != tuple(like[k].shape):
                raise ValueError(f"snapshot {i}[{k!r}] has shape {tuple(st[k].shape)}, the model {tuple(like[k].shape)}")
        rows.append(flatten({k: st[k].detach().to(device=device, dtype=torch.float64) for k in names}, names))
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
    check_model(model)
    n = check_int(n, "n", example=2)
    steps, states = path_states(path)
    params = param_dict(model)
    names = list(params)
    if len(states) < n + 1:
        raise ValueError(f"need at least {n + 1} snapshots for {n} PCA directions, got {len(states)}")
    theta = flatten({k: v.double() for k, v in params.items()}, names)
    M = flat_states(states, names, params, theta.device) - theta  # (S, P)
    Mc = M - M.mean(0, keepdim=True)
    _, s, vh = torch.linalg.svd(Mc, full_matrices=False)
    var = s**2
    explained = (var[:n] / var.sum().clamp_min(1e-300)).float().cpu()
    shapes = {k: p.shape for k, p in params.items()}
    dirs = []
    for i in range(n):
        u = vh[i]
        if float(M[0] @ u) > 0:
            u = -u
        dirs.append({k: v.to(params[k].dtype).cpu() for k, v in unflatten(u, shapes, names).items()})
    return PathDirections(tuple(dirs), explained, steps)


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
                 seed: int = 0, evaluator=None, bn: str = "eval", batch_size: int | None = None) -> TrainingPath:
    """Project a fit's snapshots onto the plane of ``directions`` (d1, d2) around the model.
    ``evaluator``: a ``GridEvaluator`` for the plane to reuse (internal), else one is built.
    ``bn``: ``"eval"`` (each snapshot with its own running statistics, the plane with the model's)
    or ``"batch"`` (batch statistics; see ``loss_slice_2d``); ``batch_size``: samples per block."""
    check_model(model)
    method = check_method(method)
    check_seed(seed)
    check_bn(bn)
    steps, states = path_states(path)
    params = param_dict(model)
    names = list(params)
    dirs = check_directions(as_direction_list(directions), params)
    if len(dirs) != 2:
        raise ValueError(f"project_path needs two directions (d1, d2), got {len(dirs)}")
    dev = model_device(model)
    theta = flatten({k: v.double() for k, v in params.items()}, names)
    delta = flat_states(states, names, params, dev) - theta  # (S, P)
    D = torch.stack([flatten({k: d[k].double() for k in names}, names) for d in dirs], 1)  # (P, 2)
    gram = D.t() @ D
    if torch.linalg.matrix_rank(gram) < 2:
        raise ValueError("the two directions are parallel (or zero); the plane is undefined")
    coef = torch.linalg.solve(gram, D.t() @ delta.t()).t()  # (S, 2)
    resid = (delta - coef @ D.t()).norm(dim=1)
    dn = delta.norm(dim=1)
    rel = torch.where(dn > 0, resid / dn.clamp_min(1e-300), torch.zeros_like(dn))
    x, y, _ = prepare_data(data, dev, n_samples, seed)
    if evaluator is None:  # checks the labels against the method
        evaluator = GridEvaluator(model, method, x, y, dirs, bn=bn, batch_size=batch_size)
    pb = evaluator.problem
    true = evaluate_states(model, method, x, y, states, batch_size=pb.batch_size, bn=pb.bn)
    plane = evaluator(coef)["loss"]
    return TrainingPath(
        steps=steps, coords=coef.float().cpu(), residual=resid.float().cpu(),
        relative_residual=rel.float().cpu(), loss=true["loss"], acc=true["acc"], plane_loss=plane,
    )
