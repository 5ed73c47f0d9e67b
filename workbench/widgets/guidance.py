"""``GuidanceView``: the guided score field beside the unguided one, and what the scale does.

Built on ``workbench.viz.guidance``: two quiver panels at the chosen timestep — the
unconditional score (guidance scale 0) and the classifier-free-guided score for the chosen
class and scale, each normalised to its longest arrow (the title says how much longer the
guided field's is) — with, when a
``GuidanceSweep`` is given, its final samples at that scale on the guided panel (the chosen
class bright, the others faint), and a second figure of the sweep's measures (precision,
recall, in-support share, the share landing in the asked class) against the scale with the
current scale marked. Controls: a timestep slider (with play), a class dropdown and a scale
slider. Every change patches the existing traces (``GuidedTrace``) with what
``guided_fields_patch`` computes; nothing is recomputed from the model.

    fields = wb.analyses.guided_fields(den, ddpm, traj, scales=(0, 1, 2, 4))
    sweep = wb.analyses.guidance_sweep(den, ddpm, test, scales=(0, 1, 2, 4))
    wb.widgets.GuidanceView(fields, sweep, data=test)
"""

from __future__ import annotations

from .._optional import require
from ..viz._common import patch, to_numpy
from ..viz.guidance import (
    SCALE_SHAPE,
    guidance_curves,
    guided_fields,
    guided_fields_patch,
    scale_marker,
)
from ._view import View, row

widgets = require("ipywidgets", "interactive views")

__all__ = ["GuidanceView"]


class GuidanceView(View):
    """Unguided vs guided score field with timestep, class and scale controls (see the module docstring).

    ``fields``: a ``wb.analyses.GuidedFields``; ``sweep``: an optional ``GuidanceSweep`` (its
    samples at the nearest scale are drawn); ``data``: background points; ``t``, ``cls``,
    ``scale``: what is shown first (default: the middle timestep, the first class, the largest scale).
    """

    def __init__(self, fields, sweep=None, *, data=None, t: int | None = None, cls: int | None = None,
                 scale: float | None = None):
        super().__init__()
        if not hasattr(fields, "guided") or not hasattr(fields, "unguided"):
            raise TypeError(f"GuidanceView needs GuidedFields (wb.analyses.guided_fields(...)), got {type(fields).__name__}")
        if sweep is not None and not hasattr(sweep, "scales"):
            raise TypeError(f"sweep must be a GuidanceSweep (wb.analyses.guidance_sweep(...)), got {type(sweep).__name__}")
        self.fields, self.sweep = fields, sweep
        n_t = len(fields.timesteps)
        idx = fields.index(t=t if t is not None else int(fields.timesteps[n_t // 2]),
                           scale=scale if scale is not None else float(fields.scales[-1]),
                           cls=cls if cls is not None else fields.classes[0])
        self.k, self.s, self.c = idx["k"], idx["s"], idx["c"]
        self._add_figure("fields", guided_fields(fields, k=self.k, s=self.s, c=self.c, sweep=sweep, data=data))
        self.curves = None
        if sweep is not None:
            self.curves = self._add_figure("curves", guidance_curves(sweep, scale=self.scale))
        self._build_controls()

    @property
    def t(self) -> int:
        return int(self.fields.timesteps[self.k])

    @property
    def scale(self) -> float:
        return float(self.fields.scales[self.s])

    @property
    def cls(self) -> int:
        return self.fields.classes[self.c]

    def _build_controls(self):
        f = self.fields
        self.t_slider = self._add_control("t", widgets.SelectionSlider(
            options=[(f"{int(t)}", i) for i, t in enumerate(to_numpy(f.timesteps))], value=self.k,
            description="timestep", continuous_update=True, layout=widgets.Layout(width="360px", max_width="100%")))
        self.play = self._add_control("play", widgets.Play(value=self.k, min=0, max=len(f.timesteps) - 1, interval=400))
        widgets.jslink((self.play, "value"), (self.t_slider, "index"))
        self.class_box = self._add_control("class", widgets.Dropdown(
            options=[(str(c), i) for i, c in enumerate(f.classes)], value=self.c, description="class",
            layout=widgets.Layout(width="160px")))
        self.scale_slider = self._add_control("scale", widgets.SelectionSlider(
            options=[(f"{float(s):g}", i) for i, s in enumerate(to_numpy(f.scales))], value=self.s,
            description="scale", continuous_update=True, layout=widgets.Layout(width="300px", max_width="100%")))
        self.t_slider.observe(lambda ch: self.set(k=ch["new"]), names="value")
        self.class_box.observe(lambda ch: self.set(c=ch["new"]), names="value")
        self.scale_slider.observe(lambda ch: self.set(s=ch["new"]), names="value")
        rows = [row(self.play, self.t_slider, self.class_box, self.scale_slider), self.figure]
        if self.curves is not None:
            rows.append(self.curves)
        self._set_root(*rows)

    # ------------------------------------------------------------------ state changes
    def set(self, *, k: int | None = None, s: int | None = None, c: int | None = None):
        """Show timestep index ``k``, scale index ``s`` and class index ``c`` (those given)."""
        f = self.fields
        for name, v, n in (("k", k, len(f.timesteps)), ("s", s, len(f.scales)), ("c", c, len(f.classes))):
            if v is not None:
                if not 0 <= int(v) < n:
                    raise IndexError(f"{name}={v} out of range (0..{n - 1})")
                setattr(self, name, int(v))
        p = guided_fields_patch(f, self.k, self.s, self.c, self.sweep)
        fig = self.figure
        with fig.batch_update():
            patch(fig, {r: v for r, v in p.items() if r != "titles"})
            for ann, txt in zip(fig.layout.annotations, p["titles"]):
                ann.text = txt
        if self.curves is not None:
            self.curves.layout.shapes[SCALE_SHAPE].update(scale_marker(self.scale))
        for ctl, v in ((self.t_slider, self.k), (self.scale_slider, self.s), (self.class_box, self.c)):
            if ctl.value != v:
                ctl.value = v
        return self

    def set_t(self, t: int):
        """Show the computed timestep nearest ``t``."""
        return self.set(k=self.fields.index(t=t)["k"])

    def set_scale(self, scale: float):
        """Show the computed scale nearest ``scale``."""
        return self.set(s=self.fields.index(scale=scale)["s"])

    def set_class(self, cls: int):
        return self.set(c=self.fields.index(cls=cls)["c"])

    def __repr__(self) -> str:
        sw = "" if self.sweep is None else f", sweep of {len(self.sweep.scales)} scales"
        return f"GuidanceView(t={self.t}, class={self.cls}, scale={self.scale:g}{sw})"
