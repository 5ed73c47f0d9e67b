"""Data that does not fit in memory (issue 14): streamed embed / FeatureBank, memory-mapped
features, block-wise scoring, the chunked PCA, sampled maps and faiss vs torch KNN.

The memory checks reset the process's peak RSS (Linux ``/proc/self/clear_refs``) and bound its
growth while working on data of ~150 MB: a second copy of the data would exceed the bound.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import workbench as wb
from workbench import _stream
from workbench.analyses import project
from workbench.analyses._pca import ChunkedPCA
from workbench.ood import base as ood_base

faiss = pytest.importorskip("faiss")  # the scale extra; CI installs it through dev


def _peak_growth(fn) -> float:
    """MiB the peak RSS grows above the RSS before ``fn()`` (skips where it cannot be read)."""
    if not _stream.reset_peak_rss() or not _stream.rss():
        pytest.skip("peak RSS cannot be reset here (needs Linux /proc/self/clear_refs)")
    before = _stream.rss()["rss"]
    fn()
    return _stream.rss()["peak"] - before


def _model(d_in=8, width=16, seed=0):
    """A classifier with BatchNorm and dropout (so eval mode changes its features)."""
    return wb.models.MLP(d_in, (width,), 3, seed=seed, norm="batch", dropout=0.1)


def _data(n=3000, d=8, seed=0, classes=3):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    x = torch.randn(n, d, generator=g) + 2.0 * nn.functional.one_hot(y, d).float()
    return wb.data.Dataset(x, y)


# ------------------------------------------------------------------------------- helpers
def test_parse_bytes_and_bad_budgets():
    assert _stream.parse_bytes("512MB") == 512 * 10**6
    assert _stream.parse_bytes("1.5 GiB") == int(1.5 * 2**30)
    assert _stream.parse_bytes(4096) == 4096
    with pytest.raises(ValueError, match="not a size"):
        _stream.parse_bytes("lots")
    with pytest.raises(ValueError, match="positive"):
        _stream.parse_bytes(0)
    with pytest.raises(TypeError, match="number of bytes"):
        _stream.parse_bytes(True)
    with pytest.raises(ValueError, match="not a size"):
        wb.ood.FeatureBank(_model(), memory="2 parsecs")


# ------------------------------------------------------------------------------- embed
def test_embed_streams_to_a_memory_mapped_file_and_restores_every_mode(tmp_path):
    model = _model()
    model.train()
    frozen = next(m for m in model.modules() if isinstance(m, nn.BatchNorm1d))
    frozen.eval()  # a BatchNorm frozen in eval mode inside a model in train mode
    flags = [m.training for m in model.modules()]
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    ds = _data(2500)
    z_ram = wb.analyses.embed(model, ds, batch_size=300)
    z_file = wb.analyses.embed(model, ds, batch_size=300, out=tmp_path / "z.npy")
    z_tmp = wb.analyses.embed(model, ds, batch_size=300, memory=1)  # over budget: a temporary file
    assert [m.training for m in model.modules()] == flags
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert _stream.memory_mapped(z_file) and _stream.memory_mapped(z_tmp) and not _stream.memory_mapped(z_ram)
    assert torch.equal(z_ram, z_file) and torch.equal(z_ram, z_tmp)
    with torch.no_grad(), wb._modes.eval_mode(model):
        assert torch.allclose(z_ram, model.features(ds.x), atol=1e-6)
    assert np.array_equal(np.load(tmp_path / "z.npy", mmap_mode="r"), z_ram.numpy())
    with pytest.raises(ValueError, match=r"ending in \.npy"):
        wb.analyses.embed(model, ds, out=tmp_path / "z.bin")


# ------------------------------------------------------------------------------- FeatureBank
def test_feature_bank_on_disk_gives_the_same_features_and_scores(tmp_path):
    model, train, test = _model(), _data(3000, seed=0), _data(1000, seed=1)
    ram = wb.ood.FeatureBank(model, batch_size=256)
    disk = wb.ood.FeatureBank(model, batch_size=256, memory="10KB")
    kept = wb.ood.FeatureBank(model, batch_size=256, path=tmp_path / "feats")
    f_ram, f_disk, f_kept = ram.features(train), disk.features(train), kept.features(train)
    assert not f_ram.on_disk and f_disk.on_disk and f_kept.on_disk and "memory-mapped" in repr(f_disk)
    for space in ("backbone", "logits"):
        assert torch.equal(f_ram.get(space), f_disk.get(space))
        assert np.array_equal(np.load(f_kept.files[space], mmap_mode="r"), f_ram.get(space).numpy())
    for det in (wb.ood.Mahalanobis(), wb.ood.KNN(k=5), wb.ood.Energy()):
        a = det.fit(ram, train).predict(ram, test)
        b = det.fit(disk, train).predict(disk, test)
        assert torch.equal(a, b), det.name


def test_block_wise_fit_and_scoring_equal_the_one_block_result(monkeypatch):
    model, train, test = _model(), _data(3000, seed=0), _data(2000, seed=1)
    bank = wb.ood.FeatureBank(model)
    dets = [wb.ood.Mahalanobis(), wb.ood.SSD(), wb.ood.KNN(k=7, engine="torch"), wb.ood.MSP(), wb.ood.NECO()]
    whole = {d.name: (d.fit(bank, train).predict(bank, test), getattr(d, "covariance_", None)) for d in dets}
    monkeypatch.setattr(ood_base, "SCORE_BLOCK_BYTES", 1)  # 1024-row blocks: 3 to fit, 2 to score
    for d in dets:
        s = d.fit(bank, train).predict(bank, test)
        assert torch.allclose(s, whole[d.name][0], rtol=1e-6, atol=1e-6), d.name
        if whole[d.name][1] is not None:  # Mahalanobis: means and covariance summed over blocks
            assert torch.allclose(d.covariance_, whole[d.name][1], rtol=1e-12, atol=1e-14)
    z = bank.features(test).backbone.clone()
    z[1500, 3] = float("nan")
    with pytest.raises(ValueError, match=r"first bad rows: \[1500\]"):
        wb.ood.KNN(k=3).fit_features(z)


def test_feature_bank_memory_stays_bounded_on_disk(monkeypatch):
    """~150 MB of features (600k x 64) computed to disk, Mahalanobis fitted and every row
    scored: the peak RSS grows by well under the features' size (no copy of them is made)."""
    monkeypatch.setattr(ood_base, "SCORE_BLOCK_BYTES", 4 * 2**20)
    n, d = 600_000, 64
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = torch.randint(0, 4, (n,), generator=g)
    ds = wb.data.Dataset(x, y)
    model = wb.models.MLP(4, (d,), 4, seed=0)
    feats_mib = n * (d + 4) * 4 / 2**20
    out = {}

    def work(data):
        bank = wb.ood.FeatureBank(model, batch_size=8192, memory="16MB")
        det = wb.ood.Mahalanobis().fit(bank, data)
        out["scores"] = det.predict(bank, data)
        out["on_disk"] = bank.features(data).on_disk

    work(ds[:20_000])  # warm-up: imports and allocator state are not the data's
    growth = _peak_growth(lambda: work(ds))
    assert out["on_disk"] and out["scores"].shape == (n,) and torch.isfinite(out["scores"]).all()
    assert growth < 0.4 * feats_mib, f"peak RSS grew {growth:.0f} MiB for {feats_mib:.0f} MiB of features"


