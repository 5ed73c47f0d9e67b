"""Run store: round trips, deletion, damaged files, crash safety, concurrency, sweeps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import workbench as wb
from workbench._config import describe
from workbench.runs import CorruptRunError, RunNotFoundError, RunStore
from workbench.training import Snapshots

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data():
    ds = wb.data.load("gaussians8", n=256, seed=0)
    return ds.split(0.75, seed=0)


def _fit(data, steps=12, seed=0, snapshots=False):
    train, test = data
    model = wb.models.MLP(2, (16,), 8, seed=seed)
    method = wb.methods.CrossEntropy(label_smoothing=0.1)
    cbs = [Snapshots(every=4, embed=test)] if snapshots else []
    hist = wb.fit(model, method, train, steps=steps, batch_size=64, val=test, eval_every=6,
                  seed=seed, progress=False, callbacks=cbs)
    return model, method, hist


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_round_trip_weights_history_config_snapshots(tmp_path, data):
    store = RunStore(tmp_path / "runs")
    model, method, hist = _fit(data, snapshots=True)
    rid = store.save(model, method, hist, name="ce-toy", data=data[0], metrics={"test_acc": 0.5},
                     tags={"note": "hello"})
    m2, meth2, h2 = store.load(rid)
    assert type(m2) is type(model) and type(meth2) is type(method)
    assert _same_state(m2, model) and _same_state(meth2, method)
    # the same JSON config (tuples come back as lists: JSON has no tuples)
    assert describe(m2) == describe(model) and describe(meth2) == describe(method)
    assert h2.to_dict() == hist.to_dict()
    s1, s2 = hist.snapshots, h2.snapshots
    assert s2.steps == s1.steps and len(s2.params) == len(s1.params)
    for p1, p2 in zip(s1.params, s2.params):
        assert list(p1) == list(p2) and all(torch.equal(p1[k], p2[k]) for k in p1)
    assert all(torch.equal(a, b) for a, b in zip(s1.embeddings, s2.embeddings))
    # the model is usable and predicts exactly like the original
    x = data[1].x
    assert torch.equal(m2(x), model(x))
    cfg = store.config(rid)
    assert cfg["model"]["config"]["hidden"] == [16] and cfg["fit"]["steps"] == 12
    assert cfg["method"] == {"__class__": "CrossEntropy", "config": {"label_smoothing": 0.1}}


def test_list_and_get(tmp_path, data):
    store = RunStore(tmp_path / "runs")
    assert store.list().empty and not (tmp_path / "runs").exists()  # reading creates nothing
    model, method, hist = _fit(data)
    rid = store.save(model, method, hist, name="a", metrics={"test_acc": 0.25})
    rid2 = store.save(model, method, hist)
    df = store.list()
    assert list(df["id"]) == [rid, rid2]
    assert list(df["name"]) == ["a", "crossentropy-mlp"]
    for col in ("method", "model", "created", "status", "steps", "val_acc", "train_loss", "test_acc"):
        assert col in df.columns
    assert df.loc[0, "method"] == "CrossEntropy" and df.loc[0, "steps"] == 12
    assert df.loc[0, "val_acc"] == pytest.approx(hist.evals[-1]["acc"])
    assert df.loc[0, "train_loss"] == pytest.approx(np.mean(hist.loss[-10:]))
    assert df.loc[0, "test_acc"] == 0.25 and np.isnan(df.loc[1, "test_acc"])
    assert store.list(name="a")["id"].tolist() == [rid]
    run = store.get(rid[:5])  # a unique prefix is enough
    assert run.id == rid and run.metrics["test_acc"] == 0.25 and "Run(" in repr(run)
    assert len(store) == 2 and rid in store and "nope" not in store


def test_delete_removes_files_and_row(tmp_path, data):
    store = RunStore(tmp_path)
    rid = store.save(*_fit(data))
    folder = store.path(rid)
    assert (folder / "model.safetensors").exists()
    store.delete(rid)
    assert not folder.exists() and store.list().empty
    assert not any((tmp_path / "tmp").iterdir())
    with pytest.raises(RunNotFoundError, match=rid):
        store.load(rid)


def test_missing_or_damaged_files_name_the_run(tmp_path, data):
    store = RunStore(tmp_path)
    rid = store.save(*_fit(data), name="broken-one")
    ckpt = store.path(rid) / "model.safetensors"
    raw = ckpt.read_bytes()
    # a flipped byte inside the tensor data: safetensors would still read it, the hash catches it
    bad = bytearray(raw)
    bad[-5] ^= 0xFF
    ckpt.write_bytes(bytes(bad))
    with pytest.raises(CorruptRunError, match=rf"run {rid} \('broken-one'\).*model.safetensors.*damaged"):
        store.load(rid)
    # truncated file, hash check off: the safetensors reader fails, still naming the run
    ckpt.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptRunError, match=rf"run {rid} .*model.safetensors"):
        store.load(rid, verify=False)
    ckpt.unlink()
    with pytest.raises(CorruptRunError, match=rf"run {rid} \('broken-one'\).*model.safetensors is missing"):
        store.load(rid)
    (store.path(rid) / "history.json").write_text("{not json")
    with pytest.raises(CorruptRunError, match=rid):
        store.history(rid)
    report = store.check()
    assert report["integrity"] == "ok" and len(report["damaged"]) == 2
    store.delete(rid)  # a damaged run can still be deleted
    assert store.list().empty


def test_died_mid_save_leaves_no_visible_run(tmp_path, data):
    class Dies(RunStore):
        def _before_index_hook(self, final):
            raise KeyboardInterrupt  # e.g. the kernel is interrupted between rename and index

    store = Dies(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        store.save(*_fit(data))
    assert store.list().empty
    assert list((tmp_path / "runs").iterdir()) == [] and list((tmp_path / "tmp").iterdir()) == []


def test_killed_process_mid_save(tmp_path):
    # a real process dying (os._exit) after its folder is in place but before the index row
    code = textwrap.dedent(f"""
        import os, workbench as wb
        from workbench.runs import RunStore
        class Dies(RunStore):
            def _before_index_hook(self, final):
                os._exit(3)
        ds = wb.data.load("moons", n=64, seed=0)
        m = wb.models.MLP(2, (4,), 2, seed=0); meth = wb.methods.CrossEntropy()
        h = wb.fit(m, meth, ds, steps=2, batch_size=32, progress=False)
        Dies({str(tmp_path)!r}).save(m, meth, h)
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    store = RunStore(tmp_path)
    assert store.list().empty
    report = store.check()
    assert report["runs"] == 0 and len(report["unindexed"]) == 1
    assert store.clean(older_than=3600) == []  # young leftovers might be saves in flight
    removed = store.clean(older_than=0)
    assert len(removed) == 1 and store.check()["unindexed"] == []


