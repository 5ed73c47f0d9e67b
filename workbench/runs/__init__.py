"""Runs: fits saved to a local store (SQLite index + safetensors + JSON), reloaded and compared.

    run_id = wb.runs.save(model, method, hist, name="palm-digits")
    model, method, hist = wb.runs.load(run_id)
    wb.runs.list()                  # pandas DataFrame, one row per run
    wb.runs.delete(run_id)
    wb.runs.attach(run_id, "landscape", land); wb.runs.artifact(run_id, "landscape")
    res = wb.runs.sweep(make_model, make_method, train, seeds=[0, 1, 2], steps=500, val=test)
    res = wb.runs.sweep(..., backend="ray")       # trials as Ray tasks (pip install -e ".[scale]")
    res = wb.runs.grid(make_model, {"ce": ..., "supcon": ...}, train, params={"lr": [...]},
                       seeds=[0, 1], backend="tune")   # methods x hyperparameters x seeds

The module-level functions use the default store (``./workbench-runs``, or ``$WORKBENCH_RUNS``,
or the folder given to ``set_default_root``); pass ``store=RunStore(folder)`` (or a folder
path) to use another. See ``workbench.runs.store`` for the on-disk format and its guarantees.
"""

from __future__ import annotations

import builtins

from .grid import grid
from .resolve import RunEntry, RunGroups, resolve_runs
from .store import (
    CorruptRunError,
    Run,
    RunNotFoundError,
    RunStore,
    as_store,
    default_store,
    final_metrics,
    set_default_root,
)
from .sweep import SweepResult, summarize, sweep

__all__ = [
    "save", "load", "list", "delete", "get", "attach", "artifact", "history", "runs",
    "RunStore", "Run", "RunNotFoundError", "CorruptRunError", "default_store", "set_default_root",
    "sweep", "grid", "SweepResult", "summarize", "final_metrics",
    "resolve_runs", "RunGroups", "RunEntry",
]


def save(model, method, history, *, name: str | None = None, store=None, **kwargs) -> str:
    """Save a fit as a run; returns its id. See ``RunStore.save`` for the keywords
    (``group``, ``data``, ``metrics``, ``tags``, ``artifacts``, ``snapshots``)."""
    return as_store(store).save(model, method, history, name=name, **kwargs)


def load(run_id, *, store=None, **kwargs):
    """``(model, method, history)`` of a run (``device=``, ``snapshots=``, ``step=``; ``model=MyNet()``
    for a run of a wrapped network: the weights are loaded into it)."""
    return as_store(store).load(run_id, **kwargs)


def list(*, name: str | None = None, group: str | None = None, store=None):  # noqa: A001
    """A DataFrame of the runs (id, name, method, model, created, status, steps, metrics...)."""
    return as_store(store).list(name=name, group=group)


def runs(*, name: str | None = None, group: str | None = None, store=None) -> builtins.list[Run]:
    """The runs as ``Run`` records (oldest first)."""
    return as_store(store).runs(name=name, group=group)


def get(run_id, *, store=None) -> Run:
    """The ``Run`` record of one run (metadata; ``.load()``, ``.history()``, ``.artifact()``)."""
    return as_store(store).get(run_id)


def history(run_id, *, store=None, **kwargs):
    """Only the History of a run (no model is built)."""
    return as_store(store).history(run_id, **kwargs)


def delete(run_id, *, store=None) -> None:
    """Remove a run (or a list of runs): its index row and its files."""
    as_store(store).delete(run_id)


def attach(run_id, name: str, value, *, store=None) -> None:
    """Store a named result (e.g. a loss landscape) with an existing run."""
    as_store(store).attach(run_id, name, value)


def artifact(run_id, name: str, *, store=None):
    """Load a named result stored with a run."""
    return as_store(store).artifact(run_id, name)
