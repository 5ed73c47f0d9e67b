"""The run store: fits saved as runs in a folder, indexed by a local SQLite database.

Layout of a store (``RunStore(root)``; default ``./workbench-runs``, or ``$WORKBENCH_RUNS``)::

    root/index.sqlite            one row per committed run (WAL mode)
    root/runs/<id>/run.json      name, model and method configs, fit config, metrics, versions
    root/runs/<id>/history.json  ``History.to_dict()``
    root/runs/<id>/model.safetensors      final model (+ method) tensors, config header
    root/runs/<id>/snapshots.safetensors  the fit's SnapshotSeries, if one was recorded
    root/runs/<id>/artifacts/<name>.safetensors  named extra results (a loss landscape, ...)
    root/tmp/                    runs being written (invisible to readers)

Nothing is pickled: tensors go to safetensors files, everything else to JSON, and objects are
rebuilt from their recorded constructor arguments (``workbench._config``).

**Crash safety.** A run is written into ``root/tmp/``, every file is fsync'ed, the folder is
renamed into ``root/runs/`` in one atomic step, and only then is its index row inserted in a
single transaction. Readers list and load only indexed rows, so a process that dies mid-save
leaves at worst an unindexed folder, never a half-written visible run (``clean()`` removes
such leftovers). Deleting removes the row first, then the files.

**Concurrency.** Several processes (two notebook kernels, the workers of a sweep) may write one
store at once: the index uses SQLite's WAL journal, each write is one ``BEGIN IMMEDIATE``
transaction, and a busy timeout makes writers wait for each other instead of failing. SQLite's
WAL mode needs a local file system; do not share one store over NFS between machines (see
``workbench.runs.sweep`` for how distributed sweeps save from one process).

**Integrity.** The index records a SHA-256 of every file; ``load`` checks them and raises
``CorruptRunError`` naming the run (and the file) when one is missing or damaged.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import hashlib
import importlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._config import describe
from ..checkpoint import load_checkpoint, save_checkpoint
from ..training.history import History

FORMAT = 1
INDEX = "index.sqlite"
ENV_ROOT = "WORKBENCH_RUNS"
DEFAULT_ROOT = "workbench-runs"
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    grp        TEXT,
    method     TEXT,
    model      TEXT,
    data       TEXT,
    created    TEXT NOT NULL,
    status     TEXT,
    steps      INTEGER,
    seed       INTEGER,
    optimizer  TEXT,
    elapsed    REAL,
    metrics    TEXT NOT NULL DEFAULT '{}',
    tags       TEXT NOT NULL DEFAULT '{}',
    artifacts  TEXT NOT NULL DEFAULT '[]',
    snapshots  INTEGER NOT NULL DEFAULT 0,
    files      TEXT NOT NULL DEFAULT '{}',
    format     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_name ON runs(name);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created);
"""

_BASE_COLUMNS = (
    "id", "name", "group", "method", "model", "data", "created", "status", "steps", "seed",
    "optimizer", "elapsed",
)


class RunNotFoundError(LookupError):
    """No committed run with that id (or id prefix) in the store."""


class CorruptRunError(ValueError):
    """A run's files are missing or do not match what was saved."""


# ---------------------------------------------------------------------------------------------
# small file helpers


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, allow_nan=True))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


# ---------------------------------------------------------------------------------------------
# generic, pickle-free encoding of results: tensors -> safetensors, the rest -> JSON

_MARKERS = ("__tensor__", "__ndarray__", "__dataclass__", "__tuple__", "__dict__", "__dtype__",
            "__device__", "__history__")


