"""Embeddings you already have: ``wb.data.Embeddings`` (a tensor carrying its rows' labels, images,
ids, logits, meta), its files, and every features-only analysis and view taking it with no model;
``wb.analyses.embed`` returns one, so the two paths meet. k-means/GMM prototypes checked against
scikit-learn and planted centres. A memory-mapped features file larger than the memory budget is
projected without being read into RAM."""

from __future__ import annotations

import copy
import os
import pickle
import threading
import time

import numpy as np
import pytest
import torch

import workbench as wb

pytest.importorskip("plotly")
pytest.importorskip("ipywidgets")


def _blobs(n_per=40, d=6, classes=3, seed=0, spread=0.3):
    g = torch.Generator().manual_seed(seed)
    centres = 3 * torch.randn(classes, d, generator=g)
    z = torch.cat([c + spread * torch.randn(n_per, d, generator=g) for c in centres])
    y = torch.arange(classes).repeat_interleave(n_per)
    return z, y


# ----------------------------------------------------------------------------- the type
def test_an_embeddings_is_the_tensor_with_its_rows_facts():
    z, y = _blobs()
    imgs = torch.rand(len(z), 1, 4, 4)
    emb = wb.data.Embeddings(z, labels=y, images=imgs, ids=np.arange(len(z)), meta={"layer": "fc"},
                             classes=["a", "b", "c"])
    assert isinstance(emb, torch.Tensor) and emb.data_ptr() == z.data_ptr()  # not copied
    assert torch.equal(emb, z) and emb.shape == (120, 6) and emb.y is emb.labels
    w = torch.randn(6, 2)
    out = emb @ w
    assert type(out) is torch.Tensor and torch.equal(out, z @ w)  # operations give plain tensors
    assert type(emb[:3]) is torch.Tensor and type(emb.tensor) is torch.Tensor
    assert emb.classes == ("a", "b", "c") and emb.meta["layer"] == "fc"
    assert repr(emb) == "Embeddings(120 x 6 float32; labels: 3 classes; images (1, 4, 4); ids; meta: layer)"
    sub = emb.subset(torch.tensor([5, 50, 100]))
    assert isinstance(sub, wb.data.Embeddings) and sub.labels.tolist() == [0, 1, 2]
    assert torch.equal(sub.images, imgs[[5, 50, 100]]) and sub.ids.tolist() == [5, 50, 100]
    a, b = emb.split_rows(0.75, seed=0)
    assert len(a) == 90 and len(b) == 30 and torch.bincount(b.labels).tolist() == [10, 10, 10]
    for twin in (copy.deepcopy(emb), pickle.loads(pickle.dumps(emb))):
        assert isinstance(twin, wb.data.Embeddings) and torch.equal(twin, emb)
        assert torch.equal(twin.labels, emb.labels) and twin.classes == emb.classes
    named = wb.data.Embeddings(z[:4], labels=["dog", "cat", "dog", None])
    assert named.classes == ("cat", "dog") and named.labels.tolist() == [1, 0, 1, -1]


def test_bad_embeddings_give_clear_errors():
    z, y = _blobs()
    with pytest.raises(ValueError, match=r"shape \(120,\); pass \(N, d\)"):
        wb.data.Embeddings(z[:, 0])
    with pytest.raises(ValueError, match="flatten each row"):
        wb.data.Embeddings(z.reshape(120, 2, 3))
    bad = z.clone()
    bad[7, 1] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or inf values \(first bad rows: \[7\]\)"):
        wb.data.Embeddings(bad)
    with pytest.raises(ValueError, match="labels has 119 entries for 120 embeddings"):
        wb.data.Embeddings(z, labels=y[:-1])
    with pytest.raises(ValueError, match=r"images must have one row per embedding \(120\)"):
        wb.data.Embeddings(z, images=torch.zeros(3, 4))
    with pytest.raises(TypeError, match="meta must hold JSON values"):
        wb.data.Embeddings(z, meta={"model": torch.nn.Linear(2, 2)})
    with pytest.raises(ValueError, match="one .npz file"):
        wb.data.Embeddings(z).save("emb.npy")


def test_files_round_trip(tmp_path):
    z, y = _blobs()
    emb = wb.data.Embeddings(z, y, images=torch.rand(120, 1, 4, 4), ids=[f"img{i}" for i in range(120)],
                             meta={"model": "TinyResNet"}, logits=torch.randn(120, 3), classes=["a", "b", "c"])
    path = emb.save(tmp_path / "emb.npz")
    assert b"pickle" not in path.read_bytes()[:2000]
    back = wb.data.Embeddings.load(path)
    assert torch.equal(back, emb) and torch.equal(back.labels, emb.labels) and torch.equal(back.images, emb.images)
    assert torch.equal(back.logits, emb.logits) and back.ids.tolist() == emb.ids.tolist()
    assert back.classes == ("a", "b", "c") and back.meta["model"] == "TinyResNet"
    np.save(tmp_path / "features.npy", z.numpy())
    np.save(tmp_path / "labels.npy", y.numpy())
    bare = wb.data.Embeddings.load(tmp_path / "features.npy", labels=tmp_path / "labels.npy")
    assert torch.equal(bare, z) and torch.equal(bare.labels, y) and bare.meta["memory_mapped"]


