"""OOD figures (wb.viz.ood), the OOD map (wb.ood.ood_map) and the OOD lens widget: asserted on
figure data and widget state, no browser."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import workbench as wb


class FakePALM(nn.Module):
    """Stands in for wb.methods.PALM: prototypes (K, d), proto_class (K,), embed(model, x)."""

    def __init__(self, feature_dim, dim=4, k_per_class=2, n_classes=8, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.proj = nn.Linear(feature_dim, dim)
        self.register_buffer("prototypes", F.normalize(torch.randn(k_per_class * n_classes, dim, generator=g), dim=1))
        self.register_buffer("proto_class", torch.arange(n_classes).repeat(k_per_class))

    def embed(self, model, x):
        return F.normalize(self.proj(model.features(x)), dim=1)


@pytest.fixture(scope="module")
def setup():
    b = wb.ood.benchmark("digits", n=500, seed=0)
    model = wb.models.MLP(64, (16,), b.n_classes, seed=0)
    palm = FakePALM(16, n_classes=b.n_classes)
    bank = wb.ood.FeatureBank(model, palm)
    ood = {k: b.ood[k] for k in ("digits 8-9", "shuffled pixels")}
    cmp = wb.ood.compare([wb.ood.Mahalanobis(), wb.ood.KNN(k=5), wb.ood.PrototypeScore(palm)], bank,
                         b.id_train, b.id_test, ood)
    omap = wb.ood.ood_map(cmp, bank, b.id_test, ood)
    return b, bank, ood, cmp, omap


# ----------------------------------------------------------------------------- static figures


def test_roc_figure_from_a_curve_a_dict_and_a_comparison(setup):
    _, _, _, cmp, _ = setup
    s = cmp.scores["KNN(k=5)"]
    c = wb.ood.roc_curve(s["ID"], s["digits 8-9"])
    fig = wb.viz.roc_figure(c, point=(0.3, 0.9))
    assert [t.name for t in fig.data][1:] == ["chance", "FPR@95% (id-positive)", "threshold"]
    np.testing.assert_allclose(fig.data[0].x, c.fpr.numpy())
    assert fig.data[-1].x == (0.3,) and fig.layout.xaxis.title.text == "FPR: OOD accepted as ID"
    fig2 = wb.viz.roc_figure(cmp, ood_set="shuffled pixels", convention="ood-positive")
    assert len(fig2.data) == 3 + 3 and fig2.layout.yaxis.title.text == "TPR: OOD flagged"
    m = cmp.metrics[("Mahalanobis", "shuffled pixels")]
    i = list(cmp.detectors).index("Mahalanobis")
    assert fig2.data[4].x[i] == pytest.approx(m.fpr95_ood_positive)
    with pytest.raises(ValueError, match="unknown OOD set"):
        wb.viz.roc_figure(cmp, ood_set="nope")


def test_score_histograms_share_bins_and_draw_the_threshold(setup):
    _, _, _, cmp, _ = setup
    fig = wb.viz.score_histograms(cmp.scores["KNN(k=5)"], threshold=0.5)
    assert len(fig.data) == 3 and fig.data[0].name.startswith("ID")
    assert len({(t.xbins.start, t.xbins.size) for t in fig.data}) == 1
    assert fig.layout.shapes[0].x0 == 0.5 and fig.data[0].histnorm == "probability"
    with pytest.raises(TypeError, match="non-empty dict"):
        wb.viz.score_histograms([1, 2, 3])


def test_score_histograms_gather_far_outliers_in_the_last_bin():
    rng = np.random.default_rng(0)
    scores = {"ID": rng.normal(0, 1, 200), "near": rng.normal(1, 1, 100), "far": np.full(50, 1e6)}
    fig = wb.viz.score_histograms(scores)
    end = fig.data[0].xbins.end
    assert 2 < end < 10 and max(fig.data[2].x) <= end
    assert "scores beyond" in fig.layout.xaxis.title.text and wb.viz.ood.histogram_data(scores)["n_clipped"] >= 50
    full = wb.viz.score_histograms(scores, x_range="full")
    assert full.data[0].xbins.end >= 1e6 and "beyond" not in full.layout.xaxis.title.text


def test_detector_table_holds_the_comparison_metrics(setup):
    _, _, _, cmp, _ = setup
    fig = wb.viz.detector_table(cmp, "fpr95")
    hm = fig.data[0]
    assert list(hm.y) == list(cmp.detectors) and list(hm.x) == ["digits 8-9", "shuffled pixels", "mean"]
    assert hm.z[1][0] == pytest.approx(cmp.metrics[("KNN(k=5)", "digits 8-9")].fpr95_id_positive)
    two = wb.viz.detector_table({"CE": cmp, "PALM": cmp}, "auroc")
    assert len(two.data[0].y) == 6 and two.data[0].y[0] == "CE · Mahalanobis"
    with pytest.raises(ValueError, match="unknown metric"):
        wb.viz.detector_table(cmp, "accuracy")


# ----------------------------------------------------------------------------- the map result


def test_ood_map_fits_on_id_and_places_ood_and_prototypes(setup):
    b, bank, ood, cmp, omap = setup
    n_id = len(b.id_test)
    assert omap.space == "embedding" and omap.coords.shape == (n_id + sum(len(v) for v in ood.values()), 2)
    assert omap.set_names == ("ID", "digits 8-9", "shuffled pixels")
    assert (omap.labels[omap.set_index > 0] == -1).all()
    torch.testing.assert_close(omap.coords[:n_id], omap.projection.coords)
    assert omap.prototypes_xy.shape == (16, 2) and omap.nearest_proto.shape == (len(omap.labels),)
    torch.testing.assert_close(omap.set_scores("KNN(k=5)")["shuffled pixels"], cmp.scores["KNN(k=5)"]["shuffled pixels"])
    t = 0.5
    out = omap.outcome("KNN(k=5)", t)
    s = omap.scores["KNN(k=5)"]
    assert ((out == 3) == ((s <= t) & (omap.set_index > 0))).all()
    land = omap.landing("KNN(k=5)", t)
    assert int(land["caught"].sum() + land["missed"].sum()) == int((omap.set_index > 0).sum())
    assert int(land["missed"].sum()) == int((out == 3).sum())
    fig = wb.viz.landing_bars(land)
    assert list(fig.data[1].y) == land["missed"].tolist()
    with pytest.raises(ValueError, match="not in the comparison"):
        wb.ood.ood_map(cmp, bank, b.id_test, {"other": b.ood["uniform noise"]})


def test_ood_map_chooses_splits_and_describes(setup):
    _, _, ood, cmp, omap = setup
    sets = list(ood)
    mean_auroc = {d: np.mean([cmp.metrics[(d, s)].auroc for s in sets]) for d in cmp.detectors}
    assert omap.best_detector() == max(mean_auroc, key=mean_auroc.get)
    one = {d: cmp.metrics[(d, "shuffled pixels")].auroc for d in cmp.detectors}
    assert omap.best_detector("shuffled pixels") == max(one, key=one.get)
    s_id, s_ood = omap.score_pair("KNN(k=5)", "digits 8-9")
    torch.testing.assert_close(s_id, cmp.scores["KNN(k=5)"]["ID"])
    torch.testing.assert_close(s_ood, cmp.scores["KNN(k=5)"]["digits 8-9"])
    assert len(omap.score_pair("KNN(k=5)")[1]) == int(omap.is_ood.sum())
    grid = omap.thresholds("KNN(k=5)")
    u = np.unique(omap.scores["KNN(k=5)"].numpy().astype(float))
    assert grid.dtype == torch.float64 and len(grid) == len(u) + 1 and grid[0] < u[0]
    s = omap.scores["KNN(k=5)"].double()
    assert int((s > grid[0]).sum()) == len(s) and int((s > grid[-1]).sum()) == 0  # flag all .. flag none
    idx = [0, 1, 2, len(omap.labels) - 1]
    d = omap.describe(idx, "KNN(k=5)", 0.5)
    assert d["n"] == 4 and sum(d["per_set"].values()) == 4 and sum(d["per_outcome"].values()) == 4
    assert d["per_set"]["ID"] == 3 and d["mean_score"] == pytest.approx(float(omap.scores["KNN(k=5)"][idx].mean()))
    assert sum(d["nearest_class"].values()) == 4
    counts = list(d["nearest_class"].values())
    assert counts == sorted(counts, reverse=True)
    with pytest.raises(ValueError, match="unknown OOD set"):
        omap.score_pair("KNN(k=5)", "nope")
    with pytest.raises(ValueError, match="unknown detector"):
        omap.thresholds("Energy")
    with pytest.raises(IndexError):
        omap.describe([10_000], "KNN(k=5)", 0.5)


# ----------------------------------------------------------------------------- the lens


def _pair(lens):
    s_id, s_ood = lens.map.score_pair(lens.detector, lens.ood_set)
    return s_id.numpy().astype(float), s_ood.numpy().astype(float)


@pytest.fixture(scope="module")
def lens(setup):
    return wb.widgets.OODLens(setup[4], detector="KNN(k=5)")


def test_lens_builds_and_colours_by_score(lens, setup):
    omap = setup[4]
    assert wb.widgets.OODLens(omap).detector == omap.best_detector()  # the map chooses, not the lens
    pts = lens.figure.data[0]
    np.testing.assert_allclose(pts.marker.color, omap.scores["KNN(k=5)"].numpy().astype(float), rtol=1e-6)
    assert lens.figure.data[-1].name == "prototypes" and len(lens.figure.data[-1].x) == 16
    assert "ID-positive" in lens.readout.value and "OOD-positive" in lens.readout.value
    assert set(lens.view.color_names) >= {"label", "set", "OOD score", "outcome at threshold"}


def test_lens_snaps_to_each_conventions_operating_point(lens):
    s_id, s_ood = _pair(lens)
    m = wb.ood.metrics(s_id, s_ood)
    lens.snap("id-positive")
    assert lens.rates["id_kept"] >= 0.95 and lens.rates["ood_accepted"] == pytest.approx(m.fpr95_id_positive)
    lens.snap("ood-positive")
    assert lens.rates["ood_flagged"] >= 0.95 and lens.rates["id_flagged"] == pytest.approx(m.fpr95_ood_positive)
    assert f"{m.fpr95_id_positive:.3f}" in lens.readout.value


def test_lens_threshold_moves_every_panel_in_place(lens, setup):
    omap = setup[4]
    roc, hist, land, fig = lens.roc, lens.hist, lens.landing, lens.figure
    lens.set_threshold(0.4)
    assert lens.roc is roc and lens.hist is hist and lens.landing is land and lens.figure is fig
    s_id, s_ood = _pair(lens)
    assert roc.data[3].x[0] == pytest.approx(np.mean(s_ood <= 0.4))   # id-positive FPR
    assert roc.data[3].y[0] == pytest.approx(np.mean(s_id <= 0.4))    # id-positive TPR
    assert hist.layout.shapes[0].x0 == 0.4 and lens.threshold_label.value == "0.4"
    grid = omap.thresholds("KNN(k=5)").numpy()  # the slider's positions
    assert grid[lens.slider.value] <= 0.4 < grid[lens.slider.value + 1]
    assert list(land.data[1].y) == omap.landing("KNN(k=5)", 0.4)["missed"].tolist()
    lens.outline.value = True
    assert len(fig.data[1].x) == int((omap.outcome("KNN(k=5)", 0.4) == 3).sum())
    lens.outline.value = False
    lens.color_by("outcome at threshold")
    assert fig.data[0].marker.showscale is False
    np.testing.assert_array_equal(lens.view.color_values("outcome at threshold"), omap.outcome("KNN(k=5)", 0.4).numpy())
    names = [t.name for t in fig.data[2:] if t.visible and t.name in wb.ood.OODMap.OUTCOMES]
    assert names and set(names) <= set(wb.ood.OODMap.OUTCOMES)
    i = lens.slider.value + 7        # the user drags the slider (an index into the distinct scores)
    lens.slider.value = i
    assert lens.threshold == grid[i] and hist.layout.shapes[0].x0 == pytest.approx(grid[i])
    lens.slider.value = i            # an echo of the same position changes nothing
    assert lens.threshold == grid[i]
    lens.color_by("OOD score")


def test_lens_detector_set_and_convention_switches(lens, setup):
    omap = setup[4]
    lens.set_detector("Mahalanobis")
    assert lens.detector_select.value == "Mahalanobis"
    np.testing.assert_allclose(lens.figure.data[0].marker.color, omap.scores["Mahalanobis"].numpy(), rtol=1e-6)
    s_id, s_ood = _pair(lens)
    c = wb.ood.roc_curve(s_id, s_ood)
    np.testing.assert_allclose(lens.roc.data[0].x, c.fpr.numpy())
    np.testing.assert_allclose(lens.hist.data[0].x, np.clip(s_id, None, lens.hist.data[0].xbins.end))
    assert lens.slider.max == len(np.unique(omap.scores["Mahalanobis"].numpy()))
    lens.set_ood_set("shuffled pixels")
    assert len(_pair(lens)[1]) == int((omap.set_index == 2).sum())
    lens.set_convention("ood-positive")
    assert lens.roc.layout.xaxis.title.text == "FPR: ID flagged as OOD"
    assert lens.convention_toggle.value == "ood-positive"
    lens.set_convention("id-positive")
    lens.set_ood_set(None)
    with pytest.raises(ValueError, match="unknown detector"):
        lens.set_detector("Energy")


def test_lens_selection_summary(lens):
    lens.view.select(np.arange(0, 12))
    assert "12 selected" in lens.selection_info.value and "ID: 12" in lens.selection_info.value
    assert "nearest-prototype class" in lens.selection_info.value
    lens.view.select([])
    assert "box/lasso" in lens.selection_info.value


def test_lens_bad_input(setup):
    omap = setup[4]
    with pytest.raises(TypeError, match="OODMap"):
        wb.widgets.OODLens(object())
    with pytest.raises(ValueError, match="unknown detector"):
        wb.widgets.OODLens(omap, detector="Energy")
    with pytest.raises(ValueError, match="unknown convention"):
        wb.widgets.OODLens(omap, convention="ood")
