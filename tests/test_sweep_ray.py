"""Sweeps on Ray (issue 14): Ray tasks and a Ray Tune grid give the sequential results, resume
skips finished runs, a failing trial leaves the others saved, only the driver writes the store.

One local Ray cluster (2 CPUs) serves the whole module: starting one costs ~4 s here, and each
worker imports torch once. Tiny models, a few dozen steps.
"""

from __future__ import annotations

import functools
import sys

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.runs import RunStore

ray = pytest.importorskip("ray")  # the scale extra; CI installs it through dev

STEPS = 30
make_model = functools.partial(wb.models.MLP, 2, (16,), 2)


@pytest.fixture(scope="module")
def cluster():
    import ray.cloudpickle

    from workbench.runs.backends import start_ray

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    start_ray(2, include_dashboard=False, log_to_driver=False)  # tried twice: a busy box can be slow
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def data():
    ds = wb.data.load("moons", n=400, seed=0)
    return ds.split(0.8, seed=0)


def _test_acc(model, method):
    return {"extra": float(model.fc.bias.detach().abs().sum())}


def _cursed(model, method):
    if model.config["seed"] == 2:
        raise ValueError("seed 2 is cursed")
    return {"extra": 1.0}


def _configs(store: RunStore, ids) -> list[dict]:
    out = []
    for rid in ids:
        cfg = store.config(rid)
        out.append({k: cfg[k] for k in ("name", "model", "method", "fit", "metrics", "status", "steps")})
    return out


def _states_equal(store_a, ids_a, store_b, ids_b) -> bool:
    for a, b in zip(ids_a, ids_b):
        ma, mb = store_a.load(a)[0].state_dict(), store_b.load(b)[0].state_dict()
        if any(not torch.equal(ma[k], mb[k]) for k in ma):
            return False
    return True


def test_ray_sweep_equals_the_sequential_sweep(cluster, data, tmp_path):
    train, test = data
    kw = dict(seeds=[0, 1, 2, 3], val=test, steps=STEPS, batch_size=64, metrics_fn=_test_acc, name="ce", progress=False)
    seq_store, ray_store = RunStore(tmp_path / "seq"), RunStore(tmp_path / "ray")
    seq = wb.runs.sweep(make_model, wb.methods.CrossEntropy, train, store=seq_store, **kw)
    par = wb.runs.sweep(make_model, wb.methods.CrossEntropy, train, store=ray_store, backend="ray", **kw)
    assert ray.is_initialized()  # the cluster the user started is left running
    assert par.backend == "ray" and not par.failures and par.runs["seed"].tolist() == [0, 1, 2, 3]
    assert _configs(seq_store, seq.run_ids) == _configs(ray_store, par.run_ids)
    metrics = [c for c in seq.runs.columns if c.startswith(("val_", "train_", "extra"))]
    assert np.array_equal(seq.runs[metrics].to_numpy(), par.runs[metrics].to_numpy())
    assert _states_equal(seq_store, seq.run_ids, ray_store, par.run_ids)
    assert [h.records for h in seq.histories] == [h.records for h in par.histories]
    for st in (seq_store, ray_store):
        assert st.check() == {"integrity": "ok", "runs": 4, "damaged": [], "unindexed": []}


def test_resume_skips_finished_runs(cluster, data, tmp_path):
    train, test = data
    store = RunStore(tmp_path)
    kw = dict(seeds=[0, 1, 2], val=test, steps=STEPS, batch_size=64, store=store, backend="ray", progress=False)
    first = wb.runs.sweep(make_model, wb.methods.CrossEntropy, train, **kw)
    store.delete(first.run_ids[1])  # as if seed 1 had not finished
    again = wb.runs.sweep(make_model, wb.methods.CrossEntropy, train, **kw)
    assert again.resumed == (first.run_ids[0], first.run_ids[2])
    assert again.runs["resumed"].tolist() == [True, False, True]
    assert again.run_ids[0] == first.run_ids[0] and again.run_ids[1] != first.run_ids[1]
    assert again.group == first.group and len(store) == 3
    assert np.allclose(again.runs["val_acc"], first.runs["val_acc"])  # seed 1 retrained: the same numbers
    # a change to the recipe is a new run, not a resumed one
    other = wb.runs.sweep(make_model, wb.methods.CrossEntropy, train, **{**kw, "seeds": [0]}, lr=3e-3)
    assert other.resumed == () and len(store) == 4
    assert store.get(again.run_ids[0]).tags["run_key"] != store.get(other.run_ids[0]).tags["run_key"]
    assert store.check()["damaged"] == [] and store.check()["unindexed"] == []


