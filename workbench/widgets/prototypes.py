"""``PrototypeView``: watch a prototype method's prototypes and their assignments.

What it shows, for a method with prototypes (PALM):

* a map of the samples (a 2-D projection of ``method.embed``) with the prototypes placed in the
  same map (``Projection.transform``), edges from every prototype to its ``top`` most strongly
  assigned samples, prototypes sized by how many samples pick them, dead ones as grey crosses;
* occupancy bars (samples per prototype, grouped by class);
* "this looks like that" (image data): for a chosen class, each of its prototypes' nearest real
  samples, one row per prototype; clicking a prototype in the map picks its class;
* with snapshots of a fit, a slider (and play button) over training: the maps were aligned
  (Procrustes), so points and prototypes move smoothly while assignments form, duplicate or die;
  a panel counts dead and duplicate prototypes and the mean purity per snapshot.

Everything is computed up front by ``wb.analyses`` (``prototype_evolution``,
``aligned_projections``); the controls only swap trace data in place.
"""

from __future__ import annotations

import html
import struct

import numpy as np

from .._optional import require
from ..viz._common import to_numpy
from ..viz.embedding import png_bytes
from ..viz.prototypes import (
    _proto_hover,
    edge_segments,
    gallery_array,
    occupancy_bars,
    proto_marker,
    prototype_evolution,
    prototype_map,
)
from ._figure import bundle, figure_widget

widgets = require("ipywidgets", "interactive views")
go = require("plotly.graph_objects", "interactive views")

__all__ = ["PrototypeView"]


