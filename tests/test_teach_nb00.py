"""Notebook 00's exercises: right answers pass, typical wrong ones get their hint, never a traceback."""

import torch

import workbench as wb
from workbench.analyses.classification import Predictions


def _pred():
    # true 3 predicted as 8 twice, true 8 predicted as 1 once; the rest right
    y = torch.tensor([3, 3, 3, 8, 8, 1, 0, 3])
    p = torch.tensor([3, 8, 8, 1, 8, 1, 0, 3])
    return Predictions(logits=torch.nn.functional.one_hot(p, 10).float(), pred=p, y=y)


def test_feature_dim():
    assert wb.teach.check("00-feature-dim", 128, hidden=(128, 128))
    assert wb.teach.check("00-feature-dim", 32, hidden=(64, 32))
    assert "pixels" in wb.teach.check("00-feature-dim", 64, hidden=(128, 128)).message
    assert "class scores" in wb.teach.check("00-feature-dim", 10, hidden=(128, 128)).message
    assert "every hidden layer" in wb.teach.check("00-feature-dim", 256, hidden=(128, 128)).message
    assert "pass the hidden widths" in wb.teach.check("00-feature-dim", 128).message
    assert "number" in wb.teach.check("00-feature-dim", "128", hidden=(128, 128)).message


def test_accuracy():
    pred = _pred()
    r = wb.teach.check("00-accuracy", lambda p, y: (p == y).float().mean(), pred=pred)
    assert r and "62.5%" in r.message  # 5 of the 8 right
    assert wb.teach.check("00-accuracy", lambda p, y: (p == y).float().mean().item())
    assert "percentage" in wb.teach.check("00-accuracy", lambda p, y: 100 * (p == y).float().mean()).message
    assert "error rate" in wb.teach.check("00-accuracy", lambda p, y: (p != y).float().mean()).message
    assert "counts the right answers" in wb.teach.check("00-accuracy", lambda p, y: (p == y).sum()).message
    assert "put your answer" in wb.teach.check("00-accuracy", None).message

    def unfinished(pred, y):
        return None

    assert "one number" in wb.teach.check("00-accuracy", unfinished).message

    def broken(pred, y):
        return pred.nope

    assert "raised AttributeError" in wb.teach.check("00-accuracy", broken).message
    assert "function" in wb.teach.check("00-accuracy", 0.9).message


def test_confusion():
    pred = _pred()
    r = wb.teach.check("00-confusion", (3, 8), pred=pred)
    assert r and "2 test images of the digit 3" in r.message
    assert "wrong way round" in wb.teach.check("00-confusion", (8, 3), pred=pred).message
    assert "diagonal" in wb.teach.check("00-confusion", (3, 3), pred=pred).message
    assert "holds 1" in wb.teach.check("00-confusion", (8, 1), pred=pred).message
    assert "from 0 to 9" in wb.teach.check("00-confusion", (12, 3), pred=pred).message
    assert "pair" in wb.teach.check("00-confusion", 38, pred=pred).message
    assert "pass the predictions" in wb.teach.check("00-confusion", (3, 8)).message
    assert len(wb.teach.exercises("00")) == 3
