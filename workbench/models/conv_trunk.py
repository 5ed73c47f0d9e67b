"""A small convolutional trunk that keeps a spatial map, and the same trunk with a linear head.

The prototype-part networks (``ProtoPNet``, ``STProtoPNet``, ``DeepCBC``) compare *patches* of a
feature map with learned prototypes, so their trunk must keep a map (no global pooling). The
trunk here is the one of the CPU reproduction in the reference notes: per stage, 3x3 convolutions
with ReLU followed by a 2x2 max-pool; with ``n_pools=2`` and two convolutions in the first stage
a 16x16 digit gives a 4x4 map (8x8 with one pool gives 4x4 too).

``LinearHeadNet`` is that trunk + global average pooling + a linear layer: the baseline that
measures what the prototype layer costs in accuracy ("the same backbone with a linear head").

``receptive_field(trunk, in_hw)`` gives the input box seen by each cell of the map (the usual
size / jump / start recursion over convolutions and pools, as ProtoPNet's visualisation code
computes it); layers that do not change geometry (activations, normalisation, dropout) are
skipped, any other layer type raises.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .._checks import check_int
from . import Classifier, _SeededInit

__all__ = ["conv_trunk", "LinearHeadNet", "receptive_field", "cell_boxes"]

_GEOMETRY_FREE = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Identity,
                  nn.BatchNorm2d, nn.GroupNorm, nn.Dropout, nn.Dropout2d)


def conv_trunk(in_channels: int = 1, width: int = 32, n_pools: int = 2) -> nn.Sequential:
    """Stage 1: conv3x3(c→w)+ReLU, conv3x3(w→w)+ReLU, maxpool2; every further stage:
    conv3x3(→2w)+ReLU, maxpool2. Output channels: ``trunk_channels(width, n_pools)``."""
    check_int(in_channels, "in_channels", min=1)
    check_int(width, "width", min=1)
    check_int(n_pools, "n_pools", min=1, max=4)
    layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
                               nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
    c = width
    for _ in range(n_pools - 1):
        layers += [nn.Conv2d(c, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        c = 2 * width
    return nn.Sequential(*layers)


def trunk_channels(width: int, n_pools: int) -> int:
    return width if n_pools == 1 else 2 * width


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def receptive_field(trunk: nn.Module, in_hw: Sequence[int]) -> dict:
    """Geometry of ``trunk``'s output map for (H, W) inputs: per axis the receptive field
    ``size``, the ``jump`` between neighbouring cells, the ``start`` (centre of cell 0 in input
    pixel coordinates, pixel i covering [i, i+1)) and the map size ``out``."""
    layers = list(trunk.modules())[1:] if isinstance(trunk, nn.Sequential) else [trunk]
    geo = []
    for axis in range(2):
        n, size, jump, start = int(in_hw[axis]), 1.0, 1.0, 0.5
        for layer in layers:
            if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
                k = _pair(layer.kernel_size)[axis]
                s = _pair(layer.stride if layer.stride is not None else layer.kernel_size)[axis]
                p = _pair(layer.padding)[axis]
                d = _pair(getattr(layer, "dilation", 1))[axis]
                if getattr(layer, "ceil_mode", False):
                    raise ValueError("receptive_field does not handle ceil_mode pools")
                keff = d * (k - 1) + 1
                n = (n + 2 * p - keff) // s + 1
                start = start + ((keff - 1) / 2 - p) * jump
                size = size + (keff - 1) * jump
                jump = jump * s
            elif isinstance(layer, (nn.Sequential, *_GEOMETRY_FREE)):
                continue
            else:
                raise ValueError(
                    f"receptive_field cannot follow a {type(layer).__name__} layer; the trunk may hold "
                    "Conv2d, MaxPool2d, AvgPool2d and element-wise layers only"
                )
        geo.append(dict(size=size, jump=jump, start=start, out=n))
    return dict(rows=geo[0], cols=geo[1])


def cell_boxes(geometry: dict, in_hw: Sequence[int]) -> torch.Tensor:
    """(h, w, 4) int tensor: for every map cell the input box (row0, row1, col0, col1), half-open,
    clipped to the image."""
    out = []
    for axis, key in enumerate(("rows", "cols")):
        g = geometry[key]
        centres = g["start"] + g["jump"] * torch.arange(g["out"], dtype=torch.float64)
        lo = torch.floor(centres - g["size"] / 2 + 1e-9).clamp(min=0)
        hi = torch.ceil(centres + g["size"] / 2 - 1e-9).clamp(max=int(in_hw[axis]))
        out.append(torch.stack([lo, hi], 1).long())
    r, c = out
    h, w = r.shape[0], c.shape[0]
    return torch.cat([r[:, None, :].expand(h, w, 2), c[None, :, :].expand(h, w, 2)], dim=2)


def check_image_input(x, in_shape: tuple[int, ...], cls: str) -> torch.Tensor:
    """``x`` as (N, C, H, W) for a model built for ``in_shape``; flat (N, C·H·W) rows are reshaped."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{cls} expects a torch.Tensor, got {type(x).__name__}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"{cls} expects floating-point inputs, got {x.dtype}; pass x.float()")
    if tuple(x.shape[1:]) == in_shape:
        return x
    if x.ndim == 2 and x.shape[1] == math.prod(in_shape):
        return x.reshape(x.shape[0], *in_shape)
    raise ValueError(
        f"{cls} was built for images of shape {in_shape} but got {tuple(x.shape[1:])}; build it with "
        f"in_shape={tuple(x.shape[1:])} (or resize the images, e.g. wb.data.resize(ds, 16))"
    )


class LinearHeadNet(Classifier):
    """``conv_trunk`` + global average pooling + a linear layer: the linear-head baseline of the
    prototype-part networks (same trunk arguments, so the same backbone)."""

    def __init__(self, in_shape: Sequence[int] = (1, 16, 16), n_classes: int = 10, *, width: int = 32,
                 n_pools: int = 2, seed: int | None = None):
        super().__init__()
        self.in_shape = tuple(int(s) for s in in_shape)
        if len(self.in_shape) != 3:
            raise ValueError(f"in_shape must be (C, H, W), got {self.in_shape}")
        check_int(n_classes, "n_classes", min=1)
        self.n_classes, self.feature_dim = n_classes, trunk_channels(width, n_pools)
        with _SeededInit(seed):
            self.trunk = conv_trunk(self.in_shape[0], width, n_pools)
            self.fc = nn.Linear(self.feature_dim, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(check_image_input(x, self.in_shape, "LinearHeadNet"))  # (N, F, h, w)
        return h.mean(dim=(2, 3))
