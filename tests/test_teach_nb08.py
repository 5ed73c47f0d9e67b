"""Notebook 08's exercises: right answers pass, typical wrong ones get their hint, never a traceback."""

import importlib
import math

import numpy as np
import pytest

import workbench as wb
from workbench.teach import _core


@pytest.fixture(autouse=True)
def _registered():
    """tests/test_teach.py swaps the registry while it loads every notebook's module; register again."""
    module = importlib.import_module("workbench.teach.nb08")
    if "08-ece" not in _core._REGISTRY:
        importlib.reload(module)


def _ece(conf, ok, n_bins, right_closed=True):
    edges = np.linspace(0, 1, n_bins + 1)
    out = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (conf > lo) & (conf <= hi) if right_closed else (conf >= lo) & (conf < hi)
        if sel.any():
            out += sel.mean() * abs(conf[sel].mean() - ok[sel].mean())
    return out


def test_ece():
    assert wb.teach.check("08-ece", _ece)
    assert wb.teach.check("08-ece", lambda c, o, m: wb.analyses.calibration.top_label_error(c, o, n_bins=m).ece)
    assert "[lo, hi)" in wb.teach.check("08-ece", lambda c, o, m: _ece(c, o, m, right_closed=False)).message
    mce = lambda c, o, m: wb.analyses.calibration.top_label_error(c, o, n_bins=m).mce  # noqa: E731
    assert "MCE" in wb.teach.check("08-ece", mce).message
    assert "one bin" in wb.teach.check("08-ece", lambda c, o, m: abs(c.mean() - o.mean())).message
    assert "ZeroDivisionError" in wb.teach.check("08-ece", lambda c, o, m: 1 / 0).message
    assert "return a number" in wb.teach.check("08-ece", lambda c, o, m: "x").message


def test_conformal_quantile():
    def good(s, a):
        k = math.ceil((len(s) + 1) * (1 - a))
        return math.inf if k > len(s) else float(np.sort(s)[k - 1])

    assert wb.teach.check("08-conformal-quantile", good)
    assert wb.teach.check("08-conformal-quantile", wb.analyses.conformal.conformal_quantile)
    r = wb.teach.check("08-conformal-quantile", lambda s, a: np.quantile(s, 1 - a))
    assert not r and "finite-sample" in r.message
    higher = lambda s, a: np.quantile(s, min(1, math.ceil((len(s) + 1) * (1 - a)) / len(s)), method="higher")  # noqa: E731
    assert "one order statistic" in wb.teach.check("08-conformal-quantile", higher).message
    no_inf = lambda s, a: float(np.sort(s)[min(len(s), math.ceil((len(s) + 1) * (1 - a))) - 1])  # noqa: E731
    assert "float('inf')" in wb.teach.check("08-conformal-quantile", no_inf).message


def test_temperature_accuracy():
    assert wb.teach.check("08-temperature-accuracy", "no")
    assert "keeps their order" in wb.teach.check("08-temperature-accuracy", "Yes").message
    assert "not one of the choices" in wb.teach.check("08-temperature-accuracy", "maybe").message


def test_el2n():
    assert wb.teach.check("08-el2n", lambda p, y: np.linalg.norm(p - np.eye(p.shape[1])[y], axis=1))
    sq = lambda p, y: (np.linalg.norm(p - np.eye(p.shape[1])[y], axis=1)) ** 2  # noqa: E731
    assert "squared" in wb.teach.check("08-el2n", sq).message
    assert "1 - p_y" in wb.teach.check("08-el2n", lambda p, y: 1 - p[np.arange(len(y)), y]).message
    assert "shape" in wb.teach.check("08-el2n", lambda p, y: np.zeros(2)).message
    assert "returned None" in wb.teach.check("08-el2n", lambda p, y: None).message