# ----------------------------------------------------------------------------- embed meets it
@pytest.fixture(scope="module")
def digits_model():
    digits = wb.data.load("digits")
    idt, idte, ood = wb.data.ood_split(digits, ood_classes=[8, 9], seed=0)
    model = wb.models.MLP(64, (32,), 8, seed=0)
    wb.fit(model, wb.methods.CrossEntropy(), idt, steps=80, batch_size=128, progress=False)
    return model, idt, idte, ood


def test_embed_returns_embeddings(digits_model):
    model, idt, idte, _ = digits_model
    z = wb.analyses.embed(model, idte)
    assert isinstance(z, wb.data.Embeddings) and z.shape == (len(idte), 32)
    assert torch.equal(z.labels, idte.y) and torch.equal(z.images, idte.x) and z.meta["model"] == "MLP"
    with torch.no_grad():
        assert torch.allclose(z, model.features(idte.x))


def test_every_ood_detector_on_embeddings_alone(digits_model, tmp_path):
    model, idt, idte, ood = digits_model
    bank = wb.ood.FeatureBank(model)
    e_tr, e_te, e_ood = (wb.analyses.embed(model, d) for d in (idt, idte, ood))
    with torch.no_grad():
        logits = {id(d): model(d.x) for d in (idt, idte, ood)}
    e_tr, e_te, e_ood = (wb.data.Embeddings(e, e.labels, e.images, logits=logits[id(d)])
                         for e, d in zip((e_tr, e_te, e_ood), (idt, idte, ood)))
    protos = wb.analyses.fit_prototypes(e_tr, n_prototypes=2)
    for name, cls in wb.ood.DETECTORS.items():
        if name == "PrototypeScore":
            via_model = cls(prototypes=protos.prototypes).fit_features(bank.features(idt).backbone)
            got = cls(prototypes=protos.prototypes).fit(e_tr)
            assert torch.equal(got.predict(e_ood), via_model.predict_features(bank.features(ood).backbone))
            continue
        # the head detectors need the linear head itself (embeddings do not carry it); ODIN's input
        # perturbation needs the inputs, so on embeddings it runs with epsilon=0
        kw = {"head": model.head} if name in wb.ood.HEAD_DETECTORS else {"epsilon": 0.0} if name == "ODIN" else {}
        via_model = cls(**kw).fit(bank, idt)
        got = cls(**kw).fit(e_tr)
        for e, d in ((e_te, idte), (e_ood, ood)):
            assert torch.allclose(got.predict(e), via_model.predict(bank, d), atol=1e-5), name
        if cls.needs_labels:  # fit_features(emb) takes the labels from it
            alt = cls(**kw).fit_features(e_tr)
            assert torch.allclose(alt.predict_features(e_te), got.predict(e_te), atol=1e-6)
    bare = wb.data.Embeddings(e_tr.tensor, e_tr.labels)  # no logits: the logit detectors say so
    with pytest.raises(ValueError, match="no logits.*Embeddings made without logits="):
        wb.ood.Energy().fit(bare)
    cmp = wb.ood.compare("all", None, e_tr, e_te, {"8-9": e_ood})
    ref = wb.ood.compare("all", bank, idt, idte, {"8-9": ood})
    for key, m in ref.metrics.items():
        assert abs(cmp.metrics[key].auroc - m.auroc) < 1e-6, key
    omap = wb.ood.ood_map(cmp, wb.ood.FeatureBank(None), e_te, {"8-9": e_ood})
    assert omap.images is not None and omap.images.shape[0] == len(e_te) + len(e_ood)
    lens = wb.widgets.OODLens(omap)
    assert lens.view._images is not None  # thumbnails from the embeddings' images


def test_features_only_analyses_on_embeddings(digits_model):
    model, idt, idte, _ = digits_model
    e_tr, e_te = wb.analyses.embed(model, idt), wb.analyses.embed(model, idte)
    proj = wb.analyses.project(e_te, seed=0)
    assert proj.coords.shape == (len(e_te), 2)
    aligned = wb.analyses.aligned_projections([e_te, 2 * e_te.tensor], seed=0)
    assert aligned.coords.shape == (2, len(e_te), 2)
    rm = wb.analyses.representation_metrics(None, e_tr, e_te)
    ref = wb.analyses.representation_metrics(model, idt, idte)
    assert rm.knn_acc == ref.knn_acc and rm.nc1 == pytest.approx(ref.nc1) and np.isnan(rm.alignment)
    fs = wb.analyses.fewshot_from_embeddings(e_te, n_way=3, n_episodes=30, seed=0)
    ref_fs = wb.analyses.fewshot_from_embeddings(e_te.tensor, e_te.labels, n_way=3, n_episodes=30, seed=0)
    assert fs.accuracy == ref_fs.accuracy
    assert wb.analyses.linear_cka(e_te, e_te) == pytest.approx(1.0)
    assert wb.analyses.relative_similarity(e_te, e_te, anchors=16).cosine == pytest.approx(1.0)
    a = wb.analyses.prototype_assignments(None, None, e_te)
    assert a.prototypes.shape == (8 * 3, 32) and a.weights.shape == (len(e_te), 24)
    maps = wb.analyses.prototype_maps(e_te)
    assert maps.coords.shape == (1, len(e_te), 2) and maps.proto_coords.shape == (1, 24, 2)
    for view in (wb.widgets.EmbeddingView(e_te), wb.widgets.PrototypeView(e_te)):
        assert isinstance(view, wb.widgets.View)
    ev = wb.widgets.EmbeddingView(proj, data=e_te)
    assert tuple(ev.class_names) == e_te.classes == idte.classes and ev._images is not None and (ev.labels == e_te.labels.numpy()).all()
    pv = wb.widgets.PrototypeView(None, data=e_te)
    assert pv.gallery is not None  # the images came with the embeddings: "this looks like that"
    id_tr, id_te, held = wb.data.ood_split(e_te, ood_classes=[0])
    assert isinstance(held, wb.data.Embeddings) and (held.labels == -1).all() and len(id_tr) + len(id_te) + len(held) == len(e_te)


