"""Built-in data sets, generated or shipped with scikit-learn: nothing is downloaded.

2-D toys are centred and divided by one global scale (the per-axis standard deviation of the
noise-free shape), so they sit at unit scale without distorting their shape; that is the
scale diffusion schedules assume. ``digits`` are scikit-learn's 1797 real 8x8 images scaled
to [0, 1]. ``mnist1d`` is an MNIST-1D-style set of 1-D signals generated here from ten
hand-made templates with the published recipe's steps (pad, scale, shift, shear, correlated
and i.i.d. noise, resample to 40 points); the templates are our own, so accuracies are
comparable in spirit, not digit-for-digit, with Greydanus' MNIST-1D. ``multi_digits`` is a
small multi-label set: 8x16 images holding one or two of those digits, with (N, 10) 0/1 labels.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._checks import check_int, check_number, check_seed
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


def _rng(n, seed) -> np.random.Generator:
    """Check the two arguments every generator takes and return its private RNG."""
    check_int(n, "n", min=1, hint="the number of samples to generate")
    return np.random.default_rng(check_seed(seed))


def _noise(value, name: str = "noise") -> float:
    return check_number(value, name, min=0, hint="a standard deviation (0 = no noise)")


def _positive(value, name: str, what: str) -> float:
    return check_number(value, name, min=0, min_open=True, hint=what)


# --------------------------------------------------------------------------- 2-D toys
def moons(n: int = DEFAULT_N, seed: int = 0, noise: float = 0.08) -> Dataset:
    """Two interleaving half circles (label = moon)."""
    rng = _rng(n, seed)
    noise = _noise(noise)
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
    """Two concentric circles (label 0 = outer, 1 = inner); ``factor`` = inner / outer radius."""
    rng = _rng(n, seed)
    noise = _noise(noise)
    factor = check_number(factor, "factor", min=0, max=1, min_open=True, max_open=True,
                          hint="the inner circle's radius relative to the outer one, e.g. 0.5")
    y = _balanced_labels(n, 2, rng)
    t = rng.uniform(0, 2 * math.pi, n)
    r = np.where(y == 0, 1.0, factor)
    x = np.stack([r * np.cos(t), r * np.sin(t)], 1) + noise * rng.standard_normal((n, 2))
    scale = math.sqrt((1 + factor**2) / 4)
    return _finish(x / scale, y, "circles", "points", ["outer", "inner"], {"noise": noise, "factor": factor})


def gaussians8(n: int = DEFAULT_N, seed: int = 0, radius: float = 2.0, std: float = 0.1, weights=None) -> Dataset:
    """Eight Gaussians on a circle (label = mode).

    ``weights``: 8 non-negative mode weights (normalised) for an imbalanced mixture, e.g.
    ``(1, 1, 1, 1, 1, 1, 0.1, 0.1)`` makes modes 6 and 7 rare; each mode then gets exactly its
    share of the ``n`` samples (largest remainders first). Default: balanced.
    """
    rng = _rng(n, seed)
    radius = _positive(radius, "radius", "the radius of the circle the modes sit on, e.g. 2.0")
    std = _positive(std, "std", "each mode's standard deviation, e.g. 0.1")
    if weights is None:
        y = _balanced_labels(n, 8, rng)
    else:
        w = _mode_weights(weights, 8)
        y = _weighted_labels(n, w, rng)
    ang = np.arange(8) * 2 * math.pi / 8
    centres = radius * np.stack([np.cos(ang), np.sin(ang)], 1)
    scale = math.sqrt(radius**2 / 2 + std**2)
    x = centres[y] + std * rng.standard_normal((n, 2))
    meta = {"centres": torch.tensor(centres / scale, dtype=torch.float32), "std": std / scale}
    if weights is not None:
        meta["weights"] = torch.tensor(w, dtype=torch.float32)
    return _finish(x / scale, y, "gaussians8", "points", [f"mode {i}" for i in range(8)], meta)


def _mode_weights(weights, k: int) -> np.ndarray:
    hint = f"pass {k} non-negative mode weights, e.g. (1, 1, 1, 1, 1, 1, 0.1, 0.1)"
    if isinstance(weights, (str, bytes)) or not hasattr(weights, "__len__"):
        raise TypeError(f"weights must be a sequence of {k} numbers, got {weights!r}; {hint}")
    if len(weights) != k:
        raise ValueError(f"weights must hold {k} numbers (one per mode), got {len(weights)}; {hint}")
    w = np.array([check_number(v, f"weights[{i}]", min=0, hint=hint) for i, v in enumerate(weights)], dtype=np.float64)
    if w.sum() <= 0:
        raise ValueError(f"weights must not all be zero; {hint}")
    return w / w.sum()


def _weighted_labels(n: int, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exactly round(n·w) labels per class (largest remainders take the leftovers), shuffled."""
    quota = n * w
    take = np.floor(quota).astype(int)
    short = n - int(take.sum())
    take[np.argsort(-(quota - take), kind="stable")[:short]] += 1
    y = np.repeat(np.arange(len(w)), take)
    rng.shuffle(y)
    return y


