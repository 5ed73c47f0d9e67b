"""``TrajectoryView``: scrub a diffusion model's reverse process.

What it shows, for 2-D data: every sample's position at the chosen frame (x_t, or the predicted
clean sample x̂0), coloured by its hallucination flag if given; trails of selected samples from
x_T up to that frame (click a point to add or remove its trail); the score field as arrows at
the frame's timestep (a ``ScoreField`` from ``wb.analyses.score_field``); and, with
``student=``, a second panel with a few-step student's trajectory at the same noise level
(``wb.analyses.matching_frames``: the first student frame that is at least as clean). For image
data (digits): mosaics of samples at the frame (teacher and student) and a strip of one sample
along t (x_t over x̂0), with the current frame outlined.

Controls: a frame slider with a play button, x_t / x̂0 toggle, score-field checkbox, a text box of
trail indices. Everything updates the traces of one ``FigureWidget`` in place inside
``batch_update()``; the figures are ``wb.viz.trajectory`` / ``trajectory_pair`` /
``image_frames``, and what a new frame writes into them comes from the same module
(``trajectory_slots`` + ``panel_arrays`` / ``panel_patch``, ``image_slots`` + ``image_mosaic``,
``strip_marker``). State for tests and scripts: ``frame``, ``show``, ``trails``, ``set_frame``,
``set_show``, ``set_trails``, ``toggle_trail``, ``figure``, ``widget``.
"""

from __future__ import annotations

import numpy as np

from .._optional import require
from ..analyses.diffusion import Trajectory, matching_frames
from ..viz import diffusion as vd
from ..viz._common import patch
from ._view import View, row

widgets = require("ipywidgets", "interactive views")

__all__ = ["TrajectoryView"]


