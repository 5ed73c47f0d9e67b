"""The run store: fits saved as runs in a folder, indexed by a local SQLite database.

Layout of a store (``RunStore(root)``; default ``./workbench-runs``, or ``$WORKBENCH_RUNS``)::

    root/index.sqlite            one row per committed run (WAL mode)
    root/runs/<id>/run.json      name, model and method configs, fit config, metrics, versions
    root/runs/<id>/history.json  ``History.to_dict()``
    root/runs/<id>/model.safetensors      final model (+ method) tensors, config header
    root/runs/<id>/snapshots.safetensors  the fit's SnapshotSeries, if one was recorded
    root/runs/<id>/artifacts/<name>.safetensors  named extra results (a loss landscape, ...)
    root/tmp/                    runs being written (invisible to readers)

Nothing is pickled: tensors go to safetensors files, everything else to JSON
(``workbench.runs.codec``), and objects are rebuilt from their recorded constructor arguments
(``workbench._config``).

**Crash safety.** A run is written into ``root/tmp/``, every file is fsync'ed, the folder is
renamed into ``root/runs/`` in one atomic step (``workbench.runs.files``), and only then is its
index row inserted in a single transaction. Readers list and load only indexed rows, so a
process that dies mid-save leaves at worst an unindexed folder, never a half-written visible
run (``clean()`` removes such leftovers). Deleting removes the row first, then the files.

**Concurrency.** Several processes (two notebook kernels, the workers of a sweep) may write one
store at once: see ``workbench.runs.index`` (SQLite WAL, one ``BEGIN IMMEDIATE`` transaction a
write, a busy timeout). WAL needs a local file system; do not share one store over NFS between
machines (see ``workbench.runs.sweep`` for how distributed sweeps save from one process).

**Integrity.** The index records a SHA-256 of every file; ``load`` checks them and raises
``CorruptRunError`` naming the run (and the file) when one is missing or damaged.
"""

from __future__ import annotations

import builtins
import json
import os
import secrets
import shutil
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from ..checkpoint import ModelMismatchError, ModelRequiredError, load_checkpoint, save_checkpoint
from ..training.history import History
from .codec import read_tensors_json, write_tensors_json
from .files import (
    FORMAT,
    CorruptRunError,
    commit,
    fsync_dir,
    fsync_file,
    remove_older,
    remove_tree,
    seal,
    sha256,
    verified,
    write_json,
)
from .index import INDEX, RunIndex, RunNotFoundError
from .metrics import final_metrics
from .record import Run, check_name, index_row, new_record

__all__ = [
    "RunStore", "Run", "RunNotFoundError", "CorruptRunError", "default_store", "set_default_root",
    "as_store", "final_metrics", "write_tensors_json", "read_tensors_json", "FORMAT", "INDEX",
    "ENV_ROOT", "DEFAULT_ROOT", "LIST_COLUMNS",
]