def test_two_processes_saving_at_once(tmp_path):
    go = tmp_path / "go"
    code = textwrap.dedent(f"""
        import sys, time, pathlib, workbench as wb
        from workbench.runs import RunStore
        who = sys.argv[1]
        ds = wb.data.load("moons", n=64, seed=0)
        store = RunStore({str(tmp_path / "store")!r})
        while not pathlib.Path({str(go)!r}).exists():
            time.sleep(0.01)
        for i in range(4):
            m = wb.models.MLP(2, (4,), 2, seed=i); meth = wb.methods.CrossEntropy()
            h = wb.fit(m, meth, ds, steps=2, batch_size=32, seed=i, progress=False)
            store.save(m, meth, h, name=f"{{who}}-{{i}}")
            store.list()
        print("done", who)
    """)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-c", code, who], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for who in ("p", "q")]
    go.touch()
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    store = RunStore(tmp_path / "store")
    df = store.list()
    assert sorted(df["name"]) == sorted([f"{w}-{i}" for w in "pq" for i in range(4)])
    assert df["id"].is_unique
    report = store.check()
    assert report == {"integrity": "ok", "runs": 8, "damaged": [], "unindexed": []}
    for rid in df["id"]:
        model, _, hist = store.load(rid)
        assert hist.last_step == 2
    assert not any((tmp_path / "store" / "tmp").iterdir())


def test_artifacts_round_trip(tmp_path, data):
    store = RunStore(tmp_path)
    model, method, hist = _fit(data)
    preds = wb.analyses.predict(model, data[1])
    grid = {"alphas": torch.linspace(-1, 1, 5), "loss": np.arange(25.0).reshape(5, 5), "span": 1.0,
            "note": "dict with arrays", "pair": (1, 2)}
    rid = store.save(model, method, hist, artifacts={"preds": preds})
    store.attach(rid, "grid", grid)
    run = store.get(rid)
    assert run.artifacts == ("grid", "preds")
    p2 = store.artifact(rid, "preds")
    assert type(p2) is type(preds) and torch.equal(p2.logits, preds.logits) and torch.equal(p2.y, preds.y)
    g2 = store.artifact(rid, "grid")
    assert torch.equal(g2["alphas"], grid["alphas"]) and np.array_equal(g2["loss"], grid["loss"])
    assert g2["span"] == 1.0 and g2["pair"] == (1, 2)
    store.attach(rid, "grid", {"v": torch.ones(2)})  # replaces
    assert set(store.artifact(rid, "grid")) == {"v"}
    with pytest.raises(KeyError, match="has no artifact 'nope'.*grid"):
        store.artifact(rid, "nope")
    proj = wb.analyses.project(wb.analyses.embed(model, data[1]), "pca")
    with pytest.raises(TypeError, match="estimator.*PCA.*without pickle"):
        store.attach(rid, "proj", proj)
    assert store.get(rid).artifacts == ("grid", "preds")


