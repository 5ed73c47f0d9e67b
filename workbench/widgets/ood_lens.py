"""``OODLens``: an OOD lens on the embedding map.

What it shows, for one ``wb.ood.OODMap`` (ID test points and OOD sets in one 2-D map, plus
the scores of every detector of a comparison):

* the map (an ``EmbeddingView``): points coloured by the chosen detector's score, by set, by
  class, or by what the threshold does to them (ID kept / ID flagged / OOD caught / OOD missed);
  PALM's prototypes as stars; missed OOD points optionally outlined; box/lasso a region to get a
  summary of what is in it (``lens.selected``);
* a threshold slider (rule: flag OOD when score > threshold) with the resulting rates in **both**
  conventions, the FPR@95 of each, and buttons that jump to each convention's operating point;
* a linked ROC curve (in the chosen convention) with a marker at the threshold, and the score
  histograms of the ID and OOD sets with the threshold line;
* with prototypes: for the OOD points, the class of their nearest prototype, caught vs missed.

Every control updates the figures in place (``batch_update``). The numbers come from
``workbench.ood`` (``rates_at``, ``roc_curve``, ``threshold_at``, ``OODMap.outcome`` /
``landing``); the figures from ``workbench.viz.ood``.

The map is an ``EmbeddingView``; the lens registers its colourings (scores, sets, outcomes)
with ``register_color(..., legend_names=...)`` and switches between them.
"""

from __future__ import annotations

import html

import numpy as np

from .._optional import require
from ..ood import CONVENTIONS, OODMap, metrics, rates_at, roc_curve, threshold_at
from ..viz._common import colour, to_numpy
from ..viz.ood import (
    histogram_axis_title,
    histogram_data,
    landing_bars,
    roc_figure,
    roc_point,
    score_histograms,
)
from ._figure import bundle, figure_widget
from .embedding import EmbeddingView

widgets = require("ipywidgets", "interactive views")
go = require("plotly.graph_objects", "interactive views")

__all__ = ["OODLens"]

SCORE = "OOD score"
OUTCOME = "outcome at threshold"
SET = "set"
ALL = "all OOD sets"


