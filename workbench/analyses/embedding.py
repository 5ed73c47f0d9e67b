"""Embeddings and 2-D projections of them.

``embed(model, data)`` runs ``model.features`` (or any ``fn(model, x)``) over a data set in
evaluation mode without touching the model's mode or weights. ``project(z, method=...)`` fits a
2-D map (PCA, UMAP or t-SNE) and returns a ``Projection`` that can place new points (e.g.
prototypes, OOD samples) in the same map: exactly for PCA, with UMAP's own ``transform`` for
UMAP, and by a distance-weighted average of the nearest fitted points' coordinates for t-SNE
(which has no out-of-sample map).

**At scale** (see ``analyses/_projection_scale.py``): ``embed`` fills one preallocated output
in batches, in RAM or in a memory-mapped ``.npy`` file (``out=``, or ``memory=`` for a budget
above which it goes to a temporary file); ``project`` never copies the (N, d) features (float32
input is used as is; the finiteness check and PCA stream over row blocks), fits UMAP/t-SNE on a
sample and places the other rows with the map's ``transform`` (``sample=``), with progress bars.

``aligned_projections(zs, method=...)`` maps several embeddings of the same points (snapshots
of one fit, or two models) and aligns the maps (Procrustes: rotation/reflection, scale and shift
fitted on the shared points; one shared projection; or umap's AlignedUMAP), so a film over
training or a side-by-side comparison does not jump around.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .._device import model_device
from .._modes import eval_mode
from .._stream import RowWriter, parse_bytes, row_chunks, rows_for, shared_tensor
from ..data.dataset import Dataset
from ..data.embeddings import Embeddings
from ._projection_scale import KNNPlacer, choose_sample, pca_estimator, place_rest

PROJECTIONS = ("pca", "umap", "tsne")


@torch.no_grad()
def embed(model: nn.Module, data, *, fn=None, batch_size: int = 1024, out=None, memory=None) -> torch.Tensor:
    """Features of every sample of ``data`` as an (N, d) CPU float32 tensor: a ``wb.data.Embeddings``
    carrying the data's labels, class names and (for images) inputs, so that every
    features-only analysis and view can take it alone.

    ``fn(model, x)`` computes them (default ``model.features(x)``). The model (every submodule)
    runs in eval mode and is put back in the mode it was in.

    Large data: the result is allocated once and filled batch by batch (never twice the
    memory). ``out="z.npy"`` writes it to a memory-mapped ``.npy`` file instead (the returned
    tensor reads from it; reopen it later with ``wb.data.from_files`` or ``np.load(...,
    mmap_mode="r")``). ``memory`` (bytes or a string such as ``"2GB"``): a result larger than
    this goes to a temporary memory-mapped file, deleted when the tensor is freed.
    """
    if not isinstance(data, Dataset):
        if isinstance(data, torch.Tensor):
            data = Dataset(data.float() if not data.dtype.is_floating_point else data)
        else:
            raise TypeError(f"data must be a wb.data.Dataset or a tensor, got {type(data).__name__}")
    if fn is None:
        if not hasattr(model, "features"):
            raise TypeError(
                f"{type(model).__name__} has no features(x); pass fn=lambda model, x: ... to say "
                "which representation to embed"
            )
        fn = lambda m, x: m.features(x)  # noqa: E731
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if out is not None and not str(out).endswith(".npy"):
        raise ValueError(f"out must be a path ending in .npy (a memory-mapped numpy file), got {out!r}")
    writer = RowWriter(len(data), file=out, memory=None if memory is None else parse_bytes(memory))
    device = model_device(model)
    if data.device.type != "cpu" and data.device != device:
        raise ValueError(f"the model is on {device} but the data is on {data.device}; move one of them")
    with eval_mode(model):
        for i, x in row_chunks(data.x, batch_size):
            writer.write(i, fn(model, x.to(device)).detach())
    return _as_embeddings(writer.result(), data, model)


def _as_embeddings(z: torch.Tensor, data: Dataset, model) -> torch.Tensor:
    """``z`` as ``Embeddings`` with the data's labels, classes and image inputs (no copies);
    features that are not (N, d) stay a plain tensor."""
    if z.ndim != 2:
        return z
    meta = {"model": type(getattr(model, "module", model)).__name__, "data": data.name}
    images = data.x.cpu() if data.kind == "image" else None
    try:
        return Embeddings(z, data.y.cpu() if data.y is not None else None, images, None, meta, classes=data.classes)
    except ValueError:  # NaN/inf features: returned as they are, for the caller's check to report
        return z


def _as_numpy_2d(z, what="z") -> np.ndarray:
    """``z`` as an (N, d) float32 numpy array, sharing memory with it when it already is float32
    on the CPU (a tensor, memory-mapped or not); finiteness is checked in row blocks."""
    if isinstance(z, torch.Tensor):
        z = z.detach().cpu().numpy()
    z = np.asarray(z)
    if z.ndim != 2:
        raise ValueError(f"{what} must be an (N, d) array, got shape {z.shape}")
    if z.shape[0] < 3:
        raise ValueError(f"{what} needs at least 3 points to project, got {z.shape[0]}")
    z = z.astype(np.float32, copy=False)
    rows = rows_for(16 * 2**20, z.shape[1])
    for i in range(0, z.shape[0], rows):
        if not np.isfinite(z[i : i + rows]).all():
            raise ValueError(f"{what} contains NaN or inf; check the model's features")
    return z


@dataclass(frozen=True, eq=False)
class Projection:
    """A fitted 2-D map of an embedding. ``coords``: (N, 2) CPU tensor of the fitted points.

    ``transform(z_new)`` places new points in the same map. ``estimator`` is the fitted
    scikit-learn/umap object (for large data a ``ChunkedPCA``). ``fitted``: the (N, d) features
    (shared with the input, not copied). ``sample_index``: the rows the map was fitted on when it
    was fitted on a sample (the others were placed with ``transform``), else None.
    """

    coords: torch.Tensor
    method: str
    seed: int | None
    estimator: Any = field(repr=False, default=None)
    explained_variance: tuple[float, ...] | None = None
    fitted: torch.Tensor | None = field(repr=False, default=None)
    sample_index: torch.Tensor | None = field(repr=False, default=None)

    def transform(self, z) -> torch.Tensor:
        """Coordinates of new points ``z`` (M, d) in this map, as an (M, 2) tensor."""
        zn = np.asarray(z.detach().cpu().numpy() if isinstance(z, torch.Tensor) else z, dtype=np.float32)
        if zn.ndim != 2:
            raise ValueError(f"z must be (M, d), got shape {zn.shape}")
        d = self.fitted.shape[1]
        if zn.shape[1] != d:
            raise ValueError(f"this projection was fitted on {d}-dimensional features, got {zn.shape[1]}")
        return torch.as_tensor(np.asarray(self._placer()(zn), dtype=np.float32))

    def _placer(self):
        """The function placing (M, d) rows in this map (t-SNE: nearest fitted points)."""
        if self.method != "tsne":
            return self.estimator.transform
        fit, coords = self.fitted.numpy(), self.coords.numpy()
        if self.sample_index is not None:
            fit, coords = fit[self.sample_index.numpy()], coords[self.sample_index.numpy()]
        return KNNPlacer(fit, coords)

    def __repr__(self) -> str:
        ev = ""
        if self.explained_variance:
            ev = ", explained variance " + "/".join(f"{v:.1%}" for v in self.explained_variance)
        smp = "" if self.sample_index is None else f", fitted on a sample of {len(self.sample_index)}"
        return f"Projection({self.method}, n={self.coords.shape[0]}, seed={self.seed}{ev}{smp})"


def project(z, method: str = "pca", *, seed: int = 0, sample="auto", solver: str = "auto",
            progress: bool = False, **options) -> Projection:
    """Fit a 2-D map of the (N, d) embedding ``z``: ``"pca"``, ``"umap"`` or ``"tsne"``.

    ``options`` go to the estimator (e.g. ``n_neighbors=15`` for UMAP, ``perplexity=30`` for
    t-SNE). UMAP's first fit in a new Python process compiles numba code (10-25 s once).

    Large data (``analyses/_projection_scale.py``): ``z`` is not copied when it is float32 on
    the CPU (a memory-mapped tensor works too). ``sample``: ``"auto"`` (UMAP above 100 000 rows
    and t-SNE above 20 000 fit on a random sample and place the rest, with a warning), an int
    (fit on that many random rows, seeded by ``seed``), or None (fit on every row).
    ``solver`` (PCA): ``"auto"`` (scikit-learn's PCA for up to 10⁷ values, then a streamed exact
    PCA), ``"full"``, ``"randomized"`` or ``"chunked"``. ``progress``: progress bars for UMAP's
    epochs and for placing the rest of a sampled map.
    """
    if method not in PROJECTIONS:
        raise ValueError(f"unknown projection {method!r}; valid: {', '.join(PROJECTIONS)}")
    if solver != "auto" and method != "pca":
        raise ValueError(f"solver= chooses the PCA solver; {method} takes none")
    zn = _as_numpy_2d(z)
    idx = choose_sample(zn.shape[0], method, sample, seed)
    zfit = zn if idx is None else zn[idx]
    explained = None
    if method == "pca":
        est = pca_estimator(zfit, solver, seed, options)
        coords_fit = est.transform(zfit)
        explained = tuple(float(v) for v in est.explained_variance_ratio_)
        placer = est.transform
    elif method == "umap":
        from .._optional import require

        umap = require("umap", "UMAP projections")
        opts = dict(n_components=2, random_state=seed, n_jobs=1)
        if progress:
            opts["tqdm_kwds"] = {"disable": False, "desc": "UMAP fit (epochs)"}
        opts.update(options)
        est = umap.UMAP(**opts)
        coords_fit = est.fit_transform(zfit)
        est.tqdm_kwds = {**(est.tqdm_kwds or {}), "disable": True}  # no bar per transform block
        placer = est.transform
    else:
        from sklearn.manifold import TSNE

        opts = dict(n_components=2, random_state=seed, init="pca", perplexity=min(30.0, (len(zfit) - 1) / 3))
        opts.update(options)
        est = None
        coords_fit = TSNE(**opts).fit_transform(zfit)
        placer = KNNPlacer(zfit, coords_fit) if idx is not None else None
    if idx is None:
        coords = np.asarray(coords_fit, dtype=np.float32)
    else:
        coords = np.empty((zn.shape[0], 2), dtype=np.float32)
        coords[idx] = coords_fit
        place_rest(placer, zn, coords, idx, progress=progress, desc=f"{method}: placing the other rows")
    return Projection(
        torch.as_tensor(coords), method, seed, est, explained, shared_tensor(zn),
        None if idx is None else torch.as_tensor(idx),
    )


# --------------------------------------------------------------------------- aligned projections
ALIGNMENTS = ("procrustes", "shared", "none")


def _knn_place(fitted: np.ndarray, coords: np.ndarray, z_new: np.ndarray, k: int = 10) -> np.ndarray:
    """Place new points at the inverse-distance-weighted mean of their k nearest fitted points."""
    return KNNPlacer(fitted, coords, k)(z_new)


def procrustes_fit(source, target, *, scale: bool = True, reflection: bool = True):
    """Similarity transform (R, s, t) minimising ‖s·source·R + t - target‖ (both (N, 2)).

    ``R`` is orthogonal (a rotation, or also a reflection when ``reflection``), ``s`` a scale
    (1 when not ``scale``), ``t`` a shift. Returns numpy arrays (R (2, 2), s, t (2,)).
    """
    x = np.asarray(source, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"source and target must have the same shape, got {x.shape} and {y.shape}")
    mx, my = x.mean(0), y.mean(0)
    x0, y0 = x - mx, y - my
    u, sv, vt = np.linalg.svd(x0.T @ y0)
    if not reflection and np.linalg.det(u @ vt) < 0:
        u[:, -1] *= -1
        sv[-1] *= -1
    r = u @ vt
    s = float(sv.sum() / max((x0**2).sum(), 1e-300)) if scale else 1.0
    t = my - s * mx @ r
    return r, s, t


@dataclass(frozen=True, eq=False)
class AlignedProjections:
    """2-D maps of several embeddings of the same N points, aligned so they do not jump around.

    ``coords``: (T, N, 2) tensor, one aligned map per item (training snapshot or model);
    ``names``: a label per item (e.g. ``"step 200"`` or a model name). ``projections[i]`` is the
    item's own fitted ``Projection`` (None for aligned UMAP) and ``rotations``/``scales``/
    ``shifts`` the similarity transform taking its coordinates into the aligned frame.
    ``transform(i, z_new)`` places new points of item i's embedding space (e.g. that snapshot's
    prototypes) in the aligned map.
    """

    coords: torch.Tensor
    names: tuple[str, ...]
    method: str
    align: str
    projections: tuple[Any, ...] = field(repr=False)
    rotations: torch.Tensor = field(repr=False)
    scales: torch.Tensor = field(repr=False)
    shifts: torch.Tensor = field(repr=False)
    fitted: tuple[torch.Tensor, ...] = field(repr=False)
    seed: int | None = 0

    def __len__(self) -> int:
        return self.coords.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.coords[i]

    def transform(self, i: int, z) -> torch.Tensor:
        """Aligned (M, 2) coordinates of new points ``z`` (M, d_i) in item ``i``'s map."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"item {i} out of range for {len(self)} aligned maps")
        zn = np.asarray(z.detach().cpu().numpy() if isinstance(z, torch.Tensor) else z, dtype=np.float32)
        if zn.ndim != 2 or zn.shape[1] != self.fitted[i].shape[1]:
            raise ValueError(
                f"z must be (M, {self.fitted[i].shape[1]}) for item {i}, got shape {zn.shape}"
            )
        proj = self.projections[i]
        if proj is None:  # aligned UMAP has no out-of-sample map: interpolate
            return torch.as_tensor(_knn_place(self.fitted[i].numpy(), self.coords[i].numpy(), zn), dtype=torch.float32)
        raw = proj.transform(zn).double().numpy()
        out = self.scales[i].item() * raw @ self.rotations[i].double().numpy() + self.shifts[i].double().numpy()
        return torch.as_tensor(out, dtype=torch.float32)

    def __repr__(self) -> str:
        names = ", ".join(self.names[:4]) + (", ..." if len(self.names) > 4 else "")
        return (
            f"AlignedProjections({self.method}, align={self.align!r}, {len(self)} maps of "
            f"{self.coords.shape[1]} points: {names})"
        )


