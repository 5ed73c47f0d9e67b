"""Notebook 04's exercises: right answers pass, typical wrong ones get their hint, never a traceback."""

from types import SimpleNamespace

import torch

import workbench as wb


def test_raw_sharper():
    assert wb.teach.check("04-raw-sharper", "twin")
    assert "relative" in wb.teach.check("04-raw-sharper", "same").message
    assert "second layer is 10x smaller" in wb.teach.check("04-raw-sharper", "Original").message
    assert "not one of the choices" in wb.teach.check("04-raw-sharper", "sgd").message


def _rows(d):
    return d.reshape(len(d), -1)


def test_filter_normalise():
    def right(d, w):
        scale = _rows(w).norm(dim=1) / _rows(d).norm(dim=1)
        return d * scale.reshape(-1, *([1] * (d.ndim - 1)))

    assert wb.teach.check("04-filter-normalise", right)
    assert "whole tensor" in wb.teach.check("04-filter-normalise", lambda d, w: d * w.norm() / d.norm()).message

    def no_divide(d, w):
        return d * _rows(w).norm(dim=1).reshape(-1, *([1] * (d.ndim - 1)))

    assert "divided by its own norm" in wb.teach.check("04-filter-normalise", no_divide).message

    def unit(d, w):
        return d / _rows(d).norm(dim=1).reshape(-1, *([1] * (d.ndim - 1)))

    assert "norm 1" in wb.teach.check("04-filter-normalise", unit).message
    assert "columns" in wb.teach.check("04-filter-normalise", lambda d, w: d * w.norm(dim=0) / d.norm(dim=0)).message
    assert "shaped like d" in wb.teach.check("04-filter-normalise", lambda d, w: 1.0).message
    assert "raised ZeroDivisionError" in wb.teach.check("04-filter-normalise", lambda d, w: 1 / 0).message
    assert not wb.teach.check("04-filter-normalise", lambda d, w: d)


def test_flatter():
    eigs = {"SGD": SimpleNamespace(top=12.0), "SAM": SimpleNamespace(top=3.0)}
    assert wb.teach.check("04-flatter", "SGD", eigs=eigs)
    assert "which of the two" in wb.teach.check("04-flatter", "sam", eigs=eigs).message.lower()
    flipped = {"SGD": SimpleNamespace(top=2.0), "SAM": SimpleNamespace(top=3.0)}
    r = wb.teach.check("04-flatter", "SAM", eigs=flipped)
    assert r and "anecdote" in r.message
    assert "look at the table" in wb.teach.check("04-flatter", "SGD", eigs=flipped).message
    assert "pass the measured eigenvalues" in wb.teach.check("04-flatter", "SGD").message
    assert "dict" in wb.teach.check("04-flatter", "SGD", eigs=[1, 2]).message


def test_barrier():
    def right(ts, loss):
        l0, l1 = loss[ts == 0], loss[ts == 1]
        inside = (ts >= 0) & (ts <= 1)
        return float((loss - ((1 - ts) * l0 + ts * l1))[inside].max())

    assert wb.teach.check("04-barrier", right)

    def everywhere(ts, loss):
        l0, l1 = loss[ts == 0], loss[ts == 1]
        return float((loss - ((1 - ts) * l0 + ts * l1)).max())

    assert "0 <= t <= 1 only" in wb.teach.check("04-barrier", everywhere).message

    def vs_max_end(ts, loss):
        inside = (ts >= 0) & (ts <= 1)
        return float(loss[inside].max() - torch.maximum(loss[ts == 0], loss[ts == 1]))

    assert "higher end value" in wb.teach.check("04-barrier", vs_max_end).message
    assert "number" in wb.teach.check("04-barrier", lambda ts, loss: "high").message
    assert not wb.teach.check("04-barrier", lambda ts, loss: 0.0)
    assert len(wb.teach.exercises("04")) == 4
