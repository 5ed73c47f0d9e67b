"""Notebook 06's exercises: right answers pass, typical wrong ones get their hint, never a traceback."""

import statistics

import numpy as np

import workbench as wb


def test_fair_metric():
    assert wb.teach.check("06-fair-metric", "knn_acc")
    assert "untrained head" in wb.teach.check("06-fair-metric", "val_acc").message
    assert "one scale" in wb.teach.check("06-fair-metric", "val loss").message
    assert "not one of the choices" in wb.teach.check("06-fair-metric", "acc").message


def test_std():
    assert wb.teach.check("06-std", statistics.stdev)
    assert wb.teach.check("06-std", lambda v: np.std(v, ddof=1))
    assert "population" in wb.teach.check("06-std", np.std).message
    assert "square root" in wb.teach.check("06-std", statistics.variance).message
    assert "standard error" in wb.teach.check("06-std", lambda v: np.std(v, ddof=1) / len(v) ** 0.5).message
    assert "raised" in wb.teach.check("06-std", lambda v: v.std()).message
    assert "expected value" in wb.teach.check("06-std", lambda v: 0.0).message


def test_resumed():
    assert wb.teach.check("06-resumed", 2)
    assert wb.teach.check("06-resumed", 3, seeds=[0, 1], extra_seeds=[2, 3, 4])
    assert "already in the store" in wb.teach.check("06-resumed", 3).message
    assert "exist already" in wb.teach.check("06-resumed", 5).message
    assert "number" in wb.teach.check("06-resumed", "two").message
    assert len(wb.teach.exercises("06")) == 3
