"""Built-in data sets, generated or shipped with scikit-learn: nothing is downloaded.

2-D toys are centred and divided by one global scale (the per-axis standard deviation of the
noise-free shape), so they sit at unit scale without distorting their shape; that is the
scale diffusion schedules assume. ``digits`` are scikit-learn's 1797 real 8x8 images scaled
to [0, 1]. ``mnist1d`` is an MNIST-1D-style set of 1-D signals generated here from ten
hand-made templates with the published recipe's steps (pad, scale, shift, shear, correlated
and i.i.d. noise, resample to 40 points); the templates are our own, so accuracies are
comparable in spirit, not digit-for-digit, with Greydanus' MNIST-1D.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .dataset import Dataset

DEFAULT_N = 2000


def _finish(x: np.ndarray, y: np.ndarray, name: str, kind: str, classes=None, meta=None) -> Dataset:
    return Dataset(
        torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
        torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)),
        name=name,
        kind=kind,
        classes=tuple(classes) if classes is not None else None,
        meta=meta or {},
    )


def _balanced_labels(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    y = np.arange(n) % k
    rng.shuffle(y)
    return y


def _normalise(x: np.ndarray, scale: float, centre=(0.0, 0.0)) -> np.ndarray:
    return (x - np.asarray(centre)) / scale


# --------------------------------------------------------------------------- 2-D toys
def moons(n: int = DEFAULT_N, seed: int = 0, noise: float = 0.08) -> Dataset:
    """Two interleaving half circles (label = moon)."""
    rng = np.random.default_rng(seed)
    y = _balanced_labels(n, 2, rng)
    t = rng.uniform(0, math.pi, n)
    x = np.where(
        y[:, None] == 0,
        np.stack([np.cos(t), np.sin(t)], 1),
        np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1),
    )
    x = x + noise * rng.standard_normal((n, 2))
    x = _normalise(x, 0.75, centre=(0.5, 0.25))
    return _finish(x, y, "moons", "points", ["upper", "lower"], {"noise": noise})


def circles(n: int = DEFAULT_N, seed: int = 0, noise: float = 0.04, factor: float = 0.5) -> Dataset:
    """Two concentric circles (label 0 = outer, 1 = inner)."""
    rng = np.random.default_rng(seed)
    y = _balanced_labels(n, 2, rng)
    t = rng.uniform(0, 2 * math.pi, n)
    r = np.where(y == 0, 1.0, factor)
    x = np.stack([r * np.cos(t), r * np.sin(t)], 1) + noise * rng.standard_normal((n, 2))
    scale = math.sqrt((1 + factor**2) / 4)
    return _finish(x / scale, y, "circles", "points", ["outer", "inner"], {"noise": noise, "factor": factor})


def gaussians8(n: int = DEFAULT_N, seed: int = 0, radius: float = 2.0, std: float = 0.1) -> Dataset:
    """Eight Gaussians on a circle (label = mode)."""
    rng = np.random.default_rng(seed)
    y = _balanced_labels(n, 8, rng)
    ang = np.arange(8) * 2 * math.pi / 8
    centres = radius * np.stack([np.cos(ang), np.sin(ang)], 1)
    scale = math.sqrt(radius**2 / 2 + std**2)
    x = centres[y] + std * rng.standard_normal((n, 2))
    return _finish(
        x / scale, y, "gaussians8", "points", [f"mode {i}" for i in range(8)],
        {"centres": torch.tensor(centres / scale, dtype=torch.float32), "std": std / scale},
    )


def gaussian_grid(n: int = DEFAULT_N, seed: int = 0, k: int = 5, spacing: float = 2.0, std: float = 0.05) -> Dataset:
    """A k x k grid of isotropic Gaussians (label = mode), as in the mode-interpolation paper.

    Modes sit at ``spacing * (i, j)`` centred on the origin with standard deviation ``std``;
    everything is divided by the per-axis standard deviation of the mixture
    ``sqrt(std^2 + spacing^2 (k^2 - 1) / 12)``. With the defaults (k=5, spacing 2, std 0.05)
    that is the paper's "gaussian25": mode spacing 0.707, per-mode std 0.0177.
    ``meta`` holds the scaled ``centres`` (k*k, 2), ``spacing`` and ``std``.
    """
    if k < 2:
        raise ValueError(f"k must be at least 2 for a grid, got {k}")
    rng = np.random.default_rng(seed)
    y = _balanced_labels(n, k * k, rng)
    offs = spacing * (np.arange(k) - (k - 1) / 2)
    centres = np.stack(np.meshgrid(offs, offs, indexing="ij"), -1).reshape(-1, 2)
    scale = math.sqrt(std**2 + spacing**2 * (k * k - 1) / 12)
    x = centres[y] + std * rng.standard_normal((n, 2))
    return _finish(
        x / scale, y, "gaussian_grid", "points", [f"mode {i}" for i in range(k * k)],
        {
            "centres": torch.tensor(centres / scale, dtype=torch.float32),
            "spacing": spacing / scale,
            "std": std / scale,
            "k": k,
        },
    )


def swiss_roll(n: int = DEFAULT_N, seed: int = 0, noise: float = 0.25, n_bins: int = 4) -> Dataset:
    """A 2-D Swiss roll; labels split the roll into ``n_bins`` segments along its length."""
    rng = np.random.default_rng(seed)
    t = 1.5 * math.pi * (1 + 2 * rng.uniform(0, 1, n))
    x = np.stack([t * np.cos(t), t * np.sin(t)], 1) + noise * rng.standard_normal((n, 2))
    y = np.minimum(((t - 1.5 * math.pi) / (3 * math.pi) * n_bins).astype(np.int64), n_bins - 1)
    return _finish(x / 7.5, y, "swiss_roll", "points", [f"segment {i}" for i in range(n_bins)], {"noise": noise})


def spirals(n: int = DEFAULT_N, seed: int = 0, arms: int = 2, noise: float = 0.05, turns: float = 1.5) -> Dataset:
    """Interleaved spiral arms (label = arm)."""
    rng = np.random.default_rng(seed)
    y = _balanced_labels(n, arms, rng)
    r = np.sqrt(rng.uniform(0, 1, n))
    theta = r * turns * 2 * math.pi + y * 2 * math.pi / arms
    x = np.stack([r * np.cos(theta), r * np.sin(theta)], 1) + noise * rng.standard_normal((n, 2))
    return _finish(x / 0.5, y, "spirals", "points", [f"arm {i}" for i in range(arms)], {"noise": noise})


def checkerboard(n: int = DEFAULT_N, seed: int = 0, cells: int = 4) -> Dataset:
    """Uniform points on the dark squares of a ``cells`` x ``cells`` board (label = square)."""
    rng = np.random.default_rng(seed)
    dark = [(i, j) for i in range(cells) for j in range(cells) if (i + j) % 2 == 0]
    y = _balanced_labels(n, len(dark), rng)
    ij = np.asarray(dark, dtype=np.float64)[y]
    x = ij + rng.uniform(0, 1, (n, 2)) - cells / 2
    scale = math.sqrt((cells**2) / 12)
    return _finish(x / scale, y, "checkerboard", "points", [f"square {i}" for i in range(len(dark))], {"cells": cells})


# --------------------------------------------------------------------------- real images
def digits(n: int | None = None, seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits: (N, 1, 8, 8) in [0, 1], 1797 samples.

    ``n`` < 1797 takes a stratified random subset. ``.flat`` gives the (N, 64) view.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.float32)[:, None] / 16.0
    y = d.target.astype(np.int64)
    ds = _finish(x, y, "digits", "image", [str(i) for i in range(10)])
    if n is not None and n < len(ds):
        ds, _ = ds.split(n / len(ds), seed=seed)
        from dataclasses import replace

        ds = replace(ds, name="digits")
    return ds


# --------------------------------------------------------------------------- 1-D signals
_TEMPLATES = np.array(
    [
        [0, 2, 4, 5, 5, 5, 5, 5, 5, 4, 2, 0],   # 0 plateau
        [0, 0, 0, 0, 6, 6, 0, 0, 0, 0, 0, 0],   # 1 narrow spike
        [5, 4, 3, 2, 1, 0, 0, 1, 2, 3, 4, 5],   # 2 valley
        [0, 5, 0, 0, 5, 0, 0, 5, 0, 0, 5, 0],   # 3 comb
        [0, 1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0],   # 4 ramp then drop
        [6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6],   # 5 two edges
        [0, 0, 0, 0, 0, 6, 5, 4, 3, 2, 1, 0],   # 6 drop then ramp down
        [0, 3, 6, 3, 0, -3, -6, -3, 0, 3, 6, 3],  # 7 wave
        [0, 4, 4, 0, 0, 4, 4, 0, 0, 4, 4, 0],   # 8 three blocks
        [-4, -4, -4, -4, 0, 0, 0, 0, 4, 4, 4, 4],  # 9 staircase
    ],
    dtype=np.float64,
) / 6.0


def mnist1d(
    n: int = 5000,
    seed: int = 0,
    length: int = 40,
    corr_noise: float = 0.25,
    iid_noise: float = 0.02,
    shear: float = 0.75,
    max_shift: float = 0.3,
    scale_range: tuple[float, float] = (0.8, 1.2),
) -> Dataset:
    """MNIST-1D-style signals: (N, 1, length), 10 classes, generated procedurally.

    Each sample: its class template (12 points) is padded (zeros), stretched by a random
    scale, shifted, sheared by a random linear ramp, and corrupted by smooth (correlated)
    noise and i.i.d. noise, then resampled to ``length`` points. Deterministic given ``seed``.
    """
    rng = np.random.default_rng(seed)
    y = _balanced_labels(n, 10, rng)
    u = np.linspace(-1, 1, length)                             # output coordinates
    s = rng.uniform(*scale_range, size=(n, 1))
    shift = rng.uniform(-max_shift, max_shift, size=(n, 1))
    v = (u[None, :] - shift) / s                               # (N, L) template coordinates
    # the template spans [-0.5, 0.5] inside a zero-padded window (the "pad" step)
    tpos = (v + 0.5) * (_TEMPLATES.shape[1] - 1)
    i0 = np.clip(np.floor(tpos).astype(int), 0, _TEMPLATES.shape[1] - 2)
    frac = np.clip(tpos - i0, 0, 1)
    t = _TEMPLATES[y]                                          # (N, 12)
    val = (1 - frac) * np.take_along_axis(t, i0, 1) + frac * np.take_along_axis(t, i0 + 1, 1)
    val = np.where((v >= -0.5) & (v <= 0.5), val, 0.0)
    slope = rng.uniform(-shear, shear, size=(n, 1))
    val = val + slope * u[None, :] * 0.5
    # correlated noise: white noise smoothed by a Gaussian kernel of width ~3 samples
    white = rng.standard_normal((n, length + 12))
    k = np.exp(-0.5 * (np.arange(-6, 7) / 2.0) ** 2)
    k /= np.sqrt((k**2).sum())
    smooth = np.stack([np.convolve(w, k, mode="valid") for w in white])[:, :length]
    val = val + corr_noise * smooth + iid_noise * rng.standard_normal((n, length))
    return _finish(
        val[:, None, :], y, "mnist1d", "signal", [str(i) for i in range(10)],
        {"length": length},
    )


BUILTIN = {
    "moons": moons,
    "circles": circles,
    "gaussians8": gaussians8,
    "gaussian_grid": gaussian_grid,
    "swiss_roll": swiss_roll,
    "spirals": spirals,
    "checkerboard": checkerboard,
    "digits": digits,
    "mnist1d": mnist1d,
}
