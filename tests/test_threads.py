"""The thread-count context manager, the ``threads="auto"`` rule, and how fit uses them."""

import math

import pytest
import torch
from torch import nn

import workbench as wb
import workbench._threads as wt
from workbench._threads import (
    SMALL_STEP_FLOPS,
    available_cores,
    busy_cores,
    choose_threads,
    num_threads,
    step_flops,
)
from workbench.training import Callback


@pytest.fixture(scope="module")
def digits():
    ds = wb.data.load("digits")
    return wb.data.Dataset.from_arrays(ds.flat, ds.y)


@pytest.fixture
def two_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


class SeeThreads(Callback):
    def __init__(self):
        self.seen = []

    def on_step_end(self, state):
        self.seen.append(torch.get_num_threads())


def test_num_threads_restores_also_on_error():
    old = torch.get_num_threads()
    with num_threads(old + 1):
        assert torch.get_num_threads() == old + 1
    assert torch.get_num_threads() == old
    with pytest.raises(RuntimeError, match="boom"), num_threads(old + 1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == old
    with num_threads(None):
        assert torch.get_num_threads() == old
    with pytest.raises(ValueError, match="threads must be an int >= 1"), num_threads(0):
        pass
    with pytest.raises(TypeError, match="got 'auto'"), num_threads("auto"):
        pass


def test_step_flops_counts_matmuls_and_convolutions_exactly():
    mlp = wb.models.MLP(64, (32,), 10, seed=0)
    flops, how = step_flops(mlp, torch.zeros(2, 64), 64)
    assert how == "counted" and flops == 3 * 2 * (64 * 32 + 32 * 10) * 64
    conv = wb.models.ConvNet((1, 8, 8), 10, width=8, feature_dim=64, seed=0)
    # 3x3 convs: 1->8 at 8x8, 8->16 stride 2 (4x4), 16->16 at 4x4; then 16->64 and 64->10
    per_sample = 2 * (1 * 8 * 9 * 64 + 8 * 16 * 9 * 16 + 16 * 16 * 9 * 16 + 16 * 64 + 64 * 10)
    assert step_flops(conv, torch.zeros(2, 1, 8, 8), 10) == (3 * per_sample * 10, "counted")


def test_step_flops_leaves_the_model_alone():
    net = wb.models.MLP(64, (16,), 10, norm="batch", dropout=0.5, seed=0).train()
    net.body[1].eval()
    flags = [m.training for m in net.modules()]
    state = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(3, 64)
    rng = torch.random.get_rng_state()
    step_flops(net, x, 32)
    assert [m.training for m in net.modules()] == flags
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert torch.equal(torch.random.get_rng_state(), rng) and torch.is_grad_enabled()


def test_step_flops_falls_back_to_the_parameter_count():
    class TwoInputs(nn.Module):  # called as f(x, t), like a denoiser
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x, t):
            return self.lin(x) + t

    flops, how = step_flops(TwoInputs(), torch.zeros(2, 4), 8)
    assert flops == 6 * 20 * 8 and "parameter count" in how


def test_step_flops_does_not_initialise_lazy_modules():
    lazy = nn.Sequential(nn.LazyLinear(4))
    flops, how = step_flops(lazy, torch.zeros(2, 3), 8)
    assert math.isnan(flops) and "lazy" in how
    assert isinstance(lazy[0].weight, nn.parameter.UninitializedParameter)
    assert choose_threads(flops, allowed=2).n == 1


