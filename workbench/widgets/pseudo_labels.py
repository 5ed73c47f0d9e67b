"""``PseudoLabelView``: pseudo-labels over training, on the embedding map and as a trade-off curve.

What it shows, for a ``wb.analyses.PseudoLabelTrace`` (``wb.recipes.semi_supervised(...).trace``):
left, the unlabelled samples in the snapshot's 2-D feature map, coloured by the pseudo-labeller's
confidence, faded below the threshold, with a red cross on every kept sample whose pseudo-label
is wrong (the ones that poison training); right, how many pseudo-labels the threshold keeps
(quantity) and how many of those are right (quality), as curves over the threshold, with the
threshold as a dashed line. A snapshot slider (with play) steps through training; a threshold
slider asks "what if τ were different?" for the same snapshot.

State for tests and scripts: ``frame``, ``threshold``, ``set_frame(i)``, ``set_threshold(t)``;
the ``View`` surface (``figures``: "map", "tradeoff"; ``controls``: "snapshot", "play", "threshold").
"""

from __future__ import annotations

from .._optional import require
from ..viz._common import patch
from ..viz.pseudo_labels import (
    curve_patch,
    map_title,
    pseudo_label_map,
    pseudo_label_patch,
    threshold_curve,
)
from ._view import View, panel, row

widgets = require("ipywidgets", "interactive views")

__all__ = ["PseudoLabelView"]


class PseudoLabelView(View):
    """Pseudo-label confidence and correctness over training (see the module docstring).

    ``trace``: a ``PseudoLabelTrace``; ``threshold``: the starting τ (default the learner's);
    ``frame``: the starting snapshot (default the last).
    """

    def __init__(self, trace, *, threshold: float | None = None, frame: int = -1, height: int = 440):
        super().__init__()
        if not (hasattr(trace, "confidence") and hasattr(trace, "coords") and hasattr(trace, "quantity")):
            raise TypeError(f"trace must be a wb.analyses.PseudoLabelTrace, got {type(trace).__name__}")
        self.trace = trace
        n = len(trace)
        self.frame = range(n)[frame]
        self.threshold = float(trace.threshold if threshold is None else threshold)
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        self.map = self._add_figure("map", pseudo_label_map(trace, self.frame, threshold=self.threshold, height=height))
        self.curve = self._add_figure("tradeoff", threshold_curve(trace, self.frame, threshold=self.threshold,
                                                                  height=height - 60))
        self.slider = self._add_control("snapshot", widgets.IntSlider(
            value=self.frame, min=0, max=n - 1, description="snapshot", continuous_update=True,
            layout=widgets.Layout(width="360px", max_width="100%")))
        self.play = self._add_control("play", widgets.Play(value=self.frame, min=0, max=n - 1, interval=500))
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.tau = self._add_control("threshold", widgets.FloatSlider(
            value=self.threshold, min=0.0, max=0.99, step=0.01, description="threshold τ", readout_format=".2f",
            continuous_update=True, layout=widgets.Layout(width="360px", max_width="100%")))
        self.step_label = widgets.Label(f"step {int(trace.steps[self.frame])}")
        self.slider.observe(lambda ch: self.set_frame(ch["new"]), names="value")
        self.tau.observe(lambda ch: self.set_threshold(ch["new"]), names="value")
        self._set_root(row(self.play, self.slider, self.step_label, self.tau),
                       row(panel(self.map), panel(self.curve), align="flex-start"))

    def _draw(self) -> None:
        patch(self.map, pseudo_label_patch(self.trace, self.frame, self.threshold))
        self.map.layout.title.text = map_title(self.trace, self.frame, self.threshold)
        patch(self.curve, curve_patch(self.trace, self.frame, self.threshold))
        self.step_label.value = f"step {int(self.trace.steps[self.frame])}"

    def set_frame(self, i: int):
        """Show snapshot ``i``."""
        i = range(len(self.trace))[int(i)]
        self.frame = i
        if self.slider.value != i:
            self.slider.value = i  # calls back here with the same i
            return self
        self._draw()
        return self

    def set_threshold(self, t: float):
        """Keep pseudo-labels with confidence ≥ ``t`` (what-if; the training used the trace's τ)."""
        t = float(t)
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {t}")
        self.threshold = t
        if abs(self.tau.value - t) > 1e-9:
            self.tau.value = t
            return self
        self._draw()
        return self

    def __repr__(self) -> str:
        return (f"PseudoLabelView({len(self.trace)} snapshots, showing step {int(self.trace.steps[self.frame])}, "
                f"threshold {self.threshold:.2f})")