def test_a_failing_trial_leaves_the_others_saved(cluster, data, tmp_path):
    train, test = data
    store = RunStore(tmp_path)
    with pytest.warns(UserWarning, match="1 of 4 trials failed"):
        res = wb.runs.sweep(make_model, wb.methods.CrossEntropy, train, seeds=[0, 1, 2, 3], val=test, steps=STEPS,
                            batch_size=64, store=store, backend="ray", metrics_fn=_cursed, progress=False)
    assert res.runs["status"].tolist() == ["completed", "completed", "failed", "completed"]
    assert res.run_ids[2] is None and res.histories[2] is None and len(store) == 3
    (label, tb), = res.failures.items()
    assert "seed=2" in label and "ValueError: seed 2 is cursed" in tb and "_cursed" in tb  # the worker's traceback
    assert "FAILED" in repr(res) and res.summary.loc["val_acc", "n"] == 3
    assert store.check() == {"integrity": "ok", "runs": 3, "damaged": [], "unindexed": []}


def _cursed_lr(model, method):
    if model.fc.weight.detach().abs().max() > 0.9:  # only the largest learning rate gets there
        raise ValueError("weights too large")
    return {"extra": 1.0}


def test_tune_grid_equals_the_sequential_grid(cluster, data, tmp_path):
    train, test = data
    methods = {"ce": wb.methods.CrossEntropy}
    kw = dict(params={"lr": [1e-3, 1e-2, 0.5]}, seeds=[0], val=test, steps=STEPS, batch_size=64, progress=False,
              metrics_fn=_cursed_lr)
    with pytest.warns(UserWarning, match="1 of 3 trials failed"):
        seq = wb.runs.grid(make_model, methods, train, store=tmp_path / "seq", **kw)
    with pytest.warns(UserWarning, match="1 of 3 trials failed"):
        tun = wb.runs.grid(make_model, methods, train, store=tmp_path / "tune", backend="tune", **kw)
    assert tun.backend == "tune" and len(tun.runs) == 3
    assert tun.runs["name"].tolist() == ["ce-lr0.001", "ce-lr0.01", "ce-lr0.5"]
    assert tun.runs["status"].tolist() == seq.runs["status"].tolist() == ["completed", "completed", "failed"]
    assert "ValueError: weights too large" in tun.failures["ce-lr0.5 seed=0"]
    assert np.array_equal(seq.runs[["val_acc", "val_loss"]].to_numpy()[:2], tun.runs[["val_acc", "val_loss"]].to_numpy()[:2])
    assert list(tun.summary.index) == ["ce-lr0.001", "ce-lr0.01"]
    st = RunStore(tmp_path / "tune")
    assert st.check() == {"integrity": "ok", "runs": 2, "damaged": [], "unindexed": []}
    assert {r.tags["params"]["lr"] for r in st.runs()} == {1e-3, 1e-2}


def test_ray_backend_without_ray_names_the_extra(monkeypatch, data):
    train, _ = data
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r'pip install -e "\.\[scale\]"'):
        wb.runs.sweep(make_model, wb.methods.CrossEntropy, train, seeds=[0], steps=2, save=False, backend="ray")
    with pytest.raises(ValueError, match="unknown backend"):
        wb.runs.sweep(make_model, wb.methods.CrossEntropy, train, seeds=[0], steps=2, save=False, backend="dask")
