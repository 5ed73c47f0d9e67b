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
``workbench.ood`` (``rates_at``, ``roc_curve``, ``threshold_at``; the ``OODMap``'s
``best_detector``, ``score_pair``, ``thresholds``, ``outcome``, ``landing``, ``describe``); the
figures and what the view writes into them from ``workbench.viz.ood`` (``RocTrace``,
``roc_curve_patch``, ``histogram_patch``, ``landing_patch``, ``prototype_stars``).

The map is an ``EmbeddingView``; the lens registers its colourings (scores, sets, outcomes)
with ``register_color(..., legend_names=...)`` and switches between them.
"""

from __future__ import annotations

import html

import numpy as np

from .._optional import require
from ..ood import CONVENTIONS, OODMap, metrics, rates_at, roc_curve, threshold_at
from ..viz._common import patch, to_numpy
from ..viz.ood import (
    ROC_AXES,
    THRESHOLD_ANNOTATION,
    THRESHOLD_SHAPE,
    RocTrace,
    histogram_patch,
    landing_bars,
    landing_patch,
    prototype_stars,
    roc_curve_patch,
    roc_figure,
    roc_point,
    score_histograms,
)
from ._view import View, panel, row
from .embedding import EmbeddingView

widgets = require("ipywidgets", "interactive views")

__all__ = ["OODLens"]

SCORE = "OOD score"
OUTCOME = "outcome at threshold"
SET = "set"
ALL = "all OOD sets"


class OODLens(View):
    """Interactive OOD lens (see the module docstring).

    Parameters
    ----------
    ood_map: a ``wb.ood.OODMap`` (``wb.ood.ood_map(comparison, bank, id_test, ood)``).
    detector: detector to start with (default: ``ood_map.best_detector()``, the best mean AUROC).
    ood_set: OOD set whose ROC / rates are shown (default: all OOD sets pooled).
    convention: "id-positive" (default, as the comparison) or "ood-positive": the ROC's axes
        and which FPR@95 the threshold starts at; the readout always shows both.
    color: the map's first colouring: "OOD score" (default), "outcome at threshold", "set" or
        "label".
    title: title of the map.
    backend: the map's drawing library, as ``EmbeddingView``'s: ``"auto"`` (plotly up to
        ``widgets._map.PLOTLY_MAX_POINTS`` points, jupyter-scatter above), ``"plotly"`` or
        ``"jscatter"`` (prototype stars are then drawn as outlines).

    Configure the lens (detector, set, threshold, colouring) before or when displaying it: in a
    "run all", figure updates sent while the browser is still drawing a just-displayed figure
    widget can leave that figure empty (a plotly FigureWidget race seen in JupyterLab).
    """

    def __init__(self, ood_map: OODMap, *, detector: str | None = None, ood_set: str | None = None,
                 convention: str | None = None, color: str = SCORE, title: str | None = None,
                 map_height: int = 500, backend: str = "auto"):
        super().__init__()
        if not isinstance(ood_map, OODMap):
            raise TypeError(f"OODLens takes a wb.ood.OODMap (from wb.ood.ood_map), got {type(ood_map).__name__}")
        self.map = m = ood_map
        if not m.scores:
            raise ValueError("the map holds no detector scores")
        detector = m.best_detector() if detector is None else detector
        m.score_pair(detector, ood_set)  # checks both names
        convention = convention or m.convention
        if convention not in CONVENTIONS:
            raise ValueError(f"unknown convention {convention!r}; valid: {', '.join(CONVENTIONS)}")
        if color not in (SCORE, OUTCOME, SET, "label"):
            raise ValueError(f"unknown colour {color!r}; valid: {SCORE!r}, {OUTCOME!r}, {SET!r}, 'label'")
        self.detector, self.ood_set, self.convention = detector, ood_set, convention
        s_id, s_ood = self._pair()
        self.threshold = threshold_at(s_id, s_ood, convention=convention)
        self._build_map(color, title, map_height, backend)
        self._build_side()
        self._build_controls()
        self._refresh_readout()

    # ------------------------------------------------------------------ building
    def _build_map(self, color, title, height, backend):
        m = self.map
        self.view = EmbeddingView(m.coords, labels=m.labels, class_names=m.class_names, data=m.images,
                                  title=title, height=height, backend=backend)
        self.view.register_color(SET, to_numpy(m.set_index), categorical=True, legend_names=dict(enumerate(m.set_names)))
        self.view.register_color(OUTCOME, to_numpy(m.outcome(self.detector, self.threshold)), categorical=True,
                                 legend_names=dict(enumerate(OODMap.OUTCOMES)))
        self.view.register_color(SCORE, to_numpy(m.scores[self.detector]).astype(float), categorical=False)
        self.view.set_color(color)
        self._add_figure("map", self.view.figure)
        self._proto_trace = None
        if m.prototypes_xy is not None:
            self._proto_trace = self.view.add_trace(prototype_stars(m.prototypes_xy, m.proto_class))

    def _build_side(self):
        m = self.map
        s_id, s_ood = self._pair()
        curve = roc_curve(s_id, s_ood, convention=self.convention)
        self.roc = self._add_figure("roc", roc_figure(
            {self.detector: curve}, point=roc_point(s_id, s_ood, self.threshold, self.convention),
            title=None, height=360))
        self.hist = self._add_figure("histograms", score_histograms(
            m.set_scores(self.detector), threshold=self.threshold, score_name=f"{self.detector} score", height=320))
        self.landing = None
        if m.nearest_proto is not None and m.proto_class is not None:
            self.landing = self._add_figure("landing", landing_bars(
                m.landing(self.detector, self.threshold, self.ood_set), class_names=m.class_names, height=280))
        self._grid = m.thresholds(self.detector).numpy()

    def _build_controls(self):
        m = self.map
        c = self._add_control
        self.detector_select = c("detector", widgets.Dropdown(
            options=list(m.scores), value=self.detector, description="detector", layout=widgets.Layout(width="280px")))
        self.set_select = c("ood set", widgets.Dropdown(
            options=[ALL] + list(m.set_names[1:]), value=self.ood_set or ALL, description="OOD set",
            layout=widgets.Layout(width="300px")))
        self.convention_toggle = c("convention", widgets.ToggleButtons(
            options=list(CONVENTIONS), value=self.convention,
            tooltips=["ROC with ID as the positive class", "ROC with OOD as the positive class"],
            style={"button_width": "105px"}, layout=widgets.Layout(width="240px", flex="0 0 auto")))
        self.slider = c("threshold", widgets.IntSlider(
            value=self._index_of(self.threshold), min=0, max=len(self._grid) - 1, readout=False,
            description="threshold", continuous_update=True, layout=widgets.Layout(width="460px", max_width="100%")))
        self.threshold_label = widgets.Label(f"{self.threshold:.4g}", layout=widgets.Layout(width="80px"))
        self.snap_id = c("snap id-positive", widgets.Button(
            description="FPR@95 ID-positive", layout=widgets.Layout(width="170px"),
            tooltip="threshold keeping 95% of the ID points"))
        self.snap_ood = c("snap ood-positive", widgets.Button(
            description="FPR@95 OOD-positive", layout=widgets.Layout(width="170px"),
            tooltip="threshold flagging 95% of the OOD points"))
        self.outline = c("outline", widgets.Checkbox(value=False, description="outline missed OOD", indent=False,
                                                     layout=widgets.Layout(width="170px")))
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
        self._set_root(
            row(self.detector_select, self.set_select,
                widgets.Label("ROC axes", layout=widgets.Layout(margin="0 6px 0 16px")), self.convention_toggle),
            row(self.slider, self.threshold_label, self.snap_id, self.snap_ood, self.outline),
            self.readout,
            row(panel(self.view.widget, basis="560px", grow=2), panel(self.roc, self.hist, basis="380px"),
                align="flex-start"),
            row(panel(self.landing, basis="480px") if self.landing is not None else None,
                panel(self.selection_info, basis="320px"), align="flex-start"),
        )

    # ------------------------------------------------------------------ data helpers
    def _pair(self):
        """(ID scores, OOD scores) of the current detector and OOD set, as float arrays."""
        s_id, s_ood = self.map.score_pair(self.detector, self.ood_set)
        return to_numpy(s_id).astype(float), to_numpy(s_ood).astype(float)

    def _index_of(self, t: float) -> int:
        """Slider position whose threshold flags the same points as ``t``."""
        i = int(np.searchsorted(self._grid, t, side="right")) - 1
        return min(max(i, 0), len(self._grid) - 1)

    # ------------------------------------------------------------------ public API
    def set_detector(self, name: str):
        """Show detector ``name``: colours, slider range, ROC, histograms (threshold reset to
        the FPR@95 point of the current convention)."""
        self.map.score_pair(name)  # checks the name
        self.detector = name
        self.view.register_color(SCORE, to_numpy(self.map.scores[name]).astype(float), categorical=False)
        updates, axis_title = histogram_patch(self.map.set_scores(name), score_name=f"{name} score")
        patch(self.hist, updates)
        self.hist.layout.xaxis.title.text = axis_title
        self._grid = self.map.thresholds(name).numpy()
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
        self.map.score_pair(self.detector, name)  # checks the name
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
        patch(self.roc, {RocTrace.THRESHOLD: dict(x=[fpr], y=[tpr])})
        with self.hist.batch_update():
            self.hist.layout.shapes[THRESHOLD_SHAPE].update(x0=self.threshold, x1=self.threshold)
            self.hist.layout.annotations[THRESHOLD_ANNOTATION].x = self.threshold
        self.view.register_color(OUTCOME, to_numpy(self.map.outcome(self.detector, self.threshold)),
                                 categorical=True, legend_names=dict(enumerate(OODMap.OUTCOMES)))
        if self.landing is not None:
            patch(self.landing, landing_patch(self.map.landing(self.detector, self.threshold, self.ood_set)))
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
        patch(self.roc, roc_curve_patch(c, self.detector))
        with self.roc.batch_update():
            self.roc.layout.xaxis.title.text, self.roc.layout.yaxis.title.text = ROC_AXES[self.convention]
            self.roc.layout.title.text = f"ROC ({self.convention}) vs {self.ood_set or ALL}"

    def _update_outline(self):
        if self.outline.value:
            self.view.highlight(np.flatnonzero(to_numpy(self.map.outcome(self.detector, self.threshold)) == 3))
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
        if len(idx) == 0:
            self.selection_info.value = "<i>box/lasso points on the map to see what they are</i>"
            return
        d = self.map.describe(idx, self.detector, self.threshold)
        parts = [f"<b>{d['n']} selected</b> · mean {html.escape(self.detector)} score {d['mean_score']:.4g}"]
        parts += [f"{html.escape(k)}: {v}" for k, v in {**d["per_set"], **d["per_outcome"]}.items()]
        if "nearest_class" in d:
            top = ", ".join(f"{k}: {v}" for k, v in list(d["nearest_class"].items())[:4])
            parts.append(f"nearest-prototype class {top}")
        self.selection_info.value = "<div style='font-family:sans-serif;font-size:13px'>" + "<br>".join(parts) + "</div>"

    def __repr__(self) -> str:
        return (f"OODLens({self.detector!r}, threshold={self.threshold:.4g}, {self.convention}, "
                f"{self.map.coords.shape[0]} points, {len(self.map.scores)} detectors)")
