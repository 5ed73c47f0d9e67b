"""Built-in OOD benchmarks made from the built-in data: nothing is downloaded.

``wb.ood.benchmark(name)`` returns a ``Benchmark``: ``id_train`` / ``id_test`` (labels
0..C_id−1) and a dict of named OOD sets (labels −1), each marked "near" or "far":

* ``"digits"``: scikit-learn's 8×8 digits. ID = every digit except ``ood_classes`` (default
  8 and 9). OOD: the held-out digits (near: same strokes, same pen, new shapes), **shuffled
  pixels** (far: each ID test image with its 64 pixels randomly permuted: same intensity
  histogram, no spatial structure), **uniform noise** (far: every pixel U[0, 1]) and **signals
  as images** (far: MNIST-1D-style signals resampled to 64 points, scaled to [0, 1] and reshaped
  to 8×8).
* ``"mnist1d"``: the 1-D signals. ID = classes except ``ood_classes`` (default 8, 9). OOD: the
  held-out classes (near), **shuffled time** (far: each ID test signal with its samples
  permuted) and **noise** (far: Gaussian noise with the ID data's mean and standard deviation).
* ``"gaussians8"``: eight 2-D Gaussians on a circle. ID = six of them; OOD: the held-out
  clusters (default 6 and 7; near, on the same circle) and an **outer ring** (far: points at 1.6-2
  times the circle's radius).
* ``"gaussian_grid"``: a 5×5 grid of Gaussians. ID = all modes except ``ood_classes`` (default
  the centre mode 12: a hole surrounded by ID data, the hardest near case) and an **outer ring**
  (far).

Every OOD set is the same size as ``id_test`` unless it is a held-out class set. Everything is
seeded by ``seed`` (no global RNG).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from .. import data as wbdata
from .._checks import check_seed
from ..data.dataset import Dataset

BENCHMARKS = ("digits", "mnist1d", "gaussians8", "gaussian_grid")
_DEFAULT_OOD = {"digits": [8, 9], "mnist1d": [8, 9], "gaussians8": [6, 7], "gaussian_grid": [12]}

__all__ = ["Benchmark", "BENCHMARKS", "benchmark", "shuffle_pixels"]


@dataclass(frozen=True, eq=False)
class Benchmark:
    """An OOD benchmark: ``id_train``, ``id_test`` and named ``ood`` sets (label −1).

    ``kinds[name]`` is "near" or "far"; ``ood_classes`` the held-out original labels;
    ``label_map`` the original label of every ID class.
    """

    name: str
    id_train: Dataset
    id_test: Dataset
    ood: dict[str, Dataset]
    kinds: dict[str, str]
    ood_classes: tuple[int, ...]
    label_map: tuple[int, ...]
    description: str = field(default="", repr=False)

    @property
    def n_classes(self) -> int:
        return len(self.label_map)

    def __repr__(self) -> str:
        sets = ", ".join(f"{k!r} ({self.kinds[k]}, n={len(v)})" for k, v in self.ood.items())
        return (
            f"Benchmark({self.name!r}: {self.n_classes} ID classes {list(self.label_map)}, "
            f"id_train n={len(self.id_train)}, id_test n={len(self.id_test)}; OOD: {sets})"
        )


def shuffle_pixels(ds: Dataset, *, seed: int = 0, name: str | None = None) -> Dataset:
    """Every sample of ``ds`` with its values randomly permuted (its own permutation per sample),
    labelled −1. Keeps each sample's value histogram, destroys its spatial / temporal structure."""
    if not isinstance(ds, Dataset):
        raise TypeError(f"shuffle_pixels takes a wb.data.Dataset, got {type(ds).__name__}")
    g = torch.Generator().manual_seed(check_seed(seed))
    flat = ds.x.detach().cpu().reshape(len(ds), -1)
    perm = torch.rand(flat.shape, generator=g).argsort(1)
    x = torch.gather(flat, 1, perm).reshape(ds.x.shape)
    return Dataset(x, torch.full((len(ds),), -1, dtype=torch.int64), name=name or f"{ds.name}[shuffled]",
                   kind=ds.kind, classes=ds.classes, meta={"source": ds.name, "ood": "shuffled"})