class PrototypeView:
    """Prototypes, assignments and their evolution (see the module docstring).

    Parameters
    ----------
    method: a prototype method (``wb.methods.PALM``) with ``embed``, ``prototypes``,
        ``proto_class``.
    model: the trained model (needed when there are no snapshots).
    data: the labelled Dataset to show (with snapshots: the probe set they embedded).
    snapshots: ``history.snapshots`` (or the History) recorded with ``Snapshots(every=k,
        embed=data, embed_fn=method.embed, method_state=True)``; None shows the current state.
    projection: ``"pca"`` (default, fast), ``"umap"`` or ``"tsne"``.
    top: edges drawn per prototype. n_gallery: samples per prototype in the gallery.
    """

    def __init__(
        self,
        method,
        model=None,
        data=None,
        *,
        snapshots=None,
        projection: str = "pca",
        top: int = 5,
        n_gallery: int = 6,
        class_names=None,
        seed: int = 0,
        height: int = 520,
        gallery_scale: int = 5,
    ):
        from ..analyses.embedding import aligned_projections, embed, project
        from ..analyses.prototypes import _check_proto_method, _method_options, assignments_from
        from ..analyses.prototypes import prototype_evolution as _evolution

        _check_proto_method(method)
        if data is None:
            raise ValueError("pass data= (the labelled Dataset whose samples to show)")
        if hasattr(snapshots, "snapshots") and not hasattr(snapshots, "embeddings"):
            snapshots = snapshots.snapshots  # a History
        self.method, self.data, self.top, self.n_gallery = method, data, int(top), int(n_gallery)
        self.class_names = class_names if class_names is not None else getattr(data, "classes", None)
        self._gallery_scale = int(gallery_scale)
        if snapshots is not None:
            self.evolution = _evolution(snapshots, method, data)
            aligned = aligned_projections(snapshots, projection, seed=seed)
            self.assignments = list(self.evolution.per_snapshot)
            self.coords = [aligned.coords[i].numpy() for i in range(len(aligned))]
            self.proto_coords = [
                aligned.transform(i, self.evolution.prototypes[i]).numpy() for i in range(len(aligned))
            ]
            self.names = list(aligned.names)
        else:
            if model is None:
                raise ValueError("without snapshots, pass the trained model to embed the data")
            z = embed(model, data, fn=method.embed)
            a = assignments_from(z, method.prototypes, method.proto_class, data.y, **_method_options(method))
            proj = project(z, projection, seed=seed)
            self.evolution = None
            self.assignments = [a]
            self.coords = [proj.coords.numpy()]
            self.proto_coords = [proj.transform(method.prototypes).numpy()]
            self.names = ["now"]
        x = to_numpy(data.x)
        self._images = x if getattr(data, "kind", None) == "image" else None
        self.index = len(self.assignments) - 1
        a = self.assignments[self.index]

        map_fig = prototype_map(
            a, self.coords[self.index], self.proto_coords[self.index], top=self.top,
            class_names=self.class_names, height=height,
            title=f"Prototypes in the embedding map ({projection})",
        )
        map_fig.update_layout(width=640)
        self.map = figure_widget(map_fig)
        bars = occupancy_bars(a, class_names=self.class_names, height=300)
        bars.update_layout(width=560)
        self.bars = figure_widget(bars)
        self._points, self._edges, self._protos = self.map.data[0], self.map.data[1], self.map.data[2]
        self._protos.on_click(self._on_proto_click)
        self.curves = None
        if self.evolution is not None and len(self.assignments) > 1:
            fig = prototype_evolution(self.evolution, height=300)
            fig.update_layout(width=560, legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
                              margin=dict(r=60))
            step = float(self.evolution.steps[self.index])
            fig.add_vline(x=step, line=dict(color="#444", width=1, dash="dash"))
            self.curves = figure_widget(fig)
        self._build_controls()

    # ------------------------------------------------------------------ controls
    def _build_controls(self):
        t = len(self.assignments)
        self.status = widgets.HTML(self._status_text())
        self.slider = widgets.IntSlider(value=self.index, min=0, max=max(t - 1, 0), description="snapshot",
                                        continuous_update=True, layout=widgets.Layout(width="420px"))
        self.play = widgets.Play(value=self.index, min=0, max=max(t - 1, 0), interval=500)
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.slider.observe(lambda ch: self.set_snapshot(ch["new"]), names="value")
        right = [self.bars]
        if self.curves is not None:
            right.append(self.curves)
        parts = [widgets.HBox([self.map, widgets.VBox(right)])]
        if t > 1:
            parts.append(widgets.HBox([self.play, self.slider]))
        parts.append(self.status)
        self.gallery = None
        if self._images is not None:
            classes = sorted({int(c) for c in to_numpy(self.method.proto_class)})
            opts = [(f"class {self.class_names[c] if self.class_names else c}", c) for c in classes]
            self.class_select = widgets.Dropdown(options=opts, value=classes[0], description="gallery",
                                                 layout=widgets.Layout(width="220px"))
            self.class_select.observe(lambda ch: self._update_gallery(), names="value")
            self.gallery = widgets.Image(format="png")
            self.gallery_caption = widgets.HTML()
            self.gallery_rows = widgets.VBox(layout=widgets.Layout(width="190px"))
            self._update_gallery()
            parts.append(widgets.VBox([
                widgets.HTML("<b>This looks like that</b>: each row is one prototype of the class, "
                             "followed by its nearest real samples (most similar first)."),
                widgets.HBox([self.class_select, self.gallery_caption]),
                widgets.HBox([self.gallery_rows, self.gallery]),
            ]))
        self.widget = widgets.VBox(parts)

    def _status_text(self) -> str:
        a = self.assignments[self.index]
        pur = a.purity.nanmean().item() if a.labels is not None else float("nan")
        return (f"<b>{html.escape(self.names[self.index])}</b>: {a.n_prototypes} prototypes, "
                f"{a.n_dead} dead (no sample picks them), {a.n_duplicates} duplicates "
                f"(same-class cos &ge; {a.duplicate_threshold}), mean purity {pur:.3f}")

    # ------------------------------------------------------------------ updates
    @property
    def n_snapshots(self) -> int:
        return len(self.assignments)

    def set_snapshot(self, i: int):
        """Show snapshot ``i``: points, prototypes, edges, bars, gallery update in place."""
        if not -self.n_snapshots <= i < self.n_snapshots:
            raise IndexError(f"snapshot {i} out of range (0..{self.n_snapshots - 1})")
        i = i % self.n_snapshots
        self.index = i
        a = self.assignments[i]
        xy, pxy = self.coords[i], self.proto_coords[i]
        ex, ey = edge_segments(xy, pxy, a.weights, self.top)
        new_bars = occupancy_bars(a, class_names=self.class_names)
        with self.map.batch_update():
            self._points.x, self._points.y = xy[:, 0], xy[:, 1]
            self._edges.x, self._edges.y = ex, ey
            self._protos.x, self._protos.y = pxy[:, 0], pxy[:, 1]
            self._protos.marker.update(proto_marker(a.proto_class, a.counts))
            self._protos.hovertext = _proto_hover(a.proto_class, a.counts, a.purity, a.redundancy,
                                                  self.class_names)
        with self.bars.batch_update():
            self.bars.data[0].y = new_bars.data[0].y
            self.bars.data[0].marker.color = new_bars.data[0].marker.color
        if self.curves is not None:
            step = float(self.evolution.steps[i])
            with self.curves.batch_update():
                self.curves.layout.shapes[0].x0 = step
                self.curves.layout.shapes[0].x1 = step
        self.status.value = self._status_text()
        if self.gallery is not None:
            self._update_gallery()
        if self.slider.value != i:
            self.slider.value = i
        return self

    def gallery_png(self, cls: int) -> bytes:
        """PNG of class ``cls``'s gallery at the current snapshot (image data only)."""
        if self._images is None:
            raise ValueError("the gallery needs image data")
        mosaic, _ = gallery_array(self.assignments[self.index], self._images, classes=[cls], n=self.n_gallery,
                                  by="similarity")
        return png_bytes(mosaic, scale=self._gallery_scale)

    def _update_gallery(self):
        cls = self.class_select.value
        a = self.assignments[self.index]
        png = self.gallery_png(cls)
        self.gallery.value = png
        w, h = struct.unpack(">II", png[16:24])  # show it at its own pixel size (crisp, not stretched)
        self.gallery.layout.width, self.gallery.layout.height = f"{w}px", f"{h}px"
        ids = [j for j in np.argsort(to_numpy(a.proto_class), kind="stable") if int(a.proto_class[j]) == cls]
        n_dead = sum(int(a.counts[j]) == 0 for j in ids)
        self.gallery_caption.value = (f"&nbsp;{len(ids)} prototypes, {n_dead} dead "
                                      f"({html.escape(self.names[self.index])})")
        row_px = (h // len(ids)) if ids else 0
        self.gallery_rows.children = [
            widgets.HTML(
                f"<div style='font-size:11px;line-height:{row_px}px;white-space:nowrap'>prototype {j}: "
                f"{int(a.counts[j])} samples{' (dead)' if int(a.counts[j]) == 0 else ''}</div>",
                layout=widgets.Layout(height=f"{row_px}px", margin="0", overflow="hidden"),
            ) for j in ids
        ]

    def _on_proto_click(self, trace, points, state):
        if points.point_inds and self.gallery is not None:
            j = points.point_inds[0]
            self.class_select.value = int(self.assignments[self.index].proto_class[j])

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs):
        return bundle(self.widget, **kwargs)

    def __repr__(self) -> str:
        a = self.assignments[self.index]
        return (f"PrototypeView({a.n_prototypes} prototypes, {a.weights.shape[0]} samples, "
                f"{self.n_snapshots} snapshot(s), showing {self.names[self.index]!r})")
