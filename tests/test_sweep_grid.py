"""Grids, run identity, resume and per-trial failures on the sequential backend (no Ray needed)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import workbench as wb
from workbench.runs import RunStore
from workbench.runs.trials import fingerprint

make_model = functools.partial(wb.models.MLP, 2, (8,), 2)


@pytest.fixture(scope="module")
def data():
    return wb.data.load("moons", n=300, seed=0).split(0.8, seed=0)


def test_grid_crosses_methods_hyperparameters_and_seeds(data, tmp_path):
    train, test = data
    store = RunStore(tmp_path)
    res = wb.runs.grid(make_model, {"ce": wb.methods.CrossEntropy}, train,
                       params={"lr": [1e-3, 1e-2], "method.label_smoothing": [0.0, 0.1]},
                       seeds=[0, 1], val=test, steps=5, batch_size=32, store=store, progress=False)
    assert len(res.runs) == 8 and not res.failures
    assert res.runs.columns[:8].tolist() == ["run_id", "name", "method", "lr", "method.label_smoothing", "seed",
                                             "status", "steps"]
    assert res.runs["name"].iloc[0] == "ce-lr0.001-label_smoothing0.0"
    assert len(res.summary) == 4 and (res.summary[("n", "")] == 2).all()
    for rid, (_, row) in zip(res.run_ids, res.runs.iterrows()):
        cfg = store.config(rid)
        assert cfg["method"]["config"]["label_smoothing"] == row["method.label_smoothing"]
        assert cfg["fit"]["lr"] == row["lr"] and cfg["fit"]["seed"] == row["seed"]
        assert store.get(rid).tags["params"]["lr"] == row["lr"]
    # the same seed and settings by hand give the same run
    m = make_model(seed=1)
    h = wb.fit(m, wb.methods.CrossEntropy(label_smoothing=0.1), train, steps=5, batch_size=32, lr=1e-2, val=test,
               seed=1, progress=False)
    i = res.runs.index[(res.runs["lr"] == 1e-2) & (res.runs["method.label_smoothing"] == 0.1) & (res.runs["seed"] == 1)][0]
    assert res.histories[i].records == h.records
    assert store.check()["damaged"] == [] and store.check()["runs"] == 8


def test_grid_argument_errors(data):
    train, _ = data
    with pytest.raises(TypeError, match="non-empty list"):
        wb.runs.grid(make_model, ["cross_entropy"], train, params={"lr": 1e-3}, save=False)
    with pytest.raises(ValueError, match="both as fixed keywords and in params"):
        wb.runs.grid(make_model, ["cross_entropy"], train, params={"lr": [1e-3]}, lr=1e-2, save=False)
    with pytest.raises(ValueError, match="method names must be"):
        wb.runs.grid(make_model, {"bad name!": wb.methods.CrossEntropy}, train, save=False)
    with pytest.raises(TypeError, match="fresh method per seed"):
        wb.runs.grid(make_model, {"ce": wb.methods.CrossEntropy()}, train, save=False)
    with pytest.raises(ValueError, match="either map_fn"):
        wb.runs.sweep(make_model, "cross_entropy", train, save=False, backend="ray", map_fn=map)


def test_resume_reuses_stored_runs_and_failures_keep_the_rest(data, tmp_path):
    train, test = data
    calls = []

    def metrics(model, method):
        calls.append(model.config["seed"])
        if model.config["seed"] == 1 and fail["now"]:
            raise RuntimeError("flaky trial")
        return {"w": float(model.fc.weight.detach().abs().sum())}

    fail = {"now": True}
    store = RunStore(tmp_path)
    kw = dict(seeds=[0, 1, 2], val=test, steps=5, batch_size=32, store=store, metrics_fn=metrics, progress=False)
    with pytest.warns(UserWarning, match="1 of 3 trials failed"):
        first = wb.runs.sweep(make_model, wb.methods.CrossEntropy, train, **kw)
    assert first.runs["status"].tolist() == ["completed", "failed", "completed"] and len(store) == 2
    assert "RuntimeError: flaky trial" in first.failures["crossentropy-sweep seed=1"]
    fail["now"] = False
    calls.clear()
    again = wb.runs.sweep(make_model, wb.methods.CrossEntropy, train, **kw)
    assert calls == [1]  # only the failed trial ran again
    assert again.resumed == (first.run_ids[0], first.run_ids[2]) and not again.failures
    assert again.runs["w"].iloc[0] == first.runs["w"].iloc[0] and len(store) == 3 and again.group == first.group
    calls.clear()
    fresh = wb.runs.sweep(make_model, wb.methods.CrossEntropy, train, resume=False, **kw)
    assert calls == [0, 1, 2] and len(store) == 6
    assert np.array_equal(fresh.runs["val_acc"], again.runs["val_acc"])
    with pytest.raises(RuntimeError, match="every trial of the sweep failed"):
        wb.runs.sweep(make_model, wb.methods.CrossEntropy, train, seeds=[7], steps=2, save=False, progress=False,
                      metrics_fn=lambda m, meth: 1 / 0)


def test_run_identity_follows_data_contents_not_names(data):
    train, test = data
    renamed = wb.data.Dataset(train.x.clone(), train.y.clone(), name="other-name")
    assert fingerprint(renamed) == fingerprint(train) and fingerprint(train) != fingerprint(test)
    assert fingerprint(None) is None
