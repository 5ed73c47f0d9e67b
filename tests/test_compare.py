"""CompareView and the comparison figure builders: asserted on figure data and widget state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.runs import RunStore
from workbench.viz.compare import (
    compare_curves,
    compare_embeddings,
    compare_landscapes,
    curve_data,
    curve_keys,
    metrics_table,
    smooth,
    training_panels,
)
from workbench.widgets import CompareView


@pytest.fixture(scope="module")
def data():
    return wb.data.load("gaussians8", n=240, seed=0).split(0.75, seed=0)


def _fit(data, optimizer="adam", seed=0, steps=12):
    train, test = data
    model = wb.models.MLP(2, (16,), 8, seed=seed)
    method = wb.methods.CrossEntropy()
    lr = 0.05 if optimizer == "sgd" else 1e-2
    hist = wb.fit(model, method, train, steps=steps, batch_size=60, val=test, eval_every=4, seed=seed,
                  optimizer=optimizer, lr=lr, progress=False)
    return model, method, hist


@pytest.fixture(scope="module")
def store(tmp_path_factory, data):
    st = RunStore(tmp_path_factory.mktemp("cmp"))
    for opt in ("adam", "sgd"):
        for seed in (0, 1):
            st.save(*_fit(data, opt, seed), name=f"ce-{opt}", metrics={"test_score": seed + (opt == "sgd")})
    return st


def _landscape(offset=0.0, a=5, b=7):
    al, be = torch.linspace(-1, 1, a), torch.linspace(-1, 1, b)
    loss = offset + al[:, None] ** 2 + 2 * be[None, :] ** 2  # (a, b): loss[i, j] at (al[i], be[j])
    return {"alphas": al, "betas": be, "loss": loss}


# ---------------------------------------------------------------------------------- builders


def test_smooth_and_curve_data():
    y = np.array([1.0, 3.0, np.nan, 5.0])
    assert np.allclose(smooth(y, 2), [1.0, 2.0, 3.0, 5.0])
    assert smooth(y, 1) is not None and np.array_equal(smooth(y, 1), y, equal_nan=True)
    h1, h2 = wb.History(), wb.History()
    for s in range(1, 4):
        h1.log_step(s, {"loss": float(s)})
        h2.log_step(s, {"loss": float(2 * s)})
    h1.log_eval(3, {"acc": 0.5})
    steps, members, mean, std = curve_data([h1, h2], "train_loss")
    assert steps.tolist() == [1, 2, 3] and np.allclose(mean, [1.5, 3, 4.5]) and np.allclose(std, [0.5, 1, 1.5])
    assert curve_keys({"a": [h1, h2]}) == ["train_loss", "val_acc"]
    with pytest.raises(ValueError, match="train_loss"):
        curve_data([h1], "loss")


def test_compare_curves_traces(data):
    hs = [_fit(data, seed=s)[2] for s in (0, 1)]
    h3 = _fit(data, "sgd")[2]
    fig = compare_curves({"adam": hs, "sgd": h3}, ["train_loss", "val_acc"])
    # per key: adam band, adam mean, 2 adam members, sgd band, sgd mean
    assert len(fig.data) == 2 * 6
    band, mean, m0, m1, sband, smean = fig.data[:6]
    assert band.visible is True and sband.visible is False and m0.visible is False
    assert np.allclose(mean.y, np.mean([h.loss for h in hs], 0))
    assert np.allclose(smean.y, h3.loss) and smean.name == "sgd"
    assert mean.name == "adam (mean of 2)" and mean.showlegend and not fig.data[7].showlegend
    s, v = h3.eval_series("acc")
    assert np.allclose(fig.data[11].x, s) and np.allclose(fig.data[11].y, v)
    again = compare_curves({"adam": hs, "sgd": h3}, ["train_loss", "val_acc"], smooth_window=3,
                           show_members=True, log_y=True)
    assert len(again.data) == len(fig.data) and again.data[2].visible is True
    assert again.layout.yaxis.type == "log"
    with pytest.raises(TypeError, match="non-empty dict"):
        compare_curves({})


def test_training_panels():
    fig = training_panels(None, "acc")
    assert len(fig.data) == 4 and all(len(t.x or ()) == 0 for t in fig.data)
    h = wb.History()
    h.log_step(1, {"loss": 1.0, "acc": 0.2})
    h.log_step(2, {"loss": 0.5, "acc": 0.4})
    h.log_eval(2, {"loss": 0.6, "acc": 0.3})
    fig = training_panels(h, "acc")
    assert list(fig.data[0].y) == [1.0, 0.5] and list(fig.data[3].y) == [0.3]


def test_compare_embeddings_linked_panels():
    c1 = np.random.default_rng(0).normal(size=(30, 2))
    labels = np.repeat([0, 1, 2], 10)
    fig = compare_embeddings({"a": c1, "b": -c1}, labels, class_names=["x", "y", "z"])
    assert len(fig.data) == 6 and fig.data[0].name == "x"
    assert [t.showlegend for t in fig.data] == [True] * 3 + [False] * 3
    assert fig.data[0].legendgroup == fig.data[3].legendgroup
    assert np.allclose(fig.data[4].x, -c1[10:20, 0])
    assert fig.layout.xaxis2.matches == "x" and fig.layout.yaxis2.matches == "y"
    assert fig.data[0].type == "scatter"  # small: SVG; big (or webgl=True): WebGL
    assert compare_embeddings({"a": c1}, webgl=True).data[0].type == "scattergl"
    with pytest.raises(ValueError, match="same N"):
        compare_embeddings({"a": c1, "b": c1[:5]})


def test_compare_landscapes_shared_colour_scale():
    lands = {"flat": _landscape(0.0), "sharp": _landscape(2.0)}
    fig = compare_landscapes(lands)
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == 2 and all(t.coloraxis == "coloraxis" for t in heat)
    assert fig.layout.coloraxis.cmin == pytest.approx(0.0) and fig.layout.coloraxis.cmax == pytest.approx(5.0)
    # z is (betas, alphas): row j, column i = loss[i, j]
    assert np.allclose(np.asarray(heat[1].z), lands["sharp"]["loss"].numpy().T)
    logfig = compare_landscapes(lands, log=True)
    assert logfig.layout.coloraxis.cmax == pytest.approx(np.log10(5.0))
    with pytest.raises(TypeError, match="alphas"):
        compare_landscapes({"x": {"loss": 1}})
    with pytest.raises(ValueError, match="len\\(alphas\\), len\\(betas\\)"):
        compare_landscapes({"x": {**_landscape(), "loss": torch.zeros(7, 5)}})


def test_metrics_table(store):
    fig = metrics_table(store.list()[["name", "val_acc"]])
    t = fig.data[0]
    assert list(t.header.values) == ["name", "val_acc"] and len(t.cells.values[0]) == 4


# ---------------------------------------------------------------------------------- the view


def test_compare_view_runs_from_a_store(store, data):
    _, test = data
    df = store.list()
    ids = list(df["id"])
    view = CompareView(ids[:3:2], store=store, data=test)  # ce-adam seed 0 and ce-sgd seed 0
    assert view.labels == ["ce-adam", "ce-sgd"]
    assert view.table.loc["ce-adam", "runs"] == 1
    assert float(view.table.loc["ce-sgd", "val_acc"]) == pytest.approx(df.loc[2, "val_acc"], rel=1e-3)
    assert "val_acc" in view.table_html.value
    # curves: the mean trace of each run is its own curve (single-member groups)
    h = store.history(ids[0])
    loss_mean = [t for t in view.curves.data if t.name == "ce-adam"][0]
    assert np.allclose(loss_mean.y, h.loss)
    # embeddings: two linked panels, aligned to the first run's map
    from workbench.analyses.embedding import aligned_projections, embed

    m0, _, _ = store.load(ids[0])
    m2, _, _ = store.load(ids[2])
    al = aligned_projections({"a": embed(m0, test), "b": embed(m2, test)}, "pca", align="procrustes",
                             reference="first")
    n_cls = len(torch.unique(test.y))
    assert len(view.embeddings.data) == 2 * n_cls
    first_cls = (test.y == 0).numpy()
    assert np.allclose(view.embeddings.data[n_cls].x, al.coords[1][first_cls, 0].numpy(), atol=1e-5)
    assert view.landscapes is None and "landscapes" not in repr(view)


def test_compare_view_groups_controls_and_landscapes(store, data):
    _, test = data
    ids = list(store.list()["id"])
    store.attach(ids[0], "land", _landscape(0.0))
    store.attach(ids[2], "land", _landscape(1.0))
    view = CompareView(ids, store=store, group_by="name", landscape="land")
    assert view.labels == ["ce-adam", "ce-sgd"] and view.embeddings is None
    assert list(view.table["runs"]) == [2, 2] and "±" in view.table.loc["ce-adam", "val_acc"]
    cols = list(view.table.columns)
    assert cols.index("val_acc") < cols.index("test_score") < cols.index("train_loss")  # val, yours, train
    assert view.table.loc["ce-sgd", "test_score"] == "1.5 ± 0.71"
    small = CompareView(ids, store=store, group_by="name", metrics=["test_score"], keys=["val_acc"])
    assert [c for c in small.table.columns if c not in ("method", "model", "optimizer", "runs", "steps")] == ["test_score"]
    with pytest.raises(ValueError, match=r"unknown metrics \['nope'\].*test_score"):
        CompareView(ids, store=store, metrics=["nope"])
    fig = view.curves
    before = np.array(fig.data[1].y)
    view.smooth_slider.value = 4
    assert view.curves is fig and not np.allclose(np.array(fig.data[1].y), before)  # updated in place
    view.members_toggle.value = True
    assert fig.data[2].visible is True
    view.log_toggle.value = True
    assert fig.layout.yaxis.type == "log"
    # landscapes: one per group, one shared colour scale
    lf = view.landscapes
    assert [t.type for t in lf.data[:2]] == ["heatmap", "heatmap"]
    assert lf.layout.coloraxis.cmin == pytest.approx(0.0) and lf.layout.coloraxis.cmax == pytest.approx(4.0)
    view.landscape_log.value = True
    assert view.landscapes is lf and lf.layout.coloraxis.cmax == pytest.approx(np.log10(4.0))
    assert lf.layout.coloraxis.colorbar.title.text == "log10 loss"


def test_compare_view_in_memory_and_dict_groups(data):
    _, test = data
    a = _fit(data, "adam", 0)
    b = _fit(data, "sgd", 0)
    view = CompareView({"adam": a, "sgd": [b, _fit(data, "sgd", 1)]}, data=test,
                       landscapes={"adam": _landscape()}, keys=["val_acc"])
    assert view.labels == ["adam", "sgd"] and view.keys == ["val_acc"]
    assert list(view.table["runs"]) == [1, 2]
    assert len(view.landscapes.data) == 2  # one heatmap + the origin marker
    view.projection_select.value = "tsne"
    assert view.aligned.method == "tsne"
    plain = CompareView([a[2], b[2]])  # bare histories: curves only
    assert plain.embeddings is None and plain.labels == ["history", "history #2"]


def test_compare_view_errors(store, data):
    with pytest.raises(ValueError, match="no runs"):
        CompareView([], store=store)
    with pytest.raises(TypeError, match="run id, a wb.runs.Run"):
        CompareView([3], store=store)
    with pytest.raises(ValueError, match="unknown curve keys \\['val_nope'\\]"):
        CompareView(list(store.list()["id"]), store=store, keys=["val_nope"])
    with pytest.raises(ValueError, match="cannot group by 'colour'"):
        CompareView(list(store.list()["id"]), store=store, group_by="colour")
    with pytest.raises(ValueError, match="not both"):
        CompareView({"a": list(store.list()["id"])}, store=store, group_by="name")
    with pytest.raises(ValueError, match="unknown projection"):
        CompareView(list(store.list()["id"]), store=store, projection="mds")


def test_resolve_runs_groups_tables_and_embeds(store, data):
    _, test = data
    ids = list(store.list()["id"])
    rg = wb.runs.resolve_runs(ids, store=store, group_by="name")
    assert rg.labels == ["ce-adam", "ce-sgd"] and [len(v) for v in rg.histories.values()] == [2, 2]
    frame = rg.metrics_frame()
    assert list(frame["group"]) == ["ce-adam", "ce-adam", "ce-sgd", "ce-sgd"] and list(frame["id"]) == ids
    assert rg.table().loc["ce-sgd", "test_score"] == "1.5 ± 0.71"
    plain = wb.runs.resolve_runs(ids[:2], store=store)  # same name twice: the run ids tell them apart
    assert plain.labels == [f"ce-adam ({i})" for i in ids[:2]]
    # features of the same subsample under each group's first model, loaded from the store
    sub, zs = rg.embeddings(test, max_points=20, seed=0)
    assert len(sub) == 20 and list(zs) == ["ce-adam", "ce-sgd"]
    m0, _, _ = store.load(ids[0])
    torch.testing.assert_close(zs["ce-adam"], wb.analyses.embed(m0, sub))
    sub2, _ = rg.embeddings(test, max_points=20, seed=0)
    assert torch.equal(sub2.x, sub.x)  # seeded
    assert rg.landscapes("nope") == {}
    with pytest.raises(ValueError, match="unknown labels"):
        rg.landscapes("nope", {"other": _landscape()})
    with pytest.raises(TypeError, match="Dataset"):
        rg.embeddings(test.x)
    assert "RunGroups(ce-adam (2 runs)" in repr(rg)