def gaussian_grid(n: int = DEFAULT_N, seed: int = 0, k: int = 5, spacing: float = 2.0, std: float = 0.05) -> Dataset:
    """A k x k grid of isotropic Gaussians (label = mode), as in the mode-interpolation paper.

    Modes sit at ``spacing * (i, j)`` centred on the origin with standard deviation ``std``;
    everything is divided by the per-axis standard deviation of the mixture
    ``sqrt(std^2 + spacing^2 (k^2 - 1) / 12)``. With the defaults (k=5, spacing 2, std 0.05)
    that is the paper's "gaussian25": mode spacing 0.707, per-mode std 0.0177.
    ``meta`` holds the scaled ``centres`` (k*k, 2), ``spacing`` and ``std``.
    """
    rng = _rng(n, seed)
    k = check_int(k, "k", min=2, hint="the grid is k x k modes, e.g. k=5")
    spacing = _positive(spacing, "spacing", "the distance between neighbouring modes, e.g. 2.0")
    std = _positive(std, "std", "each mode's standard deviation, e.g. 0.05")
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
    rng = _rng(n, seed)
    noise = _noise(noise)
    n_bins = check_int(n_bins, "n_bins", min=1, hint="the number of labelled segments, e.g. 4")
    t = 1.5 * math.pi * (1 + 2 * rng.uniform(0, 1, n))
    x = np.stack([t * np.cos(t), t * np.sin(t)], 1) + noise * rng.standard_normal((n, 2))
    y = np.minimum(((t - 1.5 * math.pi) / (3 * math.pi) * n_bins).astype(np.int64), n_bins - 1)
    return _finish(x / 7.5, y, "swiss_roll", "points", [f"segment {i}" for i in range(n_bins)], {"noise": noise})


def spirals(n: int = DEFAULT_N, seed: int = 0, arms: int = 2, noise: float = 0.05, turns: float = 1.5) -> Dataset:
    """Interleaved spiral arms (label = arm); ``turns`` = turns of each arm."""
    rng = _rng(n, seed)
    arms = check_int(arms, "arms", min=1, hint="the number of spiral arms (= classes), e.g. 2")
    noise = _noise(noise)
    turns = _positive(turns, "turns", "how many times each arm winds around the centre, e.g. 1.5")
    y = _balanced_labels(n, arms, rng)
    r = np.sqrt(rng.uniform(0, 1, n))
    theta = r * turns * 2 * math.pi + y * 2 * math.pi / arms
    x = np.stack([r * np.cos(theta), r * np.sin(theta)], 1) + noise * rng.standard_normal((n, 2))
    return _finish(x / 0.5, y, "spirals", "points", [f"arm {i}" for i in range(arms)], {"noise": noise})


def checkerboard(n: int = DEFAULT_N, seed: int = 0, cells: int = 4) -> Dataset:
    """Uniform points on the dark squares of a ``cells`` x ``cells`` board (label = square)."""
    rng = _rng(n, seed)
    cells = check_int(cells, "cells", min=2, hint="the board has cells x cells squares, e.g. 4")
    dark = [(i, j) for i in range(cells) for j in range(cells) if (i + j) % 2 == 0]
    y = _balanced_labels(n, len(dark), rng)
    ij = np.asarray(dark, dtype=np.float64)[y]
    x = ij + rng.uniform(0, 1, (n, 2)) - cells / 2
    scale = math.sqrt((cells**2) / 12)
    return _finish(x / scale, y, "checkerboard", "points", [f"square {i}" for i in range(len(dark))], {"cells": cells})