class _Encoder:
    """Turns nested results (dataclasses, dicts, lists, tensors, numbers) into JSON + tensors.

    Tensor keys are the value's path (``params/3/body.0.weight``) so other tools can read the
    files too.
    """

    def __init__(self, what: str):
        self.what = what
        self.tensors: dict[str, torch.Tensor] = {}

    def _key(self, path: str) -> str:
        key = path or "value"
        n = 1
        while key in self.tensors:
            key = f"{path}#{n}"
            n += 1
        return key

    def encode(self, v: Any, path: str = "") -> Any:
        if isinstance(v, torch.Tensor):
            key = self._key(path)
            self.tensors[key] = v.detach().cpu().contiguous().clone()
            return {"__tensor__": key}
        if isinstance(v, np.ndarray):
            if v.dtype == object or v.dtype.kind in "USV":
                raise TypeError(f"{self.what}: {path or 'value'} is a numpy array of {v.dtype}; only numeric arrays can be stored")
            key = self._key(path)
            self.tensors[key] = torch.from_numpy(np.ascontiguousarray(v).copy())
            return {"__ndarray__": key}
        if isinstance(v, np.generic):
            return v.item()
        if v is None or isinstance(v, (bool, int, str, float)):
            return v
        if isinstance(v, History):
            return {"__history__": v.to_dict()}
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            cls = type(v)
            fields = {f.name: self.encode(getattr(v, f.name), f"{path}/{f.name}".lstrip("/"))
                      for f in dataclasses.fields(v)}
            return {"__dataclass__": f"{cls.__module__}:{cls.__qualname__}", "fields": fields}
        if isinstance(v, Mapping):
            out = {}
            for k, x in v.items():
                if not isinstance(k, str):
                    raise TypeError(f"{self.what}: {path or 'value'} has a non-string key {k!r}; use string keys")
                out[k] = self.encode(x, f"{path}/{k}".lstrip("/"))
            if any(k.startswith("__") for k in out):
                return {"__dict__": out}
            return out
        if isinstance(v, tuple):
            return {"__tuple__": [self.encode(x, f"{path}/{i}".lstrip("/")) for i, x in enumerate(v)]}
        if isinstance(v, builtins.list):
            return [self.encode(x, f"{path}/{i}".lstrip("/")) for i, x in enumerate(v)]
        if isinstance(v, torch.dtype):
            return {"__dtype__": str(v).removeprefix("torch.")}
        if isinstance(v, torch.device):
            return {"__device__": str(v)}
        raise TypeError(
            f"{self.what}: {path or 'the value'} is a {type(v).__name__}, which cannot be stored "
            "without pickle; store tensors, numpy arrays, numbers, strings, lists/dicts of them, "
            "or workbench result dataclasses"
        )


