"""``GCDView``: watch a semi-supervised mixture's components split and merge over the EM passes.

Left, the embedding map of one frame (two frames per pass: after SS-k-means, after
split/merge): the samples coloured by their component (or by their true class), larger when
they carried a label; the components' centroids as stars (anchored to a labelled class: a
diamond in its class's colour); the lines of the frame's splits (parent -> children) and
merges (parents -> merged component). Right, K per frame with the true K dashed, and the v2 All
accuracy when known. A slider and a play button step through the frames; a line of text lists
the frame's events.

Everything is computed up front by ``wb.analyses.gmm_film`` (pass its ``GMMFilm``); the view only
patches the traces ``wb.viz.gcd`` built (``GMMFilmTrace``, ``gmm_film_patch``, ``k_curve_patch``).
"""

from __future__ import annotations

import html

from .._optional import require
from ..viz._common import patch
from ..viz.gcd import COLOR_BY, gmm_film_map, gmm_film_patch, k_curve, k_curve_patch
from ._view import View, panel, row

widgets = require("ipywidgets", "interactive views")

__all__ = ["GCDView"]


class GCDView(View):
    """Components splitting and merging over the passes (see the module docstring).

    Parameters
    ----------
    film: a ``GMMFilm`` (``wb.analyses.gmm_film``).
    true_k: the real number of classes, drawn on the K curve (None: not drawn).
    frame: the frame shown first (default the last). color_by: ``"component"`` or ``"class"``.
    """

    def __init__(self, film, *, true_k: int | None = None, frame: int = -1, color_by: str = "component",
                 height: int = 500):
        super().__init__()
        if not all(hasattr(film, a) for a in ("assignments", "centroid_coords", "segments", "k")):
            raise TypeError(f"GCDView takes a GMMFilm (wb.analyses.gmm_film), got {type(film).__name__}")
        if color_by not in COLOR_BY:
            raise ValueError(f"unknown color_by {color_by!r}; valid: {', '.join(COLOR_BY)}")
        self.film, self.color_by = film, color_by
        self.frame = range(film.n_frames)[frame]
        self.map = self._add_figure("map", gmm_film_map(film, self.frame, color_by=color_by, height=height))
        self.curve = self._add_figure("k", k_curve(film, self.frame, true_k=true_k, height=320))
        n = film.n_frames
        self.slider = self._add_control("frame", widgets.IntSlider(
            value=self.frame, min=0, max=n - 1, description="frame", continuous_update=True,
            layout=widgets.Layout(width="420px", max_width="100%")))
        self.play = self._add_control("play", widgets.Play(value=self.frame, min=0, max=n - 1, interval=900))
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.slider.observe(lambda ch: self.set_frame(ch["new"]), names="value")
        self.color = self._add_control("color", widgets.ToggleButtons(
            options=[("component", "component"), ("true class", "class")], value=color_by,
            description="colour", style={"button_width": "90px"}))
        self.color.observe(lambda ch: self.set_color(ch["new"]), names="value")
        self.status = widgets.HTML(self._status())
        self._set_root(
            row(self.play, self.slider, self.color),
            row(panel(self.map, basis="560px"), panel(self.curve, self.status, basis="380px"), align="flex-start"),
        )

    def _status(self) -> str:
        f = self.frame
        ev = self.film.events[f]
        body = "<br>".join(html.escape(e) for e in ev) if ev else "no split or merge"
        return (f"<b>{html.escape(self.film.names[f])}</b>: K = {int(self.film.k[f])}"
                f"<div style='font-size:12px;line-height:1.35'>{body}</div>")

    def set_frame(self, i: int):
        """Show frame ``i`` (points, centroids, split/merge lines, K marker update in place)."""
        n = self.film.n_frames
        if not -n <= i < n:
            raise IndexError(f"frame {i} out of range (0..{n - 1})")
        self.frame = range(n)[i]
        patch(self.map, gmm_film_patch(self.film, self.frame, color_by=self.color_by))
        patch(self.curve, k_curve_patch(self.film, self.frame))
        self.status.value = self._status()
        if self.slider.value != self.frame:
            self.slider.value = self.frame
        return self

    def set_color(self, by: str):
        """Colour the points by ``"component"`` or ``"class"``."""
        if by not in COLOR_BY:
            raise ValueError(f"unknown color_by {by!r}; valid: {', '.join(COLOR_BY)}")
        self.color_by = by
        patch(self.map, gmm_film_patch(self.film, self.frame, color_by=by))
        if self.color.value != by:
            self.color.value = by
        return self

    def __repr__(self) -> str:
        return (f"GCDView({self.film.n_frames} frames, showing {self.film.names[self.frame]!r}, "
                f"K = {int(self.film.k[self.frame])})")
