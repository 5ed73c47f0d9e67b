"""Resolving "the runs to compare" into labelled groups, their metrics, models and features.

``resolve_runs(runs, store=..., group_by=...)`` accepts what a user has at hand: run ids or
``Run`` records (from the default store or ``store=``), a ``wb.runs.list()`` DataFrame, a
``SweepResult`` (one group), ``(model, method, history)`` tuples, bare Histories (curves only),
or a dict label -> any of these or a list of them (a group). ``group_by="name"`` groups store
runs by a column of ``wb.runs.list()`` (e.g. the seeds of one recipe). It returns ``RunGroups``:

* ``groups`` label -> [``RunEntry``]; ``labels``; ``histories`` label -> [History];
* ``metrics_frame()`` one row per run (group, id, method, model, optimizer, steps, status,
  metrics) and ``table(metrics=None)`` one row per group ("mean ± std" for several runs);
* ``landscapes(name, given=None)`` label -> the loss landscape stored with a group's first run
  that has one (``wb.runs.attach``), or given for runs that are not stored;
* ``embeddings(data, fn=None, max_points=1000, seed=0)`` the features of the same (seeded,
  subsampled) points under every group's first model, loaded from the store when needed
  (``wb.analyses.embed``).

``wb.widgets.CompareView`` draws these; nothing here plots.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..training.history import History

__all__ = ["RunEntry", "RunGroups", "resolve_runs"]

#: run information columns of ``RunGroups.metrics_frame`` (every other column is a metric)
INFO = ("group", "id", "method", "model", "optimizer", "steps", "status")


@dataclass
class RunEntry:
    """One run to compare: its label, History and metrics, and where its model comes from
    (a ``Run`` record in a store, loaded on first use, or a model given in memory)."""

    label: str
    history: History
    run: Any = None  # a Run record, when the run is in a store
    model: Any = None
    method: Any = None
    metrics: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def load_model(self):
        """The run's model (loaded from the store the first time), or None for a bare History."""
        if self.model is None and self.run is not None:
            self.model, self.method, _ = self.run.load(snapshots=False)
        return self.model

    def landscape(self, name: str):
        """The result stored with the run under ``name`` (``wb.runs.attach``), or None."""
        if self.run is not None and name in self.run.artifacts:
            return self.run.artifact(name)
        return None


def _entry_from(item, store, label: str | None = None) -> RunEntry:
    from . import Run, final_metrics

    if isinstance(item, str):
        item = store.get(item)
    if isinstance(item, Run):
        return RunEntry(label or item.name, item.history(), run=item, metrics=dict(item.metrics),
                        info={"id": item.id, "method": item.method, "model": item.model,
                              "optimizer": item.optimizer, "steps": item.steps, "status": item.status})
    if isinstance(item, History):
        return RunEntry(label or "history", item, metrics=final_metrics(item),
                        info={"steps": item.last_step, "status": item.status,
                              "optimizer": item.config.get("optimizer")})
    if isinstance(item, tuple) and len(item) == 3 and isinstance(item[2], History):
        model, method, h = item
        return RunEntry(label or f"{type(method).__name__}-{type(model).__name__}".lower(), h, model=model,
                        method=method, metrics=final_metrics(h),
                        info={"method": type(method).__name__, "model": type(model).__name__,
                              "optimizer": h.config.get("optimizer"), "steps": h.last_step, "status": h.status})
    raise TypeError(
        "each run must be a run id, a wb.runs.Run, a (model, method, history) tuple or a History; "
        f"got {type(item).__name__}"
    )


def _expand(item) -> list:
    """A single item, or the members of a SweepResult / DataFrame / list."""
    import pandas as pd

    from . import SweepResult

    if isinstance(item, SweepResult):
        if all(r is not None for r in item.run_ids):
            return list(item.run_ids)
        return list(item.histories)
    if isinstance(item, pd.DataFrame):
        if "id" not in item.columns:
            raise ValueError("a DataFrame of runs needs an 'id' column (use wb.runs.list())")
        return list(item["id"])
    if isinstance(item, list):
        return [x for it in item for x in _expand(it)]
    return [item]


def _as_list(v):
    """A (model, method, history) tuple is one run; other tuples are lists of runs."""
    if isinstance(v, tuple):
        return [v] if len(v) == 3 and isinstance(v[2], History) else list(v)
    return v


def _unique_labels(entries: list[RunEntry]) -> dict[str, list[RunEntry]]:
    """One group per run; repeated labels get the run id (store runs) or a counter."""
    labels = [e.label for e in entries]
    for e in entries:
        if labels.count(e.label) > 1 and e.run is not None:
            e.label = f"{e.label} ({e.info['id']})"
    groups, seen = {}, {}
    for e in entries:
        n = seen.get(e.label, 0)
        seen[e.label] = n + 1
        groups[e.label if n == 0 else f"{e.label} #{n + 1}"] = [e]
    return groups


def _grouped(entries: list[RunEntry], group_by: str) -> dict[str, list[RunEntry]]:
    groups: dict[str, list[RunEntry]] = {}
    for e in entries:
        key = e.label
        if e.run is not None:
            if not hasattr(e.run, group_by):
                raise ValueError(
                    f"cannot group by {group_by!r}; use a column of wb.runs.list() such as "
                    "'name', 'group', 'method', 'model', 'optimizer', 'data'"
                )
            key = str(getattr(e.run, group_by))
        groups.setdefault(key, []).append(e)
    return groups