def _decode(v: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(v, builtins.list):
        return [_decode(x, tensors) for x in v]
    if not isinstance(v, dict):
        return v
    if len(v) == 1:
        (k, x), = v.items()
        if k == "__tensor__":
            return tensors[x]
        if k == "__ndarray__":
            return tensors[x].numpy()
        if k == "__tuple__":
            return tuple(_decode(y, tensors) for y in x)
        if k == "__dict__":
            return {kk: _decode(y, tensors) for kk, y in x.items()}
        if k == "__dtype__":
            return getattr(torch, x)
        if k == "__device__":
            return torch.device(x)
        if k == "__history__":
            return History.from_dict(x)
    if "__dataclass__" in v and set(v) == {"__dataclass__", "fields"}:
        values = {k: _decode(x, tensors) for k, x in v["fields"].items()}
        cls = _dataclass_class(v["__dataclass__"])
        if cls is None:
            return {"__class__": v["__dataclass__"], **values}
        init = {f.name: values[f.name] for f in dataclasses.fields(cls) if f.init and f.name in values}
        obj = cls(**init)
        for f in dataclasses.fields(cls):
            if not f.init and f.name in values:
                object.__setattr__(obj, f.name, values[f.name])
        return obj
    return {k: _decode(x, tensors) for k, x in v.items()}


def _dataclass_class(path: str):
    """Import a result class named in a file, but only from the workbench package."""
    mod, _, qual = path.partition(":")
    if not (mod == "workbench" or mod.startswith("workbench.")):
        return None
    try:
        obj = importlib.import_module(mod)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    return obj if dataclasses.is_dataclass(obj) else None


def write_tensors_json(path: Path, value: Any, what: str) -> None:
    """Write ``value`` (any encodable result) to one safetensors file with a JSON header."""
    from safetensors.torch import save_file

    enc = _Encoder(what)
    tree = enc.encode(value)
    save_file(enc.tensors, str(path), metadata={"workbench-value": json.dumps(tree, allow_nan=True),
                                                "format": str(FORMAT)})


def read_tensors_json(path: Path) -> Any:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if "workbench-value" not in meta:
        raise ValueError(f"{path.name} has no workbench header")
    return _decode(json.loads(meta["workbench-value"]), tensors)


# ---------------------------------------------------------------------------------------------
# metrics


def final_metrics(history: History, last: int = 10) -> dict[str, float]:
    """The numbers a run is listed with.

    ``val_<k>``: the last evaluation's value of each metric. ``train_<k>``: the mean of the last
    ``last`` steps' logged values (a single batch is noisy); the learning rate is left out.
    """
    out: dict[str, float] = {}
    if history.records:
        keys = {k for r in history.records[-last:] for k in r if k != "lr"}
        for k in sorted(keys, key=lambda k: (k != "loss", k)):
            vals = [r[k] for r in history.records[-last:] if k in r]
            arr = np.asarray(vals, dtype=float)
            arr = arr[np.isfinite(arr)]
            if arr.size:
                out[f"train_{k}"] = float(arr.mean())
    if history.evals:
        for k, v in history.evals[-1].items():
            if k != "step":
                out[f"val_{k}"] = float(v)
    return out


def _check_metrics(metrics: Mapping | None) -> dict[str, float]:
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a dict name -> number, got {type(metrics).__name__}")
    out = {}
    for k, v in metrics.items():
        if not isinstance(k, str) or not k:
            raise TypeError(f"metric names must be non-empty strings, got {k!r}")
        if isinstance(v, torch.Tensor):
            if v.numel() != 1:
                raise ValueError(f"metric {k!r} must be a single number, got a tensor of shape {tuple(v.shape)}")
            v = v.item()
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            raise TypeError(f"metric {k!r} must be a number, got {type(v).__name__}") from None
    return out


def _check_name(name: str, what: str = "name") -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(
            f"{what} must be 1-100 characters of letters, digits, '_', '-' or '.', not starting "
            f"with '.' or '-'; got {name!r}"
        )
    return name


def _describe_data(data) -> str | None:
    if data is None:
        return None
    if isinstance(data, str):
        return data
    name = getattr(data, "name", None)
    try:
        n = len(data)
    except TypeError:
        n = None
    if name is None:
        raise TypeError(f"data must be a wb.data.Dataset or a string describing it, got {type(data).__name__}")
    return f"{name} (n={n})" if n is not None else str(name)


# ---------------------------------------------------------------------------------------------
# the record of one run


@dataclass(frozen=True)
class Run:
    """One committed run: its index row. ``load()`` rebuilds (model, method, history)."""

    id: str
    name: str
    group: str | None
    method: str | None
    model: str | None
    data: str | None
    created: str
    status: str | None
    steps: int | None
    seed: int | None
    optimizer: str | None
    elapsed: float | None
    metrics: dict[str, float]
    tags: dict[str, Any]
    artifacts: tuple[str, ...]
    has_snapshots: bool
    store: RunStore = field(repr=False, compare=False)

    @property
    def path(self) -> Path:
        return self.store.path(self.id)

    def load(self, **kwargs):
        return self.store.load(self.id, **kwargs)

    def history(self, **kwargs) -> History:
        return self.store.history(self.id, **kwargs)

    def artifact(self, name: str):
        return self.store.artifact(self.id, name)

    def config(self) -> dict[str, Any]:
        return self.store.config(self.id)

    def __repr__(self) -> str:
        m = ", ".join(f"{k}={v:.4g}" for k, v in list(self.metrics.items())[:4])
        arts = f", artifacts={list(self.artifacts)}" if self.artifacts else ""
        return (f"Run({self.id!r}, name={self.name!r}, {self.method}/{self.model}, "
                f"status={self.status!r}, steps={self.steps}{', ' + m if m else ''}{arts})")


# ---------------------------------------------------------------------------------------------


class RunStore:
    """A folder of runs with a SQLite index. Safe for several processes writing at once.

    ``RunStore()`` uses ``$WORKBENCH_RUNS`` or ``./workbench-runs``. Nothing is created on disk
    until the first save; reading an empty store gives an empty list.
    """

    def __init__(self, root: str | os.PathLike | None = None, *, timeout: float = 60.0):
        if root is None:
            root = os.environ.get(ENV_ROOT) or DEFAULT_ROOT
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root must be a folder path (str or Path), got {type(root).__name__}")
        self.root = Path(root).expanduser().resolve()
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"{self.root} is a file; RunStore needs a folder")
        self.timeout = float(timeout)
        self._ready = False

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    # ------------------------------------------------------------------ sqlite plumbing
    @property
    def index_path(self) -> Path:
        return self.root / INDEX

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        if not create and not self.index_path.exists():
            return None
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(str(self.index_path), timeout=self.timeout, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        con.execute("PRAGMA synchronous = FULL")
        if not self._ready:
            self._init_schema(con)
        return con

    def _init_schema(self, con: sqlite3.Connection) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":  # pragma: no cover - e.g. a file system without shm
                    raise OSError(f"the run index {self.index_path} could not switch to WAL mode (got {mode})")
                con.executescript(_SCHEMA)  # idempotent statements, each atomic
                break
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._ready = True

    @contextlib.contextmanager
    def _read(self):
        con = self._connect(create=False)
        if con is None:
            yield None
            return
        try:
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def _write(self):
        """One write transaction (``BEGIN IMMEDIATE``: writers queue instead of deadlocking)."""
        con = self._connect(create=True)
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            con.close()

    # ------------------------------------------------------------------ lookup
    def path(self, run_id) -> Path:
        """The folder of a committed run."""
        return self.root / "runs" / self._row(run_id)["id"]

    def _row(self, run_id) -> sqlite3.Row:
        if isinstance(run_id, Run):
            run_id = run_id.id
        if not isinstance(run_id, str) or not run_id:
            raise TypeError(f"run_id must be a run id string (see wb.runs.list()), got {run_id!r}")
        with self._read() as con:
            if con is None:
                raise RunNotFoundError(f"no run {run_id!r}: the store {self.root} is empty")
            row = con.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is not None:
                return row
            rows = []
            if len(run_id) >= 4 and re.fullmatch(r"[0-9a-f]+", run_id):
                rows = con.execute("SELECT * FROM runs WHERE id LIKE ? ORDER BY created",
                                   (run_id + "%",)).fetchall()
            if len(rows) == 1:
                return rows[0]
            if len(rows) > 1:
                raise ValueError(f"run id prefix {run_id!r} is ambiguous: {[r['id'] for r in rows]}; give more characters")
            recent = [f"{r['id']} ({r['name']})" for r in
                      con.execute("SELECT id, name FROM runs ORDER BY created DESC LIMIT 5").fetchall()]
        hint = f"; recent runs: {', '.join(recent)}" if recent else "; the store has no runs"
        raise RunNotFoundError(f"no run {run_id!r} in {self.root}{hint}")

    def _run(self, row: sqlite3.Row) -> Run:
        return Run(
            id=row["id"], name=row["name"], group=row["grp"], method=row["method"], model=row["model"],
            data=row["data"], created=row["created"], status=row["status"], steps=row["steps"],
            seed=row["seed"], optimizer=row["optimizer"], elapsed=row["elapsed"],
            metrics=json.loads(row["metrics"]), tags=json.loads(row["tags"]),
            artifacts=tuple(json.loads(row["artifacts"])), has_snapshots=bool(row["snapshots"]), store=self,
        )

    def get(self, run_id) -> Run:
        """The record of one run (id or a unique id prefix of at least 4 characters)."""
        return self._run(self._row(run_id))

    def runs(self, *, name: str | None = None, group: str | None = None) -> builtins.list[Run]:
        """All committed runs (oldest first), optionally only those with ``name`` / ``group``."""
        sql, args = "SELECT * FROM runs", []
        conds = []
        if name is not None:
            conds.append("name = ?")
            args.append(name)
        if group is not None:
            conds.append("grp = ?")
            args.append(group)
        if conds:
            sql += " WHERE " + " AND ".join(conds)
        sql += " ORDER BY created, id"
        with self._read() as con:
            if con is None:
                return []
            return [self._run(r) for r in con.execute(sql, args).fetchall()]

    def __len__(self) -> int:
        with self._read() as con:
            return 0 if con is None else con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def __contains__(self, run_id) -> bool:
        try:
            self._row(run_id)
        except (RunNotFoundError, ValueError, TypeError):
            return False
        return True

    def list(self, *, name: str | None = None, group: str | None = None):
        """A pandas DataFrame, one row per run (oldest first).

        Columns: id, name, group, method, model, data, created (UTC), status, steps, seed,
        optimizer, elapsed (s), then one column per metric: ``val_*`` (last evaluation),
        ``train_*`` (mean of the last 10 steps), and any ``metrics=`` given to ``save``.
        """
        import pandas as pd

        runs = self.runs(name=name, group=group)
        rows = []
        metric_keys: dict[str, None] = {}
        for r in runs:
            row = {"id": r.id, "name": r.name, "group": r.group, "method": r.method, "model": r.model,
                   "data": r.data, "created": r.created, "status": r.status, "steps": r.steps,
                   "seed": r.seed, "optimizer": r.optimizer, "elapsed": r.elapsed}
            row.update(r.metrics)
            metric_keys.update(dict.fromkeys(r.metrics))
            rows.append(row)
        order = sorted(metric_keys, key=lambda k: (not k.startswith("val_"), not k.startswith("train_"), k))
        df = pd.DataFrame(rows, columns=[*_BASE_COLUMNS, *order])
        df["created"] = pd.to_datetime(df["created"], utc=True, format="ISO8601").dt.floor("s")
        df["steps"] = df["steps"].astype("Int64")
        df["seed"] = df["seed"].astype("Int64")
        return df

    # ------------------------------------------------------------------ save
    def save(
        self,
        model: nn.Module,
        method: nn.Module,
        history: History,
        *,
        name: str | None = None,
        group: str | None = None,
        data=None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, Any] | None = None,
        artifacts: Mapping[str, Any] | None = None,
        snapshots: bool = True,
    ) -> str:
        """Save a fit as a run and return its id.

        ``name``: a label (not unique; runs of one sweep share it; default "<method>-<model>").
        ``group``: groups runs (a sweep sets it). ``data``: the training Dataset (or a string)
        to record which data was used. ``metrics``: extra numbers to list (e.g. test accuracy,
        AUROC). ``tags``: JSON-able notes. ``artifacts``: named results stored with the run
        (``{"landscape": land}``: result dataclasses, dicts of tensors/arrays/numbers).
        ``snapshots``: also save ``history.snapshots`` when the fit recorded some.
        """
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not (isinstance(method, nn.Module) and callable(getattr(method, "loss", None))):
            raise TypeError(f"method must be a workbench method, got {type(method).__name__}")
        if not isinstance(history, History):
            raise TypeError(f"history must be the History returned by wb.fit, got {type(history).__name__}")
        if not hasattr(model, "config"):
            raise TypeError(
                f"{type(model).__name__} does not record its constructor arguments, so a run could "
                "not rebuild it; use a workbench model (wb.models.*)"
            )
        model_name, method_name = type(model).__name__, type(method).__name__
        name = _check_name(name if name is not None else f"{method_name}-{model_name}".lower())
        if group is not None:
            _check_name(group, "group")
        user_metrics = _check_metrics(metrics)
        tags = dict(tags or {})
        try:
            json.dumps(tags)
        except TypeError as err:
            raise TypeError(f"tags must be JSON-able (numbers, strings, lists, dicts): {err}") from None
        artifacts = dict(artifacts or {})
        for k in artifacts:
            _check_name(k, "artifact name")
        data_desc = _describe_data(data)
        all_metrics = {**final_metrics(history), **user_metrics}

        run_id = secrets.token_hex(4)
        created = _now()
        cfg = history.config or {}
        seed = cfg.get("seed")
        record = {
            "format": FORMAT,
            "id": run_id,
            "name": name,
            "group": group,
            "created": created,
            "model": describe(model),
            "method": describe(method),
            "fit": cfg,
            "data": data_desc,
            "status": history.status,
            "message": history.message,
            "steps": history.last_step,
            "metrics": all_metrics,
            "tags": tags,
            "artifacts": sorted(artifacts),
            "versions": {"workbench": _version(), "torch": torch.__version__},
        }
        tmp_root = self.root / "tmp"
        runs_root = self.root / "runs"
        tmp_root.mkdir(parents=True, exist_ok=True)
        runs_root.mkdir(parents=True, exist_ok=True)
        self._connect(create=True).close()  # the index exists before any folder is committed
        tmp = tmp_root / f"{run_id}.{os.getpid()}.{secrets.token_hex(3)}"
        tmp.mkdir()
        final = runs_root / run_id
        moved = False
        try:
            save_checkpoint(tmp / "model.safetensors", model, method, extra={"run": run_id})
            _write_json(tmp / "history.json", history.to_dict())
            has_snaps = bool(snapshots and history.snapshots is not None and len(history.snapshots))
            if has_snaps:
                write_tensors_json(tmp / "snapshots.safetensors", history.snapshots, f"run {run_id} snapshots")
            if artifacts:
                (tmp / "artifacts").mkdir()
                for k, v in artifacts.items():
                    write_tensors_json(tmp / "artifacts" / f"{k}.safetensors", v, f"artifact {k!r}")
            record["snapshots"] = has_snaps
            _write_json(tmp / "run.json", record)
            files = {}
            for p in sorted(tmp.rglob("*")):
                if p.is_file():
                    _fsync_file(p)
                    files[p.relative_to(tmp).as_posix()] = _sha256(p)
            if artifacts:
                _fsync_dir(tmp / "artifacts")
            _fsync_dir(tmp)
            self._before_commit_hook(tmp)
            os.rename(tmp, final)  # atomic: the folder appears whole or not at all
            moved = True
            _fsync_dir(runs_root)
            self._before_index_hook(final)
            with self._write() as con:
                con.execute(
                    "INSERT INTO runs (id, name, grp, method, model, data, created, status, steps, seed, "
                    "optimizer, elapsed, metrics, tags, artifacts, snapshots, files, format) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, name, group, method_name, model_name, data_desc, created, history.status,
                     history.last_step, seed if isinstance(seed, int) else None,
                     cfg.get("optimizer") if isinstance(cfg.get("optimizer"), str) else None,
                     float(history.elapsed), json.dumps(all_metrics, allow_nan=True), json.dumps(tags),
                     json.dumps(sorted(artifacts)), int(has_snaps), json.dumps(files), FORMAT),
                )
        except BaseException:
            shutil.rmtree(final if moved else tmp, ignore_errors=True)
            raise
        return run_id

    # fault-injection points for tests (a process dying mid-save)
    def _before_commit_hook(self, tmp: Path) -> None: ...

    def _before_index_hook(self, final: Path) -> None: ...

    # ------------------------------------------------------------------ load
    def _file(self, row: sqlite3.Row, rel: str, verify: bool) -> Path:
        path = self.root / "runs" / row["id"] / rel
        label = f"run {row['id']} ({row['name']!r})"
        if not path.exists():
            folder = path.parent if rel.count("/") == 0 else path.parent.parent
            why = "its folder is gone" if not folder.exists() else f"{rel} is missing"
            raise CorruptRunError(
                f"{label}: {why} ({path}); the run cannot be loaded. Restore the file or remove "
                f"the run with wb.runs.delete({row['id']!r})"
            )
        if verify:
            expected = json.loads(row["files"]).get(rel)
            if expected is not None and _sha256(path) != expected:
                raise CorruptRunError(
                    f"{label}: {rel} is damaged (its SHA-256 differs from the one recorded at save "
                    f"time) at {path}. Restore the file or remove the run with wb.runs.delete({row['id']!r})"
                )
        return path

    def config(self, run_id) -> dict[str, Any]:
        """The run's ``run.json``: model and method configs, fit config, metrics, versions."""
        row = self._row(run_id)
        path = self._file(row, "run.json", verify=True)
        return json.loads(path.read_text())

    def history(self, run_id, *, snapshots: bool = False, verify: bool = True) -> History:
        """Only the history of a run (cheap: no model is built)."""
        row = self._row(run_id)
        return self._history(row, snapshots, verify)

    def _history(self, row, snapshots: bool, verify: bool) -> History:
        path = self._file(row, "history.json", verify)
        try:
            hist = History.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as err:
            raise CorruptRunError(f"run {row['id']} ({row['name']!r}): history.json is damaged: {err}") from err
        if snapshots and row["snapshots"]:
            spath = self._file(row, "snapshots.safetensors", verify)
            try:
                hist.snapshots = read_tensors_json(spath)
            except Exception as err:
                raise CorruptRunError(
                    f"run {row['id']} ({row['name']!r}): snapshots.safetensors is damaged: {err}"
                ) from err
        return hist

    def load(self, run_id, *, device="cpu", snapshots: bool = True, step: int | None = None,
             verify: bool = True):
        """Rebuild ``(model, method, history)`` of a run.

        ``device``: where to put the model and method. ``snapshots``: also load the fit's
        snapshots into ``history.snapshots``. ``step``: load the model's weights as they were
        at that snapshot step instead of the final ones (needs saved snapshots with params).
        ``verify``: check every file against the hash recorded at save time.
        """
        row = self._row(run_id)
        label = f"run {row['id']} ({row['name']!r})"
        ckpt = self._file(row, "model.safetensors", verify)
        try:
            model, method = load_checkpoint(ckpt, device=device)
        except (ValueError, FileNotFoundError) as err:
            raise CorruptRunError(f"{label}: model.safetensors could not be loaded: {err}") from err
        hist = self._history(row, snapshots or step is not None, verify)
        if step is not None:
            snaps = hist.snapshots
            if snaps is None or not getattr(snaps, "params", ()):
                raise ValueError(f"{label} has no parameter snapshots; load it without step=")
            if step not in snaps.steps:
                raise ValueError(f"{label} has snapshots at steps {list(snaps.steps)}, not at {step}")
            i = snaps.steps.index(step)
            model.load_state_dict(snaps.params[i])
            if snaps.method_states and snaps.method_states[i]:
                method.load_state_dict({**method.state_dict(), **snaps.method_states[i]})
            if not snapshots:
                hist.snapshots = None
        return model, method, hist

    # ------------------------------------------------------------------ artifacts
    def attach(self, run_id, name: str, value: Any) -> None:
        """Store a named result with an existing run (replacing one of the same name).

        ``value``: a workbench result dataclass (e.g. a loss landscape), a tensor or array, or
        a dict/list of them and of numbers/strings. Written atomically.
        """
        _check_name(name, "artifact name")
        row = self._row(run_id)
        folder = self.root / "runs" / row["id"]
        if not folder.exists():
            self._file(row, "run.json", verify=False)  # raises the clear error
        art = folder / "artifacts"
        art.mkdir(exist_ok=True)
        tmp = art / f".{name}.{os.getpid()}.{secrets.token_hex(3)}.tmp"
        dest = art / f"{name}.safetensors"
        try:
            write_tensors_json(tmp, value, f"artifact {name!r}")
            _fsync_file(tmp)
            digest = _sha256(tmp)
            with self._write() as con:
                cur = con.execute("SELECT artifacts, files FROM runs WHERE id = ?", (row["id"],)).fetchone()
                if cur is None:
                    raise RunNotFoundError(f"run {row['id']} was deleted while attaching {name!r}")
                names = sorted(set(json.loads(cur["artifacts"])) | {name})
                files = json.loads(cur["files"])
                files[f"artifacts/{name}.safetensors"] = digest
                os.replace(tmp, dest)
                _fsync_dir(art)
                con.execute("UPDATE runs SET artifacts = ?, files = ? WHERE id = ?",
                            (json.dumps(names), json.dumps(files), row["id"]))
        finally:
            if tmp.exists():
                tmp.unlink()

    def artifact(self, run_id, name: str, *, verify: bool = True):
        """Load a named result stored with a run (rebuilt as the class it was saved as)."""
        row = self._row(run_id)
        names = json.loads(row["artifacts"])
        if name not in names:
            raise KeyError(f"run {row['id']} ({row['name']!r}) has no artifact {name!r}; it has: {names}")
        path = self._file(row, f"artifacts/{name}.safetensors", verify)
        try:
            return read_tensors_json(path)
        except Exception as err:
            raise CorruptRunError(f"run {row['id']} ({row['name']!r}): artifact {name!r} is damaged: {err}") from err

    # ------------------------------------------------------------------ delete / maintenance
    def delete(self, run_id) -> None:
        """Remove runs (an id, a Run, or a list of them): the index row, then the files."""
        ids = [run_id] if isinstance(run_id, (str, Run)) else builtins.list(run_id)
        for rid in ids:
            row = self._row(rid)
            with self._write() as con:
                con.execute("DELETE FROM runs WHERE id = ?", (row["id"],))
            folder = self.root / "runs" / row["id"]
            if folder.exists():
                trash = self.root / "tmp" / f"deleted-{row['id']}.{secrets.token_hex(3)}"
                trash.parent.mkdir(parents=True, exist_ok=True)
                os.rename(folder, trash)
                shutil.rmtree(trash, ignore_errors=True)

    def clean(self, older_than: float = 3600.0) -> builtins.list[str]:
        """Remove leftovers of saves that died midway (unindexed folders older than
        ``older_than`` seconds); returns what was removed. Younger ones may be saves in flight."""
        removed = []
        now = time.time()
        with self._read() as con:
            known = set() if con is None else {r[0] for r in con.execute("SELECT id FROM runs")}
        for sub in ("tmp", "runs"):
            d = self.root / sub
            if not d.exists():
                continue
            for p in d.iterdir():
                if sub == "runs" and p.name in known:
                    continue
                try:
                    age = now - p.stat().st_mtime
                except FileNotFoundError:
                    continue
                if age >= older_than:
                    if p.is_dir():
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        p.unlink(missing_ok=True)
                    removed.append(str(p.relative_to(self.root)))
        return removed

    def check(self) -> dict[str, Any]:
        """Consistency report: SQLite's integrity check, rows whose files are missing/damaged,
        folders with no row."""
        with self._read() as con:
            if con is None:
                return {"integrity": "ok", "runs": 0, "damaged": [], "unindexed": []}
            integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
            rows = con.execute("SELECT * FROM runs").fetchall()
        damaged = []
        for row in rows:
            for rel in json.loads(row["files"]):
                try:
                    self._file(row, rel, verify=True)
                except CorruptRunError as err:
                    damaged.append(str(err))
        ids = {r["id"] for r in rows}
        d = self.root / "runs"
        unindexed = sorted(p.name for p in d.iterdir() if p.name not in ids) if d.exists() else []
        return {"integrity": integrity, "runs": len(rows), "damaged": damaged, "unindexed": unindexed}


