"""Directions for loss landscapes: seeded random directions and filter normalisation.

Li, Xu, Taylor, Studer & Goldstein, "Visualizing the Loss Landscape of Neural Nets" (NeurIPS
2018). ReLU networks are scale invariant (one layer x10 and the next /10 is the same function),
so a fixed-size step along a random direction means different things for different networks.
**Filter normalisation** fixes the scale: every filter (a slice along dimension 0: an output
row of a Linear layer, an output channel of a convolution) of a direction is rescaled to the
norm of the same filter of θ, ``d_f <- d_f ||θ_f|| / (||d_f|| + 1e-10)``, so ``α = 1`` moves each
filter by its own length. 1-D and 0-d parameters (biases, norm-layer scales and shifts) get a
zero direction by default (``bias="ignore"``, the original code's ``--xignore biasbn``);
``bias="keep"`` sets their direction to the parameter itself, as the original code does when they
are not ignored (moving α scales them by 1 + α). ``"layer"`` normalises each parameter's
direction to the parameter's norm; ``None`` uses directions exactly as given.

Directions are Gaussian, drawn on the CPU from ``torch.Generator().manual_seed(seed)``, ``d1``
then ``d2`` in ``named_parameters()`` order (so a 1-D slice with the same seed is the 2-D slice's
β = 0 row), then moved to the model's device.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_int, check_model, check_seed
from ._functional import check_directions, param_dict

NORMALIZATIONS = ("filter", "layer", None)
BIAS_POLICIES = ("ignore", "keep")

__all__ = ["random_directions", "normalize_directions", "NORMALIZATIONS", "BIAS_POLICIES"]


def check_policy(normalization, bias):
    if normalization not in NORMALIZATIONS or isinstance(normalization, bool):
        raise ValueError(
            f"unknown normalization {normalization!r}; valid: 'filter' (Li et al.), 'layer', "
            "or None (directions used exactly as given)"
        )
    if bias not in BIAS_POLICIES:
        raise ValueError(
            f"unknown bias policy {bias!r}; valid: 'ignore' (zero direction for 1-D parameters, "
            "as in Li et al.'s figures) or 'keep' (direction = the parameter itself)"
        )


def as_direction_list(directions, what: str = "directions") -> list:
    """A dict (one direction), a module, or a sequence of them, as a list (else TypeError)."""
    if isinstance(directions, (dict, nn.Module)):
        return [directions]
    if isinstance(directions, (tuple, list)):
        return list(directions)
    raise TypeError(
        f"{what} must be a dict name -> tensor like dict(model.named_parameters()), or a tuple of "
        f"them, got {type(directions).__name__}; e.g. wb.analyses.random_directions(model, 2)"
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
    check_model(model)
    check_policy(normalization, bias)
    params = param_dict(model)
    dirs = check_directions(as_direction_list(directions), params)
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
    check_model(model)
    n = check_int(n, "n", example=2)
    check_seed(seed)
    check_policy(normalization, bias)
    params = param_dict(model)
    g = torch.Generator().manual_seed(int(seed))
    raw = []
    for _ in range(n):
        raw.append({
            k: torch.randn(tuple(p.shape), generator=g, dtype=torch.float32).to(device=p.device, dtype=p.dtype)
            for k, p in params.items()
        })
    return normalize_directions(model, raw, normalization, bias)