def test_bad_input_errors(tmp_path, data):
    store = RunStore(tmp_path)
    model, method, hist = _fit(data)
    with pytest.raises(ValueError, match="name must be"):
        store.save(model, method, hist, name="../escape")
    with pytest.raises(TypeError, match="History returned by wb.fit"):
        store.save(model, method, {"loss": []})
    with pytest.raises(TypeError, match="workbench method"):
        store.save(model, torch.nn.Linear(2, 2), hist)
    with pytest.raises(TypeError, match="metric 'x' must be a number"):
        store.save(model, method, hist, metrics={"x": "high"})
    with pytest.raises(TypeError, match="does not record its constructor"):
        store.save(torch.nn.Linear(2, 2), method, hist)
    with pytest.raises(RunNotFoundError, match="store .* is empty"):
        store.load("deadbeef")
    rid = store.save(model, method, hist)
    with pytest.raises(RunNotFoundError, match=f"recent runs: {rid}"):
        store.load("deadbeef")
    with pytest.raises(TypeError, match="run id string"):
        store.load(3)
    with pytest.raises(ValueError, match="snapshots at steps|no parameter snapshots"):
        store.load(rid, step=4)
    with pytest.raises(TypeError, match="RunStore, a folder path or None"):
        wb.runs.list(store=3)


def test_default_store_env_and_module_functions(tmp_path, data, monkeypatch):
    monkeypatch.setenv("WORKBENCH_RUNS", str(tmp_path / "env-store"))
    wb.runs.set_default_root(None)
    assert wb.runs.default_store().root == (tmp_path / "env-store").resolve()
    model, method, hist = _fit(data)
    rid = wb.runs.save(model, method, hist, name="env")
    assert (tmp_path / "env-store" / "runs" / rid).is_dir()
    assert wb.runs.list()["id"].tolist() == [rid]
    m2, _, h2 = wb.runs.load(rid)
    assert _same_state(m2, model) and h2.to_dict() == hist.to_dict()
    try:
        wb.runs.set_default_root(tmp_path / "other")
        assert wb.runs.list().empty
        wb.runs.save(model, method, hist, name="other")
        assert wb.runs.list(store=tmp_path / "other")["name"].tolist() == ["other"]
    finally:
        wb.runs.set_default_root(None)
    wb.runs.delete(rid)
    assert wb.runs.list().empty


def _make_model(seed):
    return wb.models.MLP(2, (8,), 8, seed=seed)


def test_sweep_local_and_summary(tmp_path, data):
    train, test = data
    store = RunStore(tmp_path)
    res = wb.runs.sweep(_make_model, wb.methods.CrossEntropy, train, seeds=[0, 1, 2], val=test,
                        steps=6, batch_size=64, store=store, name="ce-sweep",
                        metrics_fn=lambda m, meth: {"test_acc": wb.analyses.predict(m, test).accuracy})
    assert res.runs["seed"].tolist() == [0, 1, 2] and len(res.run_ids) == 3
    acc = res.runs["val_acc"].to_numpy()
    assert res.summary.loc["val_acc", "mean"] == pytest.approx(acc.mean())
    assert res.summary.loc["val_acc", "std"] == pytest.approx(acc.std(ddof=1))
    assert res.summary.loc["test_acc", "n"] == 3 and "val_acc:" in repr(res)
    df = store.list()
    assert set(df["id"]) == set(res.run_ids) and df["group"].nunique() == 1
    # each saved run is the same as training that seed by hand
    m, meth, h = wb.models.MLP(2, (8,), 8, seed=1), wb.methods.CrossEntropy(), None
    h = wb.fit(m, meth, train, steps=6, batch_size=64, val=test, seed=1, progress=False)
    m1, _, h1 = store.load(res.run_ids[1])
    assert _same_state(m1, m) and h1.records == h.records
    # a custom map function (the hook for executors and Ray) gives the same numbers
    calls = []

    def my_map(fn, items):
        calls.append(len(items))
        return [fn(x) for x in items]

    res2 = wb.runs.sweep(_make_model, "cross_entropy", train, seeds=[0, 1, 2], val=test, steps=6,
                         batch_size=64, save=False, map_fn=my_map)
    assert calls == [3] and res2.run_ids == (None, None, None)
    assert np.allclose(res2.runs["val_acc"], res.runs["val_acc"])
    # summarize over the store, grouped by name
    s = wb.runs.summarize(store=store, by="name")
    assert s.loc["ce-sweep", ("val_acc", "mean")] == pytest.approx(acc.mean())
    assert s.loc["ce-sweep", ("n", "")] == 3
    txt = wb.runs.summarize(df, fmt=True)
    assert "±" in txt.loc["ce-sweep", "val_acc"]