# ----------------------------------------------------------------------------- prototypes
def test_kmeans_prototypes_match_sklearn_and_find_planted_modes():
    from sklearn.cluster import KMeans

    g = torch.Generator().manual_seed(0)
    modes = torch.nn.functional.normalize(torch.randn(2, 3, 8, generator=g), dim=-1)  # 2 classes x 3 modes
    z = torch.cat([m + 0.02 * torch.randn(30, 8, generator=g) for m in modes.reshape(6, 8)])
    y = torch.arange(2).repeat_interleave(90)
    p = wb.analyses.fit_prototypes(z, y, n_prototypes=3, seed=0)
    assert p.prototypes.shape == (6, 8) and p.proto_class.tolist() == [0, 0, 0, 1, 1, 1]
    for c in range(2):
        zn = torch.nn.functional.normalize(z[y == c], dim=1).double().numpy()
        km = KMeans(n_clusters=3, n_init=4, random_state=0).fit(zn)
        expect = torch.nn.functional.normalize(torch.as_tensor(km.cluster_centers_, dtype=torch.float32), dim=1)
        assert torch.allclose(p.prototypes[p.proto_class == c], expect, atol=1e-6)
        cos = p.prototypes[p.proto_class == c] @ modes[c].T  # each planted mode found once
        assert (cos.max(0).values > 0.99).all() and sorted(cos.argmax(0).tolist()) == [0, 1, 2]
    gm = wb.analyses.fit_prototypes(z, y, n_prototypes=3, method="gmm", seed=0)
    cos = gm.prototypes[:3] @ modes[0].T
    assert (cos.max(0).values > 0.99).all() and gm.weights[:3].sum() == pytest.approx(1.0)
    one = wb.analyses.fit_prototypes(z[:2], y[:2], n_prototypes=3)  # fewer rows than prototypes
    assert one.prototypes.shape == (2, 8)
    with pytest.raises(ValueError, match="unknown prototype fit 'dbscan'"):
        wb.analyses.fit_prototypes(z, y, method="dbscan")


# ----------------------------------------------------------------------------- memory
def _anon_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class PeakAnon:
    """Peak private (anonymous) resident memory of this process while the block runs, sampled
    every 2 ms; file pages of a memory-mapped file are not private memory (the kernel's cache)."""

    def __enter__(self):
        self.base, self.peak, self._stop = _anon_mib(), 0.0, False

        def poll():
            while not self._stop:
                self.peak = max(self.peak, _anon_mib())
                time.sleep(0.002)

        self._t = threading.Thread(target=poll, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop = True
        self._t.join()
        self.growth = max(self.peak, _anon_mib()) - self.base
        return False


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_a_memory_mapped_file_is_projected_without_reading_it_into_ram(tmp_path):
    from numpy.lib.format import open_memmap

    n, d = 1_000_000, 64  # 256 MB of float32
    mm = open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.float32, shape=(n, d))
    rows = np.arange(n, dtype=np.float32)[:, None]
    for i in range(0, n, 100_000):  # structured rows, written in blocks (no 256 MB array in RAM)
        r = rows[i : i + 100_000]
        mm[i : i + 100_000] = np.sin(r * np.linspace(0.001, 0.05, d, dtype=np.float32)) + (r % 7) / 7
    mm.flush()
    del mm
    file_mib = n * d * 4 / 2**20
    with PeakAnon() as mem:
        emb = wb.data.Embeddings.load(tmp_path / "big.npy")
        proj = wb.analyses.project(emb, seed=0)
    assert proj.coords.shape == (n, 2) and torch.isfinite(proj.coords).all()
    # the (N, 2) result is 8 MB and the chunked PCA works in row blocks (measured ~96 MiB peak);
    # a copy of the features would be the whole file (244 MiB), so the bound is half of it
    assert mem.growth < file_mib / 2, f"private memory grew by {mem.growth:.0f} MiB for a {file_mib:.0f} MiB file"
