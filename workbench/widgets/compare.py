"""``CompareView``: two or more runs side by side.

Sections, each shown when the runs have what it needs:

* **metrics** — one row per run (or per group of runs: mean ± std over its members);
* **curves** — every logged quantity on a shared step axis (groups: mean line, ±1 std band,
  optionally each seed), with smoothing and log-scale controls;
* **embeddings** — when ``data=`` is given and the runs have models: each run's features of the
  same points, mapped to 2-D and aligned (Procrustes: rotation/reflection, scale, shift) to the
  first run's map, on linked axes; a dropdown switches PCA / t-SNE / UMAP;
* **landscapes** — when runs store a loss landscape (``wb.runs.attach(run_id, "landscape",
  land)``) or ``landscapes=`` gives them: one panel per run with one shared colour scale.

Runs can be given as run ids or ``Run`` records (from the default store or ``store=``), a
``wb.runs.list()`` DataFrame, a ``SweepResult`` (one group), ``(model, method, history)``
tuples, bare Histories (curves only), or a dict label -> any of these or a list of them (a
group). ``group_by="name"`` groups store runs by a column of ``wb.runs.list()`` (e.g. the
seeds of one recipe). For a group, embeddings and landscapes show its first member.

The figures are the static builders of ``workbench.viz.compare``; controls update their traces
in place. No math here: embeddings come from ``wb.analyses.embed`` and
``aligned_projections``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._optional import require
from ..training.history import History
from ..viz.compare import (
    compare_curves,
    compare_embeddings,
    compare_landscapes,
    curve_keys,
    landscape_range,
)
from ._figure import bundle, figure_widget

widgets = require("ipywidgets", "interactive views")
go = require("plotly.graph_objects", "interactive views")

__all__ = ["CompareView"]


@dataclass
class _Entry:
    label: str
    history: History
    run: Any = None  # a Run record, when the run is in a store
    model: Any = None
    method: Any = None
    metrics: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def load_model(self):
        if self.model is None and self.run is not None:
            self.model, self.method, _ = self.run.load(snapshots=False)
        return self.model

    def landscape(self, name: str):
        if self.run is not None and name in self.run.artifacts:
            return self.run.artifact(name)
        return None


def _entry_from(item, store, label: str | None = None) -> _Entry:
    from ..runs import Run, final_metrics

    if isinstance(item, str):
        item = store.get(item)
    if isinstance(item, Run):
        h = item.history()
        return _Entry(label or item.name, h, run=item, metrics=dict(item.metrics),
                      info={"id": item.id, "method": item.method, "model": item.model,
                            "optimizer": item.optimizer, "steps": item.steps, "status": item.status})
    if isinstance(item, History):
        return _Entry(label or "history", item, metrics=final_metrics(item),
                      info={"steps": item.last_step, "status": item.status,
                            "optimizer": item.config.get("optimizer")})
    if isinstance(item, tuple) and len(item) == 3 and isinstance(item[2], History):
        model, method, h = item
        return _Entry(label or f"{type(method).__name__}-{type(model).__name__}".lower(), h, model=model,
                      method=method, metrics=final_metrics(h),
                      info={"method": type(method).__name__, "model": type(model).__name__,
                            "optimizer": h.config.get("optimizer"), "steps": h.last_step, "status": h.status})
    raise TypeError(
        "each run must be a run id, a wb.runs.Run, a (model, method, history) tuple or a History; "
        f"got {type(item).__name__}"
    )


def _expand(item, store) -> list:
    """A single item, or the members of a SweepResult / DataFrame / list."""
    import pandas as pd

    from ..runs import SweepResult

    if isinstance(item, SweepResult):
        if all(r is not None for r in item.run_ids):
            return list(item.run_ids)
        return list(item.histories)
    if isinstance(item, pd.DataFrame):
        if "id" not in item.columns:
            raise ValueError("a DataFrame of runs needs an 'id' column (use wb.runs.list())")
        return list(item["id"])
    if isinstance(item, list):
        return [x for it in item for x in _expand(it, store)]
    return [item]


def _as_list(v):
    """A (model, method, history) tuple is one run; other tuples are lists of runs."""
    if isinstance(v, tuple):
        return [v] if len(v) == 3 and isinstance(v[2], History) else list(v)
    return v


def _resolve(runs, store, group_by) -> dict[str, list[_Entry]]:
    from ..runs import as_store

    st = as_store(store)
    groups: dict[str, list[_Entry]] = {}
    if isinstance(runs, Mapping):
        if group_by is not None:
            raise ValueError("give either a dict label -> runs (explicit groups) or group_by=, not both")
        for label, v in runs.items():
            items = _expand(_as_list(v), st)
            if not items:
                raise ValueError(f"group {label!r} is empty")
            groups[str(label)] = [_entry_from(it, st, str(label)) for it in items]
        return groups
    items = _expand(_as_list(runs), st)
    if not items:
        raise ValueError("no runs to compare; pass run ids, Run records or (model, method, history) tuples")
    entries = [_entry_from(it, st) for it in items]
    if group_by is None:
        labels = [e.label for e in entries]
        for e in entries:  # make labels unique: add the run id (or a counter)
            if labels.count(e.label) > 1:
                e.label = f"{e.label} ({e.info['id']})" if e.run is not None else e.label
        seen: dict[str, int] = {}
        for e in entries:
            n = seen.get(e.label, 0)
            seen[e.label] = n + 1
            key = e.label if n == 0 else f"{e.label} #{n + 1}"
            groups[key] = [e]
        return groups
    for e in entries:
        if e.run is None:
            key = e.label
        else:
            col = "group" if group_by == "group" else group_by
            if not hasattr(e.run, col):
                raise ValueError(
                    f"cannot group by {group_by!r}; use a column of wb.runs.list() such as "
                    "'name', 'group', 'method', 'model', 'optimizer', 'data'"
                )
            key = str(getattr(e.run, col))
        groups.setdefault(key, []).append(e)
    return groups


def _metrics_frame(groups: dict[str, list[_Entry]]):
    """One row per run: group label, run info, metrics."""
    import pandas as pd

    rows = []
    for label, es in groups.items():
        for e in es:
            rows.append({"group": label, **{k: e.info.get(k) for k in ("id", "method", "model", "optimizer", "steps", "status")},
                         **e.metrics})
    return pd.DataFrame(rows)


_INFO = ("group", "id", "method", "model", "optimizer", "steps", "status")


def _table(frame, metrics=None):
    """The shown table: one row per group; metrics as "mean ± std" where a group has several runs."""
    import pandas as pd

    from ..runs import summarize

    available = [c for c in frame.columns if c not in _INFO]
    if metrics is None:
        metric_cols = sorted(available, key=lambda c: (c.startswith("train_"), not c.startswith("val_")))  # val, yours, train
    else:
        metric_cols = list(metrics)
        unknown = [m for m in metric_cols if m not in available]
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; the runs have: {available}")
    first = frame.groupby("group", sort=False).first()
    out = pd.DataFrame(index=first.index)
    out.index.name = None
    for c in ("method", "model", "optimizer"):
        if c in first and first[c].notna().any():
            out[c] = first[c]
    out["runs"] = frame.groupby("group", sort=False).size()
    out["steps"] = frame.groupby("group", sort=False)["steps"].max()
    if metric_cols:
        numeric = frame.copy()
        for c in metric_cols:
            numeric[c] = pd.to_numeric(numeric[c], errors="coerce")
        txt = summarize(numeric, by="group", metrics=metric_cols, fmt=True)
        for c in metric_cols:
            out[c] = txt[c]
    return out


class CompareView:
    """Runs side by side: metrics table, curves, aligned embeddings, landscapes (module docstring).

    runs: what to compare (module docstring); data: a Dataset whose points are embedded by every
    run's model (at most ``max_points`` of them, a seeded subsample); keys: which curves
    (``"train_loss"``, ``"val_acc"``, ...; default all); metrics: which table columns (default
    all: ``val_*``, your own metrics, ``train_*``; ``self.metrics`` keeps every number per run);
    group_by: a ``wb.runs.list()`` column to group store runs by; projection: ``"pca"``,
    ``"tsne"`` or ``"umap"`` for the embeddings; embed_fn: ``fn(model, x)`` for the representation (default ``model.features``);
    landscape: the artifact name holding each run's loss landscape; landscapes: dict label ->
    landscape for runs that are not stored.
    """

    def __init__(self, runs, *, data=None, keys: Sequence[str] | None = None,
                 metrics: Sequence[str] | None = None, group_by: str | None = None,
                 store=None, projection: str = "pca", embed_fn=None, max_points: int = 1000, seed: int = 0,
                 landscape: str = "landscape", landscapes: Mapping | None = None, smooth_window: int = 1,
                 title: str | None = "Comparing runs"):
        if projection not in ("pca", "tsne", "umap"):
            raise ValueError(f"unknown projection {projection!r}; valid: 'pca', 'tsne', 'umap'")
        if not isinstance(max_points, int) or max_points < 3:
            raise ValueError(f"max_points must be an int >= 3, got {max_points!r}")
        self.groups = _resolve(runs, store, group_by)
        self.labels = list(self.groups)
        self.histories = {k: [e.history for e in es] for k, es in self.groups.items()}
        self.metrics = _metrics_frame(self.groups)
        self.table = _table(self.metrics, metrics)
        available = curve_keys(self.histories)
        if keys is None:
            keys = available
        else:
            keys = list(keys)
            unknown = [k for k in keys if k not in available]
            if unknown:
                raise ValueError(f"unknown curve keys {unknown}; available: {available}")
        self.keys = keys
        self.seed, self.embed_fn, self.max_points = seed, embed_fn, max_points

        # ---------------------------------------------------------------- table
        self.table_html = widgets.HTML(self._table_html())

        # ---------------------------------------------------------------- curves
        self.curves = None
        self.smooth_slider = widgets.IntSlider(value=smooth_window, min=1, max=100, step=1,
                                               description="smoothing", continuous_update=False)
        self.members_toggle = widgets.Checkbox(value=False, description="show each run",
                                               indent=False)
        self.log_toggle = widgets.Checkbox(value=False, description="log y", indent=False)
        if self.keys:
            self.curves = figure_widget(self._curves_figure())
            self.smooth_slider.observe(self._update_curves, names="value")
            self.members_toggle.observe(self._update_curves, names="value")
            self.log_toggle.observe(self._update_curves, names="value")

        # ---------------------------------------------------------------- embeddings
        self.embeddings = None
        self.projection_select = widgets.Dropdown(options=["pca", "tsne", "umap"], value=projection,
                                                  description="map")
        self.data = None
        if data is not None:
            self._setup_embeddings(data, projection)

        # ---------------------------------------------------------------- landscapes
        self.landscapes = None
        self.landscape_log = widgets.Checkbox(value=False, description="log colour", indent=False)
        lands = self._collect_landscapes(landscape, landscapes)
        self._lands = lands
        if lands:
            self.landscapes = figure_widget(compare_landscapes(lands))
            self.landscape_log.observe(self._update_landscapes, names="value")

        sections = []
        if title:
            sections.append(widgets.HTML(f"<h3 style='margin:4px 0'>{html.escape(title)}</h3>"))
        sections += [widgets.HTML("<b>Metrics</b>"), self.table_html]
        if self.curves is not None:
            sections += [widgets.HBox([self.smooth_slider, self.members_toggle, self.log_toggle]), self.curves]
        if self.embeddings is not None:
            sections += [self.projection_select, self.embeddings]
        if self.landscapes is not None:
            sections += [self.landscape_log, self.landscapes]
        self.widget = widgets.VBox(sections)

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs):
        return bundle(self.widget, **kwargs)

    def __repr__(self) -> str:
        parts = [f"{k} ({len(v)} run{'s' if len(v) > 1 else ''})" for k, v in self.groups.items()]
        shown = ["metrics", *(["curves"] if self.curves is not None else []),
                 *(["embeddings"] if self.embeddings is not None else []),
                 *(["landscapes"] if self.landscapes is not None else [])]
        return f"CompareView({', '.join(parts)}; showing {', '.join(shown)})"

    def _table_html(self) -> str:
        table = self.table.to_html(classes="wb-compare", border=0, na_rep="", float_format=lambda v: f"{v:.4g}")
        return f"<div style='overflow-x:auto; max-width:100%'>{table}</div>"

    # ------------------------------------------------------------------ curves
    def _curves_figure(self):
        return compare_curves(self.histories, self.keys, smooth_window=self.smooth_slider.value,
                              show_members=self.members_toggle.value, log_y=self.log_toggle.value)

    def _update_curves(self, _change=None):
        new = self._curves_figure()
        with self.curves.batch_update():
            for t, n in zip(self.curves.data, new.data):
                t.x, t.y, t.visible = n.x, n.y, n.visible
            self.curves.update_yaxes(type="log" if self.log_toggle.value else "linear")

    # ------------------------------------------------------------------ embeddings
    def _subsample(self, data):
        from ..data.dataset import Dataset

        if not isinstance(data, Dataset):
            raise TypeError(f"data must be a wb.data.Dataset, got {type(data).__name__}")
        n = len(data)
        if n <= self.max_points:
            return data
        import torch

        g = torch.Generator().manual_seed(self.seed)
        idx = torch.randperm(n, generator=g)[: self.max_points].sort().values
        return data.subset(idx)

    def _setup_embeddings(self, data, projection):
        from ..analyses.embedding import embed

        sub = self._subsample(data)
        zs = {}
        for label, es in self.groups.items():
            model = es[0].load_model()
            if model is None:
                continue  # a bare History: nothing to embed
            zs[label] = embed(model, sub, fn=self.embed_fn)
        if len(zs) == 0:
            return
        self.data = sub
        self._zs = zs
        self.aligned = self._align(projection)
        self.embeddings = figure_widget(self._embedding_figure())
        self.projection_select.observe(self._update_embeddings, names="value")

    def _align(self, projection):
        try:
            from ..analyses.embedding import aligned_projections
        except ImportError:  # pragma: no cover - older analyses: unaligned maps, said in the title
            from types import SimpleNamespace

            import torch

            from ..analyses.embedding import project

            coords = torch.stack([project(z, projection, seed=self.seed).coords for z in self._zs.values()])
            return SimpleNamespace(coords=coords, names=tuple(self._zs), method=f"{projection} (not aligned)")
        return aligned_projections(self._zs, projection, align="procrustes", reference="first", seed=self.seed)

    def _embedding_figure(self):
        coords = {name: self.aligned.coords[i] for i, name in enumerate(self.aligned.names)}
        y = self.data.y
        return compare_embeddings(coords, y, class_names=self.data.classes, method=self.aligned.method)

    def _update_embeddings(self, change):
        self.aligned = self._align(change["new"])
        new = self._embedding_figure()
        with self.embeddings.batch_update():
            for t, n in zip(self.embeddings.data, new.data):
                t.x, t.y = n.x, n.y
            self.embeddings.layout.xaxis.title.text = new.layout.xaxis.title.text

    # ------------------------------------------------------------------ landscapes
    def _collect_landscapes(self, name, given):
        out = {}
        for label, es in self.groups.items():
            if given is not None and label in given:
                out[label] = given[label]
                continue
            for e in es:
                land = e.landscape(name)
                if land is not None:
                    out[label] = land
                    break
        if given is not None:
            unknown = [k for k in given if k not in self.groups]
            if unknown:
                raise ValueError(f"landscapes given for unknown labels {unknown}; labels are {self.labels}")
        return out

    def _update_landscapes(self, _change=None):
        log = self.landscape_log.value
        new = compare_landscapes(self._lands, log=log)
        lo, hi = landscape_range(self._lands, log)
        with self.landscapes.batch_update():
            for t, n in zip(self.landscapes.data, new.data):
                if isinstance(n, go.Heatmap):
                    t.z = n.z
            self.landscapes.layout.coloraxis.cmin = lo
            self.landscapes.layout.coloraxis.cmax = hi
            self.landscapes.layout.coloraxis.colorbar.title.text = "log10 loss" if log else "loss"