ENV_ROOT = "WORKBENCH_RUNS"
DEFAULT_ROOT = "workbench-runs"
# the columns of RunStore.list() before the metrics
LIST_COLUMNS = (
    "id", "name", "group", "method", "model", "data", "created", "status", "steps", "seed",
    "optimizer", "elapsed",
)


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
        self.index = RunIndex(self.root, self.timeout)

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    @property
    def index_path(self) -> Path:
        return self.index.path

    # ------------------------------------------------------------------ lookup
    def path(self, run_id) -> Path:
        """The folder of a committed run."""
        return self.root / "runs" / self._row(run_id)["id"]

    def _row(self, run_id) -> sqlite3.Row:
        if isinstance(run_id, Run):
            run_id = run_id.id
        if not isinstance(run_id, str) or not run_id:
            raise TypeError(f"run_id must be a run id string (see wb.runs.list()), got {run_id!r}")
        return self.index.find(run_id)

    def get(self, run_id) -> Run:
        """The record of one run (id or a unique id prefix of at least 4 characters)."""
        return Run.from_row(self._row(run_id), self)

    def runs(self, *, name: str | None = None, group: str | None = None) -> builtins.list[Run]:
        """All committed runs (oldest first), optionally only those with ``name`` / ``group``."""
        return [Run.from_row(r, self) for r in self.index.select(name=name, group=group)]

    def __len__(self) -> int:
        return self.index.count()

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

        rows = []
        metric_keys: dict[str, None] = {}
        for r in self.runs(name=name, group=group):
            rows.append({**{c: getattr(r, c) for c in LIST_COLUMNS}, **r.metrics})
            metric_keys.update(dict.fromkeys(r.metrics))
        order = sorted(metric_keys, key=lambda k: (not k.startswith("val_"), not k.startswith("train_"), k))
        df = pd.DataFrame(rows, columns=[*LIST_COLUMNS, *order])
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
        artifacts = dict(artifacts or {})
        record = new_record(model, method, history, name=name, group=group, data=data,
                         metrics=metrics, tags=tags, artifacts=artifacts)
        staged, final = self._staging(record["id"])
        committed = False
        try:
            files = self._write_run(staged, record, model, method, history, artifacts, snapshots)
            self._before_commit_hook(staged)
            commit(staged, final)  # atomic: the folder appears whole or not at all
            committed = True
            self._before_index_hook(final)
            self.index.insert(index_row(record, files, history.elapsed))  # now readers see it
        except BaseException:
            shutil.rmtree(final if committed else staged, ignore_errors=True)
            raise
        return record["id"]

    def _staging(self, run_id: str) -> tuple[Path, Path]:
        """A fresh folder under ``tmp/`` to write the run in, and where it will be committed."""
        for sub in ("tmp", "runs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.index.create()  # the index exists before any folder is committed
        staged = self.root / "tmp" / f"{run_id}.{os.getpid()}.{secrets.token_hex(3)}"
        staged.mkdir()
        return staged, self.root / "runs" / run_id

    def _write_run(self, folder: Path, record: dict, model, method, history: History,
                   artifacts: dict[str, Any], snapshots: bool) -> dict[str, str]:
        """Write every file of a run into ``folder`` and flush them; returns their hashes."""
        run_id = record["id"]
        save_checkpoint(folder / "model.safetensors", model, method, extra={"run": run_id})
        write_json(folder / "history.json", history.to_dict())
        snaps = history.snapshots
        record["snapshots"] = bool(snapshots and snaps is not None and len(snaps))
        if record["snapshots"]:
            write_tensors_json(folder / "snapshots.safetensors", snaps, f"run {run_id} snapshots")
        if artifacts:
            (folder / "artifacts").mkdir()
            for k, v in artifacts.items():
                write_tensors_json(folder / "artifacts" / f"{k}.safetensors", v, f"artifact {k!r}")
        write_json(folder / "run.json", record)
        return seal(folder)

    # fault-injection points for tests (a process dying mid-save)
    def _before_commit_hook(self, tmp: Path) -> None: ...

    def _before_index_hook(self, final: Path) -> None: ...

    # ------------------------------------------------------------------ load
    def _file(self, row: sqlite3.Row, rel: str, verify: bool) -> Path:
        """A run's file ``rel``; checked against its recorded hash when ``verify``."""
        expected = json.loads(row["files"]).get(rel) if verify else None
        return verified(self.root / "runs" / row["id"] / rel, rel, expected, _label(row), row["id"])

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
            raise CorruptRunError(f"{_label(row)}: history.json is damaged: {err}") from err
        if snapshots and row["snapshots"]:
            hist.snapshots = self._read_value(row, "snapshots.safetensors", verify, "snapshots.safetensors")
        return hist

    def _read_value(self, row, rel: str, verify: bool, what: str) -> Any:
        """A value stored with ``write_tensors_json``; a ``CorruptRunError`` if it is damaged."""
        path = self._file(row, rel, verify)
        try:
            return read_tensors_json(path)
        except Exception as err:
            raise CorruptRunError(f"{_label(row)}: {what} is damaged: {err}") from err

    def load(self, run_id, *, device=None, snapshots: bool = True, step: int | None = None,
             verify: bool = True, model: nn.Module | None = None):
        """Rebuild ``(model, method, history)`` of a run.

        ``model``: the network to load the weights into; required for a run of a network the
        workbench did not write (``wb.models.wrap``): pass the raw network (it is wrapped again
        as it was saved) or the wrapped one; optional otherwise.
        ``device``: where to put the model and method (default: a rebuilt model on the CPU, a
        given one where it is). ``snapshots``: also load the fit's
        snapshots into ``history.snapshots``. ``step``: load the model's weights as they were
        at that snapshot step instead of the final ones (needs saved snapshots with params).
        ``verify``: check every file against the hash recorded at save time.
        """
        row = self._row(run_id)
        ckpt = self._file(row, "model.safetensors", verify)
        try:
            model, method = load_checkpoint(ckpt, device=device, model=model)
        except (ModelRequiredError, ModelMismatchError) as err:
            raise type(err)(f"{_label(row)}: {err}") from None
        except (ValueError, FileNotFoundError) as err:
            raise CorruptRunError(f"{_label(row)}: model.safetensors could not be loaded: {err}") from err
        hist = self._history(row, snapshots or step is not None, verify)
        if step is not None:
            _load_step(model, method, hist, step, _label(row))
            if not snapshots:
                hist.snapshots = None
        return model, method, hist

    # ------------------------------------------------------------------ artifacts
    def attach(self, run_id, name: str, value: Any) -> None:
        """Store a named result with an existing run (replacing one of the same name).

        ``value``: a workbench result dataclass (e.g. a loss landscape), a tensor or array, or
        a dict/list of them and of numbers/strings. Written atomically.
        """
        check_name(name, "artifact name")
        row = self._row(run_id)
        folder = self.root / "runs" / row["id"]
        if not folder.exists():
            self._file(row, "run.json", verify=False)  # raises the clear error
        art = folder / "artifacts"
        art.mkdir(exist_ok=True)
        tmp = art / f".{name}.{os.getpid()}.{secrets.token_hex(3)}.tmp"
        try:
            write_tensors_json(tmp, value, f"artifact {name!r}")
            fsync_file(tmp)
            digest = sha256(tmp)

            def place():  # runs inside the index's write transaction
                os.replace(tmp, art / f"{name}.safetensors")
                fsync_dir(art)

            self.index.add_artifact(row["id"], name, f"artifacts/{name}.safetensors", digest, place)
        finally:
            tmp.unlink(missing_ok=True)

    def artifact(self, run_id, name: str, *, verify: bool = True):
        """Load a named result stored with a run (rebuilt as the class it was saved as)."""
        row = self._row(run_id)
        names = json.loads(row["artifacts"])
        if name not in names:
            raise KeyError(f"{_label(row)} has no artifact {name!r}; it has: {names}")
        return self._read_value(row, f"artifacts/{name}.safetensors", verify, f"artifact {name!r}")

    # ------------------------------------------------------------------ delete / maintenance
    def delete(self, run_id) -> None:
        """Remove runs (an id, a Run, or a list of them): the index row, then the files."""
        ids = [run_id] if isinstance(run_id, (str, Run)) else builtins.list(run_id)
        for rid in ids:
            row = self._row(rid)
            self.index.delete(row["id"])
            folder = self.root / "runs" / row["id"]
            if folder.exists():
                remove_tree(folder, self.root / "tmp" / f"deleted-{row['id']}.{secrets.token_hex(3)}")

    def clean(self, older_than: float = 3600.0) -> builtins.list[str]:
        """Remove leftovers of saves that died midway (unindexed folders older than
        ``older_than`` seconds); returns what was removed. Younger ones may be saves in flight."""
        removed = remove_older(self.root / "tmp", older_than)
        removed += remove_older(self.root / "runs", older_than, keep=self.index.ids())
        return [str(p.relative_to(self.root)) for p in removed]

    def check(self) -> dict[str, Any]:
        """Consistency report: SQLite's integrity check, rows whose files are missing/damaged,
        folders with no row."""
        integrity, rows = self.index.integrity(), self.index.select()
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


def _label(row: sqlite3.Row) -> str:
    return f"run {row['id']} ({row['name']!r})"


def _load_step(model: nn.Module, method: nn.Module, hist: History, step: int, label: str) -> None:
    """Put the weights (and method state) of snapshot ``step`` into ``model`` and ``method``."""
    snaps = hist.snapshots
    if snaps is None or not getattr(snaps, "params", ()):
        raise ValueError(f"{label} has no parameter snapshots; load it without step=")
    if step not in snaps.steps:
        raise ValueError(f"{label} has snapshots at steps {list(snaps.steps)}, not at {step}")
    i = snaps.steps.index(step)
    model.load_state_dict(snaps.params[i])
    if snaps.method_states and snaps.method_states[i]:
        method.load_state_dict({**method.state_dict(), **snaps.method_states[i]})


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