def resolve_runs(runs, *, store=None, group_by: str | None = None) -> RunGroups:
    """Labelled groups of runs from ids, records, tuples, Histories, sweeps or DataFrames (see
    the module docstring). ``group_by``: a ``wb.runs.list()`` column grouping store runs."""
    from . import as_store

    st = as_store(store)
    if isinstance(runs, Mapping):
        if group_by is not None:
            raise ValueError("give either a dict label -> runs (explicit groups) or group_by=, not both")
        groups = {}
        for label, v in runs.items():
            items = _expand(_as_list(v))
            if not items:
                raise ValueError(f"group {label!r} is empty")
            groups[str(label)] = [_entry_from(it, st, str(label)) for it in items]
        return RunGroups(groups)
    items = _expand(_as_list(runs))
    if not items:
        raise ValueError("no runs to compare; pass run ids, Run records or (model, method, history) tuples")
    entries = [_entry_from(it, st) for it in items]
    return RunGroups(_unique_labels(entries) if group_by is None else _grouped(entries, group_by))


class RunGroups:
    """Runs to compare, grouped by label (``resolve_runs``; see the module docstring)."""

    def __init__(self, groups: dict[str, list[RunEntry]]):
        self.groups = groups

    @property
    def labels(self) -> list[str]:
        return list(self.groups)

    @property
    def histories(self) -> dict[str, list[History]]:
        return {k: [e.history for e in es] for k, es in self.groups.items()}

    def metrics_frame(self):
        """A DataFrame with one row per run: group label, run information (``INFO``), metrics."""
        import pandas as pd

        return pd.DataFrame([{"group": label, **{k: e.info.get(k) for k in INFO[1:]}, **e.metrics}
                             for label, es in self.groups.items() for e in es])

    def table(self, metrics=None):
        """One row per group: method, model, optimizer, number of runs, steps, and each metric
        (``metrics``, default all: ``val_*``, your own, ``train_*``) as "mean ± std" where a
        group has several runs."""
        import pandas as pd

        from . import summarize

        frame = self.metrics_frame()
        available = [c for c in frame.columns if c not in INFO]
        if metrics is None:
            metric_cols = sorted(available, key=lambda c: (c.startswith("train_"), not c.startswith("val_")))
        else:
            metric_cols = list(metrics)
            unknown = [m for m in metric_cols if m not in available]
            if unknown:
                raise ValueError(f"unknown metrics {unknown}; the runs have: {available}")
        by_group = frame.groupby("group", sort=False)
        first = by_group.first()
        out = pd.DataFrame(index=first.index)
        out.index.name = None
        for c in ("method", "model", "optimizer"):
            if c in first and first[c].notna().any():
                out[c] = first[c]
        out["runs"] = by_group.size()
        out["steps"] = by_group["steps"].max()
        if metric_cols:
            numeric = frame.copy()
            for c in metric_cols:
                numeric[c] = pd.to_numeric(numeric[c], errors="coerce")
            txt = summarize(numeric, by="group", metrics=metric_cols, fmt=True)
            for c in metric_cols:
                out[c] = txt[c]
        return out

    def landscapes(self, name: str = "landscape", given: Mapping | None = None) -> dict:
        """label -> landscape: ``given[label]`` when given, else the first of the group's stored
        runs holding an artifact ``name``; groups without one are left out."""
        if given is not None:
            unknown = [k for k in given if k not in self.groups]
            if unknown:
                raise ValueError(f"landscapes given for unknown labels {unknown}; labels are {self.labels}")
        out = {}
        for label, es in self.groups.items():
            if given is not None and label in given:
                out[label] = given[label]
                continue
            land = next((ld for ld in (e.landscape(name) for e in es) if ld is not None), None)
            if land is not None:
                out[label] = land
        return out

    def embeddings(self, data, *, fn=None, max_points: int = 1000, seed: int = 0):
        """(points, {label: (n, d) features}): at most ``max_points`` of ``data`` (a seeded
        subsample, in order) embedded by each group's first model (``fn(model, x)``, default
        ``model.features``); groups without a model (bare Histories) are left out."""
        import torch

        from ..analyses.embedding import embed
        from ..data.dataset import Dataset

        if not isinstance(data, Dataset):
            raise TypeError(f"data must be a wb.data.Dataset, got {type(data).__name__}")
        if not isinstance(max_points, int) or max_points < 3:
            raise ValueError(f"max_points must be an int >= 3, got {max_points!r}")
        if len(data) > max_points:
            g = torch.Generator().manual_seed(seed)
            data = data.subset(torch.randperm(len(data), generator=g)[:max_points].sort().values)
        zs = {}
        for label, es in self.groups.items():
            model = es[0].load_model()
            if model is not None:
                zs[label] = embed(model, data, fn=fn)  # (n, d)
        return data, zs

    def __repr__(self) -> str:
        parts = [f"{k} ({len(v)} run{'s' if len(v) > 1 else ''})" for k, v in self.groups.items()]
        return f"RunGroups({', '.join(parts)})"