# ------------------------------------------------------------------------------- KNN engines
def test_knn_faiss_and_torch_give_identical_scores_and_neighbours():
    g = torch.Generator().manual_seed(0)
    train = torch.randn(4000, 16, generator=g)
    test = torch.cat([torch.randn(1500, 16, generator=g) * 1.5, train[:200]])  # + points of the bank itself
    for k in (1, 10):
        a = wb.ood.KNN(k=k, engine="torch").fit_features(train)
        b = wb.ood.KNN(k=k, engine="faiss").fit_features(train)
        assert (a.engine_, b.engine_) == ("torch", "faiss")
        assert torch.equal(a.predict_features(test), b.predict_features(test))
        da, ia = a.kneighbors(test)
        db, ib = b.kneighbors(test)
        assert torch.equal(ia, ib) and torch.equal(da, db)
        assert torch.equal(ia[-200:, 0], torch.arange(200)) and (da[-200:, 0] == 0).all()
    # duplicated bank rows: exact ties, broken by the lower index on both engines
    dup = torch.cat([train[:500], train[:500]])
    a = wb.ood.KNN(k=2, engine="torch").fit_features(dup)
    b = wb.ood.KNN(k=2, engine="faiss").fit_features(dup)
    assert torch.equal(a.kneighbors(dup[:50])[1], b.kneighbors(dup[:50])[1])
    assert torch.equal(b.kneighbors(dup[:50])[1][:, 1], torch.arange(50) + 500)
    # a tiny margin makes faiss's candidate set too small for some rows: they are re-done exactly
    c = wb.ood.KNN(k=10, engine="faiss", margin=0).fit_features(train)
    assert torch.equal(c.predict_features(test), wb.ood.KNN(k=10, engine="torch").fit_features(train).predict_features(test))
    assert wb.ood.KNN().fit_features(train).engine_ == "faiss"  # auto picks faiss when installed
    with pytest.raises(ValueError, match="unknown engine"):
        wb.ood.KNN(engine="annoy").fit_features(train)