def test_the_rule():
    big = 10 * SMALL_STEP_FLOPS
    c = choose_threads(1e6, allowed=2, busy=[0.0, 0.0])
    assert c.n == 1 and "small model: 1 MFLOP/step" in c.reason
    assert choose_threads(big, allowed=1).n == 1  # never above torch's setting
    assert "torch's setting is 1" in choose_threads(big, allowed=1).reason
    assert choose_threads(big, allowed=2, busy=None).n == 2
    assert choose_threads(big, allowed=2, busy=[0.05, 0.1]).n == 2
    c = choose_threads(big, allowed=2, busy=[0.2, 0.2])  # a bursty load spread over both cores
    assert c.n == 1 and "other processes use 0.4 of 2 cores" in c.reason and c.busy == (0.2, 0.2)
    assert choose_threads(big, allowed=2, busy=[0.0, 0.9]).n == 1
    assert choose_threads(big, allowed=4, busy=[0.0, 0.0, 0.0, 0.95]).n == 3
    assert choose_threads(big, allowed=4, busy=[1.0, 1.0, 1.0, 1.0]).n == 1
    assert choose_threads(big, allowed=2, busy=[0.0, 0.0, 0.0, 0.0]).n == 2
    assert choose_threads(math.nan, allowed=2).n == 1


def test_busy_cores_sample():
    b = busy_cores(0.01)
    assert b is None or (len(b) == available_cores() and all(0.0 <= v <= 1.0 for v in b))


def test_fit_auto_uses_one_thread_for_a_small_model(digits, two_threads):
    see = SeeThreads()
    model = wb.models.MLP(64, (32,), 10, seed=0)
    hist = wb.fit(model, "cross_entropy", digits, steps=3, batch_size=64, callbacks=[see], progress=False)
    assert see.seen == [1, 1, 1] and torch.get_num_threads() == 2
    assert hist.config["threads"] == 1
    assert hist.threads_note == "auto: 1 thread (small model: 0.909 MFLOP/step < 200 MFLOP)"
    assert "1 thread" in repr(hist)


def test_fit_auto_never_raises_torchs_setting(digits):
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = wb.models.MLP(64, (1024, 1024), 10, seed=0)  # ~1.7 GFLOP per step at batch 256
        hist = wb.fit(model, "cross_entropy", digits, steps=1, progress=False)
    finally:
        torch.set_num_threads(old)
    assert hist.config["threads"] == 1 and "torch's setting is 1" in hist.threads_note


@pytest.mark.parametrize("load, n, note", [([0.0, 0.1], 2, "use 0.1 of 2 cores"), ([0.0, 0.97], 1, "use 1.0 of 2 cores")])
def test_fit_auto_follows_the_load_for_a_large_model(digits, two_threads, monkeypatch, load, n, note):
    monkeypatch.setattr(wt, "busy_cores", lambda *a, **k: list(load))
    see = SeeThreads()
    model = wb.models.MLP(64, (1024, 1024), 10, seed=0)
    hist = wb.fit(model, "cross_entropy", digits, steps=1, callbacks=[see], progress=False)
    assert see.seen == [n] and hist.config["threads"] == n and torch.get_num_threads() == 2
    assert hist.threads_note.startswith(f"auto: {n} thread") and note in hist.threads_note
    assert "GFLOP/step" in hist.threads_note


def test_explicit_setting_wins(digits, two_threads):
    model = wb.models.MLP(64, (1024, 1024), 10, seed=0)
    see = SeeThreads()
    hist = wb.fit(model, "cross_entropy", digits, steps=1, threads=1, callbacks=[see], progress=False)
    assert see.seen == [1] and hist.config["threads"] == 1 and hist.threads_note == "threads=1 (given)"
    small = wb.models.MLP(64, (8,), 10, seed=0)
    see = SeeThreads()
    hist = wb.fit(small, "cross_entropy", digits, steps=1, threads=None, callbacks=[see], progress=False)
    assert see.seen == [2] and hist.config["threads"] == 2
    assert hist.threads_note == "left as found: torch's setting (2 threads)"
    assert torch.get_num_threads() == 2


def test_threads_note_survives_to_dict(digits):
    hist = wb.fit(wb.models.MLP(64, (8,), 10), "cross_entropy", digits, steps=2, progress=False)
    back = wb.History.from_dict(hist.to_dict())
    assert back.threads_note == hist.threads_note != "" and back.config["threads"] == hist.config["threads"]
