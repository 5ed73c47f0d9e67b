"""``LiveTraining``: watch a fit as it runs, and stop it with a button.

A ``wb.fit`` callback that is also a view: loss and metric curves (train and validation)
updated in place, a progress bar, a status line, and a **Stop** button. Stopping sets
``state.stop = True``; ``fit`` then ends after the current step, keeps the model as that step
left it and returns the history with ``status="stopped"``.

Two ways to use it::

    live = wb.widgets.LiveTraining()
    live.fit(model, method, train, steps=2000, val=test)   # last line of a cell: shows the view;
                                                            # the fit runs in the background
    hist = live.wait()                                      # (in a later cell) the History

    live = wb.widgets.LiveTraining()
    hist = wb.fit(model, method, train, steps=2000, val=test, callbacks=[live])  # blocking

A notebook kernel handles a button click only while it is not busy running a cell, so the Stop
button can end a fit started with ``live.fit(...)`` (the fit runs in a background thread and
the kernel stays free); during a blocking ``wb.fit(..., callbacks=[live])`` the curves update
but the click is only seen after the cell ends, so use the notebook's interrupt (■) there:
``fit`` treats it as a clean stop too. Do not touch the model from other cells while a
background fit runs.

The figure is ``workbench.viz.compare.training_panels`` (two panels: loss, and one metric chosen
in the dropdown; its traces named by ``TrainingTrace``); updates are throttled to one every
``min_interval`` seconds (plus every evaluation and the end), each inside ``fig.batch_update()``.
It is a ``View`` like every other view: ``figure`` (also ``fig``), ``controls``, ``widget``.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from .._optional import require
from ..training.callbacks import Callback
from ..viz._common import patch
from ..viz.compare import METRIC_TITLE, TrainingTrace, smooth, training_panels
from ._view import View, row

widgets = require("ipywidgets", "interactive views")

__all__ = ["LiveTraining"]


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, (int, float)) and np.isfinite(v) else str(v)


class LiveTraining(View, Callback):
    """A fit callback with live curves, a progress bar and a Stop button (see module docstring).

    metric: the quantity in the second panel at the start (changeable in the dropdown; falls
        back to the first logged one if the method does not log it).
    min_interval: seconds between figure updates (0 = every step; tests use that).
    smooth_window: moving-average window for the per-step training curves.
    max_points: at most this many points per training curve are sent to the browser (evenly
        thinned; the full history is kept).
    """

    def __init__(self, metric: str = "acc", *, min_interval: float = 0.25, smooth_window: int = 1,
                 max_points: int = 2000, title: str | None = "Live training", height: int = 320):
        if not isinstance(min_interval, (int, float)) or min_interval < 0:
            raise ValueError(f"min_interval must be a number of seconds >= 0, got {min_interval!r}")
        if not isinstance(smooth_window, int) or smooth_window < 1:
            raise ValueError(f"smooth_window must be a positive int, got {smooth_window!r}")
        if not isinstance(max_points, int) or max_points < 10:
            raise ValueError(f"max_points must be an int >= 10, got {max_points!r}")
        View.__init__(self)
        self.metric = metric
        self.min_interval = float(min_interval)
        self.smooth_window = smooth_window
        self.max_points = max_points
        self.fig = self._add_figure("curves", training_panels(None, metric, title=title, height=height))
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="step 0",
                                            layout=widgets.Layout(width="320px", max_width="100%"))
        self.stop_button = self._add_control("stop", widgets.Button(
            description="Stop", icon="stop", button_style="danger", tooltip="end the fit after the current step",
            disabled=True))
        self.metric_select = self._add_control("metric", widgets.Dropdown(
            options=[metric], value=metric, description="metric", layout=widgets.Layout(width="200px")))
        self.status = widgets.HTML(value="<i>waiting for a fit</i>")
        self.stop_button.on_click(self._on_stop)
        self.metric_select.observe(self._on_metric, names="value")
        self._set_root(row(self.progress, self.stop_button, self.metric_select), self.status, self.fig)
        self.history = None
        self.error: BaseException | None = None
        self._state = None
        self._stop_requested = False
        self._keep_request = False
        self._running = False
        self._thread: threading.Thread | None = None
        self._last_flush = -np.inf
        self._t0 = 0.0
        self._displayed = False
        self._lock = threading.Lock()  # the fit's thread and the dropdown may both redraw
        self.updates = 0  # number of figure updates (for tests and curiosity)

    # ---------------------------------------------------------------- display
    def _repr_mimebundle_(self, **kwargs):
        self._displayed = True
        return View._repr_mimebundle_(self, **kwargs)

    def _auto_display(self):
        """Show the view when a blocking fit starts and it was not displayed yet (like a
        progress bar). Never from a background thread: its output could land in another cell."""
        if self._displayed or threading.current_thread() is not threading.main_thread():
            return
        try:
            from IPython import get_ipython

            ip = get_ipython()
        except ImportError:  # pragma: no cover
            return
        if ip is not None and getattr(ip, "kernel", None) is not None:
            from IPython.display import display

            display(self)

    # ---------------------------------------------------------------- controls
    @property
    def running(self) -> bool:
        return self._running

    def stop(self) -> None:
        """Ask the running fit to end after its current step (what the button does)."""
        if not self._running:
            return
        self._stop_requested = True
        if self._state is not None:
            self._state.stop = True
        self.stop_button.disabled = True
        self.stop_button.description = "Stopping…"

    def _on_stop(self, _button=None):
        self.stop()

    def _on_metric(self, change):
        self.metric = change["new"]
        self._flush()

    # ---------------------------------------------------------------- callback hooks
    def on_fit_start(self, state):
        self._auto_display()
        self._state = state
        self.history = state.history
        if not self._keep_request:  # a stop() between live.fit(...) and the first step counts
            self._stop_requested = False
        self._keep_request = False
        self._running = True
        self._t0 = time.perf_counter()
        self._last_flush = -np.inf
        self.progress.max = max(1, int(state.total_steps))
        self.progress.value = 0
        self.progress.bar_style = ""
        self.progress.description = "step 0"
        self.stop_button.disabled = self._stop_requested
        self.stop_button.description = "Stopping…" if self._stop_requested else "Stop"
        self.status.value = f"training {type(state.method).__name__} on {type(state.model).__name__}…"
        patch(self.fig, {i: dict(x=[], y=[]) for i in TrainingTrace})

    def on_step_end(self, state):
        if self._stop_requested:
            state.stop = True
        if state.step == 1:
            self._refresh_options(state.history)
        now = time.perf_counter()
        if now - self._last_flush >= self.min_interval:
            self._flush()

    def on_eval(self, state, metrics):
        self._refresh_options(state.history)
        self._flush()

    def on_fit_end(self, state):
        self._running = False
        self._flush()
        h = state.history
        self.stop_button.disabled = True
        self.stop_button.description = "Stop"
        how = h.status if h.status != "running" else "ended"
        if self._stop_requested and h.status == "stopped":
            how = f"stopped by the button after step {h.last_step}"
        self.progress.bar_style = {"completed": "success", "diverged": "danger"}.get(h.status, "warning")
        last = ", ".join(f"{k} {_fmt(v)}" for k, v in list(state.last.items())[:3] if k != "lr")
        ev = ""
        if h.evals:
            ev = " · val " + ", ".join(f"{k} {_fmt(v)}" for k, v in h.evals[-1].items() if k != "step")
        self.status.value = f"<b>{how}</b> · {h.last_step} steps in {time.perf_counter() - self._t0:.1f}s · {last}{ev}"
        self._state = None

    # ---------------------------------------------------------------- drawing
    def _refresh_options(self, history):
        keys = []
        for r in history.records[:1]:
            keys += [k for k in r if k not in ("loss", "lr")]
        for e in history.evals[-1:]:
            keys += [k for k in e if k not in ("step", "loss") and k not in keys]
        keys = list(dict.fromkeys(keys)) or ["lr"]
        if list(self.metric_select.options) != keys:
            want = self.metric if self.metric in keys else keys[0]
            self.metric_select.unobserve(self._on_metric, names="value")
            try:
                self.metric_select.options = keys
                self.metric_select.value = want
            finally:
                self.metric_select.observe(self._on_metric, names="value")
            self.metric = want

    def _thin(self, x: np.ndarray, y: np.ndarray):
        if x.size > self.max_points:
            idx = np.unique(np.linspace(0, x.size - 1, self.max_points).round().astype(int))
            return x[idx], y[idx]
        return x, y

    def _flush(self):
        with self._lock:
            self._draw()

    def _draw(self):
        h = self.history
        if h is None:
            return
        self._last_flush = time.perf_counter()
        steps = np.asarray(h.steps, dtype=float)
        panels = []
        for key in ("loss", self.metric):
            if h.records and any(key in r for r in h.records[-1:]):
                y = np.array([r.get(key, np.nan) for r in h.records], dtype=float)
                tx, ty = self._thin(steps, smooth(y, self.smooth_window))
            else:
                tx, ty = np.array([]), np.array([])
            pts = [(e["step"], e[key]) for e in h.evals if key in e]
            vx = np.array([p[0] for p in pts], dtype=float)
            vy = np.array([p[1] for p in pts], dtype=float)
            panels.append(((tx, ty), (vx, vy)))
        (lt, lv), (mt, mv) = panels
        with self.fig.batch_update():
            patch(self.fig, {
                TrainingTrace.TRAIN_LOSS: dict(x=lt[0], y=lt[1]), TrainingTrace.VAL_LOSS: dict(x=lv[0], y=lv[1]),
                TrainingTrace.TRAIN_METRIC: dict(x=mt[0], y=mt[1], name=f"train {self.metric}"),
                TrainingTrace.VAL_METRIC: dict(x=mv[0], y=mv[1], name=f"val {self.metric}"),
            })
            self.fig.layout.annotations[METRIC_TITLE].text = self.metric
        self.updates += 1
        step = h.last_step
        self.progress.value = min(step, self.progress.max)
        self.progress.description = f"step {step}"
        if self._running and step:
            rate = step / max(time.perf_counter() - self._t0, 1e-9)
            last = h.records[-1]
            shown = ", ".join(f"{k} {_fmt(v)}" for k, v in list(last.items())[:3] if k != "lr")
            self.status.value = f"step {step}/{self.progress.max} · {shown} · {rate:.0f} steps/s"

    # ---------------------------------------------------------------- background fits
    def fit(self, model, method, data, **fit_kwargs):
        """Start ``wb.fit(model, method, data, **fit_kwargs)`` with this view as a callback in a
        background thread (the Stop button then works while it runs); returns ``self``, so a
        cell ending with ``live.fit(...)`` shows the view (else ``display(live)``). ``wait()``
        returns the History. ``progress`` defaults to False (the view has its own bar)."""
        from ..training.fit import fit as _fit

        if self._running or (self._thread is not None and self._thread.is_alive()):
            raise RuntimeError("this view is already watching a fit; wait() for it or use another LiveTraining")
        cbs = list(fit_kwargs.pop("callbacks", ()))
        if any(cb is self for cb in cbs):
            raise ValueError("do not pass this view in callbacks= as well; live.fit adds it")
        fit_kwargs.setdefault("progress", False)
        self.error = None
        self.history = None
        started = threading.Event()

        def work():
            try:
                started.set()
                self.history = _fit(model, method, data, callbacks=[self, *cbs], **fit_kwargs)
            except BaseException as err:  # reported by wait()
                self.error = err
                self._running = False
                self.stop_button.disabled = True
                self.status.value = f"<b style='color:#c00'>failed</b>: {type(err).__name__}: {err}"

        # mark as running before the thread starts so a quick stop() is not lost
        self._running = True
        self._stop_requested = False
        self._keep_request = True
        self._thread = threading.Thread(target=work, name="workbench-live-fit", daemon=True)
        self._thread.start()
        started.wait()
        return self

    def wait(self, timeout: float | None = None):
        """Block until the background fit ends; return its History (re-raise its error)."""
        t = self._thread
        if t is None:
            if self.history is not None:
                return self.history
            raise RuntimeError("no fit was started with live.fit(...)")
        t.join(timeout)
        if t.is_alive():
            raise TimeoutError(f"the fit is still running after {timeout} s")
        if self.error is not None:
            raise self.error
        return self.history

    def __repr__(self) -> str:
        state = "running" if self._running else (self.history.status if self.history is not None else "idle")
        return f"LiveTraining(metric={self.metric!r}, {state})"