# ------------------------------------------------------------------------------- projections
def test_chunked_pca_matches_scikit_learn():
    from sklearn.decomposition import PCA

    g = torch.Generator().manual_seed(0)
    z = (torch.randn(20_000, 24, generator=g) @ torch.randn(24, 24, generator=g) + 50.0).numpy()
    ref = PCA(2, svd_solver="full").fit(z)
    ours = ChunkedPCA(2, block_rows=3000).fit(z)
    assert np.allclose(ours.components_, ref.components_, atol=1e-5)
    assert np.allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-5)
    assert np.allclose(ours.transform(z), ref.transform(z), atol=1e-3 * np.abs(ref.transform(z)).max())
    p = project(z, "pca", solver="chunked")
    q = project(z, "pca", solver="full")
    assert isinstance(p.estimator, ChunkedPCA) and np.allclose(p.explained_variance, q.explained_variance, rtol=1e-5)
    assert torch.allclose(p.coords, q.coords, atol=1e-3 * float(q.coords.abs().max()))
    assert torch.allclose(p.transform(z[:10]), p.coords[:10], atol=1e-4)
    with pytest.raises(ValueError, match="unknown PCA solver"):
        project(z, "pca", solver="magic")
    with pytest.raises(ValueError, match="takes none"):
        project(z, "tsne", solver="full")


def test_project_pca_of_large_data_makes_no_copy():
    """600k x 64 float32 (~150 MB): the streamed PCA's peak RSS stays far below one copy, and
    the projection shares the input's memory."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(600_000, 64, generator=g)
    z_mib = z.numel() * 4 / 2**20
    project(z[:5000], "pca", solver="chunked")  # warm-up: imports and allocator state are not the data's
    out = {}
    growth = _peak_growth(lambda: out.setdefault("p", project(z, "pca")))
    p = out["p"]
    assert isinstance(p.estimator, ChunkedPCA) and p.coords.shape == (600_000, 2)
    assert p.fitted.data_ptr() == z.data_ptr()
    assert growth < 0.5 * z_mib, f"peak RSS grew {growth:.0f} MiB for {z_mib:.0f} MiB of features"


def test_tsne_and_pca_fitted_on_a_sample_place_the_rest():
    ds = _data(900, d=8, seed=3)
    z = ds.x
    p = project(z, "tsne", sample=300, seed=0, perplexity=20)
    idx = p.sample_index
    assert idx.shape == (300,) and p.coords.shape == (900, 2) and torch.isfinite(p.coords).all()
    rest = torch.ones(900, dtype=torch.bool)
    rest[idx] = False
    assert torch.allclose(p.coords[rest], p.transform(z[rest]), atol=1e-4)  # the rest: placed by neighbours
    pca = project(z, "pca", sample=300)
    assert torch.allclose(pca.coords, pca.transform(z), atol=1e-5)
    assert project(z, "pca", sample=None).sample_index is None
    with pytest.warns(UserWarning, match="sample='auto'"):
        from workbench.analyses import _projection_scale as ps

        assert ps.choose_sample(ps.TSNE_SAMPLE_ABOVE + 1, "tsne", "auto", 0).shape == (ps.TSNE_SAMPLE_ABOVE,)
    with pytest.raises(TypeError, match="sample must be an int"):
        project(z, "pca", sample=0.5)
