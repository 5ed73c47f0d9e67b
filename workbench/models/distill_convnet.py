"""The ConvNet of the dataset-distillation papers (DC, DSA, DM, MTT, DATM), sized for small images.

``DistillConvNet(in_shape=(1, 8, 8), n_classes=10, width=64, depth=2)``: ``depth`` blocks of
[3×3 conv (``width`` channels, padding 1) → norm → ReLU → 2×2 average pooling], then the
flattened map is ``features(x)`` and one linear layer is ``head``. ``norm="instance"`` (the
papers' default, written as GroupNorm with one group per channel, affine), ``"batch"`` or None.
For 8×8 digits with depth 2 the features are 64 × 2 × 2 = 256 numbers and the network has
≈ 40 000 parameters (the reference notes' digits configuration). Instance norm keeps no running
statistics, so a functional forward (``torch.func.functional_call``, as trajectory matching
uses) depends on the parameters alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .._checks import check_choice, check_int
from . import Classifier, _SeededInit

NORMS = ("instance", "batch", None)


class DistillConvNet(Classifier):
    """Conv → norm → ReLU → avg-pool blocks, then a linear classifier (see the module docstring)."""

    def __init__(self, in_shape: Sequence[int] = (1, 8, 8), n_classes: int = 10, *, width: int = 64,
                 depth: int = 2, norm: str | None = "instance", seed: int | None = None):
        super().__init__()
        in_shape = tuple(int(s) for s in in_shape)
        if len(in_shape) != 3:
            raise ValueError(f"in_shape must be (C, H, W), got {in_shape}")
        check_int(n_classes, "n_classes", min=1)
        check_int(width, "width", min=1)
        check_int(depth, "depth", min=1)
        check_choice(norm, "norm", NORMS)
        c, h, w = in_shape
        if h >> depth < 1 or w >> depth < 1:
            raise ValueError(f"depth={depth} halves an image of {h}x{w} to nothing; use depth <= {int(math.log2(min(h, w)))}")
        self.in_shape, self.n_classes = in_shape, n_classes
        with _SeededInit(seed):
            layers: list[nn.Module] = []
            cin = c
            for _ in range(depth):
                layers.append(nn.Conv2d(cin, width, 3, padding=1))
                if norm == "instance":
                    layers.append(nn.GroupNorm(width, width, affine=True))
                elif norm == "batch":
                    layers.append(nn.BatchNorm2d(width))
                layers += [nn.ReLU(), nn.AvgPool2d(2)]
                cin = width
            self.body = nn.Sequential(*layers, nn.Flatten())
            self.feature_dim = width * (h >> depth) * (w >> depth)
            self.fc = nn.Linear(self.feature_dim, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
            raise TypeError("DistillConvNet expects a floating-point tensor (N, C, H, W)")
        if tuple(x.shape[1:]) != self.in_shape:
            if x.ndim == 2 and x.shape[1] == math.prod(self.in_shape):
                x = x.reshape(x.shape[0], *self.in_shape)
            else:
                raise ValueError(f"DistillConvNet was built for samples of shape {self.in_shape}, got "
                                 f"{tuple(x.shape[1:])}; build it with in_shape={tuple(x.shape[1:])}")
        return self.body(x)