def test_sweep_errors(data):
    train, _ = data
    with pytest.raises(TypeError, match="fresh method per seed"):
        wb.runs.sweep(_make_model, wb.methods.CrossEntropy(), train, steps=2, save=False)
    with pytest.raises(TypeError, match="seed= keyword"):
        wb.runs.sweep(lambda: _make_model(0), wb.methods.CrossEntropy, train, steps=2, save=False)
    with pytest.raises(ValueError, match="distinct"):
        wb.runs.sweep(_make_model, wb.methods.CrossEntropy, train, seeds=[1, 1], steps=2, save=False)
    with pytest.raises(TypeError, match="map_fn must be"):
        wb.runs.sweep(_make_model, wb.methods.CrossEntropy, train, seeds=[0], steps=2, save=False, map_fn=3)
    with pytest.raises(ValueError, match="cannot group by"):
        wb.runs.summarize(wb.runs.list(store=Path("/nonexistent-store")), by="nope")


def test_store_files_are_plain_json_and_safetensors(tmp_path, data):
    store = RunStore(tmp_path)
    rid = store.save(*_fit(data, snapshots=True))
    folder = store.path(rid)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["history.json", "model.safetensors", "run.json", "snapshots.safetensors"]
    json.loads((folder / "run.json").read_text())
    from safetensors import safe_open

    with safe_open(str(folder / "snapshots.safetensors"), framework="pt") as f:
        keys = list(f.keys())
    assert "params/0/body.0.weight" in keys and "embeddings/0" in keys


def test_a_save_that_fails_while_writing_leaves_nothing(tmp_path, data):
    store = RunStore(tmp_path)
    model, method, hist = _fit(data)
    with pytest.raises(TypeError, match="without pickle"):
        store.save(model, method, hist, artifacts={"bad": {"x": object()}})
    assert store.list().empty
    assert list((tmp_path / "runs").iterdir()) == [] and list((tmp_path / "tmp").iterdir()) == []
    # a bad argument is caught before anything is written
    with pytest.raises(ValueError, match="artifact name"):
        RunStore(tmp_path / "other").save(model, method, hist, artifacts={"../x": 1})
    assert not (tmp_path / "other").exists()


def test_codec_round_trip_and_old_class_paths():
    from workbench.runs.codec import Encoder, decode

    hist = wb.History()
    hist.log_step(1, {"loss": 0.5})
    value = {"t": torch.arange(3), "a": np.ones((2, 2)), "tuple": (1, "x", None), "__odd": 2.5,
             "dtype": torch.float16, "device": torch.device("cpu"), "hist": hist, "nested": [{"n": np.int64(4)}]}
    enc = Encoder("test")
    back = decode(json.loads(json.dumps(enc.encode(value))), enc.tensors)
    assert set(back) == set(value) and torch.equal(back["t"], value["t"])
    assert np.array_equal(back["a"], value["a"]) and back["tuple"] == (1, "x", None)
    assert back["dtype"] is torch.float16 and back["device"] == torch.device("cpu")
    assert back["hist"].records == hist.records and back["nested"] == [{"n": 4}] and back["__odd"] == 2.5
    # a result saved before the distillation module was split names its class by the old path
    krr = wb.analyses.kernel_self_distillation(torch.rand(6), torch.rand(6), torch.rand(3), steps=1)
    enc = Encoder("test")
    tree = enc.encode(krr)
    assert tree["__dataclass__"] == "workbench.analyses.kernel_distillation:KernelSelfDistillation"
    tree["__dataclass__"] = "workbench.analyses.distillation:KernelSelfDistillation"
    old = decode(tree, enc.tensors)
    assert type(old) is type(krr) and torch.equal(old.test_pred, krr.test_pred)
    # classes outside the workbench are never imported: a dict comes back
    tree["__dataclass__"] = "os:PathLike"
    assert decode(tree, enc.tensors)["__class__"] == "os:PathLike"