def _ood(x: np.ndarray | torch.Tensor, like: Dataset, name: str, how: str) -> Dataset:
    x = torch.as_tensor(np.asarray(x, dtype=np.float32)) if not isinstance(x, torch.Tensor) else x.float()
    return Dataset(x, torch.full((x.shape[0],), -1, dtype=torch.int64), name=name, kind=like.kind,
                   classes=like.classes, meta={"ood": how})


def _ring(n: int, radius: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    ang = rng.uniform(0, 2 * np.pi, n)
    r = rng.uniform(*radius, n)
    return np.stack([r * np.cos(ang), r * np.sin(ang)], 1)


def benchmark(name: str, *, ood_classes=None, n: int | None = None, seed: int = 0,
              frac: float = 0.8) -> Benchmark:
    """Build a built-in OOD benchmark (see the module docstring for what each holds).

    ``name``: "digits", "mnist1d", "gaussians8" or "gaussian_grid". ``ood_classes``: original
    labels to hold out (near OOD). ``n``: samples of the underlying data set (default: its
    default). ``frac``: share of the ID samples used for training. ``seed``: one seed for the
    data, the split and the synthetic OOD sets.
    """
    if not isinstance(name, str) or name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; valid: {', '.join(BENCHMARKS)}")
    check_seed(seed)
    held = list(_DEFAULT_OOD[name] if ood_classes is None else ood_classes)
    rng = np.random.default_rng(seed + 1)
    base = wbdata.load(name, n=n, seed=seed)
    id_train, id_test, near = wbdata.ood_split(base, held, frac=frac, seed=seed)
    m = len(id_test)
    held_name = "-".join(str(c) for c in held)
    ood: dict[str, Dataset] = {}
    kinds: dict[str, str] = {}
    if name == "digits":
        ood[f"digits {held_name}"] = replace(near, name=f"digits {held_name}")
        kinds[f"digits {held_name}"] = "near"
        ood["shuffled pixels"] = shuffle_pixels(id_test, seed=seed + 2, name="shuffled pixels")
        ood["uniform noise"] = _ood(rng.uniform(0, 1, (m, *id_test.shape)), id_test, "uniform noise", "noise")
        sig = wbdata.load("mnist1d", n=m, seed=seed + 3).x[:, 0].numpy()          # (m, L)
        grid = np.linspace(0, sig.shape[1] - 1, 64)
        res = np.stack([np.interp(grid, np.arange(sig.shape[1]), s) for s in sig])
        lo, hi = res.min(1, keepdims=True), res.max(1, keepdims=True)
        res = (res - lo) / np.maximum(hi - lo, 1e-8)
        ood["signals as images"] = _ood(res.reshape(m, *id_test.shape), id_test, "signals as images", "signals")
        kinds.update({"shuffled pixels": "far", "uniform noise": "far", "signals as images": "far"})
        desc = "8x8 digits: held-out digits (near), shuffled pixels, uniform noise, 1-D signals as images (far)"
    elif name == "mnist1d":
        ood[f"mnist1d {held_name}"] = replace(near, name=f"mnist1d {held_name}")
        kinds[f"mnist1d {held_name}"] = "near"
        ood["shuffled time"] = shuffle_pixels(id_test, seed=seed + 2, name="shuffled time")
        mu, sd = float(id_train.x.mean()), float(id_train.x.std())
        ood["noise"] = _ood(rng.normal(mu, sd, (m, *id_test.shape)), id_test, "noise", "noise")
        kinds.update({"shuffled time": "far", "noise": "far"})
        desc = "MNIST-1D-style signals: held-out classes (near), time-shuffled signals and noise (far)"
    else:
        label = "clusters" if name == "gaussians8" else "modes"
        ood[f"held-out {label} {held_name}"] = replace(near, name=f"held-out {label} {held_name}")
        kinds[f"held-out {label} {held_name}"] = "near"
        radius = float(base.x.norm(dim=1).max())
        ood["outer ring"] = _ood(_ring(m, (1.6 * radius, 2.0 * radius), rng), id_test, "outer ring", "ring")
        kinds["outer ring"] = "far"
        desc = f"2-D {name}: held-out {label} (near), a ring outside the data (far)"
    return Benchmark(
        name=name, id_train=id_train, id_test=id_test, ood=ood, kinds=kinds,
        ood_classes=tuple(int(c) for c in held),
        label_map=tuple(int(c) for c in id_train.meta.get("label_map", range(id_train.n_classes))),
        description=desc,
    )
