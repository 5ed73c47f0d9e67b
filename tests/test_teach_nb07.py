"""Notebook 07's exercises: right answers pass, typical wrong ones get their hint, never a traceback."""

import workbench as wb


def test_flatten():
    shape = (5, 16, 8, 8)
    assert wb.teach.check("07-flatten", 1024, shape=shape)
    assert "pool='avg'" in wb.teach.check("07-flatten", 16, shape=shape).message
    assert "positions of one channel" in wb.teach.check("07-flatten", 64, shape=shape).message
    assert "whole batch" in wb.teach.check("07-flatten", 5 * 1024, shape=shape).message
    assert "number" in wb.teach.check("07-flatten", "1024", shape=shape).message
    assert "pass the maps' shape" in wb.teach.check("07-flatten", 1024).message


def test_frozen_mode():
    assert wb.teach.check("07-frozen-mode", "eval")
    r = wb.teach.check("07-frozen-mode", "Train")
    assert not r and "own flag" in r.message
    assert "not one of the choices" in wb.teach.check("07-frozen-mode", "frozen").message


def test_same_auroc():
    assert wb.teach.check("07-same-auroc", "same")
    assert "exactly the features" in wb.teach.check("07-same-auroc", "lower").message
    assert not wb.teach.check("07-same-auroc", "higher")


def test_class_index():
    assert wb.teach.check("07-class-index", 1)
    assert "order the folders were written" in wb.teach.check("07-class-index", 2).message
    assert not wb.teach.check("07-class-index", 0)
    assert "number" in wb.teach.check("07-class-index", [1]).message
    assert len(wb.teach.exercises("07")) == 4
