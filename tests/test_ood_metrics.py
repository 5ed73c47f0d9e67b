"""wb.ood metrics: agreement with scikit-learn, both FPR@95 conventions, the golden example."""

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

import workbench as wb


def _sk_fpr_at(labels, scores, level=0.95):
    fpr, tpr, _ = sk_roc_curve(labels, scores, drop_intermediate=False)
    return fpr[np.argmax(tpr >= level)]


def _sk_all(s_id, s_ood):
    """Reference values from scikit-learn (OOD scores: larger = more OOD)."""
    y_ood = np.r_[np.zeros(len(s_id)), np.ones(len(s_ood))]
    s = np.r_[s_id, s_ood]
    return {
        "auroc": roc_auc_score(y_ood, s),
        "fpr_id_pos": _sk_fpr_at(1 - y_ood, -s),
        "fpr_ood_pos": _sk_fpr_at(y_ood, s),
        "aupr_in": average_precision_score(1 - y_ood, -s),
        "aupr_out": average_precision_score(y_ood, s),
    }


def test_golden_example_from_the_reference_notes():
    # palm_ood.md §2.4: ID ~ N(2, 1), OOD ~ N(0, 1.5), 1000 each, seed 0. numpy's default_rng(0)
    # (ID drawn first) reproduces the published figures; the ID-ness is x, so the OOD score is -x.
    rng = np.random.default_rng(0)
    x_id = rng.normal(2, 1, 1000)
    x_ood = rng.normal(0, 1.5, 1000)
    m = wb.ood.metrics(-x_id, -x_ood)
    assert m.convention == "id-positive"
    assert round(m.auroc, 4) == 0.8595
    assert m.fpr95 == pytest.approx(0.392)
    assert m.fpr95_id_positive == pytest.approx(0.392)
    assert m.fpr95_ood_positive == pytest.approx(0.701)
    m2 = wb.ood.metrics(-x_id, -x_ood, convention="ood-positive")
    assert m2.fpr95 == pytest.approx(0.701) and m2.convention == "ood-positive"
    assert m2.auroc == m.auroc


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_sklearn_on_random_and_tied_scores(seed, ties):
    rng = np.random.default_rng(seed)
    s_id = rng.normal(0, 1, 137)
    s_ood = rng.normal(0.8, 1.3, 211)
    if ties:  # few distinct values: many ties inside and across the two sets
        s_id, s_ood = np.round(s_id * 2) / 2, np.round(s_ood * 2) / 2
    ref = _sk_all(s_id, s_ood)
    m = wb.ood.metrics(torch.tensor(s_id), s_ood)
    assert m.auroc == pytest.approx(ref["auroc"], abs=1e-12)
    assert m.fpr95_id_positive == pytest.approx(ref["fpr_id_pos"], abs=1e-12)
    assert m.fpr95_ood_positive == pytest.approx(ref["fpr_ood_pos"], abs=1e-12)
    assert m.aupr_in == pytest.approx(ref["aupr_in"], abs=1e-12)
    assert m.aupr_out == pytest.approx(ref["aupr_out"], abs=1e-12)


@pytest.mark.parametrize("ties", [False, True])
def test_roc_curve_equals_sklearn_in_both_conventions(ties):
    rng = np.random.default_rng(5)
    s_id, s_ood = rng.normal(0, 1, 60), rng.normal(1, 1, 40)
    if ties:
        s_id, s_ood = np.round(s_id), np.round(s_ood)
    y_ood = np.r_[np.zeros(60), np.ones(40)]
    s = np.r_[s_id, s_ood]
    fpr, tpr, thr = sk_roc_curve(y_ood, s, drop_intermediate=False)
    c = wb.ood.roc_curve(s_id, s_ood, convention="ood-positive")
    np.testing.assert_allclose(c.fpr.numpy(), fpr)
    np.testing.assert_allclose(c.tpr.numpy(), tpr)
    np.testing.assert_allclose(c.thresholds.numpy()[1:], thr[1:])
    fpr, tpr, thr = sk_roc_curve(1 - y_ood, -s, drop_intermediate=False)
    c = wb.ood.roc_curve(s_id, s_ood)  # id-positive: thresholds in OOD-score units
    np.testing.assert_allclose(c.fpr.numpy(), fpr)
    np.testing.assert_allclose(c.tpr.numpy(), tpr)
    np.testing.assert_allclose(c.thresholds.numpy()[1:], -thr[1:])
    assert c.auroc == pytest.approx(roc_auc_score(y_ood, s))


