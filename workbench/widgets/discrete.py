"""``DiscreteTrajectoryView``: watch a discrete (D3PM) model decide its tokens, frame by frame.

Built on ``workbench.viz.discrete``: the tokens of the first ``n`` samples at the chosen frame
(images as a mosaic, sequences as a grid; masks light blue), the frame at which each token
already decided got its final value (blank while undecided: for masked diffusion, the
unmasking order), and the share of tokens not yet final along the trajectory with the frame
marked. A frame slider with a play button patches the traces (``DiscreteTrace``) with what
``discrete_patch`` computes.

    traj = wb.analyses.sample_discrete(model, d3pm, n=16, shape=(1, 8, 8))
    wb.widgets.DiscreteTrajectoryView(traj)
"""

from __future__ import annotations

from .._optional import require
from ..viz._common import patch
from ..viz.discrete import discrete_frames, discrete_patch
from ._view import View, row

widgets = require("ipywidgets", "interactive views")

__all__ = ["DiscreteTrajectoryView"]


class DiscreteTrajectoryView(View):
    """Frame slider over a ``wb.analyses.DiscreteTrajectory`` (see the module docstring)."""

    def __init__(self, traj, *, n: int = 16, frame: int | None = None):
        super().__init__()
        if not hasattr(traj, "states") or not hasattr(traj, "decided_at"):
            raise TypeError(f"DiscreteTrajectoryView needs a DiscreteTrajectory (wb.analyses.sample_discrete(...)), "
                            f"got {type(traj).__name__}")
        self.traj, self.n = traj, max(1, min(int(n), traj.n))
        self.frame = traj.n_frames - 1 if frame is None else range(traj.n_frames)[frame]
        self._add_figure("frames", discrete_frames(traj, self.frame, n=self.n))
        F = traj.n_frames
        self.slider = self._add_control("frame", widgets.IntSlider(
            value=self.frame, min=0, max=F - 1, description="frame", continuous_update=True,
            layout=widgets.Layout(width="460px", max_width="100%")))
        self.play = self._add_control("play", widgets.Play(value=self.frame, min=0, max=F - 1, interval=150,
                                                           step=max(1, F // 50)))
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.slider.observe(lambda ch: self.set_frame(ch["new"]), names="value")
        self._set_root(row(self.play, self.slider), self.figure)

    def set_frame(self, i: int):
        """Show frame ``i``; patches the traces in place."""
        if not -self.traj.n_frames <= i < self.traj.n_frames:
            raise IndexError(f"frame {i} out of range (0..{self.traj.n_frames - 1})")
        self.frame = range(self.traj.n_frames)[i]
        p = discrete_patch(self.traj, self.frame, self.n)
        fig = self.figure
        with fig.batch_update():
            patch(fig, {r: v for r, v in p.items() if r != "title"})
            fig.layout.title.text = p["title"]
        if self.slider.value != self.frame:
            self.slider.value = self.frame
        return self

    def __repr__(self) -> str:
        return (f"DiscreteTrajectoryView({self.traj.transition}, {self.n} of {self.traj.n} samples, "
                f"frame {self.frame}/{self.traj.n_frames - 1})")
