"""``from_files``: data sets from files the workbench did not write.

    ds = wb.data.from_files("features.npy", labels="labels.npy")   # memory-mapped
    ds = wb.data.from_files("table.csv", labels="species")          # a column of the table
    ds = wb.data.from_files("images/")                              # images/<class>/*.png

Formats (by suffix):

* ``.npy``: memory-mapped (copy-on-write: nothing is written back, nothing is read until used),
  so a file larger than RAM can be looked at; float32 files are used in place, other numeric
  dtypes are converted to float32 (which reads them whole).
* ``.npz``: the arrays named by ``features=`` / ``labels=``, else the usual names (x, X, z,
  features, data, embeddings, inputs, images / y, labels, label, targets, target).
* ``.pt`` / ``.pth``: tensors only, read with ``torch.load(weights_only=True)`` (a file holding
  other Python objects is refused, never unpickled): a tensor, an ``(x, y)`` pair, or a dict
  of tensors (keys as for ``.npz``).
* ``.csv`` / ``.parquet`` (pandas; parquet needs pyarrow): one row per sample, the label
  column given by ``labels=`` or found by name (label, labels, y, target, class); the feature
  columns given by ``features=`` or every other column (they must be numeric).
* a folder of images (Pillow, an optional dependency: ``pip install Pillow``):
  ``root/<class>/*.png`` (also jpg, jpeg, bmp, gif, webp, tif) gives labels from the folder
  names; images directly in ``root`` give an unlabelled set. Any size and number of channels:
  ``size=(H, W)`` resizes them all (needed when sizes differ), ``channels`` picks 1 (grey),
  3 (RGB) or 4 (RGBA); by default 1 when every image is grey, else 3. Values in [0, 1].

Labels: ``labels=`` is a second file (.npy, .csv, .txt, .pt), an array, or a column/key name of
the file itself. String labels are numbered in sorted order, the names kept as ``classes``
(stable whatever order the rows come in); missing ones become -1 (unknown).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._optional import require
from ._labels import encode_labels
from .dataset import Dataset, _guess_kind

__all__ = ["from_files", "read_features", "SUFFIXES", "IMAGE_SUFFIXES"]

SUFFIXES = (".npy", ".npz", ".pt", ".pth", ".csv", ".parquet")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
X_KEYS = ("x", "X", "z", "features", "data", "embeddings", "inputs", "images")
Y_KEYS = ("y", "labels", "label", "targets", "target", "class")


@dataclass
class _Read:
    x: Any  # numpy array or tensor (N, ...)
    y: Any = None  # labels as read (array, tensor, list) or None
    meta: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # images / ids / logits (Embeddings files)


def _path(path, what="path") -> Path:
    if not isinstance(path, (str, Path)):
        raise TypeError(f"{what} must be a file or folder path (str or pathlib.Path), got {type(path).__name__}")
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"no file or folder at {p}")
    return p


# ----------------------------------------------------------------------------- public
def from_files(path, labels=None, *, features=None, kind: str | None = None, name: str | None = None,
               classes=None, mmap: bool = True, size=None, channels: int | None = None) -> Dataset:
    """A ``wb.data.Dataset`` from a file or an image folder (formats: see the module docstring).

    ``labels``: a second file, an array, a column/key name, or None (found by name where the
    format has names). ``features``: the array key (npz/pt) or the list of columns (csv/parquet)
    holding the inputs. ``kind``: the Dataset's kind (guessed from the shape when None).
    ``mmap``: memory-map ``.npy`` (and ``.pt``) files. ``size`` / ``channels``: for image folders.
    """
    p = _path(path)
    if p.is_dir():
        r = _image_folder(p, size=size, channels=channels)
        if labels is not None:
            raise ValueError("an image folder takes its labels from the class folders; do not pass labels=")
    else:
        if size is not None or channels is not None:
            raise ValueError("size= and channels= are for image folders; this is a file")
        r = _read_file(p, labels=labels, features=features, mmap=mmap)
    x = _as_float_tensor(r.x, p)
    y, names = (None, None) if r.y is None else encode_labels(r.y, f"the labels of {p.name}", classes=classes)
    if y is not None and y.shape[0] != x.shape[0]:
        raise ValueError(f"{p.name} has {x.shape[0]} samples but {y.shape[0]} labels; pass one label per sample")
    names = names if names is not None else (tuple(str(c) for c in classes) if classes is not None else None)
    if names is None and r.meta.get("classes"):
        names = tuple(r.meta["classes"])
    meta = {**r.meta, "source": str(p)}
    if names is not None:
        meta["classes"] = list(names)
    return Dataset(x, y, name=name or p.stem, kind=kind or _guess_kind(x), classes=names, meta=meta)


def read_features(cls, path, *, labels=None, images=None, ids=None, meta=None, classes=None, mmap=True):
    """``Embeddings.load``: an ``Embeddings.save`` file, or any features file ``from_files``
    reads (the features must be (N, d))."""
    p = _path(path)
    if p.is_dir():
        raise ValueError(f"{p} is a folder; Embeddings.load reads a features file (.npz, .npy, .pt, .csv, .parquet)")
    r = _read_file(p, labels=labels, features=None, mmap=mmap)
    x = _as_float_tensor(r.x, p)
    if x.ndim != 2:
        raise ValueError(
            f"{p.name} holds an array of shape {tuple(x.shape)}; embeddings are (N, d) rows. For inputs "
            "(images, signals) use wb.data.from_files and wb.analyses.embed(model, data)"
        )
    info = {**r.meta, "source": str(p), **(meta or {})}
    cls_names = classes if classes is not None else info.pop("classes", None)
    return cls(
        x, r.y, images if images is not None else r.extra.get("images"),
        ids if ids is not None else r.extra.get("ids"), info, logits=r.extra.get("logits"), classes=cls_names,
    )


# ----------------------------------------------------------------------------- files
def _read_file(p: Path, *, labels, features, mmap: bool) -> _Read:
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"unknown file type {p.suffix!r} ({p.name}); supported: {', '.join(SUFFIXES)} and folders of "
            f"images ({', '.join(IMAGE_SUFFIXES)})"
        )
    label_file = _label_file(labels, p)
    if suffix == ".npy":
        if features is not None:
            raise ValueError("a .npy file holds one array; features= is for .npz, .pt, .csv and .parquet")
        if isinstance(labels, str) and label_file is None:
            raise FileNotFoundError(f"labels={labels!r}: no such file (a .npy has no columns to name)")
        r = _Read(_npy(p, mmap), meta={"memory_mapped": bool(mmap)})
    elif suffix == ".npz":
        r = _keyed(_npz(p), p, labels if label_file is None else None, features, "arrays")
    elif suffix in (".pt", ".pth"):
        r = _pt(p, labels if label_file is None else None, features, mmap)
    else:
        r = _table(p, labels if label_file is None else None, features)
    if label_file is not None:
        r.y = _read_labels(label_file)
    elif labels is not None and not isinstance(labels, str):
        r.y = labels
    return r


def _label_file(labels, p: Path) -> Path | None:
    if isinstance(labels, Path) or (isinstance(labels, str) and Path(labels).expanduser().is_file()):
        lp = _path(labels, "labels")
        if lp.resolve() == p.resolve():
            return None  # the same file: a column/key of it
        return lp
    return None


def _npy(p: Path, mmap: bool):
    try:
        return np.load(p, mmap_mode="c" if mmap else None, allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err).lower() or "object" in str(err).lower():
            raise ValueError(
                f"{p.name} holds Python objects (an object array), which would need pickle to read; "
                "save a numeric array: np.save(path, x.astype('float32'))"
            ) from None
        raise ValueError(f"{p.name} is not a valid .npy file: {err}") from None


def _npz(p: Path) -> dict:
    try:
        f = np.load(p, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise ValueError(f"{p.name} is not a valid .npz file: {err}") from None
    out = {}
    with f:
        for k in f.files:
            try:
                out[k] = f[k]
            except ValueError:
                raise ValueError(
                    f"{p.name}: array {k!r} holds Python objects, which would need pickle to read; "
                    "store numeric arrays (or strings) only"
                ) from None
    return out


def _pt(p: Path, labels, features, mmap: bool) -> _Read:
    import pickle

    try:
        try:
            obj = torch.load(p, map_location="cpu", weights_only=True, mmap=mmap)
        except RuntimeError as err:  # an old (non-zip) file cannot be memory-mapped
            if not mmap or "mmap" not in str(err).lower():
                raise
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{p.name} holds Python objects besides tensors, so it is not read (torch.load with "
            f"weights_only=True refused: {str(err).splitlines()[0]}). Save tensors only, e.g. "
            "torch.save({'x': x, 'y': y}, path)"
        ) from None
    except Exception as err:  # a damaged file
        raise ValueError(f"{p.name} could not be read as a torch file: {err}") from None
    if isinstance(obj, torch.Tensor):
        return _Read(obj)
    if isinstance(obj, (tuple, list)):
        tensors = [o for o in obj if isinstance(o, torch.Tensor)]
        if not 1 <= len(tensors) <= 2 or len(tensors) != len(obj):
            raise ValueError(f"{p.name} holds a sequence of {len(obj)} items; expected a tensor or an (x, y) pair of tensors")
        return _Read(tensors[0], tensors[1] if len(tensors) == 2 and labels is None else None)
    if isinstance(obj, dict):
        arrays = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
        return _keyed(arrays, p, labels, features, "tensors")
    raise ValueError(f"{p.name} holds a {type(obj).__name__}; expected a tensor, an (x, y) pair or a dict of tensors")


def _keyed(arrays: dict, p: Path, labels, features, what: str) -> _Read:
    """x, y (and Embeddings extras) from named arrays (npz, dict of tensors)."""
    meta, extra = {}, {}
    if "__workbench__" in arrays:  # written by Embeddings.save
        import json

        header = json.loads(bytes(np.asarray(arrays.pop("__workbench__"), dtype=np.uint8)).decode())
        meta = dict(header.get("meta") or {})
        for k in ("images", "ids", "logits"):
            if k in arrays:
                extra[k] = arrays.pop(k)
    keys = list(arrays)
    if not keys:
        raise ValueError(f"{p.name} holds no {what}")
    if features is not None:
        if features not in arrays:
            raise ValueError(f"{p.name} has no array {features!r}; it has: {keys}")
        xk = features
    else:
        found = [k for k in X_KEYS if k in arrays]
        rest = [k for k in keys if k not in Y_KEYS and k != labels]
        xk = found[0] if found else (rest[0] if len(rest) == 1 else None)
        if xk is None:
            raise ValueError(f"{p.name} holds {what} {keys}; say which are the inputs with features='name'")
    y = None
    if isinstance(labels, str):
        if labels not in arrays:
            raise ValueError(f"{p.name} has no labels array {labels!r}; it has: {keys}")
        y = arrays[labels]
    elif labels is None:
        yk = next((k for k in Y_KEYS if k in arrays and k != xk), None)
        y = arrays[yk] if yk is not None else None
    return _Read(arrays[xk], y, meta, extra)


def _table(p: Path, labels, features) -> _Read:
    pd = require("pandas", "reading .csv and .parquet files")
    if p.suffix.lower() == ".parquet":
        require("pyarrow", "reading .parquet files")
        df = pd.read_parquet(p)
    else:
        try:
            df = pd.read_csv(p)
        except (ValueError, pd.errors.ParserError) as err:
            raise ValueError(f"{p.name} could not be read as CSV: {err}") from None
    cols = [str(c) for c in df.columns]
    df.columns = cols
    if len(df) == 0:
        raise ValueError(f"{p.name} has no rows")
    if isinstance(labels, str):
        if labels not in cols:
            raise ValueError(f"{p.name} has no column {labels!r} for the labels; its columns: {cols}")
        yc = labels
    elif labels is None:
        yc = next((c for c in ("label", "labels", "y", "target", "class") if c in cols), None)
    else:
        yc = None
    if features is not None:
        fcols = [features] if isinstance(features, str) else [str(c) for c in features]
        missing = [c for c in fcols if c not in cols]
        if missing:
            raise ValueError(f"{p.name} has no columns {missing}; its columns: {cols}")
    else:
        fcols = [c for c in cols if c != yc and c.lower() not in ("id", "ids", "index")]
    if not fcols:
        raise ValueError(f"{p.name} has no feature columns besides the labels {yc!r}")
    bad = [c for c in fcols if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise ValueError(
            f"{p.name}: columns {bad[:5]} are not numeric; name the label column with labels='...' and the "
            f"feature columns with features=[...] (columns: {cols})"
        )
    x = df[fcols].to_numpy(dtype=np.float32)
    meta = {"columns": fcols}
    if yc is not None:
        meta["label_column"] = yc
    return _Read(x, None if yc is None else df[yc].to_numpy(), meta)


def _read_labels(lp: Path):
    suffix = lp.suffix.lower()
    if suffix == ".npy":
        return _npy(lp, mmap=False)
    if suffix in (".pt", ".pth"):
        return _pt(lp, None, None, mmap=False).x
    if suffix in (".csv", ".txt"):
        pd = require("pandas", "reading label files")
        header = "infer" if suffix == ".csv" else None
        df = pd.read_csv(lp, header=header, keep_default_na=True)
        if df.shape[1] == 1:
            return df.iloc[:, 0].to_numpy()
        yc = next((c for c in ("label", "labels", "y", "target", "class") if c in df.columns), None)
        if yc is None:
            raise ValueError(f"{lp.name} has {df.shape[1]} columns and none is named label/labels/y/target/class")
        return df[yc].to_numpy()
    raise ValueError(f"unknown labels file type {lp.suffix!r} ({lp.name}); use .npy, .csv, .txt or .pt")


def _as_float_tensor(x, p: Path) -> torch.Tensor:
    """(N, ...) float32 tensor sharing memory with ``x`` when it already is float32."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        a = np.asarray(x) if not isinstance(x, np.ndarray) else x
        if a.dtype.kind not in "biuf":
            raise ValueError(f"{p.name}: the inputs hold {a.dtype} values; expected numbers")
        if a.dtype != np.float32:
            a = a.astype(np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # read-only arrays: nothing here writes
            t = torch.from_numpy(a)
    if t.dtype == torch.bool or t.dtype.is_complex:
        raise ValueError(f"{p.name}: the inputs hold {t.dtype} values; expected real numbers")
    if t.dtype != torch.float32:
        t = t.float()
    if t.ndim < 2:
        raise ValueError(
            f"{p.name} holds an array of shape {tuple(t.shape)}; expected (N, features...) with one row "
            "per sample (for N scalars save x.reshape(-1, 1))"
        )
    if t.shape[0] == 0:
        raise ValueError(f"{p.name} holds no samples")
    return t


# ----------------------------------------------------------------------------- image folders
def _image_folder(root: Path, *, size, channels) -> _Read:
    pil = require("PIL.Image", "reading folders of images")
    if channels not in (None, 1, 3, 4):
        raise ValueError(f"channels must be None (auto), 1, 3 or 4, got {channels!r}")
    size = _check_size(size)
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    files: list[tuple[Path, int]] = []
    classes: list[str] = []
    for d in subdirs:
        imgs = sorted(f for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if imgs:
            files += [(f, len(classes)) for f in imgs]
            classes.append(d.name)
    loose = sorted(f for f in root.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if files and loose:
        raise ValueError(
            f"{root} has images in class folders and {len(loose)} directly inside it (e.g. {loose[0].name}); "
            "put every image in a class folder, or read the loose ones as their own folder"
        )
    labelled = bool(files)
    if not labelled:
        files = [(f, -1) for f in loose]
    if not files:
        raise ValueError(
            f"no images in {root}; expected {root}/<class>/*.png (or {', '.join(IMAGE_SUFFIXES)})"
        )
    images = []
    for f, _ in files:
        try:
            with pil.open(f) as im:
                im.load()
                images.append(im.copy())
        except Exception as err:  # Pillow raises several kinds
            raise ValueError(f"{f} could not be read as an image: {err}") from None
    if channels is None:
        channels = 1 if all(im.mode in ("1", "L", "LA", "I", "I;16", "F", "P") and _is_grey(im) for im in images) else 3
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
    sizes = sorted({im.size for im in images})
    if size is None and len(sizes) > 1:
        shown = ", ".join(f"{h}x{w}" for w, h in sizes[:4])
        raise ValueError(
            f"the images have {len(sizes)} different sizes ({shown}{', ...' if len(sizes) > 4 else ''}); "
            "pass size=(H, W) to resize them all to one size"
        )
    h, w = size if size is not None else (sizes[0][1], sizes[0][0])
    x = np.empty((len(images), channels, h, w), dtype=np.float32)  # (N, C, H, W)
    for i, im in enumerate(images):
        im = _to_mode(im, mode)
        if im.size != (w, h):
            im = im.resize((w, h), pil.Resampling.BILINEAR)
        a = np.asarray(im, dtype=np.float32) / 255.0
        x[i] = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    rel = [str(f.relative_to(root)) for f, _ in files]
    y = np.asarray([c for _, c in files], dtype=np.int64) if labelled else None
    meta = {"files": rel, "channels": channels, "size": [h, w]}
    if labelled:
        meta["classes"] = classes
    return _Read(x, y, meta)


def _check_size(size):
    if size is None:
        return None
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)):
        raise ValueError(f"size must be None, an int or a pair (H, W) of positive ints, got {size!r}")
    return int(size[0]), int(size[1])


def _is_grey(im) -> bool:
    if im.mode == "P":  # a palette image is grey only if its palette is
        rgb = np.asarray(im.convert("RGB"), dtype=np.int16)
        return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
    return True


def _to_mode(im, mode: str):
    if im.mode == mode:
        return im
    if im.mode in ("I", "I;16", "F"):  # high bit depth: scale to 8 bits first
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode != "F" and a.max() > 255 else (a.max() or 1.0) if im.mode == "F" else 255.0
        from PIL import Image

        im = Image.fromarray(np.clip(a / top * 255.0, 0, 255).astype(np.uint8), "L")
    return im.convert(mode)
