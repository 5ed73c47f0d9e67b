"""Data augmentations for two-view methods (SupCon, SimCLR, PALM), one family per data kind.

An augmentation is a callable ``aug(x, generator=None) -> x'`` acting on a whole batch at once
(vectorised, no Python loop over samples), keeping shape, dtype and device. Randomness comes
from ``generator`` when given, else from torch's global RNG, which ``wb.fit`` forks and seeds
with its ``seed`` (so a fit stays reproducible and the caller's RNG is untouched).

Built-in augmentations, chosen by the data kind (``Dataset.kind``) or by name:

* ``"points"`` -> ``Jitter``: 2-D toys; Gaussian jitter and a small random scaling.
* ``"image"`` -> ``ImageAugment``: small images such as the 8x8 digits; a random affine map
  (shift of about a pixel, a few degrees of rotation, a little zoom) through
  ``grid_sample``, additive noise and random erasing of a small rectangle (cutout).
* ``"signal"`` -> ``SignalAugment``: 1-D signals (N, C, L); a random shift along time (zero
  fill), amplitude scaling and additive noise.
* ``"vector"`` -> ``VectorNoise``: generic feature vectors; noise and random feature dropout.
* ``"none"`` -> ``Identity``.

Methods take ``augment="auto"`` (pick the family from the batch's shape: 4-D -> image,
3-D -> signal, (N, 2) -> points, else vector), a name above, an augmentation object (its
parameters are recorded, so a checkpoint rebuilds it), or any user callable ``f(x) -> x'``.
A user callable is stored in a method's config by its import path: a module-level function
can be rebuilt from a checkpoint, a lambda or closure cannot (loading such a checkpoint raises;
pass the function again by rebuilding the method yourself).
"""

from __future__ import annotations

import inspect
import math

import torch
import torch.nn.functional as F

from .._checks import check_bool, check_number
from .._config import Configurable

__all__ = [
    "Augmentation", "Identity", "Jitter", "VectorNoise", "ImageAugment", "SignalAugment",
    "AUGMENTATIONS", "get_augmentation", "kind_of_batch",
]


def _uniform(shape, generator, device, low=0.0, high=1.0) -> torch.Tensor:
    if generator is None:
        u = torch.rand(shape, device=device)
    else:
        u = torch.rand(shape, generator=generator, device=generator.device).to(device)
    return low + (high - low) * u


def _normal(shape, generator, device) -> torch.Tensor:
    if generator is None:
        return torch.randn(shape, device=device)
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


class Augmentation(Configurable):
    """Base class: ``aug(x, generator=None)`` returns an augmented copy of the batch ``x``."""

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
            raise TypeError(f"{type(self).__name__} expects a floating-point tensor batch")
        return self.apply(x, generator)

    def apply(self, x, generator):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        cfg = getattr(self, "config", {})
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in cfg.items())})"


class Identity(Augmentation):
    """No augmentation (both views equal the input)."""

    def __init__(self):
        pass

    def apply(self, x, generator):
        return x


class Jitter(Augmentation):
    """2-D points: ``x * (1 + scale * u) + std * noise`` with u ~ U(-1, 1) per sample."""

    def __init__(self, std: float = 0.05, scale: float = 0.05):
        check_number(std, "std", min=0)
        check_number(scale, "scale", min=0)
        self.std, self.scale = float(std), float(scale)

    def apply(self, x, generator):
        n = x.shape[0]
        s = 1 + self.scale * _uniform((n,) + (1,) * (x.ndim - 1), generator, x.device, -1, 1)
        return x * s + self.std * _normal(x.shape, generator, x.device)


class VectorNoise(Augmentation):
    """Feature vectors: Gaussian noise (``std`` times each batch feature's std) and dropout of
    a random fraction ``drop`` of the features (set to 0)."""

    def __init__(self, std: float = 0.1, drop: float = 0.1):
        check_number(std, "std", min=0)
        check_number(drop, "drop", min=0, max=1, max_open=True, hint="the fraction of features set to 0")
        self.std, self.drop = float(std), float(drop)

    def apply(self, x, generator):
        scale = x.std(0, keepdim=True) if x.shape[0] > 1 else torch.ones_like(x[:1])
        out = x + self.std * scale * _normal(x.shape, generator, x.device)
        if self.drop > 0:
            out = out * (_uniform(x.shape, generator, x.device) >= self.drop)
        return out