def _as_items(zs) -> tuple[list, list[str]]:
    if hasattr(zs, "embeddings") and hasattr(zs, "steps"):  # a SnapshotSeries
        if not zs.embeddings:
            raise ValueError(
                "these snapshots hold no embeddings; record them with "
                "Snapshots(every=..., embed=probe_dataset, embed_fn=...)"
            )
        return list(zs.embeddings), [f"step {s}" for s in zs.steps]
    if isinstance(zs, dict):
        return list(zs.values()), [str(k) for k in zs]
    if isinstance(zs, (list, tuple)):
        return list(zs), [str(i) for i in range(len(zs))]
    raise TypeError(
        "pass a list of (N, d) embeddings, a dict name -> embedding, or a SnapshotSeries "
        f"(history.snapshots), got {type(zs).__name__}"
    )


def aligned_projections(
    zs,
    method: str = "pca",
    *,
    align: str = "procrustes",
    reference="chain",
    names=None,
    seed: int = 0,
    **options,
) -> AlignedProjections:
    """2-D maps of several embeddings of the same points, aligned to each other.

    ``zs``: a list of (N, d_i) embeddings of the same N points (training snapshots, or two
    models: d_i may differ), a dict name -> embedding, or a ``SnapshotSeries``.
    ``method``: ``"pca"``, ``"umap"``, ``"tsne"`` (each item projected on its own, then aligned)
    or ``"aligned_umap"`` (umap's AlignedUMAP fits all items jointly with identity relations;
    ``align`` is then ignored).
    ``align``: ``"procrustes"`` (default: a similarity transform, rotation/reflection + scale +
    shift, fitted on the corresponding points), ``"shared"`` (fit one projection on the reference
    item and map every item with it; needs equal dimensions; exact axes for PCA) or ``"none"``.
    ``reference``: ``"chain"`` (each item aligned to its aligned successor, ending at the last:
    smooth for a film over training), ``"last"``, ``"first"`` or an item index.
    """
    items, default_names = _as_items(zs)
    if not items:
        raise ValueError("nothing to project: zs is empty")
    names = tuple(str(n) for n in (names if names is not None else default_names))
    if len(names) != len(items):
        raise ValueError(f"got {len(names)} names for {len(items)} embeddings")
    valid = (*PROJECTIONS, "aligned_umap")
    if method not in valid:
        raise ValueError(f"unknown projection {method!r}; valid: {', '.join(valid)}")
    if align not in ALIGNMENTS:
        raise ValueError(f"unknown align {align!r}; valid: {', '.join(ALIGNMENTS)}")
    arrays = [_as_numpy_2d(z, f"embedding {names[i]!r}") for i, z in enumerate(items)]
    n = arrays[0].shape[0]
    bad = [names[i] for i, a in enumerate(arrays) if a.shape[0] != n]
    if bad:
        raise ValueError(
            f"all embeddings must be of the same {n} points (row i = the same sample); "
            f"{bad} have a different number of rows"
        )
    t = len(arrays)
    if reference in ("chain", "last"):
        ref = t - 1
    elif reference == "first":
        ref = 0
    elif isinstance(reference, int) and -t <= reference < t:
        ref = reference % t
    else:
        raise ValueError(f"reference must be 'chain', 'last', 'first' or an index < {t}, got {reference!r}")
    fitted = tuple(shared_tensor(a) for a in arrays)

    if method == "aligned_umap":
        from .._optional import require

        umap = require("umap", "aligned UMAP projections")
        opts = dict(n_components=2, random_state=seed)  # AlignedUMAP takes no n_jobs
        opts.update(options)
        est = umap.AlignedUMAP(**opts).fit(arrays, relations=[{i: i for i in range(n)} for _ in range(t - 1)])
        coords = np.stack([np.asarray(e, dtype=np.float64) for e in est.embeddings_])
        eye = torch.eye(2).expand(t, 2, 2).clone()
        return AlignedProjections(
            torch.as_tensor(coords, dtype=torch.float32), names, "aligned_umap", "aligned_umap",
            (None,) * t, eye, torch.ones(t), torch.zeros(t, 2), fitted, seed,
        )

    if align == "shared":
        dims = {a.shape[1] for a in arrays}
        if len(dims) != 1:
            raise ValueError(
                f"align='shared' maps every item with one projection, so all must have the same "
                f"dimension; got {sorted(dims)}. Use align='procrustes'"
            )
        if method == "tsne":
            raise ValueError("t-SNE has no out-of-sample map; use align='procrustes' with method='tsne'")
        base = project(arrays[ref], method, seed=seed, **options)
        projs = tuple(base for _ in arrays)
        raw = [base.transform(a).double().numpy() for a in arrays]
    else:
        projs = tuple(project(a, method, seed=seed, **options) for a in arrays)
        raw = [p.coords.double().numpy() for p in projs]

    rots = np.tile(np.eye(2), (t, 1, 1))
    scales = np.ones(t)
    shifts = np.zeros((t, 2))
    aligned = [None] * t
    aligned[ref] = raw[ref]
    if align == "procrustes":
        order = (
            list(range(ref - 1, -1, -1)) + list(range(ref + 1, t))
            if reference == "chain" else [i for i in range(t) if i != ref]
        )
        for i in order:
            target = aligned[i + 1] if reference == "chain" and i < ref else (
                aligned[i - 1] if reference == "chain" else aligned[ref]
            )
            r, s, sh = procrustes_fit(raw[i], target)
            rots[i], scales[i], shifts[i] = r, s, sh
            aligned[i] = s * raw[i] @ r + sh
    else:
        aligned = raw
    coords = torch.as_tensor(np.stack(aligned), dtype=torch.float32)
    return AlignedProjections(
        coords, names, method, align, projs,
        torch.as_tensor(rots, dtype=torch.float32), torch.as_tensor(scales, dtype=torch.float32),
        torch.as_tensor(shifts, dtype=torch.float32), fitted, seed,
    )
