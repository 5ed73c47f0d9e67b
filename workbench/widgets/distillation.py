"""``DistillationView``: a teacher and its students, frame by frame.

Built on ``workbench.viz.distillation``: the teacher's and the chosen student frame's features
side by side in aligned 2-D maps (samples where the student disagrees with the teacher are
ringed), the students' probe accuracy against the teacher's with a marker at the shown frame,
and, when the frames are classifiers, per-class agreement (or KL, or accuracy) with the
teacher. A slider (with a play button) walks through the frames — training snapshots of a
random-teacher fit, or named students such as "no KD" / "KD" — and a dropdown highlights one
class. Every change updates the existing traces inside ``fig.batch_update()``, addressed by the
roles ``viz.distillation`` names (``MapsTrace``, ``ProbeTrace``) with the data its
``student_patch`` / ``agreement_values`` compute.

    traj = wb.analyses.distillation_trajectory(teacher, hist.snapshots, test)
    wb.widgets.DistillationView(traj)
"""

from __future__ import annotations

import numpy as np

from .._optional import require
from ..viz._common import patch, to_numpy
from ..viz.distillation import (
    AGREEMENT_METRICS,
    STUDENT_TITLE,
    MapsTrace,
    ProbeTrace,
    agreement_by_class,
    agreement_values,
    point_opacity,
    probe_curve,
    student_patch,
    teacher_student_maps,
)
from ._view import View, panel, row

widgets = require("ipywidgets", "interactive views")

__all__ = ["DistillationView"]


class DistillationView(View):
    """Teacher vs student maps, probe curve and per-class agreement, with a frame slider.

    ``traj``: a ``wb.analyses.DistillationTrajectory``. ``frame``: the frame shown first
    (default the last). ``metric``: the per-class quantity in the bar chart ("agreement",
    "kl", "student_accuracy", "teacher_accuracy"); the bars appear only when some frame carries
    an ``Agreement`` (classifier students given as models). ``width``: pixels for the maps
    (default None: the page's width; the curve and the bars share the row below them).
    """

    def __init__(self, traj, *, frame: int = -1, metric: str = "agreement", marker_size: int = 5,
                 height: int = 430, width: int | None = None):
        super().__init__()
        if not hasattr(traj, "coords") or not hasattr(traj, "teacher_coords"):
            raise TypeError(
                "DistillationView needs a DistillationTrajectory "
                f"(wb.analyses.distillation_trajectory(...)), got {type(traj).__name__}"
            )
        if metric not in AGREEMENT_METRICS:
            raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(AGREEMENT_METRICS)}")
        self.traj = traj
        n_frames = len(traj.names)
        frame = int(frame) % n_frames
        self.maps = self._add_figure("maps", teacher_student_maps(traj, frame, marker_size=marker_size,
                                                                  height=height, width=width),
                                     responsive=width is None)
        self._has_bars = any(a is not None for a in traj.agreements)
        self.curve = self._add_figure("curve", probe_curve(traj, current=frame))
        self._labels = None if traj.labels is None else to_numpy(traj.labels).astype(int)
        self.bars = None
        if self._has_bars:
            first = next(a for a in traj.agreements if a is not None)
            self._empty = np.full(first.n_classes, np.nan)
            self.bars = self._add_figure("bars", agreement_by_class(
                {"student": self._agreement(frame) or first}, metric=metric, class_names=traj.class_names))
            if traj.agreements[frame] is None:
                self.bars.data[0].y = self._empty
        self._build_controls(frame, metric)

    def _build_controls(self, frame, metric):
        traj, n_frames = self.traj, len(self.traj.names)
        c = self._add_control
        self.slider = c("frame", widgets.IntSlider(value=frame, min=0, max=n_frames - 1, step=1, description="frame",
                                                   continuous_update=True, readout=False,
                                                   layout=widgets.Layout(width="420px", max_width="100%")))
        self.play = c("play", widgets.Play(value=frame, min=0, max=n_frames - 1, step=1, interval=600,
                                           description="play"))
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.frame_label = widgets.Label(value=str(traj.names[frame]))
        names = traj.class_names or (
            [str(c) for c in np.unique(self._labels)] if self._labels is not None else []
        )
        options = [("all classes", -1)] + [(f"class {nm}", k) for k, nm in enumerate(names)]
        self.highlight = c("highlight", widgets.Dropdown(options=options, value=-1, description="highlight",
                                                         layout=widgets.Layout(width="220px")))
        self.metric = c("metric", widgets.Dropdown(options=list(AGREEMENT_METRICS), value=metric, description="bars",
                                                   layout=widgets.Layout(width="240px"), disabled=not self._has_bars))
        self.slider.observe(self._on_frame, names="value")
        self.highlight.observe(self._on_highlight, names="value")
        self.metric.observe(self._on_metric, names="value")
        self._set_root(
            row(self.play, self.slider, self.frame_label, self.highlight, self.metric),
            self.maps,
            row(panel(self.curve), panel(self.bars) if self.bars is not None else None, align="flex-start"),
        )

    # ------------------------------------------------------------------ state
    @property
    def frame(self) -> int:
        return int(self.slider.value)

    def _agreement(self, i: int):
        return self.traj.agreements[i] if i < len(self.traj.agreements) else None

    # ------------------------------------------------------------------ updates (in place)
    def show_frame(self, i: int) -> None:
        """Show frame ``i`` (also what moving the slider does)."""
        i = int(i) % len(self.traj.names)
        if self.slider.value != i:
            self.slider.value = i  # triggers _on_frame
            return
        self._draw(i)

    def _draw(self, i: int) -> None:
        self.frame_label.value = str(self.traj.names[i])
        upd = student_patch(self.traj, i)
        patch(self.maps, upd)
        self.maps.layout.annotations[STUDENT_TITLE].text = upd[MapsTrace.STUDENT]["name"]
        probe = self.curve.data[ProbeTrace.STUDENT_PROBE]
        patch(self.curve, {ProbeTrace.CURRENT: dict(x=[probe.x[i]], y=[probe.y[i]])})
        self._draw_bars(i)

    def _draw_bars(self, i: int) -> None:
        if self.bars is None:
            return
        agr = self._agreement(i)
        y = self._empty if agr is None else agreement_values(agr, self.metric.value)
        patch(self.bars, {0: dict(y=y, name=str(self.traj.names[i]))})

    def _on_frame(self, change) -> None:
        self._draw(int(change["new"]))

    def _on_highlight(self, change) -> None:
        h = None if change["new"] == -1 else int(change["new"])
        op = 0.8 if self._labels is None else point_opacity(self._labels, h)
        patch(self.maps, {MapsTrace.TEACHER: dict(marker=dict(opacity=op)),
                          MapsTrace.STUDENT: dict(marker=dict(opacity=op))})

    def _on_metric(self, change) -> None:
        if self.bars is None:
            return
        label = AGREEMENT_METRICS[change["new"]][1]
        with self.bars.batch_update():
            self.bars.layout.yaxis.title.text = label
            self.bars.layout.yaxis.range = [0, 1.02] if change["new"] != "kl" else None
            self.bars.layout.title.text = f"{label.capitalize()} by class"
        self._draw_bars(self.frame)

    def __repr__(self) -> str:
        return (f"DistillationView({len(self.traj.names)} frames, showing {self.traj.names[self.frame]!r}, "
                f"bars={'yes' if self.bars is not None else 'no'})")