class ImageAugment(Augmentation):
    """Small images (N, C, H, W) or (N, H, W).

    A random affine map per image: shift by up to ``shift`` pixels in each direction, rotation
    by up to ``rotate`` degrees, zoom by a factor in [1 - zoom, 1 + zoom] (bilinear
    ``grid_sample``, zero outside); then additive Gaussian noise of std ``noise`` (pixels are
    assumed to be in [0, 1]; the result is clamped to [0, 1] when ``clamp``); then, with
    probability ``erase``, a random rectangle with sides up to ``erase_size`` of the image
    side is set to 0 (random erasing / cutout).
    """

    def __init__(
        self,
        shift: float = 1.0,
        rotate: float = 10.0,
        zoom: float = 0.1,
        noise: float = 0.05,
        erase: float = 0.25,
        erase_size: float = 0.4,
        clamp: bool = True,
    ):
        for name, v in (("shift", shift), ("rotate", rotate), ("noise", noise)):
            check_number(v, name, min=0)
        check_number(zoom, "zoom", min=0, max=1, max_open=True)
        check_number(erase, "erase", min=0, max=1, hint="the probability of erasing a patch")
        check_number(erase_size, "erase_size", min=0, max=1, hint="the patch's side as a fraction of the image")
        check_bool(clamp, "clamp")
        self.shift, self.rotate, self.zoom, self.noise = float(shift), float(rotate), float(zoom), float(noise)
        self.erase, self.erase_size, self.clamp = float(erase), float(erase_size), bool(clamp)

    def apply(self, x, generator):
        squeeze = x.ndim == 3
        if squeeze:
            x = x[:, None]
        if x.ndim != 4:
            raise ValueError(f"ImageAugment expects (N, C, H, W) or (N, H, W), got {tuple(x.shape)}")
        n, _, h, w = x.shape
        dev = x.device
        out = x
        if self.shift or self.rotate or self.zoom:
            ang = math.radians(self.rotate) * _uniform((n,), generator, dev, -1, 1)
            s = 1 + self.zoom * _uniform((n,), generator, dev, -1, 1)
            # grid coordinates are in [-1, 1]: one pixel is 2 / size
            tx = self.shift * 2 / w * _uniform((n,), generator, dev, -1, 1)
            ty = self.shift * 2 / h * _uniform((n,), generator, dev, -1, 1)
            cos, sin = torch.cos(ang) / s, torch.sin(ang) / s
            theta = torch.stack(
                [torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1
            ).to(x.dtype)  # (N, 2, 3)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if self.noise:
            out = out + self.noise * _normal(out.shape, generator, dev)
        if self.clamp:
            out = out.clamp(0, 1)
        if self.erase and self.erase_size:
            eh = (_uniform((n,), generator, dev) * self.erase_size * h).ceil()
            ew = (_uniform((n,), generator, dev) * self.erase_size * w).ceil()
            y0 = (_uniform((n,), generator, dev) * (h - eh + 1)).floor()
            x0 = (_uniform((n,), generator, dev) * (w - ew + 1)).floor()
            on = _uniform((n,), generator, dev) < self.erase
            rows = torch.arange(h, device=dev)[None, :]
            cols = torch.arange(w, device=dev)[None, :]
            rmask = (rows >= y0[:, None]) & (rows < (y0 + eh)[:, None])  # (N, H)
            cmask = (cols >= x0[:, None]) & (cols < (x0 + ew)[:, None])  # (N, W)
            box = rmask[:, :, None] & cmask[:, None, :] & on[:, None, None]  # (N, H, W)
            out = out.masked_fill(box[:, None], 0.0)
        return out[:, 0] if squeeze else out


class SignalAugment(Augmentation):
    """1-D signals (N, C, L): shift along time by up to ``shift`` of the length (zero fill),
    scale the amplitude by a factor in [1 - scale, 1 + scale], add Gaussian noise of std
    ``noise`` times the batch's signal std."""

    def __init__(self, shift: float = 0.1, scale: float = 0.2, noise: float = 0.05):
        for name, v in (("shift", shift), ("scale", scale), ("noise", noise)):
            check_number(v, name, min=0)
        if shift >= 1:
            raise ValueError(f"shift is a fraction of the signal length and must be < 1, got {shift}")
        self.shift, self.scale, self.noise = float(shift), float(scale), float(noise)

    def apply(self, x, generator):
        squeeze = x.ndim == 2
        if squeeze:
            x = x[:, None]
        if x.ndim != 3:
            raise ValueError(f"SignalAugment expects (N, C, L) or (N, L), got {tuple(x.shape)}")
        n, _, length = x.shape
        dev = x.device
        out = x
        k = int(round(self.shift * length))
        if k > 0:
            d = (_uniform((n,), generator, dev) * (2 * k + 1)).floor().long() - k  # shifts in [-k, k]
            src = torch.arange(length, device=dev)[None, :] - d[:, None]  # (N, L)
            valid = (src >= 0) & (src < length)
            idx = src.clamp(0, length - 1)[:, None, :].expand_as(x)
            out = torch.gather(x, 2, idx) * valid[:, None, :]
        if self.scale:
            out = out * (1 + self.scale * _uniform((n, 1, 1), generator, dev, -1, 1))
        if self.noise:
            out = out + self.noise * x.std() * _normal(out.shape, generator, dev)
        return out[:, 0] if squeeze else out


AUGMENTATIONS = {
    "points": Jitter,
    "image": ImageAugment,
    "signal": SignalAugment,
    "vector": VectorNoise,
    "none": Identity,
}


def kind_of_batch(x: torch.Tensor) -> str:
    """Guess the data kind of a batch from its shape (as ``Dataset`` does)."""
    if x.ndim == 4 or (x.ndim == 3 and x.shape[1] > 1 and x.shape[1] == x.shape[2]):
        return "image"
    if x.ndim == 3:
        return "signal"
    if x.ndim == 2 and x.shape[1] == 2:
        return "points"
    return "vector"


class _Auto(Augmentation):
    """Pick the built-in augmentation for each batch's kind (see ``kind_of_batch``)."""

    def __init__(self):
        self._cache: dict[str, Augmentation] = {}

    def apply(self, x, generator):
        kind = kind_of_batch(x)
        if kind not in self._cache:
            self._cache[kind] = AUGMENTATIONS[kind]()
        return self._cache[kind](x, generator)

    def __repr__(self) -> str:
        return "auto"


class _UserCallable(Augmentation):
    def __init__(self, fn):
        self.fn = fn
        try:
            self._takes_generator = "generator" in inspect.signature(fn).parameters
        except (TypeError, ValueError):
            self._takes_generator = False

    def apply(self, x, generator):
        out = self.fn(x, generator=generator) if self._takes_generator else self.fn(x)
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            raise ValueError(
                f"the augmentation {self.fn!r} must return a tensor of the input's shape "
                f"{tuple(x.shape)}, got {getattr(out, 'shape', type(out).__name__)}"
            )
        return out

    def __repr__(self) -> str:
        return repr(self.fn)


def get_augmentation(spec="auto") -> Augmentation:
    """Resolve ``spec`` into an augmentation.

    ``"auto"`` (by batch shape), a kind / name (``"points"``, ``"image"``, ``"signal"``,
    ``"vector"``, ``"none"``), ``None`` (= ``"none"``), an ``Augmentation`` object, or a user
    callable ``f(x) -> x'`` (optionally ``f(x, generator=None)``).
    """
    if spec is None:
        return Identity()
    if isinstance(spec, Augmentation):
        return spec
    if isinstance(spec, str):
        if spec == "auto":
            return _Auto()
        if spec not in AUGMENTATIONS:
            raise ValueError(
                f"unknown augmentation {spec!r}; valid names: auto, {', '.join(AUGMENTATIONS)}, "
                "or pass a callable f(x) -> x'"
            )
        return AUGMENTATIONS[spec]()
    if callable(spec):
        return _UserCallable(spec)
    raise TypeError(
        f"augment must be 'auto', a name ({', '.join(AUGMENTATIONS)}), an Augmentation or a "
        f"callable, got {type(spec).__name__}"
    )