class OODLens:
    """Interactive OOD lens (see the module docstring).

    Parameters
    ----------
    ood_map: a ``wb.ood.OODMap`` (``wb.ood.ood_map(comparison, bank, id_test, ood)``).
    detector: detector to start with (default: the best mean AUROC).
    ood_set: OOD set whose ROC / rates are shown (default: all OOD sets pooled).
    convention: "id-positive" (default, as the comparison) or "ood-positive": the ROC's axes
        and which FPR@95 the threshold starts at; the readout always shows both.
    color: the map's first colouring: "OOD score" (default), "outcome at threshold", "set" or
        "label".
    title: title of the map.

    Configure the lens (detector, set, threshold, colouring) before or when displaying it: in a
    "run all", figure updates sent while the browser is still drawing a just-displayed figure
    widget can leave that figure empty (a plotly FigureWidget race seen in JupyterLab).
    """

    def __init__(self, ood_map: OODMap, *, detector: str | None = None, ood_set: str | None = None,
                 convention: str | None = None, color: str = SCORE, title: str | None = None,
                 map_height: int = 500):
        if not isinstance(ood_map, OODMap):
            raise TypeError(f"OODLens takes a wb.ood.OODMap (from wb.ood.ood_map), got {type(ood_map).__name__}")
        self.map = m = ood_map
        dets = list(m.scores)
        if not dets:
            raise ValueError("the map holds no detector scores")
        if detector is None:
            detector = max(dets, key=lambda d: np.mean([m.metrics[(d, s)].auroc for s in m.set_names[1:]
                                                         if (d, s) in m.metrics] or [0.0]))
        if detector not in dets:
            raise ValueError(f"unknown detector {detector!r}; valid: {', '.join(dets)}")
        if ood_set is not None and ood_set not in m.set_names[1:]:
            raise ValueError(f"unknown OOD set {ood_set!r}; valid: {', '.join(m.set_names[1:])}")
        convention = convention or m.convention
        if convention not in CONVENTIONS:
            raise ValueError(f"unknown convention {convention!r}; valid: {', '.join(CONVENTIONS)}")
        self.detector, self.ood_set, self.convention = detector, ood_set, convention
        self._set_names = {k: n for k, n in enumerate(m.set_names)}

        # ---- the map
        scores = to_numpy(m.scores[detector]).astype(float)
        s_id, s_ood = self._pair()
        self.threshold = threshold_at(s_id, s_ood, convention=convention)
        self.view = EmbeddingView(
            m.coords, labels=m.labels, class_names=m.class_names,
            colors={SET: to_numpy(m.set_index)}, data=m.images if m.images is not None else None,
            title=title, height=map_height,
        )
        self.view._legend_names[SET] = self._set_names
        self.view.register_color(OUTCOME, to_numpy(m.outcome(detector, self.threshold)), categorical=True,
                                 legend_names=dict(enumerate(OODMap.OUTCOMES)))
        self.view.register_color(SCORE, scores, categorical=False)
        if color not in (SCORE, OUTCOME, SET, "label"):
            raise ValueError(f"unknown colour {color!r}; valid: {SCORE!r}, {OUTCOME!r}, {SET!r}, 'label'")
        self.view.set_color(color)
        self.figure = self.view.figure
        self._proto_trace = None
        if m.prototypes_xy is not None:
            pxy = to_numpy(m.prototypes_xy)
            pc = to_numpy(m.proto_class) if m.proto_class is not None else np.zeros(len(pxy), dtype=int)
            self.figure.add_trace(go.Scattergl(
                x=pxy[:, 0], y=pxy[:, 1], mode="markers", name="prototypes", showlegend=False,
                marker=dict(symbol="star", size=15, color="white",
                            line=dict(width=2.5, color=[colour(int(c)) for c in pc])),
                customdata=np.stack([np.arange(len(pc)), pc], 1),
                hovertemplate="PALM prototype %{customdata[0]}<br>class %{customdata[1]}<extra></extra>",
            ))
            self._proto_trace = self.figure.data[-1]

        # ---- linked figures
        curve = roc_curve(s_id, s_ood, convention=convention)
        self.roc = figure_widget(roc_figure({detector: curve}, point=roc_point(s_id, s_ood, self.threshold, convention),
                                              title=None, height=360, width=400))
        self.hist = figure_widget(score_histograms(m.set_scores(detector), threshold=self.threshold,
                                                     score_name=f"{detector} score", height=320, width=400))
        self.landing = None
        if m.nearest_proto is not None and m.proto_class is not None:
            self.landing = figure_widget(landing_bars(m.landing(detector, self.threshold, ood_set),
                                                        class_names=m.class_names, height=280, width=520))

        # ---- controls
        self.detector_select = widgets.Dropdown(options=dets, value=detector, description="detector",
                                                layout=widgets.Layout(width="280px"))
        self.set_select = widgets.Dropdown(options=[ALL] + list(m.set_names[1:]), value=ood_set or ALL,
                                           description="OOD set", layout=widgets.Layout(width="300px"))
        self.convention_toggle = widgets.ToggleButtons(
            options=list(CONVENTIONS), value=convention, tooltips=["ROC with ID as the positive class",
                                                                   "ROC with OOD as the positive class"],
            style={"button_width": "105px"}, layout=widgets.Layout(width="240px", flex="0 0 auto"),
        )
        self._grid = self._threshold_grid(scores)
        self.slider = widgets.IntSlider(
            value=self._index_of(self.threshold), min=0, max=len(self._grid) - 1, readout=False,
            description="threshold", continuous_update=True, layout=widgets.Layout(width="460px"),
        )
        self.threshold_label = widgets.Label(f"{self.threshold:.4g}", layout=widgets.Layout(width="80px"))
        self.snap_id = widgets.Button(description="FPR@95 ID-positive", layout=widgets.Layout(width="170px"),
                                      tooltip="threshold keeping 95% of the ID points")
        self.snap_ood = widgets.Button(description="FPR@95 OOD-positive", layout=widgets.Layout(width="170px"),
                                       tooltip="threshold flagging 95% of the OOD points")
        self.outline = widgets.Checkbox(value=False, description="outline missed OOD", indent=False,
                                        layout=widgets.Layout(width="170px"))
        self.readout = widgets.HTML()
        self.selection_info = widgets.HTML("<i>box/lasso points on the map to see what they are</i>")

        self.detector_select.observe(lambda ch: self.set_detector(ch["new"]), names="value")
        self.set_select.observe(lambda ch: self.set_ood_set(None if ch["new"] == ALL else ch["new"]), names="value")
        self.convention_toggle.observe(lambda ch: self.set_convention(ch["new"]), names="value")
        self.slider.observe(self._on_slider, names="value")
        self.snap_id.on_click(lambda _: self.snap("id-positive"))
        self.snap_ood.on_click(lambda _: self.snap("ood-positive"))
        self.outline.observe(lambda ch: self._update_outline(), names="value")
        self.view.on_select(self._on_select)

        side = widgets.VBox([self.roc, self.hist])
        rows = [
            widgets.HBox([self.detector_select, self.set_select,
                          widgets.Label("ROC axes", layout=widgets.Layout(margin="0 6px 0 16px")),
                          self.convention_toggle]),
            widgets.HBox([self.slider, self.threshold_label, self.snap_id, self.snap_ood, self.outline]),
            self.readout,
            widgets.HBox([self.view.widget, side]),
        ]
        bottom = [self.selection_info]
        if self.landing is not None:
            bottom.insert(0, self.landing)
        rows.append(widgets.HBox(bottom))
        self.widget = widgets.VBox(rows)
        self._refresh_readout()

    # ------------------------------------------------------------------ data helpers
    def _pair(self):
        """(ID scores, OOD scores) of the current detector and OOD set (pooled when None)."""
        s = to_numpy(self.map.scores[self.detector]).astype(float)
        si = to_numpy(self.map.set_index)
        ood = si > 0 if self.ood_set is None else si == self.map.set_names.index(self.ood_set)
        return s[si == 0], s[ood]

    @staticmethod
    def _threshold_grid(scores) -> np.ndarray:
        """Every distinct threshold the data allows: just below the smallest score (flag every
        point), then each distinct score (flag the points above it)."""
        u = np.unique(np.asarray(scores, dtype=float))
        return np.concatenate([[np.nextafter(u[0], -np.inf)], u])

    def _index_of(self, t: float) -> int:
        """Slider position whose threshold flags the same points as ``t``."""
        i = int(np.searchsorted(self._grid, t, side="right")) - 1
        return min(max(i, 0), len(self._grid) - 1)

    # ------------------------------------------------------------------ public API
    def set_detector(self, name: str):
        """Show detector ``name``: colours, slider range, ROC, histograms (threshold reset to
        the FPR@95 point of the current convention)."""
        if name not in self.map.scores:
            raise ValueError(f"unknown detector {name!r}; valid: {', '.join(self.map.scores)}")
        self.detector = name
        scores = to_numpy(self.map.scores[name]).astype(float)
        self.view.register_color(SCORE, scores, categorical=False)
        data = histogram_data(self.map.set_scores(name))
        with self.hist.batch_update():
            for tr, x in zip(self.hist.data, data["x"]):
                tr.x = x
                tr.xbins = data["xbins"]
            self.hist.layout.xaxis.title.text = histogram_axis_title(f"{name} score", data)
        self._grid = self._threshold_grid(scores)
        self._syncing = True
        try:
            self.slider.max = len(self._grid) - 1
        finally:
            self._syncing = False
        if self.detector_select.value != name:
            self.detector_select.value = name
        self._update_curve()
        self.snap(self.convention)
        return self

    def set_ood_set(self, name: str | None):
        """Rates and ROC against one OOD set (None: all pooled)."""
        if name is not None and name not in self.map.set_names[1:]:
            raise ValueError(f"unknown OOD set {name!r}; valid: {', '.join(self.map.set_names[1:])}")
        self.ood_set = name
        if self.set_select.value != (name or ALL):
            self.set_select.value = name or ALL
        self._update_curve()
        self.set_threshold(self.threshold)
        return self

    def set_convention(self, convention: str):
        """ROC axes in ``convention`` ("id-positive" or "ood-positive")."""
        if convention not in CONVENTIONS:
            raise ValueError(f"unknown convention {convention!r}; valid: {', '.join(CONVENTIONS)}")
        self.convention = convention
        if self.convention_toggle.value != convention:
            self.convention_toggle.value = convention
        self._update_curve()
        self.set_threshold(self.threshold)
        return self

    def snap(self, convention: str):
        """Move the threshold to the FPR@95 operating point of ``convention``."""
        s_id, s_ood = self._pair()
        return self.set_threshold(threshold_at(s_id, s_ood, convention=convention))

    def set_threshold(self, t: float):
        """Flag OOD when score > ``t``; every panel follows."""
        self.threshold = float(t)
        self.threshold_label.value = f"{self.threshold:.4g}"
        self._syncing = True
        try:
            i = self._index_of(self.threshold)
            if self.slider.value != i:
                self.slider.value = i
        finally:
            self._syncing = False
        s_id, s_ood = self._pair()
        fpr, tpr = roc_point(s_id, s_ood, self.threshold, self.convention)
        with self.roc.batch_update():
            self.roc.data[3].x, self.roc.data[3].y = [fpr], [tpr]
        with self.hist.batch_update():
            self.hist.layout.shapes[0].x0 = self.threshold
            self.hist.layout.shapes[0].x1 = self.threshold
            self.hist.layout.annotations[0].x = self.threshold
        self.view.register_color(OUTCOME, to_numpy(self.map.outcome(self.detector, self.threshold)),
                                 categorical=True, legend_names=dict(enumerate(OODMap.OUTCOMES)))
        if self.landing is not None:
            land = self.map.landing(self.detector, self.threshold, self.ood_set)
            with self.landing.batch_update():
                self.landing.data[0].y = to_numpy(land["caught"])
                self.landing.data[1].y = to_numpy(land["missed"])
                self.landing.data[0].customdata = self.landing.data[1].customdata = to_numpy(land["mean_cosine"])
        self._update_outline()
        self._refresh_readout()
        if len(self.view.selected):
            self._on_select(self.view.selected)
        return self

    def color_by(self, what: str):
        """Colour the map by "OOD score", "outcome at threshold", "set" or "label"."""
        self.view.set_color(what)
        return self

    @property
    def selected(self) -> np.ndarray:
        """Indices (into the map's points) of the current box/lasso selection."""
        return self.view.selected

    @property
    def rates(self) -> dict:
        """The rates of the current threshold in both conventions (``wb.ood.rates_at``)."""
        s_id, s_ood = self._pair()
        return rates_at(s_id, s_ood, self.threshold)

    # ------------------------------------------------------------------ internals
    def _on_slider(self, change):
        # the slider holds an index into the distinct scores; an echo of a position that already
        # matches the current threshold (set exactly from code) changes nothing
        if getattr(self, "_syncing", False) or change["new"] == self._index_of(self.threshold):
            return
        self.set_threshold(self._grid[int(change["new"])])

    def _update_curve(self):
        s_id, s_ood = self._pair()
        c = roc_curve(s_id, s_ood, convention=self.convention)
        fpr, tpr = to_numpy(c.fpr), to_numpy(c.tpr)
        j = int(np.argmax(tpr >= 0.95))
        axes = {"id-positive": ("FPR: OOD accepted as ID", "TPR: ID kept"),
                "ood-positive": ("FPR: ID flagged as OOD", "TPR: OOD flagged")}[self.convention]
        with self.roc.batch_update():
            self.roc.data[0].x, self.roc.data[0].y = fpr, tpr
            self.roc.data[0].name = f"{self.detector} (AUROC {c.auroc:.3f})"
            self.roc.data[2].x, self.roc.data[2].y = [fpr[j]], [tpr[j]]
            self.roc.data[2].name = f"FPR@95% ({self.convention})"
            self.roc.data[2].text = [f"FPR@95%: {fpr[j]:.3f}"]
            self.roc.layout.xaxis.title.text, self.roc.layout.yaxis.title.text = axes
            self.roc.layout.title.text = f"ROC ({self.convention}) vs {self.ood_set or ALL}"

    def _update_outline(self):
        if self.outline.value:
            miss = np.flatnonzero(to_numpy(self.map.outcome(self.detector, self.threshold)) == 3)
            self.view.highlight(miss)
        else:
            self.view.highlight([])

    def _refresh_readout(self):
        s_id, s_ood = self._pair()
        r = rates_at(s_id, s_ood, self.threshold)
        m = metrics(s_id, s_ood)
        against = html.escape(self.ood_set or ALL)
        self.readout.value = (
            f"<div style='font-family:sans-serif;font-size:13px;line-height:1.5'>"
            f"<b>{html.escape(self.detector)}</b> vs <b>{against}</b> · rule: flag OOD when score &gt; "
            f"{self.threshold:.4g} · AUROC {m.auroc:.3f}<br>"
            f"<b>ID-positive</b>: TPR (ID kept) {r['id_kept']:.1%}, FPR (OOD accepted as ID) "
            f"{r['ood_accepted']:.1%} &nbsp;|&nbsp; <b>OOD-positive</b>: TPR (OOD flagged) {r['ood_flagged']:.1%}, "
            f"FPR (ID flagged) {r['id_flagged']:.1%}<br>"
            f"FPR@95: <b>{m.fpr95_id_positive:.3f}</b> ID-positive (keep 95% of ID) · "
            f"<b>{m.fpr95_ood_positive:.3f}</b> OOD-positive (flag 95% of OOD) — same scores, two conventions"
            f"</div>"
        )

    def _on_select(self, idx):
        idx = np.asarray(idx, dtype=int)
        if idx.size == 0:
            self.selection_info.value = "<i>box/lasso points on the map to see what they are</i>"
            return
        si = to_numpy(self.map.set_index)[idx]
        out = to_numpy(self.map.outcome(self.detector, self.threshold))[idx]
        sc = to_numpy(self.map.scores[self.detector])[idx]
        parts = [f"<b>{idx.size} selected</b> · mean {html.escape(self.detector)} score {sc.mean():.4g}"]
        for k, name in enumerate(self.map.set_names):
            n = int((si == k).sum())
            if n:
                parts.append(f"{html.escape(name)}: {n}")
        for k, name in enumerate(OODMap.OUTCOMES):
            n = int((out == k).sum())
            if n:
                parts.append(f"{name}: {n}")
        if self.map.nearest_proto is not None and self.map.proto_class is not None:
            cls = to_numpy(self.map.proto_class)[to_numpy(self.map.nearest_proto)[idx]]
            vals, counts = np.unique(cls, return_counts=True)
            top = ", ".join(f"{v}: {c}" for v, c in sorted(zip(vals, counts), key=lambda t: -t[1])[:4])
            parts.append(f"nearest-prototype class {top}")
        self.selection_info.value = "<div style='font-family:sans-serif;font-size:13px'>" + "<br>".join(parts) + "</div>"

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs):
        return bundle(self.widget, **kwargs)

    def __repr__(self) -> str:
        return (f"OODLens({self.detector!r}, threshold={self.threshold:.4g}, {self.convention}, "
                f"{self.map.coords.shape[0]} points, {len(self.map.scores)} detectors)")
