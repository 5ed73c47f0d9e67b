"""Notebook 10's exercises: right answers pass, typical wrong ones get their hint, never a traceback."""

import workbench as wb


def test_guidance_recall():
    assert wb.teach.check("10-guidance-recall", "recall")
    r = wb.teach.check("10-guidance-recall", "Precision")
    assert not r and "inside the data" in r.message
    assert "not one of the choices" in wb.teach.check("10-guidance-recall", "fid").message


def test_minority_score():
    assert wb.teach.check("10-minority-score", lambda a, b: ((a - b) ** 2).sum(1))
    assert "mean over features" in wb.teach.check("10-minority-score", lambda a, b: ((a - b) ** 2).mean(1)).message
    assert "norm itself" in wb.teach.check("10-minority-score", lambda a, b: (a - b).norm(dim=1)).message
    assert "per sample" in wb.teach.check("10-minority-score", lambda a, b: ((a - b) ** 2).sum()).message
    r = wb.teach.check("10-minority-score", lambda a, b: 1 / 0)
    assert not r and "ZeroDivisionError" in r.message
    assert "tensor" in wb.teach.check("10-minority-score", lambda a, b: 3.0).message


def test_classifier_cost():
    assert wb.teach.check("10-classifier-cost", 80)
    assert "reuses" in wb.teach.check("10-classifier-cost", 90).message
    assert "only 2 classes" in wb.teach.check("10-classifier-cost", 200).message
    assert "number" in wb.teach.check("10-classifier-cost", "eighty").message


def test_masked_share():
    d3pm = wb.methods.D3PM(2, 50, "absorbing")
    assert abs(float(d3pm.q_bar[19, 0, 2]) - 0.4) < 1e-6
    r = wb.teach.check("10-masked-share", 0.4, d3pm=d3pm)
    assert r and "0.400" in r.message
    assert "unmasked" in wb.teach.check("10-masked-share", 0.6).message
    assert not wb.teach.check("10-masked-share", 0.9)
    assert "number" in wb.teach.check("10-masked-share", [0.4]).message
