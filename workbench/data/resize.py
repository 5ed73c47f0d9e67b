"""``resize(ds, size)``: images of a Dataset resampled to another size (e.g. 8x8 digits to 16x16).

Prototype-part networks compare patches of a feature map; on 8x8 digits a small trunk leaves
almost no room for patches, so the reference reproduction upscales them x2 first. Bilinear
interpolation (``align_corners=False``) keeps the [0, 1] range of the digits. Labels, class
names and metadata are kept; the name records the new size.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from .._checks import check_choice, check_int
from .dataset import Dataset

MODES = ("bilinear", "nearest", "bicubic")


def resize(ds: Dataset, size, *, mode: str = "bilinear") -> Dataset:
    """``ds`` with every (C, H, W) image resampled to ``size`` (an int for square, or (H, W))."""
    if not isinstance(ds, Dataset):
        raise TypeError(f"resize takes a wb.data.Dataset, got {type(ds).__name__}")
    if ds.x.ndim != 4:
        raise ValueError(f"resize needs images (N, C, H, W), got samples of shape {ds.shape}")
    check_choice(mode, "mode", MODES)
    hw = (size, size) if not isinstance(size, (tuple, list)) else tuple(size)
    if len(hw) != 2:
        raise ValueError(f"size must be an int or (H, W), got {size!r}")
    hw = tuple(check_int(v, "size", min=1) for v in hw)
    opts = {} if mode == "nearest" else {"align_corners": False}
    x = F.interpolate(ds.x, size=hw, mode=mode, **opts)
    if mode == "bicubic":
        x = x.clamp(float(ds.x.min()), float(ds.x.max()))  # bicubic overshoots the input range
    return replace(ds, x=x.to(torch.float32).contiguous(), name=f"{ds.name}@{hw[0]}x{hw[1]}")
