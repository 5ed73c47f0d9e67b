"""``CalibrationView``: a reliability diagram and a confidence histogram, linked to the map.

What it shows, for one ``wb.analyses.calibration.CalibrationError`` (the ECE of one set of
predictions, with its bins):

* the reliability diagram (accuracy per confidence bin, the gap to the mean confidence, the
  diagonal) and the confidence histogram, with exactly the bins of the reported ECE;
* optionally the embedding map of the same samples (an ``EmbeddingView``), colourable by
  confidence, correctness, class, and the conformal set size when ``set_sizes`` is given;
* select a bin (the "bin" dropdown, or click a bar in either figure): it is outlined in both
  figures and its points light up on the map (``view.selected_bin``, ``view.bin_indices(m)``).

The numbers all come from the result (``err.bins.index`` says which bin each sample is in);
the figures come from ``wb.viz.calibration`` and are patched in place by their trace roles.
"""

from __future__ import annotations

import numpy as np

from .._optional import require
from ..viz._common import patch, to_numpy
from ..viz.calibration import (
    HistogramTrace,
    ReliabilityTrace,
    bin_label,
    confidence_histogram,
    reliability_diagram,
    selected_bar,
)
from ._view import View, panel, row
from .embedding import EmbeddingView

widgets = require("ipywidgets", "interactive views")

__all__ = ["CalibrationView"]

NONE = "none"


class CalibrationView(View):
    """Reliability diagram + confidence histogram, linked to an embedding map.

    Parameters
    ----------
    err: a ``CalibrationError`` (``wb.analyses.calibration.ece(probs, y, ...)``).
    projection: optional 2-D map of the same N samples (``wb.analyses.project`` or (N, 2)).
    labels: (N,) class labels for the map's "label" colouring.
    set_sizes: (N,) conformal prediction-set sizes (``evaluate_sets(...).sizes``), a colouring.
    data: the samples (image thumbnails on the map).
    color: the map's first colouring: "confidence" (default), "correct", "label" or "set size".
    selected_bin: a bin (0-based) to select from the start (drawn with the figures' first state,
        which is more robust on a busy machine than selecting after display).
    """

    def __init__(self, err, projection=None, *, labels=None, set_sizes=None, data=None,
                 color: str = "confidence", selected_bin: int | None = None, title: str | None = None,
                 height: int = 380):
        super().__init__()
        if not hasattr(err, "bins") or not hasattr(err, "confidence"):
            raise TypeError("CalibrationView takes a CalibrationError (wb.analyses.calibration.ece(...)), "
                            f"got {type(err).__name__}")
        self.err = err
        self.n = int(err.confidence.numel())
        self.selected_bin: int | None = None
        if selected_bin is not None:
            self.bin_indices(selected_bin)  # checks it
            selected_bin = int(selected_bin)
        self.reliability = self._add_figure("reliability", reliability_diagram(
            err, title=title, height=height, selected=selected_bin))
        self.histogram = self._add_figure("histogram", confidence_histogram(
            err, height=max(220, height - 120), selected=selected_bin))
        self.map = None
        if projection is not None:
            self._build_map(projection, labels, set_sizes, data, color)
        self._build_controls()
        if selected_bin is not None:
            self.select_bin(selected_bin)

    def _build_map(self, projection, labels, set_sizes, data, color):
        self.map = EmbeddingView(projection, labels=labels, data=data, height=440)
        if self.map.n_points != self.n:
            raise ValueError(f"the map has {self.map.n_points} points but the calibration result {self.n}")
        self.map.register_color("confidence", to_numpy(self.err.confidence).astype(float), categorical=False)
        self.map.register_color("correct", to_numpy(self.err.correct).astype(int), categorical=True,
                                legend_names={0: "wrong", 1: "correct"})
        if set_sizes is not None:
            self.map.register_color("set size", to_numpy(set_sizes).astype(float), categorical=False)
        if color not in self.map.color_names:
            raise ValueError(f"unknown colour {color!r}; valid: {self.map.color_names}")
        self.map.set_color(color)
        self._add_figure("map", self.map.figure)

    def _build_controls(self):
        options = [NONE] + [bin_label(self.err, m) for m in range(self.err.n_bins)]
        self.bin_select = self._add_control("bin", widgets.Dropdown(
            options=options, value=NONE, description="bin", layout=widgets.Layout(width="340px")))
        self.bin_select.observe(self._on_dropdown, names="value")
        for fig, role in ((self.reliability, ReliabilityTrace.ACCURACY), (self.histogram, HistogramTrace.COUNTS)):
            fig.data[role].on_click(self._on_click)
        self.readout = widgets.HTML(self._readout())
        side = panel(self.reliability, self.histogram, basis="460px")
        rows = [row(self.bin_select, self.readout), row(side, panel(self.map.widget, basis="520px") if self.map else None)]
        self._set_root(*rows)

    # ------------------------------------------------------------------ selection
    def bin_indices(self, m: int) -> np.ndarray:
        """Indices of the samples in bin ``m`` (0-based)."""
        if not isinstance(m, (int, np.integer)) or not 0 <= m < self.err.n_bins:
            raise ValueError(f"bin must be an int in [0, {self.err.n_bins}), got {m!r}")
        return np.flatnonzero(to_numpy(self.err.bins.index) == int(m))

    def select_bin(self, m: int | None):
        """Outline bin ``m`` (None: clear) and light its points up on the map."""
        if m is not None:
            self.bin_indices(m)  # checks m
        self.selected_bin = None if m is None else int(m)
        patch(self.reliability, {ReliabilityTrace.SELECTED: selected_bar(self.err, self.selected_bin, "accuracy")})
        patch(self.histogram, {HistogramTrace.SELECTED: selected_bar(self.err, self.selected_bin, "count")})
        if self.map is not None:
            self.map.highlight(np.zeros(0, dtype=int) if m is None else self.bin_indices(m))
        want = NONE if m is None else self.bin_select.options[int(m) + 1]
        if self.bin_select.value != want:
            self.bin_select.value = want
        self.readout.value = self._readout()
        return self

    def color_by(self, name: str):
        """Colour the map by "confidence", "correct", "label" or "set size"."""
        if self.map is None:
            raise ValueError("no map: pass projection= to CalibrationView")
        self.map.set_color(name)
        return self

    def _on_dropdown(self, change):
        v = change["new"]
        m = None if v == NONE else list(self.bin_select.options).index(v) - 1
        if m != self.selected_bin:
            self.select_bin(m)

    def _on_click(self, trace, points, state):
        if points.point_inds:
            self.select_bin(int(points.point_inds[0]))

    def _readout(self) -> str:
        e = self.err
        head = f"ECE {e.ece:.4f}, MCE {e.mce:.4f} ({e.n_bins} {e.binning} bins, (lo, hi]); accuracy {e.accuracy:.3f}"
        if self.selected_bin is None:
            return f"<span>{head}</span>"
        b, m = e.bins, self.selected_bin
        return (f"<span>{head}<br>bin {m + 1}: {int(b.counts[m])} samples, accuracy "
                f"{float(b.mean_outcome[m]):.3f}, mean confidence {float(b.mean_value[m]):.3f}</span>")

    def __repr__(self) -> str:
        sel = "" if self.selected_bin is None else f", selected bin {self.selected_bin + 1}"
        return (f"CalibrationView(ECE {self.err.ece:.4f}, {self.err.n_bins} {self.err.binning} bins, n={self.n}"
                f"{', with map' if self.map is not None else ''}{sel})")