# --------------------------------------------------------------------------- structured vectors
def subspaces(n: int = DEFAULT_N, seed: int = 0, dim: int = 16, k: int = 3, d: int = 2, noise: float = 0.0) -> Dataset:
    """A union of ``k`` mutually orthogonal ``d``-dimensional linear subspaces of R^``dim``
    (label = subspace), the mixture of low-rank Gaussians (MoLRG) of Wang, Zhang, Zhang, Chen,
    Ma & Qu 2024, "Diffusion Models Learn Low-Dimensional Distributions via Subspace Clustering".

    One random orthogonal ``dim`` × ``dim`` matrix is drawn and subspace j gets its columns
    j·d..(j+1)·d − 1 (as the paper's code does); a sample of subspace j is U_j a with
    a ~ N(0, s² I_d), s = √(dim/d), so that E‖x‖²/dim = 1 (the unit scale diffusion schedules
    assume), plus isotropic ``noise`` (a standard deviation; 0 = exactly on the subspaces).
    ``meta["bases"]``: the (k, dim, d) orthonormal bases U_j; ``meta["scale"]``: s.
    """
    rng = _rng(n, seed)
    dim = check_int(dim, "dim", min=2, hint="the ambient dimension, e.g. 16")
    k = check_int(k, "k", min=1, hint="the number of subspaces (= classes), e.g. 3")
    d = check_int(d, "d", min=1, hint="each subspace's dimension, e.g. 2")
    if k * d > dim:
        raise ValueError(f"k * d = {k * d} orthogonal directions do not fit in dim = {dim}; lower k or d, or raise dim")
    noise = _noise(noise)
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    q = q * np.sign(np.diag(r))  # a Haar-random orthogonal matrix
    bases = np.stack([q[:, j * d:(j + 1) * d] for j in range(k)])  # (k, dim, d)
    y = _balanced_labels(n, k, rng)
    s = math.sqrt(dim / d)
    a = s * rng.standard_normal((n, d))
    x = np.einsum("nij,nj->ni", bases[y], a) + noise * rng.standard_normal((n, dim))
    return _finish(x, y, "subspaces", "vector", [f"subspace {j}" for j in range(k)],
                   {"bases": torch.tensor(bases, dtype=torch.float32), "scale": s, "noise": noise, "d": d})


def sequences(n: int = DEFAULT_N, seed: int = 0, length: int = 16, vocab: int = 6, branching: int = 2) -> Dataset:
    """Categorical sequences from a sparse first-order Markov chain (for discrete diffusion).

    A chain over ``vocab`` tokens is drawn once from ``seed``: each token has ``branching``
    allowed successors (random, other than itself unless ``branching`` = ``vocab``, with
    Dirichlet(2) weights) and the start token is uniform.
    ``x``: (N, length) float tensor of integer tokens; label = the first token.
    ``meta``: ``vocab``, ``transition`` (vocab × vocab) and ``initial`` (vocab,) probabilities, so
    a sample's log-likelihood and the share of its transitions the chain allows can be checked.
    """
    rng = _rng(n, seed)
    length = check_int(length, "length", min=2, hint="tokens per sequence, e.g. 16")
    vocab = check_int(vocab, "vocab", min=2, hint="the number of distinct tokens, e.g. 6")
    branching = check_int(branching, "branching", min=1, max=vocab, hint=f"allowed successors per token, 1..{vocab}")
    P = np.zeros((vocab, vocab))
    for i in range(vocab):
        others = np.array([j for j in range(vocab) if j != i]) if branching < vocab else np.arange(vocab)
        succ = rng.choice(others, size=branching, replace=False)
        P[i, succ] = rng.dirichlet(np.full(branching, 2.0))
    init = np.full(vocab, 1.0 / vocab)
    x = np.empty((n, length), dtype=np.int64)
    x[:, 0] = rng.choice(vocab, size=n, p=init)
    cum = np.cumsum(P, 1)
    for j in range(1, length):
        u = rng.uniform(size=n)
        x[:, j] = np.minimum((u[:, None] > cum[x[:, j - 1]]).sum(1), vocab - 1)
    return _finish(x.astype(np.float32), x[:, 0], "sequences", "vector", [f"starts with {i}" for i in range(vocab)],
                   {"vocab": vocab, "transition": torch.tensor(P, dtype=torch.float32),
                    "initial": torch.tensor(init, dtype=torch.float32)})


