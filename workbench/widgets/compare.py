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

No loading or math here: ``wb.runs.resolve_runs`` resolves the runs into groups, their metrics
table, landscapes and features (loading models from the store); ``wb.analyses.aligned_projections``
maps the features; the figures are the static builders of ``workbench.viz.compare``, whose
traces the controls update in place.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from .._optional import require
from ..viz.compare import (
    compare_curves,
    compare_embeddings,
    compare_landscapes,
    curve_keys,
    landscape_range,
)
from ._view import View, row

widgets = require("ipywidgets", "interactive views")

__all__ = ["CompareView"]

PROJECTIONS = ("pca", "tsne", "umap")


class CompareView(View):
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
        from ..runs import resolve_runs

        super().__init__()
        if projection not in PROJECTIONS:
            raise ValueError(f"unknown projection {projection!r}; valid: {', '.join(map(repr, PROJECTIONS))}")
        if not isinstance(max_points, int) or max_points < 3:
            raise ValueError(f"max_points must be an int >= 3, got {max_points!r}")
        self.runs = resolve_runs(runs, store=store, group_by=group_by)
        self.groups = self.runs.groups
        self.labels = self.runs.labels
        self.histories = self.runs.histories
        self.metrics = self.runs.metrics_frame()
        self.table = self.runs.table(metrics)
        self.keys = self._curve_keys(keys)
        self.seed, self.embed_fn, self.max_points = seed, embed_fn, max_points
        self.table_html = widgets.HTML(self._table_html())
        sections = [widgets.HTML(f"<h3 style='margin:4px 0'>{html.escape(title)}</h3>") if title else None,
                    widgets.HTML("<b>Metrics</b>"), self.table_html]
        sections += self._build_curves(smooth_window)
        sections += self._build_embeddings(data, projection)
        sections += self._build_landscapes(landscape, landscapes)
        self._set_root(*sections)

    def _curve_keys(self, keys):
        available = curve_keys(self.histories)
        if keys is None:
            return available
        unknown = [k for k in keys if k not in available]
        if unknown:
            raise ValueError(f"unknown curve keys {unknown}; available: {available}")
        return list(keys)

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
    def _build_curves(self, smooth_window) -> list:
        self.curves = None
        self.smooth_slider = widgets.IntSlider(value=smooth_window, min=1, max=100, step=1,
                                               description="smoothing", continuous_update=False)
        self.members_toggle = widgets.Checkbox(value=False, description="show each run", indent=False)
        self.log_toggle = widgets.Checkbox(value=False, description="log y", indent=False)
        if not self.keys:
            return []
        self.curves = self._add_figure("curves", self._curves_figure())
        for key, w in (("smoothing", self.smooth_slider), ("members", self.members_toggle), ("log y", self.log_toggle)):
            self._add_control(key, w)
            w.observe(self._update_curves, names="value")
        return [row(self.smooth_slider, self.members_toggle, self.log_toggle), self.curves]

    def _curves_figure(self):
        return compare_curves(self.histories, self.keys, smooth_window=self.smooth_slider.value,
                              show_members=self.members_toggle.value, log_y=self.log_toggle.value)

    def _update_curves(self, _change=None):
        new = self._curves_figure()  # the same traces in the same order (see viz.compare)
        with self.curves.batch_update():
            for t, n in zip(self.curves.data, new.data):
                t.x, t.y, t.visible = n.x, n.y, n.visible
            self.curves.update_yaxes(type="log" if self.log_toggle.value else "linear")

    # ------------------------------------------------------------------ embeddings
    def _build_embeddings(self, data, projection) -> list:
        self.embeddings = self.data = None
        self.projection_select = widgets.Dropdown(options=list(PROJECTIONS), value=projection, description="map")
        if data is None:
            return []
        sub, zs = self.runs.embeddings(data, fn=self.embed_fn, max_points=self.max_points, seed=self.seed)
        if not zs:
            return []  # only bare Histories: nothing to embed
        self.data, self._zs = sub, zs
        self.aligned = self._align(projection)
        self.embeddings = self._add_figure("embeddings", self._embedding_figure())
        self._add_control("projection", self.projection_select)
        self.projection_select.observe(self._update_embeddings, names="value")
        return [self.projection_select, self.embeddings]

    def _align(self, projection):
        from ..analyses.embedding import aligned_projections

        return aligned_projections(self._zs, projection, align="procrustes", reference="first", seed=self.seed)

    def _embedding_figure(self):
        coords = {name: self.aligned.coords[i] for i, name in enumerate(self.aligned.names)}
        return compare_embeddings(coords, self.data.y, class_names=self.data.classes, method=self.aligned.method)

    def _update_embeddings(self, change):
        self.aligned = self._align(change["new"])
        new = self._embedding_figure()  # the same traces in the same order (see viz.compare)
        with self.embeddings.batch_update():
            for t, n in zip(self.embeddings.data, new.data):
                t.x, t.y = n.x, n.y
            self.embeddings.layout.xaxis.title.text = new.layout.xaxis.title.text

    # ------------------------------------------------------------------ landscapes
    def _build_landscapes(self, name, given) -> list:
        self.landscapes = None
        self.landscape_log = widgets.Checkbox(value=False, description="log colour", indent=False)
        self._lands = self.runs.landscapes(name, given)
        if not self._lands:
            return []
        self.landscapes = self._add_figure("landscapes", compare_landscapes(self._lands))
        self._add_control("landscape log", self.landscape_log)
        self.landscape_log.observe(self._update_landscapes, names="value")
        return [self.landscape_log, self.landscapes]

    def _update_landscapes(self, _change=None):
        log = self.landscape_log.value
        new = compare_landscapes(self._lands, log=log)
        lo, hi = landscape_range(self._lands, log)
        with self.landscapes.batch_update():
            for t, n in zip(self.landscapes.data, new.data):
                if n.type == "heatmap":
                    t.z = n.z
            self.landscapes.layout.coloraxis.update(cmin=lo, cmax=hi)
            self.landscapes.layout.coloraxis.colorbar.title.text = new.layout.coloraxis.colorbar.title.text
