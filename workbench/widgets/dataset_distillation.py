"""``SyntheticSetView``: a distilled data set's images evolving, and where they sit among the real ones.

What it shows, for a ``wb.analyses.SyntheticMap`` (``synthetic_map(model, real, synthetic_set)``):
left, the real images as faint points in a 2-D map of a model's features (coloured by class),
the synthetic images of the chosen distillation iteration as stars of their class's colour, and
their starting positions as grey rings; right, the synthetic images themselves, one row per
class. A slider (with play) steps through the recorded iterations, moving the stars and
redrawing the images in place.

State for tests and scripts: ``frame``, ``set_frame(i)``; the ``View`` surface (``figures``: "map",
"images"; ``controls``: "iteration", "play").
"""

from __future__ import annotations

from .._optional import require
from ..viz._common import patch
from ..viz.dataset_distillation import (
    frame_title,
    grid_patch,
    synthetic_grid,
    synthetic_map_figure,
    synthetic_patch,
)
from ._view import View, panel, row

widgets = require("ipywidgets", "interactive views")

__all__ = ["SyntheticSetView"]


class SyntheticSetView(View):
    """Synthetic images over distillation, in the real data's map (see the module docstring).

    ``smap``: a ``SyntheticMap``; ``frame``: the starting frame (default the last);
    ``max_per_class``: columns of the image grid.
    """

    def __init__(self, smap, *, frame: int = -1, max_per_class: int = 10, height: int = 440):
        super().__init__()
        if not (hasattr(smap, "coords") and hasattr(smap, "real_coords") and hasattr(smap, "images")):
            raise TypeError(f"smap must be a wb.analyses.SyntheticMap, got {type(smap).__name__}")
        self.smap, self.max_per_class = smap, int(max_per_class)
        n = len(smap)
        self.frame = range(n)[frame]
        self.map = self._add_figure("map", synthetic_map_figure(smap, self.frame, height=height))
        self.images = self._add_figure("images", synthetic_grid(smap, self.frame, max_per_class=self.max_per_class,
                                                                height=height))
        self.slider = self._add_control("iteration", widgets.IntSlider(
            value=self.frame, min=0, max=n - 1, description="frame", continuous_update=True,
            layout=widgets.Layout(width="360px", max_width="100%")))
        self.play = self._add_control("play", widgets.Play(value=self.frame, min=0, max=n - 1, interval=500))
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.label = widgets.Label(f"iteration {int(smap.steps[self.frame])}")
        self.slider.observe(lambda ch: self.set_frame(ch["new"]), names="value")
        self._set_root(row(self.play, self.slider, self.label),
                       row(panel(self.map), panel(self.images), align="flex-start"))

    def set_frame(self, i: int):
        """Show distillation frame ``i``."""
        i = range(len(self.smap))[int(i)]
        self.frame = i
        if self.slider.value != i:
            self.slider.value = i
            return self
        patch(self.map, synthetic_patch(self.smap, i))
        self.map.layout.title.text = frame_title(self.smap, i)
        patch(self.images, grid_patch(self.smap, i, self.max_per_class))
        self.label.value = f"iteration {int(self.smap.steps[i])}"
        return self

    def __repr__(self) -> str:
        return (f"SyntheticSetView({self.smap.method}, {len(self.smap)} frames, showing iteration "
                f"{int(self.smap.steps[self.frame])})")