# --------------------------------------------------------------------------- real images
def digits(n: int | None = None, seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits: (N, 1, 8, 8) in [0, 1], 1797 samples.

    ``n`` <= 1797 takes a stratified random subset of exactly ``n`` samples (each class in
    proportion, the remainder going to the classes with the largest fractional share);
    more than 1797 is refused (these are real images: there are no more).
    ``.flat`` gives the (N, 64) view.
    """
    from sklearn.datasets import load_digits

    check_seed(seed)
    d = load_digits()
    total = len(d.target)
    if n is not None:
        check_int(n, "n", min=1, max=total,
                  hint=f"digits has {total} real images; pass n <= {total} or n=None for all of them")
    x = d.images.astype(np.float32)[:, None] / 16.0
    y = d.target.astype(np.int64)
    ds = _finish(x, y, "digits", "image", [str(i) for i in range(10)])
    if n is not None and n < total:
        ds = ds.subset(_stratified_subset(ds.y, n, seed))
    return ds


def multi_digits(n: int | None = None, seed: int = 0, p_two: float = 0.5) -> Dataset:
    """A small multi-label set made from scikit-learn's digits: (N, 1, 8, 16) images in [0, 1]
    holding one or two digits side by side, labels (N, 10) of 0/1 (which digits are present).

    The 1797 real digit images are shuffled (``seed``) and dealt out in order: each composite
    takes two of them with probability ``p_two``, else one (placed in a random half; the other
    half is blank). **Every source image is used exactly once**, so no split of this set shares
    a digit image between its parts. Two digits of the same class give one positive label.
    With the default ``p_two = 0.5`` there are about 1170 composites, about half of them with
    one positive label and half with two; ``n`` takes the first ``n`` of them (``n=None``: all). ``meta["n_digits"]`` holds how many digits each image has.
    """
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(check_seed(seed))
    p_two = check_number(p_two, "p_two", min=0, max=1,
                         hint="the probability that an image holds two digits instead of one, e.g. 0.5")
    d = load_digits()
    imgs = d.images.astype(np.float32) / 16.0  # (1797, 8, 8)
    order = rng.permutation(len(imgs))
    two = rng.random(len(imgs)) < p_two     # one draw per composite, in order
    slot = rng.integers(0, 2, len(imgs))    # where a lone digit goes
    groups, i = [], 0
    while i < len(order):
        k = 2 if (two[len(groups)] and i + 1 < len(order)) else 1
        groups.append(order[i : i + k])
        i += k
    total = len(groups)
    if n is not None:
        check_int(n, "n", min=1, max=total,
                  hint=f"with p_two={p_two} and seed={seed} the 1797 digit images make {total} composites; pass n <= {total} or n=None")
        groups = groups[:n]
    x = np.zeros((len(groups), 1, 8, 16), dtype=np.float32)
    y = np.zeros((len(groups), 10), dtype=np.int64)
    for j, g in enumerate(groups):
        if len(g) == 2:
            x[j, 0, :, :8], x[j, 0, :, 8:] = imgs[g[0]], imgs[g[1]]
        else:
            x[j, 0, :, 8 * slot[j] : 8 * slot[j] + 8] = imgs[g[0]]
        y[j, d.target[g]] = 1
    n_digits = torch.tensor([len(g) for g in groups])
    return _finish(x, y, "multi_digits", "image", [str(i) for i in range(10)],
                   {"p_two": p_two, "n_digits": n_digits})


def _stratified_subset(y: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Indices of exactly ``n`` samples, each class in proportion to its count (largest
    remainders get the leftover samples), drawn and shuffled with a generator seeded by ``seed``."""
    g = torch.Generator().manual_seed(seed)
    classes, counts = torch.unique(y, return_counts=True)
    quota = counts.double() * n / len(y)
    take = quota.floor().long()
    short = n - int(take.sum())
    if short:
        order = torch.argsort(-(quota - take), stable=True)
        take[order[:short]] += 1
    parts = []
    for c, k in zip(classes.tolist(), take.tolist()):
        idx = (y == c).nonzero().flatten()
        parts.append(idx[torch.randperm(idx.numel(), generator=g)[:k]])
    index = torch.cat(parts)
    return index[torch.randperm(index.numel(), generator=g)]


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
    rng = _rng(n, seed)
    length = check_int(length, "length", min=_TEMPLATES.shape[1],
                       hint=f"points per signal; the class templates have {_TEMPLATES.shape[1]} points, the default is 40")
    for name, v in (("corr_noise", corr_noise), ("iid_noise", iid_noise), ("shear", shear),
                    ("max_shift", max_shift)):
        check_number(v, name, min=0)
    if (not isinstance(scale_range, (tuple, list)) or len(scale_range) != 2):
        raise TypeError(f"scale_range must be a pair (low, high), got {scale_range!r}; e.g. (0.8, 1.2)")
    lo = check_number(scale_range[0], "scale_range[0]", min=0, min_open=True)
    hi = check_number(scale_range[1], "scale_range[1]", min=lo,
                      hint="scale_range is (low, high) with 0 < low <= high, e.g. (0.8, 1.2)")
    y = _balanced_labels(n, 10, rng)
    u = np.linspace(-1, 1, length)                             # output coordinates
    s = rng.uniform(lo, hi, size=(n, 1))
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
    "subspaces": subspaces,
    "sequences": sequences,
    "digits": digits,
    "mnist1d": mnist1d,
    "multi_digits": multi_digits,
}
