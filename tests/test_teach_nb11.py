"""Notebook 11's exercises: right answers pass, typical wrong ones get their hint, never a traceback."""

import importlib

import pytest
import torch
import torch.nn.functional as F

import workbench as wb
from workbench.teach import _core


@pytest.fixture(autouse=True)
def _registered():
    """tests/test_teach.py swaps the registry for a private one while it calls ``_load_all``, which
    imports this notebook's module into the swapped registry; when that ran first, register again."""
    module = importlib.import_module("workbench.teach.nb11")  # registers on a first import
    if "11-fixmatch-loss" not in _core._REGISTRY:
        importlib.reload(module)


def _fixmatch(weak, strong, tau):
    q = weak.softmax(-1)
    conf, pl = q.max(-1)
    return ((conf >= tau).float() * F.cross_entropy(strong, pl, reduction="none")).mean()


def test_fixmatch_loss():
    assert wb.teach.check("11-fixmatch-loss", _fixmatch)

    def per_kept(weak, strong, tau):
        conf, pl = weak.softmax(-1).max(-1)
        m = conf >= tau
        return F.cross_entropy(strong[m], pl[m])

    assert "confident images only" in wb.teach.check("11-fixmatch-loss", per_kept).message
    assert "must be masked" in wb.teach.check("11-fixmatch-loss", lambda w, s, t: F.cross_entropy(s, w.argmax(1))).message
    assert "strong" in wb.teach.check("11-fixmatch-loss", lambda w, s, t: F.cross_entropy(w, w.argmax(1))).message
    assert "ZeroDivisionError" in wb.teach.check("11-fixmatch-loss", lambda w, s, t: 1 / 0).message
    assert "scalar" in wb.teach.check("11-fixmatch-loss", lambda w, s, t: 0.5).message


def test_taid_target():
    assert wb.teach.check("11-taid-target", lambda zs, zt, t: ((1 - t) * zs + t * zt).softmax(-1))
    r = wb.teach.check("11-taid-target", lambda zs, zt, t: (1 - t) * zs.softmax(-1) + t * zt.softmax(-1))
    assert not r and "mixes the probabilities" in r.message
    assert "swapped" in wb.teach.check("11-taid-target", lambda zs, zt, t: (t * zs + (1 - t) * zt).softmax(-1)).message
    assert "shape" in wb.teach.check("11-taid-target", lambda zs, zt, t: torch.zeros(3)).message


def test_dm_loss():
    good = lambda r, s: sum(((a.mean(0) - b.mean(0)) ** 2).sum() for a, b in zip(r, s))  # noqa: E731
    assert wb.teach.check("11-dm-loss", good)
    assert "averaged" in wb.teach.check("11-dm-loss", lambda r, s: good(r, s) / 2).message
    dist = lambda r, s: sum((a.mean(0) - b.mean(0)).norm() for a, b in zip(r, s))  # noqa: E731
    assert "squares it" in wb.teach.check("11-dm-loss", dist).message
    assert not wb.teach.check("11-dm-loss", lambda r, s: torch.tensor(0.0))


def test_threshold():
    assert wb.teach.check("11-threshold", "Fewer, more accurate")
    assert "shrinks" in wb.teach.check("11-threshold", "more, less accurate").message
    assert "not one of the choices" in wb.teach.check("11-threshold", "it depends").message