def test_fpr95_both_conventions_on_a_hand_computed_case():
    # 20 ID scores 0..19; 20 OOD scores: three inside the ID range (5.5, 6.5, 17.5), 17 above it.
    s_id = np.arange(20.0)
    s_ood = np.r_[5.5, 6.5, 17.5, np.arange(20.0, 37.0)]
    m = wb.ood.metrics(s_id, s_ood)
    # ID-positive: keep 19 of 20 ID samples (accept score <= 18); OOD accepted there:
    # 5.5, 6.5, 17.5 -> 3 / 20.
    assert m.fpr95_id_positive == pytest.approx(3 / 20)
    assert m.threshold == 18.0
    # OOD-positive: flag 19 of 20 OOD samples (score >= 6.5, the 19th largest OOD score);
    # ID flagged there: 7, 8, ..., 19 -> 13 / 20.
    m2 = wb.ood.metrics(s_id, s_ood, convention="ood-positive")
    assert m2.fpr95 == pytest.approx(13 / 20)
    assert m2.fpr95_ood_positive == m.fpr95_ood_positive == pytest.approx(13 / 20)
    assert m2.threshold == 6.5
    # AUROC by counting pairs: each ID score s is beaten by the OOD scores above it.
    wins = sum((s_ood > s).sum() + 0.5 * (s_ood == s).sum() for s in s_id)
    assert m.auroc == pytest.approx(wins / 400)


def test_ties_at_the_threshold_count_as_positive():
    # ID all 0 except one; OOD equal to ID's bulk: at TPR 95% every tie is accepted
    s_id = np.r_[np.zeros(19), 5.0]
    s_ood = np.zeros(10)
    m = wb.ood.metrics(s_id, s_ood)
    assert m.fpr95_id_positive == 1.0
    assert m.auroc == pytest.approx((10 * 19 * 0.5) / 200)


def test_perfect_and_inverted_detectors():
    m = wb.ood.metrics([0.0, 1.0, 2.0], [10.0, 11.0])
    assert (m.auroc, m.fpr95_id_positive, m.fpr95_ood_positive, m.aupr_in, m.aupr_out) == (1, 0, 0, 1, 1)
    m = wb.ood.metrics([10.0, 11.0], [0.0, 1.0])
    assert m.auroc == 0 and m.fpr95_id_positive == 1 and m.fpr95_ood_positive == 1


def test_rates_at_one_threshold_are_complements():
    s_id, s_ood = np.arange(10.0), np.arange(5.0, 15.0)
    r = wb.ood.rates_at(s_id, s_ood, 7.0)
    assert r["id_kept"] == 0.8 and r["id_flagged"] == pytest.approx(0.2)
    assert r["ood_accepted"] == 0.3 and r["ood_flagged"] == pytest.approx(0.7)


def test_table_and_repr_name_the_convention():
    rng = np.random.default_rng(0)
    a = wb.ood.metrics(rng.normal(0, 1, 50), rng.normal(2, 1, 50))
    b = wb.ood.metrics(rng.normal(0, 1, 50), rng.normal(1, 1, 50))
    assert "id-positive" in repr(a) and "ood-positive" in repr(a)
    df = wb.ood.table({"A": a, "B": b})
    assert list(df.index) == ["A", "B"]
    assert "fpr95 (id-positive)" in df.columns and "fpr95 (ood-positive)" in df.columns
    assert df.loc["A", "fpr95 (id-positive)"] == a.fpr95_id_positive
    df2 = wb.ood.table({("A", "near"): a, ("A", "far"): b}, convention="ood-positive")
    assert df2.index.names == ["detector", "ood set"]
    assert df2.columns[1] == "fpr95 (ood-positive)"


@pytest.mark.parametrize(
    "bad, match",
    [
        ([0.0, float("nan")], "NaN"),
        ([], "empty"),
        ([[0.0, 1.0], [2.0, 3.0]], "1-D"),
        (np.zeros((4, 1)), "flat"),
        ("abc", "1-D torch tensor"),
    ],
)
def test_bad_scores_raise_clear_errors(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        wb.ood.metrics(bad, [1.0, 2.0])


def test_bad_options_raise():
    with pytest.raises(ValueError, match="valid: 'id-positive'"):
        wb.ood.metrics([0.0], [1.0], convention="ood")
    with pytest.raises(ValueError, match="tpr"):
        wb.ood.metrics([0.0], [1.0], tpr=95)
    with pytest.raises(TypeError, match="OODMetrics"):
        wb.ood.table({"x": 0.5})
