"""``ContinualView``: prototypes of all classes drifting over sessions, beside the accuracy matrix.

Left, one aligned map of the probe (test) samples after the chosen session, every seen class's
prototype as a star and its path through the earlier sessions (the maps of consecutive
sessions are aligned by Procrustes, so a moving star means the representation moved, not the
map). Right, the session x class accuracy matrix with the chosen session outlined: forgetting
is a column that fades downwards. A slider and a play button step through the sessions.

Everything comes from ``wb.analyses.prototype_drift`` and ``wb.analyses.accuracy_matrices``
(the recipes ``online_continual`` and ``fscil_teen`` return what they need); the controls only
patch the traces ``wb.viz.continual`` built.
"""

from __future__ import annotations

import html

from .._optional import require
from ..viz._common import patch
from ..viz.continual import accuracy_heatmap, drift_map, drift_patch, heatmap_patch
from ._view import View, panel, row

widgets = require("ipywidgets", "interactive views")

__all__ = ["ContinualView"]


class ContinualView(View):
    """Prototype drift and the accuracy matrix, session by session (see the module docstring).

    Parameters
    ----------
    drift: a ``PrototypeDrift`` (``wb.analyses.prototype_drift``).
    matrix: an ``AccuracyMatrices`` with one row per session of ``drift``.
    metrics: optional ``ContinualMetrics`` shown under the matrix.
    """

    def __init__(self, drift, matrix, *, metrics=None, session: int = -1, height: int = 460):
        super().__init__()
        if not all(hasattr(drift, a) for a in ("coords", "prototypes", "seen")):
            raise TypeError(f"drift must be a PrototypeDrift (wb.analyses.prototype_drift), got {type(drift).__name__}")
        if not hasattr(matrix, "per_class"):
            raise TypeError(f"matrix must be an AccuracyMatrices (wb.analyses.accuracy_matrices), got {type(matrix).__name__}")
        if matrix.per_class.shape[0] != drift.n_sessions:
            raise ValueError(f"the matrix has {matrix.per_class.shape[0]} sessions, the drift {drift.n_sessions}")
        self.drift, self.matrix, self.metrics = drift, matrix, metrics
        self.session = range(drift.n_sessions)[session]
        self.map = self._add_figure("drift", drift_map(drift, self.session, height=height))
        self.heat = self._add_figure("matrix", accuracy_heatmap(matrix, self.session, height=360))
        n = drift.n_sessions
        self.slider = self._add_control("session", widgets.IntSlider(
            value=self.session, min=0, max=n - 1, description="session", continuous_update=True,
            layout=widgets.Layout(width="380px", max_width="100%")))
        self.play = self._add_control("play", widgets.Play(value=self.session, min=0, max=n - 1, interval=1000))
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.slider.observe(lambda ch: self.set_session(ch["new"]), names="value")
        self.status = widgets.HTML(self._status())
        note = widgets.HTML(html.escape(repr(metrics)) if metrics is not None else "")
        self._set_root(row(self.play, self.slider, self.status),
                       row(panel(self.map, basis="520px"), panel(self.heat, note, basis="420px"), align="flex-start"))

    def _status(self) -> str:
        s = self.session
        seen = int(self.drift.seen[s].sum())
        acc = self.matrix.per_task[s]
        done = acc[: s + 1]
        return (f"&nbsp;<b>{html.escape(self.drift.names[s])}</b>: {seen} classes seen; mean accuracy on the "
                f"tasks so far {float(done.nanmean()):.3f}")

    def set_session(self, s: int):
        """Show session ``s``: samples, prototype paths and the matrix outline update in place."""
        n = self.drift.n_sessions
        if not -n <= s < n:
            raise IndexError(f"session {s} out of range (0..{n - 1})")
        self.session = range(n)[s]
        patch(self.map, drift_patch(self.drift, self.session))
        patch(self.heat, heatmap_patch(self.matrix, self.session))
        self.status.value = self._status()
        if self.slider.value != self.session:
            self.slider.value = self.session
        return self

    def __repr__(self) -> str:
        return f"ContinualView({self.drift.n_sessions} sessions, {self.drift.classes.numel()} classes, showing {self.session})"
