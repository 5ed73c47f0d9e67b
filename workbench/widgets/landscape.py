"""``LandscapeView``: loss landscapes side by side, as contours or 3-D surfaces.

What it shows: one panel per ``LossSurface`` (e.g. SGD vs SAM) with **one shared colour scale**
(the same loss, the same colour), the training path projected on each plane (hover: step, true
loss, surface value below it, off-plane residual), the trained weights (×), and a side panel with
each model's curvature — the Hessian's top eigenvalue and trace — when they are given.

Controls: contour / surface toggle, log scale, metric (loss or accuracy), training path on/off,
and a slider over the path's snapshots that marks one snapshot on every panel. Clicking a point
of a panel shows its (α, β), loss and accuracy (``select(panel, i, j)`` does the same from code).

Both figures (contour and surface) are built once by ``wb.viz.landscape_panels`` (the surface on
first use) and only updated in place inside ``batch_update()``, trace by trace as
``viz.landscape.PanelTrace`` names them, with the values, path heights and labels of the same
helpers the builder uses (``surface_values``, ``path_heights``, ``value_label``); the toggle shows
one figure and hides the other.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np

from .._optional import require
from ..viz._common import to_numpy
from ..viz.landscape import (
    PanelTrace,
    landscape_panels,
    landscape_zrange,
    named_items,
    panel_trace,
    path_heights,
    surface_values,
    value_label,
)
from ._view import View, panel, row

widgets = require("ipywidgets", "interactive views")

__all__ = ["LandscapeView"]


def _per_panel(value, names, what):
    """None, one result, a list aligned with the panels, or a dict by panel name -> list."""
    n = len(names)
    if value is None:
        return [None] * n
    if isinstance(value, Mapping):
        return [value.get(nm) for nm in names]
    if isinstance(value, Sequence) and not isinstance(value, str):
        value = list(value)
        if len(value) != n:
            raise ValueError(f"{what}: got {len(value)} results for {n} landscapes")
        return value
    if n != 1:
        raise ValueError(f"{what}: pass one result per landscape (a list or a dict by name)")
    return [value]


class LandscapeView(View):
    """Interactive view of one or more ``wb.analyses.loss_slice_2d`` results.

    ``lands``: a result, a list, or a dict name -> result (e.g. ``{"SGD": a, "SAM": b}``);
    ``eigs`` / ``trace``: ``hessian_eigs`` / ``hessian_trace`` results per landscape (optional);
    ``mode``: ``"contour"`` or ``"surface"``; ``log``; ``metric``: ``"loss"`` or ``"acc"``.

    State for code and tests: ``mode``, ``log``, ``metric``, ``show_path``, ``selected``
    (dict after a click), ``snapshot`` (index on the path), ``figure`` (the visible
    FigureWidget), ``contour_figure``, ``surface_figure``, ``readout`` (HTML), ``widget``.
    """

    def __init__(self, lands, *, names: Sequence[str] | None = None, eigs=None, trace=None,
                 mode: str = "contour", log: bool = False, metric: str = "loss", height: int = 460):
        super().__init__()
        self.items = named_items(lands, names)
        self.names = [nm for nm, _ in self.items]
        self.lands = [ld for _, ld in self.items]
        if mode not in ("contour", "surface"):
            raise ValueError(f"mode must be 'contour' or 'surface', got {mode!r}")
        metrics = ["loss"] + [k for k in (getattr(self.lands[0], "metrics", {}) or {})
                              if all(k in (getattr(ld, "metrics", {}) or {}) for ld in self.lands)]
        if metric not in metrics:
            raise ValueError(f"unknown metric {metric!r}; these landscapes have: {metrics}")
        self.eigs = _per_panel(eigs, self.names, "eigs")
        self.traces = _per_panel(trace, self.names, "trace")
        self.mode, self.log, self.metric = mode, bool(log), metric
        self.has_path = any(getattr(ld, "path", None) is not None for ld in self.lands)
        self.show_path = self.has_path
        self.selected: dict | None = None
        self.snapshot: int | None = None
        self._height = height
        self.contour_figure = self._build("contour")
        self._surface = None  # built on first use (it costs as much as the contour figure)
        self._build_controls(metrics)
        if mode == "surface":
            self.surface_figure  # noqa: B018 - build it now
        self._show_mode()
        if self.has_path:
            self.set_snapshot(self.step_slider.value)

    def _build_controls(self, metrics):
        c = self._add_control
        self.mode_toggle = c("mode", widgets.ToggleButtons(
            options=[("contour", "contour"), ("3-D surface", "surface")], value=self.mode, description="view"))
        self.log_box = c("log", widgets.Checkbox(value=self.log, description="log scale", indent=False))
        self.metric_box = c("metric", widgets.Dropdown(options=metrics, value=self.metric, description="colour by"))
        self.path_box = c("path", widgets.Checkbox(value=self.show_path, description="training path", indent=False,
                                                    disabled=not self.has_path))
        n_snap = max((len(ld.path) for ld in self.lands if getattr(ld, "path", None) is not None), default=1)
        self.step_slider = widgets.IntSlider(
            value=n_snap - 1, min=0, max=max(0, n_snap - 1), description="snapshot", disabled=not self.has_path,
            continuous_update=True)
        if self.has_path:  # the snapshot slider only exists when there is a path to walk
            c("snapshot", self.step_slider)
        self.path_html = widgets.HTML(value="")
        self.readout = widgets.HTML(value="<i>click a point of a panel to read its loss and accuracy</i>")
        self.curvature = widgets.HTML(value=self._curvature_html())
        self.mode_toggle.observe(lambda ch: self.set_mode(ch["new"]), names="value")
        self.log_box.observe(lambda ch: self.set_log(ch["new"]), names="value")
        self.metric_box.observe(lambda ch: self.set_metric(ch["new"]), names="value")
        self.path_box.observe(lambda ch: self.set_path(ch["new"]), names="value")
        self.step_slider.observe(lambda ch: self.set_snapshot(ch["new"]), names="value")
        self.contour_box = widgets.VBox([self.contour_figure])
        self.surface_box = widgets.VBox([])
        self._set_root(
            row(self.mode_toggle, self.log_box, self.path_box, self.metric_box),
            row(self.step_slider, self.path_html) if self.has_path else None,
            row(panel(self.contour_box, self.surface_box, basis="640px", grow=3),
                panel(self.curvature, self.readout, basis="260px"), align="flex-start"),
        )

    # ------------------------------------------------------------------ helpers
    def _build(self, mode):
        fig = self._add_figure(mode, landscape_panels(self.lands, names=self.names, mode=mode, metric=self.metric,
                                                      log=self.log, path=True, height=self._height))
        for p in range(len(self.lands)):
            fig.data[panel_trace(p, PanelTrace.SURFACE)].on_click(self._clicked(p))
        return fig

    @property
    def surface_figure(self):
        """The 3-D figure (built the first time it is needed, then only updated)."""
        if self._surface is None:
            self._surface = self._build("surface")
            self.surface_box.children = (self._surface,)
            self._sync_markers(self._surface)
        return self._surface

    def _figs(self):
        out = [(self.contour_figure, False)]
        if self._surface is not None:
            out.append((self._surface, True))
        return out

    def _trace(self, fig, p: int, role: PanelTrace):
        return fig.data[panel_trace(p, role)]

    def _sync_markers(self, fig):
        """Bring a newly built figure to the view's state (path visibility, markers)."""
        self._set_path_visible(fig)
        if self.snapshot is not None:
            self.set_snapshot(self.snapshot)
        if self.selected is not None:
            self.select(self.selected["panel"], self.selected["i"], self.selected["j"])

    @property
    def figure(self):
        return self.contour_figure if self.mode == "contour" else self.surface_figure

    def _curvature_html(self) -> str:
        rows = []
        for nm, ld, ev, tr in zip(self.names, self.lands, self.eigs, self.traces):
            c = ld.centre
            acc = ld.metrics.get("acc") if getattr(ld, "metrics", None) else None
            parts = [f"<b>{html.escape(nm) or 'landscape'}</b>",
                     f"loss at the weights: {float(ld.loss[c]):.4g}"
                     + (f", accuracy {float(acc[c]):.3f}" if acc is not None else "")]
            if ev is not None:
                parts.append(f"top Hessian eigenvalue λ<sub>max</sub>: <b>{float(ev.eigenvalues[0]):.4g}</b>"
                             + ("" if getattr(ev, "converged", True) else " (not converged)"))
            if tr is not None:
                parts.append(f"Hessian trace: <b>{tr.trace:.4g}</b> ± {tr.stderr:.2g}")
            rows.append("<br>".join(parts))
        return "<div style='font-size:13px'>" + "<hr style='margin:4px 0'>".join(rows) + "</div>"

    def _show_mode(self):
        self.contour_box.layout.display = "flex" if self.mode == "contour" else "none"
        self.surface_box.layout.display = "flex" if self.mode == "surface" else "none"

    def _values(self, land):
        return surface_values(land, self.metric, self.log)

    # ------------------------------------------------------------------ controls
    def set_mode(self, mode: str):
        if mode not in ("contour", "surface"):
            raise ValueError(f"mode must be 'contour' or 'surface', got {mode!r}")
        self.mode = mode
        if self.mode_toggle.value != mode:
            self.mode_toggle.value = mode
        if mode == "surface":
            self.surface_figure  # noqa: B018 - build on first use
        self._show_mode()

    def _refresh_values(self):
        lo, hi = landscape_zrange(dict(self.items), self.metric, self.log)
        title = value_label(self.metric, self.log)
        for fig, is3d in self._figs():
            with fig.batch_update():
                for p, land in enumerate(self.lands):
                    z = self._values(land)
                    self._trace(fig, p, PanelTrace.SURFACE).z = z.T
                    if is3d:
                        self._trace(fig, p, PanelTrace.ORIGIN).z = [float(z[land.centre])]
                        heights = path_heights(land, self.metric, self.log)
                        if heights is not None:
                            self._trace(fig, p, PanelTrace.PATH).z = heights
                        scene = fig.layout["scene" if p == 0 else f"scene{p + 1}"]
                        scene.zaxis.range = [lo, hi]
                        scene.zaxis.title = title
                fig.layout.coloraxis.update(cmin=lo, cmax=hi, colorbar=dict(title=title))
        if self.selected is not None:
            self.select(self.selected["panel"], self.selected["i"], self.selected["j"])
        if self.snapshot is not None:
            self.set_snapshot(self.snapshot)

    def set_log(self, log: bool):
        self.log = bool(log)
        if self.log_box.value != self.log:
            self.log_box.value = self.log
        self._refresh_values()

    def set_metric(self, metric: str):
        if metric not in self.metric_box.options:
            raise ValueError(f"unknown metric {metric!r}; valid: {list(self.metric_box.options)}")
        self.metric = metric
        if self.metric_box.value != metric:
            self.metric_box.value = metric
        self._refresh_values()

    def _set_path_visible(self, fig):
        with fig.batch_update():
            for p, land in enumerate(self.lands):
                vis = self.show_path and getattr(land, "path", None) is not None
                self._trace(fig, p, PanelTrace.PATH).visible = vis
                self._trace(fig, p, PanelTrace.SNAPSHOT).visible = vis

    def set_path(self, show: bool):
        self.show_path = bool(show) and self.has_path
        for fig, _ in self._figs():
            self._set_path_visible(fig)

    def set_snapshot(self, i: int):
        """Mark snapshot ``i`` of every panel's path (clipped to each path's length)."""
        self.snapshot = int(i)
        for fig, is3d in self._figs():
            with fig.batch_update():
                for p, land in enumerate(self.lands):
                    path = getattr(land, "path", None)
                    if path is None:
                        continue
                    k = min(self.snapshot, len(path) - 1)
                    marker = self._trace(fig, p, PanelTrace.SNAPSHOT)
                    marker.x, marker.y = [float(path.coords[k][0])], [float(path.coords[k][1])]
                    if is3d:
                        marker.z = [float(path_heights(land, self.metric, self.log)[k])]
        if self.has_path:
            parts = []
            for nm, land in zip(self.names, self.lands):
                path = getattr(land, "path", None)
                if path is None:
                    continue
                k = min(self.snapshot, len(path) - 1)
                parts.append(
                    f"<b>{html.escape(nm)}</b> step {path.steps[k]}: true loss {float(path.loss[k]):.4g}, "
                    f"surface {float(path.plane_loss[k]):.4g}, off-plane {100 * float(path.relative_residual[k]):.0f} %"
                )
            self.path_html.value = "<span style='font-size:12px'>" + "<br>".join(parts) + "</span>"

    def _clicked(self, p):
        def cb(trace, points, state):
            if not points.point_inds:
                return
            land = self.lands[p]
            a, b = to_numpy(land.alphas), to_numpy(land.betas)
            i = int(np.argmin(np.abs(a - points.xs[0])))
            j = int(np.argmin(np.abs(b - points.ys[0])))
            self.select(p, i, j)

        return cb

    def select(self, panel: int, i: int, j: int):
        """Show the grid point (alphas[i], betas[j]) of ``panel`` and mark it."""
        if not 0 <= panel < len(self.lands):
            raise IndexError(f"panel must be in 0..{len(self.lands) - 1}, got {panel}")
        land = self.lands[panel]
        na, nb = len(land.alphas), len(land.betas)
        if not (0 <= i < na and 0 <= j < nb):
            raise IndexError(f"grid index ({i}, {j}) outside the {na}x{nb} grid")
        a, b = float(land.alphas[i]), float(land.betas[j])
        loss = float(land.loss[i, j])
        acc = land.metrics.get("acc") if getattr(land, "metrics", None) else None
        accv = None if acc is None else float(acc[i, j])
        self.selected = {"panel": panel, "i": i, "j": j, "alpha": a, "beta": b, "loss": loss, "acc": accv}
        z = float(self._values(land)[i, j])
        for fig, is3d in self._figs():
            with fig.batch_update():
                for p in range(len(self.lands)):
                    marker = self._trace(fig, p, PanelTrace.SELECTED)
                    here = p == panel
                    marker.x, marker.y = ([a], [b]) if here else ([], [])
                    if is3d:
                        marker.z = [z] if here else []
        name = html.escape(self.names[panel]) or "landscape"
        self.readout.value = (
            f"<b>{name}</b> at α = {a:.3g}, β = {b:.3g}<br>loss {loss:.4g}"
            + (f"<br>accuracy {accv:.3f}" if accv is not None else "")
            + f"<br><span style='color:#666'>centre: loss {float(land.loss[land.centre]):.4g}</span>"
        )
        return self.selected

    def __repr__(self) -> str:
        return f"LandscapeView({len(self.lands)} panels {self.names}, mode={self.mode!r}, log={self.log}, metric={self.metric!r})"
