"""Calibration metrics against closed forms (golden values in references/ood_calibration_losses.md §2)."""

import math

import numpy as np
import pytest
import torch

from workbench.analyses import calibration as cal

CONF = torch.tensor([.95, .90, .75, .65, .55, .35], dtype=torch.float64)
OK = torch.tensor([1, 1, 0, 1, 0, 0])
P = torch.tensor([[.7, .2, .1], [.1, .6, .3], [.3, .3, .4], [.5, .4, .1]], dtype=torch.float64)
Y = torch.tensor([0, 2, 2, 1])


def test_ece_equal_width_closed_form():
    r = cal.top_label_error(CONF, OK, n_bins=5)
    # bins (.2,.4]: .35/0, (.4,.6]: .55/0, (.6,.8]: .75/0 .65/1, (.8,1]: .95/1 .90/1
    want = (abs(.35 - 0) + abs(.55 - 0) + 2 * abs(.70 - .5) + 2 * abs(.925 - 1)) / 6
    assert r.ece == pytest.approx(want, abs=1e-12)
    assert r.ece == pytest.approx(0.241667, abs=1e-6)
    assert r.mce == pytest.approx(.55, abs=1e-12)
    assert r.rmsce == pytest.approx(math.sqrt((.35**2 + .55**2 + 2 * .2**2 + 2 * .075**2) / 6), abs=1e-12)
    assert r.bins.counts.tolist() == [0, 1, 1, 2, 2]
    assert torch.isnan(r.bins.mean_value[0]) and r.binning == "equal-width"


def test_ece_equal_mass_closed_form():
    r = cal.top_label_error(CONF, OK, n_bins=2, binning="equal-mass")
    assert r.bins.edges[1].item() == pytest.approx(.70)
    assert r.ece == pytest.approx(.5 * abs(1.55 / 3 - 1 / 3) + .5 * abs(2.6 / 3 - 2 / 3), abs=1e-12)
    assert r.ece == pytest.approx(0.191667, abs=1e-6)
    assert r.bins.counts.tolist() == [3, 3]


def test_multiclass_goldens():
    assert cal.ece(P, Y, n_bins=2).ece == pytest.approx(0.10, abs=1e-12)  # (lo, hi]: 0.5 in bin 0
    assert cal.classwise_ece(P, Y, n_bins=2) == pytest.approx(0.25, abs=1e-12)
    assert cal.brier_score(P, Y) == pytest.approx(0.54, abs=1e-12)
    assert cal.nll(P.log(), Y) == pytest.approx(0.848307, abs=1e-6)
    s = cal.calibration_summary(P.log(), Y, n_bins=2)
    assert s.accuracy == 0.5 and s.brier == pytest.approx(.54) and "ECE=0.1000" in repr(s)


def test_ece_random_against_numpy_loop():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 4)) * 3
    y = rng.integers(0, 4, 500)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    conf, ok = p.max(1), (p.argmax(1) == y)
    for m in (1, 7, 15):
        edges = np.linspace(0, 1, m + 1)
        want = 0.0
        for lo, hi in zip(edges[:-1], edges[1:]):
            sel = (conf > lo) & (conf <= hi)
            if sel.any():
                want += sel.mean() * abs(conf[sel].mean() - ok[sel].mean())
        assert cal.ece(p, y, n_bins=m).ece == pytest.approx(want, abs=1e-12)


def test_temperature_golden_and_recovery():
    z = torch.tensor([[3, 0, 0], [2, 1, 0], [0, 2.5, 0], [1, 0, 2], [2, 2, 0], [0, 0, 3]], dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 2, 0, 0])
    t = cal.fit_temperature(z, y)
    assert t.temperature == pytest.approx(1.773475, abs=1e-5)
    assert t.nll_before == pytest.approx(0.985948, abs=1e-6) and t.nll_after == pytest.approx(0.899972, abs=1e-6)
    # synthetic logits whose labels are drawn from softmax(l / 2.5): the fit recovers T = 2.5
    g = torch.Generator().manual_seed(0)
    base = torch.randn(100000, 5, generator=g, dtype=torch.float64) * 4
    labels = torch.multinomial((base / 2.5).softmax(1), 1, generator=g).squeeze(1)
    t = cal.fit_temperature(base, labels)
    assert abs(t.temperature / 2.5 - 1) < 0.02
    assert abs(t.grad) < 1e-6
    assert torch.equal(t.scale(base).argmax(1), base.argmax(1))


def test_bad_inputs():
    with pytest.raises(ValueError, match="logits"):
        cal.ece(torch.randn(4, 3) * 5, Y)
    with pytest.raises(ValueError, match="binning"):
        cal.ece(P, Y, binning="quantile")
    with pytest.raises(ValueError, match="-1"):
        cal.brier_score(P, torch.tensor([0, -1, 2, 1]))
    with pytest.raises(TypeError, match="n_bins"):
        cal.ece(P, Y, n_bins=2.0)


def test_agrees_with_the_distillation_ece_helper():
    """wb.analyses.ece.top_label_ece (dataset distillation's small helper) is the equal-width case."""
    from workbench.analyses.ece import top_label_ece

    g = torch.Generator().manual_seed(3)
    p = torch.randn(300, 5, generator=g, dtype=torch.float64).mul(2).softmax(1)
    y = torch.randint(0, 5, (300,), generator=g)
    conf, pred = p.max(1)
    for m in (2, 10, 15):
        assert cal.ece(p, y, n_bins=m).ece == pytest.approx(top_label_ece(conf, pred == y, m), abs=1e-12)
