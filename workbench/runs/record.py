"""What a run is: the ``Run`` record of an index row, and the record a new run is saved with.

``new_record(model, method, history, ...)`` checks ``save``'s arguments and returns the
contents of the run's ``run.json`` (a fresh id, the model's and method's configs, the fit's
config, metrics, tags, versions); ``index_row`` turns that record and the files' hashes into
the run's row in the index; ``Run.from_row`` turns a row back into a ``Run``.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .._config import describe
from ..checkpoint import describe_model
from ..training.history import History
from .files import FORMAT, now
from .metrics import check_metrics, final_metrics

if TYPE_CHECKING:
    from .store import RunStore

__all__ = ["Run", "new_record", "index_row", "check_name"]

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}$")


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

    @classmethod
    def from_row(cls, row: sqlite3.Row, store: RunStore) -> Run:
        return cls(
            id=row["id"], name=row["name"], group=row["grp"], method=row["method"], model=row["model"],
            data=row["data"], created=row["created"], status=row["status"], steps=row["steps"],
            seed=row["seed"], optimizer=row["optimizer"], elapsed=row["elapsed"],
            metrics=json.loads(row["metrics"]), tags=json.loads(row["tags"]),
            artifacts=tuple(json.loads(row["artifacts"])), has_snapshots=bool(row["snapshots"]), store=store,
        )

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


def check_name(name: str, what: str = "name") -> str:
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


def _check_fit(model, method, history) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not (isinstance(method, nn.Module) and callable(getattr(method, "loss", None))):
        raise TypeError(f"method must be a workbench method, got {type(method).__name__}")
    if not isinstance(history, History):
        raise TypeError(f"history must be the History returned by wb.fit, got {type(history).__name__}")
    from ..models.wrap import Wrapped

    if not hasattr(model, "config") and not isinstance(model, Wrapped):
        raise TypeError(
            f"{type(model).__name__} does not record its constructor arguments, so a run could "
            "not rebuild it; use a workbench model (wb.models.*), or wrap your network "
            "(wb.models.wrap(net): its weights are saved, and wb.runs.load(run_id, model=MyNet()) "
            "loads them back)"
        )


def _check_tags(tags) -> dict[str, Any]:
    tags = dict(tags or {})
    try:
        json.dumps(tags)
    except TypeError as err:
        raise TypeError(f"tags must be JSON-able (numbers, strings, lists, dicts): {err}") from None
    return tags


def new_record(model, method, history: History, *, name, group, data, metrics, tags, artifacts) -> dict:
    """The checked contents of ``run.json`` for a new run (a fresh id; ``snapshots`` is set
    once the files are written)."""
    from ..models.wrap import Wrapped

    _check_fit(model, method, history)
    net = model.module if isinstance(model, Wrapped) else model
    name = check_name(name if name is not None else f"{type(method).__name__}-{type(net).__name__}".lower())
    if group is not None:
        check_name(group, "group")
    user_metrics = check_metrics(metrics)
    for k in artifacts:
        check_name(k, "artifact name")
    return {
        "format": FORMAT,
        "id": secrets.token_hex(4),
        "name": name,
        "group": group,
        "created": now(),
        "model": describe_model(model),
        "method": describe(method),
        "fit": history.config or {},
        "data": _describe_data(data),
        "status": history.status,
        "message": history.message,
        "steps": history.last_step,
        "metrics": {**final_metrics(history), **user_metrics},
        "tags": _check_tags(tags),
        "artifacts": sorted(artifacts),
        "versions": {"workbench": _version(), "torch": torch.__version__},
    }


def index_row(record: dict, files: dict[str, str], elapsed: float) -> dict[str, Any]:
    """The index row of a run from its ``run.json`` record and its files' hashes."""
    seed, optimizer = record["fit"].get("seed"), record["fit"].get("optimizer")
    return {
        "id": record["id"], "name": record["name"], "grp": record["group"],
        "method": record["method"]["__class__"], "model": record["model"]["__class__"],
        "data": record["data"], "created": record["created"], "status": record["status"],
        "steps": record["steps"], "seed": seed if isinstance(seed, int) else None,
        "optimizer": optimizer if isinstance(optimizer, str) else None, "elapsed": float(elapsed),
        "metrics": record["metrics"], "tags": record["tags"], "artifacts": record["artifacts"],
        "snapshots": int(record["snapshots"]), "files": files, "format": FORMAT,
    }


def _version() -> str:
    try:
        from .. import __version__

        return __version__
    except ImportError:  # pragma: no cover
        return "unknown"
