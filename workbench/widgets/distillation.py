"""``DistillationView``: a teacher and its students, frame by frame.

Built on ``workbench.viz.distillation``: the teacher's and the chosen student frame's features
side by side in aligned 2-D maps (samples where the student disagrees with the teacher are
ringed), the students' probe accuracy against the teacher's with a marker at the shown frame,
and, when the frames are classifiers, per-class agreement (or KL, or accuracy) with the
teacher. A slider (with a play button) walks through the frames — training snapshots of a
random-teacher fit, or named students such as "no KD" / "KD" — and a dropdown highlights one
class. Every change updates the existing traces inside ``fig.batch_update()``.

    traj = wb.analyses.distillation_trajectory(teacher, hist.snapshots, test)
    wb.widgets.DistillationView(traj)
"""

from __future__ import annotations

import numpy as np

from .._optional import require
from ..viz._common import to_numpy
from ..viz.distillation import (
    AGREEMENT_METRICS,
    _agreement_values,
    agreement_by_class,
    disagreement_xy,
    point_opacity,
    probe_curve,
    teacher_student_maps,
)
from ._figure import figure_widget, sync_figures

widgets = require("ipywidgets", "interactive views")
go = require("plotly.graph_objects", "interactive views")

__all__ = ["DistillationView"]


class DistillationView(widgets.VBox):
    """Teacher vs student maps, probe curve and per-class agreement, with a frame slider.

    ``traj``: a ``wb.analyses.DistillationTrajectory``. ``frame``: the frame shown first
    (default the last). ``metric``: the per-class quantity in the bar chart ("agreement",
    "kl", "student_accuracy", "teacher_accuracy"); the bars appear only when some frame carries
    an ``Agreement`` (classifier students given as models). ``width``: pixels for the maps (the
    curve and the bars share that width below them).
    """

    def __init__(self, traj, *, frame: int = -1, metric: str = "agreement", marker_size: int = 5,
                 height: int = 430, width: int = 1040):
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
        self.maps = figure_widget(teacher_student_maps(traj, frame, marker_size=marker_size, height=height,
                                                         width=width))
        self._has_bars = any(a is not None for a in traj.agreements)
        half = width // 2 if self._has_bars else width
        self.curve = figure_widget(probe_curve(traj, current=frame, width=half))
        self._labels = None if traj.labels is None else to_numpy(traj.labels).astype(int)
        self.bars = None
        if self._has_bars:
            first = next(a for a in traj.agreements if a is not None)
            self._empty = np.full(first.n_classes, np.nan)
            self.bars = figure_widget(agreement_by_class({"student": self._agreement(frame) or first},
                                                           metric=metric, class_names=traj.class_names,
                                                           width=half))
            if traj.agreements[frame] is None:
                self.bars.data[0].y = self._empty

        self.slider = widgets.IntSlider(value=frame, min=0, max=n_frames - 1, step=1, description="frame",
                                        continuous_update=True, readout=False,
                                        layout=widgets.Layout(width="420px"))
        self.play = widgets.Play(value=frame, min=0, max=n_frames - 1, step=1, interval=600, description="play")
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.frame_label = widgets.Label(value=str(traj.names[frame]))
        names = traj.class_names or (
            [str(c) for c in np.unique(self._labels)] if self._labels is not None else []
        )
        options = [("all classes", -1)] + [(f"class {nm}", k) for k, nm in enumerate(names)]
        self.highlight = widgets.Dropdown(options=options, value=-1, description="highlight",
                                          layout=widgets.Layout(width="220px"))
        self.metric = widgets.Dropdown(options=list(AGREEMENT_METRICS), value=metric, description="bars",
                                       layout=widgets.Layout(width="240px"), disabled=not self._has_bars)
        self.slider.observe(self._on_frame, names="value")
        self.highlight.observe(self._on_highlight, names="value")
        self.metric.observe(self._on_metric, names="value")
        controls = widgets.HBox([self.play, self.slider, self.frame_label, self.highlight, self.metric])
        bottom = [self.curve] + ([self.bars] if self.bars is not None else [])
        super().__init__([controls, self.maps, widgets.HBox(bottom) if len(bottom) > 1 else bottom[0]])

    def _repr_mimebundle_(self, **kwargs):
        sync_figures(self)  # figures inside a container miss plotly's own pre-display re-sync
        return super()._repr_mimebundle_(**kwargs)

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
        xy = to_numpy(self.traj.coords[i]).astype(float)
        dx, dy = disagreement_xy(self.traj, i)
        name = f"student: {self.traj.names[i]}"
        self.frame_label.value = str(self.traj.names[i])
        with self.maps.batch_update():
            s = self.maps.data[1]
            s.x, s.y, s.name = xy[:, 0], xy[:, 1], name
            s.hovertemplate = name + "<br>index %{customdata[0]}<br>label %{customdata[1]}<extra></extra>"
            d = self.maps.data[2]
            d.x, d.y = dx, dy
            self.maps.layout.annotations[1].text = name
        x = self.curve.data[0].x
        with self.curve.batch_update():
            m = self.curve.data[5]
            m.x, m.y = [x[i]], [self.curve.data[0].y[i]]
        self._draw_bars(i)

    def _draw_bars(self, i: int) -> None:
        if self.bars is None:
            return
        agr = self._agreement(i)
        with self.bars.batch_update():
            b = self.bars.data[0]
            b.y = self._empty if agr is None else _agreement_values(agr, self.metric.value)
            b.name = str(self.traj.names[i])

    def _on_frame(self, change) -> None:
        self._draw(int(change["new"]))

    def _on_highlight(self, change) -> None:
        h = None if change["new"] == -1 else int(change["new"])
        op = 0.8 if self._labels is None else point_opacity(self._labels, h)
        with self.maps.batch_update():
            self.maps.data[0].marker.opacity = op
            self.maps.data[1].marker.opacity = op

    def _on_metric(self, change) -> None:
        if self.bars is None:
            return
        label = AGREEMENT_METRICS[change["new"]][1]
        with self.bars.batch_update():
            self.bars.layout.yaxis.title.text = label
            self.bars.layout.yaxis.range = [0, 1.02] if change["new"] != "kl" else None
            self.bars.layout.title.text = f"{label.capitalize()} by class"
        self._draw_bars(self.frame)
