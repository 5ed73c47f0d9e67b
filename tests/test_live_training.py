"""LiveTraining: curves updated in place during a fit, the progress bar, the Stop button."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.training import Callback
from workbench.widgets import LiveTraining


@pytest.fixture(scope="module")
def data():
    return wb.data.load("gaussians8", n=256, seed=0).split(0.75, seed=0)


def _setup(seed=0):
    return wb.models.MLP(2, (16,), 8, seed=seed), wb.methods.CrossEntropy()


class At(Callback):
    """Run ``fn(state)`` once, at the end of step ``step``."""

    def __init__(self, step, fn):
        self.step, self.fn = step, fn

    def on_step_end(self, state):
        if state.step == self.step:
            self.fn(state)


def test_curves_update_in_place(data):
    train, test = data
    live = LiveTraining(min_interval=0)
    fig = live.fig
    model, method = _setup()
    hist = wb.fit(model, method, train, steps=20, batch_size=64, val=test, eval_every=5,
                  callbacks=[live], progress=False)
    assert live.fig is fig and len(fig.data) == 4  # the same figure, traces updated
    assert np.allclose(fig.data[0].y, hist.loss) and list(fig.data[0].x) == hist.steps
    s, v = hist.eval_series("loss")
    assert list(fig.data[1].x) == list(s) and np.allclose(fig.data[1].y, v)
    assert np.allclose(fig.data[2].y, hist.series("acc"))
    assert np.allclose(fig.data[3].y, hist.eval_series("acc")[1])
    assert live.updates >= 20
    assert live.progress.value == 20 and live.progress.max == 20 and live.progress.bar_style == "success"
    assert "completed" in live.status.value and live.stop_button.disabled
    assert live.history is hist and not live.running


def test_metric_dropdown_and_thinning(data):
    train, test = data
    live = LiveTraining(metric="nope", min_interval=0, max_points=10)
    model, method = _setup()
    hist = wb.fit(model, method, train, steps=40, batch_size=64, val=test, eval_every=20,
                  callbacks=[live], progress=False)
    assert list(live.metric_select.options) == ["acc"] and live.metric == "acc"  # fell back
    assert len(live.fig.data[0].x) <= 10 and live.fig.data[0].x[-1] == 40
    live.metric_select.options = ["acc", "lr"]
    live.metric_select.value = "lr"
    assert np.allclose(live.fig.data[2].y, hist.series("lr")[np.asarray(live.fig.data[0].x, int) - 1])
    assert live.fig.data[2].name == "train lr" and len(live.fig.data[3].x) == 0


def test_stop_button_ends_a_blocking_fit_within_one_step(data):
    train, test = data
    live = LiveTraining(min_interval=0)
    model, method = _setup()
    hist = wb.fit(model, method, train, steps=50, batch_size=64, seed=3, progress=False,
                  callbacks=[live, At(7, lambda s: live.stop_button.click())])
    assert hist.status == "stopped" and hist.last_step == 7 and len(hist) == 7
    assert "stopped by the button after step 7" in live.status.value
    # the model is exactly as 7 steps of the same fit leave it
    ref, ref_method = _setup()
    wb.fit(ref, ref_method, train, steps=7, batch_size=64, seed=3, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref.state_dict().values()))
    # the view is reusable: the next fit starts afresh
    h2 = wb.fit(model, method, train, steps=5, batch_size=64, callbacks=[live], progress=False)
    assert h2.status == "completed" and len(live.fig.data[0].x) == 5


def test_stop_button_ends_a_background_fit(data):
    train, test = data
    live = LiveTraining(min_interval=0)
    reached, clicked = threading.Event(), threading.Event()

    def pause(state):  # hold the fit at step 5 until the "user" has clicked
        reached.set()
        assert clicked.wait(30)

    model, method = _setup()
    live.fit(model, method, train, steps=10_000, batch_size=64, val=test, eval_every=1000,
             callbacks=[At(5, pause)])
    assert reached.wait(60)
    assert live.running
    with pytest.raises(RuntimeError, match="already watching"):
        live.fit(model, method, train, steps=3)
    live.stop_button.click()  # what a click in the browser does (the kernel is free)
    clicked.set()
    hist = live.wait(timeout=60)
    assert hist.status == "stopped" and hist.last_step in (5, 6)
    assert not live.running and live.stop_button.disabled
    assert live.progress.value == hist.last_step


def test_errors_surface(data):
    train, _ = data
    with pytest.raises(ValueError, match="min_interval"):
        LiveTraining(min_interval=-1)
    with pytest.raises(ValueError, match="smooth_window"):
        LiveTraining(smooth_window=0)
    live = LiveTraining()
    with pytest.raises(RuntimeError, match="no fit was started"):
        live.wait()
    model, method = _setup()
    live.fit(model, method, train, steps=0)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        live.wait(timeout=60)
    assert "failed" in live.status.value and not live.running
    with pytest.raises(ValueError, match="callbacks= as well"):
        live.fit(model, method, train, steps=3, callbacks=[live])
    live.stop()  # stopping while idle does nothing
    assert not live.running and "LiveTraining(" in repr(live)


def test_figure_widget_shares_plotly_javascript():
    # every figure carries plotly's bundle as data and a tiny loader that evaluates it once per page
    import plotly.graph_objects as go

    from workbench.widgets._figure import figure_widget

    fig = figure_widget(go.Figure(go.Scatter(x=[1, 2], y=[3, 4])))
    state = fig.get_state()
    assert len(state["_esm"]) < 4000 and "globalThis[KEY]" in state["_esm"]
    assert state["_wb_esm"] == str(go.FigureWidget._esm) and len(state["_wb_esm"]) > 1_000_000
    with fig.batch_update():
        fig.data[0].y = [5, 6]
    assert fig.data[0].y == (5, 6) and isinstance(fig, go.FigureWidget)