class TrajectoryView(View):
    """Interactive reverse-process viewer (see the module docstring).

    Parameters
    ----------
    traj: a ``Trajectory`` from ``wb.analyses.sample_trajectory`` (2-D points or images).
    student: an optional second ``Trajectory`` (e.g. a distilled student) shown beside it.
    flags, student_flags: ``HallucinationFlags`` (or (N,) 0/1/2 arrays) colouring the samples.
    field, student_field: ``ScoreField`` results (arrows at the current timestep; 2-D only).
    data: the training data, drawn in grey behind 2-D samples.
    trails: indices of samples whose paths are drawn, or an int = that many of the first samples.
    show: ``"x"`` (noisy states x_t) or ``"x0"`` (predicted clean samples).
    n_images, image_index, strip: for images, how many samples in the mosaic, which one in the strip,
        and how many frames along the strip.
    """

    def __init__(self, traj: Trajectory, *, student: Trajectory | None = None, flags=None, student_flags=None,
                 field=None, student_field=None, data=None, trails=5, show: str = "x",
                 names=("teacher", "student"), n_images: int = 16, image_index: int = 0, strip: int = 10,
                 frame: int | None = None, vrange=(-1.0, 1.0)):
        super().__init__()
        if not isinstance(traj, Trajectory):
            raise TypeError(f"traj must be a Trajectory (wb.analyses.sample_trajectory), got {type(traj).__name__}")
        if student is not None and not isinstance(student, Trajectory):
            raise TypeError(f"student must be a Trajectory or None, got {type(student).__name__}")
        if student is not None and student.sample_shape != traj.sample_shape:
            raise ValueError(f"student samples have shape {student.sample_shape}, the teacher's {traj.sample_shape}")
        if show not in ("x", "x0"):
            raise ValueError(f"show must be 'x' or 'x0', got {show!r}")
        self.traj, self.student = traj, student
        self.images = len(traj.sample_shape) >= 2
        if not self.images and traj.flat.shape[-1] != 2:
            raise ValueError(f"TrajectoryView draws 2-D points or images; samples have shape {traj.sample_shape}")
        self.flags, self.student_flags = flags, student_flags
        self.data_ = data
        self.field, self.student_field = field, student_field
        self.names = tuple(names)
        self.show = show
        self.n_images, self.image_index, self.strip = int(n_images), int(image_index), int(strip)
        self.vrange = vrange
        if isinstance(trails, (int, np.integer)):
            trails = list(range(min(int(trails), traj.n)))
        self.trails = self._check_trails(trails)
        self._match = matching_frames(traj, student).numpy() if student is not None else None
        self.frame = traj.n_frames - 1 if frame is None else range(traj.n_frames)[frame]
        self.show_field = field is not None
        self._add_figure("frames", self._static_figure())
        self._index_traces()
        self._build_controls()
        if not self.images:
            for i in self._slots[0]["points"]:
                self.figure.data[i].on_click(self._on_click)

    # ------------------------------------------------------------------ figure
    def _static_figure(self):
        f, sf = self.frame, self._student_frame()
        if self.images:
            return vd.image_frames(self.traj, f, n=self.n_images, show=self.show, index=self.image_index,
                                   strip=self.strip, right=self.student, right_frame=sf, names=self.names,
                                   vrange=self.vrange)
        if self.student is None:
            return vd.trajectory(self.traj, f, show=self.show, flags=self.flags, trails=self.trails,
                                 field=self.field, data=self.data_)
        return vd.trajectory_pair(self.traj, self.student, f, sf, show=self.show, flags=self.flags,
                                  right_flags=self.student_flags, trails=self.trails, field=self.field,
                                  right_field=self.student_field, data=self.data_, names=self.names)

    def _student_frame(self):
        return None if self._match is None else int(self._match[self.frame])

    def _index_traces(self):
        """The viz module's names for the traces this view patches (per panel)."""
        data = self.figure.data
        pair = self.student is not None
        if self.images:
            self._slots = vd.image_slots(pair)
            self._mosaics = [data[i] for i in self._slots["mosaics"]]
            self._panels = []
            return
        self._slots = vd.trajectory_slots(self.flags, self.student_flags, self.data_, pair=pair)
        self._panels = [dict(points=[data[i] for i in s["points"]], trails=data[s["trails"]], field=data[s["field"]])
                        for s in self._slots]

    # ------------------------------------------------------------------ controls
    def _build_controls(self):
        T = self.traj.n_frames
        self.slider = self._add_control("frame", widgets.IntSlider(
            value=self.frame, min=0, max=T - 1, description="frame", continuous_update=True,
            layout=widgets.Layout(width="460px", max_width="100%")))
        self.play = self._add_control("play", widgets.Play(value=self.frame, min=0, max=T - 1, interval=120,
                                                           step=max(1, T // 60)))
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.slider.observe(lambda ch: self.set_frame(ch["new"]), names="value")
        self.show_toggle = self._add_control("show", widgets.ToggleButtons(
            options=[("x_t", "x"), ("x̂0", "x0")], value=self.show, description="show",
            style={"button_width": "56px"}))
        self.show_toggle.observe(lambda ch: self.set_show(ch["new"]), names="value")
        self.field_box = self._add_control("score field", widgets.Checkbox(
            value=self.show_field, description="score field", indent=False,
            disabled=self.field is None and self.student_field is None, layout=widgets.Layout(width="120px")))
        self.field_box.observe(lambda ch: self.set_field_visible(ch["new"]), names="value")
        self.trail_text = self._add_control("trails", widgets.Text(
            value=", ".join(map(str, self.trails)), description="trails",
            placeholder="sample indices, e.g. 0, 5, 17 (or click points)", continuous_update=False,
            layout=widgets.Layout(width="360px", max_width="100%"), disabled=self.images))
        self.trail_text.observe(self._on_trail_text, names="value")
        self.label = widgets.HTML(self._label_text())
        self._set_root(row(self.play, self.slider, self.label),
                       row(self.show_toggle, *([] if self.images else [self.field_box, self.trail_text])),
                       self.figure)

    def _label_text(self):
        t = int(self.traj.timesteps[self.frame])
        s = f"&nbsp;t = {t if t >= 0 else 'clean'}, σ = {float(self.traj.sigmas[self.frame]):.3f}"
        if self.student is not None:
            sf = self._student_frame()
            s += f" · {self.names[1]} step {int(self.student.step_index[sf])}/{self.student.steps}"
        return s

    # ------------------------------------------------------------------ state changes
    def set_frame(self, i: int):
        """Show frame ``i`` of the teacher (and the matching student frame); updates traces in place."""
        if not -self.traj.n_frames <= i < self.traj.n_frames:
            raise IndexError(f"frame {i} out of range (0..{self.traj.n_frames - 1})")
        self.frame = range(self.traj.n_frames)[i]
        self._redraw()
        if self.slider.value != self.frame:
            self.slider.value = self.frame
        return self

    def set_show(self, show: str):
        """``"x"``: noisy states; ``"x0"``: the predicted clean samples."""
        if show not in ("x", "x0"):
            raise ValueError(f"show must be 'x' or 'x0', got {show!r}")
        self.show = show
        self._redraw()
        if self.show_toggle.value != show:
            self.show_toggle.value = show
        return self

    def set_field_visible(self, on: bool):
        self.show_field = bool(on) and (self.field is not None or self.student_field is not None)
        self._redraw()
        return self

    def set_trails(self, indices):
        """Draw the paths of samples ``indices``."""
        self.trails = self._check_trails(indices)
        self._redraw()
        txt = ", ".join(map(str, self.trails))
        if self.trail_text.value != txt:
            self.trail_text.value = txt
        return self

    def toggle_trail(self, i: int):
        """Add sample ``i``'s trail, or remove it if drawn (what a click on a point does)."""
        i = int(i)
        self.set_trails([j for j in self.trails if j != i] if i in self.trails else self.trails + [i])
        return self

    def _check_trails(self, indices):
        idx = [int(v) for v in indices]
        bad = [v for v in idx if not 0 <= v < self.traj.n]
        if bad:
            raise IndexError(f"trail indices {bad} out of range (0..{self.traj.n - 1})")
        return list(dict.fromkeys(idx))

    def _on_trail_text(self, ch):
        txt = ch["new"].replace(";", ",")
        try:
            idx = [int(v) for v in txt.split(",") if v.strip()]
            self.set_trails(idx)
        except (ValueError, IndexError) as err:
            self.label.value = f"<span style='color:#c00'>{err}</span>"

    def _on_click(self, trace, points, state):
        for i in points.point_inds:
            cd = trace.customdata
            self.toggle_trail(int(cd[i]) if cd is not None else int(i))

    # ------------------------------------------------------------------ drawing
    def _shown(self):
        """(trajectory, frame, flags, field, name) of every panel at the current frame."""
        out = [(self.traj, self.frame, self.flags, self.field, self.names[0])]
        if self.student is not None:
            out.append((self.student, self._student_frame(), self.student_flags, self.student_field, self.names[1]))
        return out

    def _redraw(self):
        fig = self.figure
        titles = [vd.frame_title(tr, fr, f"{nm}: ") for tr, fr, _, _, nm in self._shown()]
        with fig.batch_update():
            if self.images:
                for i, (tr, fr, *_rest) in zip(self._slots["mosaics"], self._shown()):
                    fig.data[i].z = vd.image_mosaic(tr, fr, self.show, self.n_images)
                fig.layout.shapes[vd.STRIP_SHAPE].update(
                    vd.strip_marker(self.traj, self.frame, self.strip, pair=self.student is not None))
            else:
                for slots, (tr, fr, fl, fd, _) in zip(self._slots, self._shown()):
                    arrays = vd.panel_arrays(tr, fr, self.show, fl, self.trails, fd if self.show_field else None)
                    patch(fig, vd.panel_patch(slots, arrays))
            if self.student is None and not self.images:
                fig.layout.title.text = titles[0]
            else:
                for ann, txt in zip(fig.layout.annotations, titles):
                    ann.text = txt
        self.label.value = self._label_text()

    def __repr__(self) -> str:
        kind = "images" if self.images else "2-D points"
        st = f", student {self.student.steps} step(s)" if self.student is not None else ""
        return (f"TrajectoryView({kind}, {self.traj.n} samples, {self.traj.n_frames} frames{st}, frame={self.frame}, "
                f"show={self.show!r}, trails={self.trails})")