def _version() -> str:
    try:
        from .. import __version__

        return __version__
    except ImportError:  # pragma: no cover
        return "unknown"


# ---------------------------------------------------------------------------------------------
# the default store

_default_root: Path | None = None
_stores: dict[Path, RunStore] = {}


def set_default_root(root: str | os.PathLike | None) -> RunStore:
    """Make ``root`` the folder that ``wb.runs.save/load/list/...`` use (None: back to
    ``$WORKBENCH_RUNS`` or ``./workbench-runs``). Returns that store."""
    global _default_root
    _default_root = None if root is None else Path(root).expanduser().resolve()
    return default_store()


def default_store() -> RunStore:
    """The store the module-level functions use: ``set_default_root``'s folder, else
    ``$WORKBENCH_RUNS``, else ``./workbench-runs`` (resolved against the current directory
    at each call)."""
    root = _default_root
    if root is None:
        root = Path(os.environ.get(ENV_ROOT) or DEFAULT_ROOT).expanduser().resolve()
    store = _stores.get(root)
    if store is None:
        store = _stores[root] = RunStore(root)
    return store


def as_store(store) -> RunStore:
    """``store`` as a RunStore: None (the default store), a RunStore, or a folder path."""
    if store is None:
        return default_store()
    if isinstance(store, RunStore):
        return store
    if isinstance(store, (str, os.PathLike)):
        return RunStore(store)
    raise TypeError(f"store must be a RunStore, a folder path or None, got {type(store).__name__}")


def _ids(runs: Iterable) -> builtins.list[str]:
    return [r.id if isinstance(r, Run) else r for r in runs]
