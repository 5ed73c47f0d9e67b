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

Everything is computed up front by ONE analysis, ``wb.analyses.prototype_maps`` (pass its
``PrototypeMaps`` result, or the method, model and data for the view to call it); the controls
only patch trace data in place (``wb.viz.prototypes``: ``ProtoMapTrace``, ``prototype_map_patch``,
``occupancy_patch``).

The map follows the rule of ``EmbeddingView`` (``backend="auto"``, ``widgets._map``): plotly up
to ``PLOTLY_MAX_POINTS`` samples; above, jupyter-scatter when installed (the samples as its
points, the edges and prototypes as line annotations: stars for live prototypes, crosses for dead
ones, moved in place with the slider; clicking a prototype to pick the gallery's class and the
prototypes' hover text are plotly-only), else plotly on a stratified sample of the samples (all
edges and prototypes kept) with a warning.
"""

from __future__ import annotations

import html
import struct

import numpy as np

from .._optional import require
from ..data.embeddings import Embeddings, images_of
from ..viz._common import go, patch, to_numpy
from ..viz.embedding import png_bytes, stratified_sample
from ..viz.prototypes import (
    EVOLUTION_STEP_SHAPE,
    ProtoMapTrace,
    gallery_array,
    occupancy_bars,
    occupancy_patch,
    prototype_evolution,
    prototype_map,
    prototype_map_patch,
)
from . import _map
from ._view import View, panel, row

widgets = require("ipywidgets", "interactive views")

__all__ = ["PrototypeView"]


def _is_maps(obj) -> bool:
    return all(hasattr(obj, a) for a in ("coords", "proto_coords", "assignments", "names"))


class PrototypeView(View):
    """Prototypes, assignments and their evolution (see the module docstring).

    Parameters
    ----------
    method: a prototype method (``wb.methods.PALM``) with ``embed``, ``prototypes``,
        ``proto_class``; or a ``PrototypeMaps`` (``wb.analyses.prototype_maps``) computed before;
        or ``wb.data.Embeddings`` (or None with ``data=`` Embeddings): k-means prototypes per
        class (``wb.analyses.fit_prototypes``), no model needed.
    model: the trained model (needed when there are no snapshots).
    data: the labelled Dataset to show (with snapshots: the probe set they embedded); image data
        adds the gallery.
    snapshots: ``history.snapshots`` (or the History) recorded with ``Snapshots(every=k,
        embed=data, embed_fn=method.embed, method_state=True)``; None shows the current state.
    projection: ``"pca"`` (default, fast), ``"umap"`` or ``"tsne"``.
    top: edges drawn per prototype. n_gallery: samples per prototype in the gallery.
    backend: the map's drawing library, as ``EmbeddingView``'s: ``"auto"``, ``"plotly"`` or
        ``"jscatter"``.
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
        backend: str = "auto",
    ):
        super().__init__()
        if isinstance(method, Embeddings) and data is None:  # PrototypeView(emb): k-means prototypes
            method, data = None, method
        if _is_maps(method):
            maps, self.method = method, None
        else:
            from ..analyses.prototypes import prototype_maps

            maps = prototype_maps(method, model, data, snapshots=snapshots, projection=projection, seed=seed)
            self.method = method
        self.maps, self.data, self.top, self.n_gallery = maps, data, int(top), int(n_gallery)
        self.class_names = class_names if class_names is not None else getattr(data, "classes", None)
        self._gallery_scale = int(gallery_scale)
        self.evolution = maps.evolution
        self.assignments = list(maps.assignments)
        self.coords = [c.numpy() for c in maps.coords]
        self.proto_coords = [c.numpy() for c in maps.proto_coords]
        self.names = list(maps.names)
        images = images_of(data) if data is not None else None
        self._images = None if images is None else to_numpy(images)
        self.index = len(self.assignments) - 1
        a = self.assignments[self.index]

        self._build_map(backend, height, f"Prototypes in the embedding map ({maps.projection})")
        self.bars = self._add_figure("bars", occupancy_bars(a, class_names=self.class_names, height=300))
        self.curves = None
        if self.evolution is not None and len(self.assignments) > 1:
            self.curves = self._add_figure("curves", prototype_evolution(
                self.evolution, current=float(self.evolution.steps[self.index]), height=300))
        self._build_controls()

    # ------------------------------------------------------------------ the map (plotly or jupyter-scatter)
    def _build_map(self, backend: str, height: int, title: str):
        a, xy, pxy = self.assignments[self.index], self.coords[self.index], self.proto_coords[self.index]
        n = len(xy)
        name, subsample = _map.choose_backend(backend, n)
        self.keep = None  # the samples a subsampled plotly map shows
        self._scatter = None
        if name == "jscatter":
            allxy = np.concatenate(self.coords + self.proto_coords)  # extent of every snapshot
            extent = tuple((float(np.nanmin(allxy[:, k])), float(np.nanmax(allxy[:, k]))) for k in range(2))
            self._scatter = _map.backend_class("jscatter")(
                xy, labels=a.labels, values=None, categorical=True, names=self.class_names, name="label",
                title=title, height=height, extent=extent)
            upd = prototype_map_patch(a, xy, pxy, top=self.top, class_names=self.class_names)
            self._edges = self._scatter.add_trace(go.Scatter(
                mode="lines", name=f"top-{self.top} assignments", line=dict(width=1, color="rgba(60,60,60,0.35)"),
                **upd[ProtoMapTrace.EDGES]))
            self._protos = self._scatter.add_trace(go.Scatter(mode="markers", name="prototypes",
                                                              **upd[ProtoMapTrace.PROTOTYPES]))
            self.map = self._add_figure("map", self._scatter.figure)
            return
        fig = prototype_map(a, xy, pxy, top=self.top, class_names=self.class_names, height=height, title=title)
        if subsample:
            import warnings

            from ._scatter import SCALE_EXTRA

            m = _map.PLOTLY_MAX_POINTS
            self.keep = stratified_sample(np.full(n, -1) if a.labels is None else to_numpy(a.labels), m)
            pts = fig.data[ProtoMapTrace.POINTS]
            pts.update(x=xy[self.keep, 0], y=xy[self.keep, 1], customdata=np.asarray(pts.customdata)[self.keep],
                       marker=dict(color=np.asarray(pts.marker.color)[self.keep]))
            fig.add_annotation(text=f"showing {len(self.keep):,} of {n:,} samples (stratified by label)",
                               xref="paper", yref="paper", x=0, y=1, xanchor="left", yanchor="bottom",
                               showarrow=False, font=dict(size=11, color="#555555"))
            warnings.warn(f"{n:,} samples are more than plotly draws smoothly ({m:,}); the map "
                          f"shows a sample of {len(self.keep):,} stratified by label. To draw all of them, "
                          f"install jupyter-scatter: {SCALE_EXTRA}", UserWarning, stacklevel=3)
        self.map = self._add_figure("map", fig)
        self.map.data[ProtoMapTrace.PROTOTYPES].on_click(self._on_proto_click)

    def _draw_map(self, i: int):
        """Move the map to snapshot ``i``: points, edges and prototypes, in place."""
        upd = prototype_map_patch(self.assignments[i], self.coords[i], self.proto_coords[i], top=self.top,
                                  class_names=self.class_names)
        if self._scatter is not None:
            self._scatter.set_xy(self.coords[i])
            self._edges.update(upd[ProtoMapTrace.EDGES])
            self._protos.update(upd[ProtoMapTrace.PROTOTYPES])
            return
        if self.keep is not None:
            pts = upd[ProtoMapTrace.POINTS]
            pts["x"], pts["y"] = pts["x"][self.keep], pts["y"][self.keep]
        patch(self.map, upd)

    # ------------------------------------------------------------------ controls
    def _build_controls(self):
        t = len(self.assignments)
        self.status = widgets.HTML(self._status_text())
        self.slider = widgets.IntSlider(
            value=self.index, min=0, max=max(t - 1, 0), description="snapshot", continuous_update=True,
            layout=widgets.Layout(width="420px", max_width="100%"))
        self.play = widgets.Play(value=self.index, min=0, max=max(t - 1, 0), interval=500)
        if t > 1:  # a slider only when there are snapshots to step through
            self._add_control("snapshot", self.slider)
            self._add_control("play", self.play)
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.slider.observe(lambda ch: self.set_snapshot(ch["new"]), names="value")
        self.gallery = None
        gallery = None
        if self._images is not None:
            gallery = self._build_gallery()
        self._set_root(
            row(panel(self.map, basis="560px"), panel(self.bars, self.curves, basis="440px"), align="flex-start"),
            row(self.play, self.slider) if t > 1 else None,
            self.status,
            gallery,
        )

    def _build_gallery(self):
        classes = sorted({int(c) for c in to_numpy(self.maps.proto_class)})
        opts = [(f"class {self.class_names[c] if self.class_names else c}", c) for c in classes]
        self.class_select = self._add_control("gallery class", widgets.Dropdown(
            options=opts, value=classes[0], description="gallery", layout=widgets.Layout(width="220px")))
        self.class_select.observe(lambda ch: self._update_gallery(), names="value")
        self.gallery = widgets.Image(format="png")
        self.gallery_caption = widgets.HTML()
        self.gallery_rows = widgets.VBox(layout=widgets.Layout(width="190px"))
        self._update_gallery()
        return widgets.VBox([
            widgets.HTML("<b>This looks like that</b>: each row is one prototype of the class, "
                         "followed by its nearest real samples (most similar first)."),
            row(self.class_select, self.gallery_caption),
            row(self.gallery_rows, self.gallery, wrap=False, align="flex-start"),
        ])

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
        self._draw_map(i)
        patch(self.bars, occupancy_patch(a))
        if self.curves is not None:
            step = float(self.evolution.steps[i])
            with self.curves.batch_update():
                self.curves.layout.shapes[EVOLUTION_STEP_SHAPE].update(x0=step, x1=step)
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

    def __repr__(self) -> str:
        a = self.assignments[self.index]
        return (f"PrototypeView({a.n_prototypes} prototypes, {a.weights.shape[0]} samples, "
                f"{self.n_snapshots} snapshot(s), showing {self.names[self.index]!r})")
