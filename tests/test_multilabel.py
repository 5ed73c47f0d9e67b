"""Multi-label data: (N, C) 0/1 labels in Dataset, the multi_digits built-in set, ASL training
and its metrics (mAP against scikit-learn)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.data import Dataset
from workbench.methods.asl import average_precision, multilabel_metrics


def test_multi_digits_uses_every_digit_image_once():
    ds = wb.data.load("multi_digits", seed=0)
    assert ds.multilabel and ds.n_classes == 10 and ds.y.dtype == torch.int64 and ds.shape == (1, 8, 16)
    assert int(ds.meta["n_digits"].sum()) == 1797                  # no image reused, none left out
    pos = ds.y.sum(1)
    assert set(pos.tolist()) <= {1, 2} and bool((pos <= ds.meta["n_digits"]).all())
    # a one-digit image has one blank half
    one = ds.meta["n_digits"] == 1
    halves = ds.x[one].reshape(-1, 8, 2, 8).abs().sum((1, 3))    # (n, 2)
    assert bool(((halves == 0).sum(1) == 1).all())
    assert torch.equal(wb.data.load("multi_digits", seed=0).x, ds.x)
    assert not torch.equal(wb.data.load("multi_digits", seed=1).y[:50], ds.y[:50])
    assert len(wb.data.load("multi_digits", n=100)) == 100
    assert int(wb.data.load("multi_digits", p_two=0.0).meta["n_digits"].max()) == 1
    assert "multi-label" in repr(ds)


def test_multilabel_dataset_contract():
    x = np.zeros((6, 3), dtype="float32")
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1], [0, 1, 0], [1, 1, 0], [1, 1, 0]])
    ds = Dataset.from_arrays(x, y)
    assert ds.multilabel and ds.n_classes == 3 and ds.y.shape == (6, 3)
    a, b = ds.split(0.5, seed=0)
    # stratified by label set: every set appears once on each side
    assert sorted(map(tuple, a.y.tolist())) == sorted(map(tuple, b.y.tolist()))
    assert ds[[0, 1]].y.shape == (2, 3)
    with pytest.raises(ValueError, match="0/1 indicators"):
        Dataset.from_arrays(x, y * 2)
    with pytest.raises(ValueError, match="pass a flat"):
        Dataset.from_arrays(x, y[:, :1])
    with pytest.raises(ValueError, match="one name per column"):
        Dataset.from_arrays(x, y, classes=["a", "b"])
    with pytest.raises(ValueError, match="multi-label"):
        wb.data.ood_split(ds, ood_classes=[0])
    with pytest.raises(ValueError, match="single-label and multi-label"):
        wb.data.concat([ds, Dataset.from_arrays(x, np.arange(6) % 3)])
    with pytest.raises(ValueError, match="multi-label"):
        wb.fit(wb.models.MLP(3, (), 3, seed=0), wb.methods.FocalLoss(), ds, steps=1, progress=False)


def test_average_precision_matches_sklearn_with_ties():
    from sklearn.metrics import average_precision_score

    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 6, (80, 4), generator=g).float()    # many ties
    y = torch.randint(0, 2, (80, 4), generator=g)
    y[:, 3] = 0
    ap = average_precision(scores, y)
    for j in range(3):
        assert float(ap[j]) == pytest.approx(average_precision_score(y[:, j].numpy(), scores[:, j].numpy()), abs=1e-12)
    assert torch.isnan(ap[3])
    m = multilabel_metrics(scores - 2.5, y)
    assert m["map"] == pytest.approx(float(ap[:3].mean()), abs=1e-12)
    pred = scores > 2.5
    assert m["subset_acc"] == pytest.approx(float((pred == y.bool()).all(1).float().mean()))
    assert m["label_acc"] == pytest.approx(float((pred == y.bool()).float().mean()))


def test_asl_trains_multi_digits_and_reports_map():
    train, test = wb.data.load("multi_digits", seed=0).split(0.8, seed=0)
    model = wb.models.MLP(128, (64,), 10, seed=0)
    method = wb.methods.AsymmetricLoss()
    before = method.evaluate(model, test)
    hist = wb.fit(model, method, train, steps=200, lr=3e-3, batch_size=64, val=test, progress=False)
    after = hist.evals[-1]
    assert {"loss", "map", "subset_acc", "label_acc"} <= set(after)
    assert before["map"] < 0.5 < 0.85 < after["map"]
    assert after["loss"] < before["loss"]
    assert method.loss_form is not None and wb.methods.AsymmetricLoss(reduction="sum").loss_form is None
    # "sum" is the official total over batch and classes
    x, y = test.x[:8], test.y[:8]
    s = wb.methods.AsymmetricLoss(reduction="sum").loss_from_outputs(model(x), y)
    torch.testing.assert_close(s, 8 * method.loss_from_outputs(model(x), y))
