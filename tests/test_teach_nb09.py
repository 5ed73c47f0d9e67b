"""Notebook 09's exercises: right answers pass, typical wrong answers get their hint, never a traceback."""

from __future__ import annotations

import torch

import workbench as wb
from workbench.analyses import continual_metrics, teen_calibrate


def test_similarity_exercise():
    assert wb.teach.check("09-similarity", lambda d: torch.log((d + 1) / (d + 1e-4)))
    r = wb.teach.check("09-similarity", lambda d: torch.log(1 / (d + 1e-4)))
    assert not r and "+ 1" in r.message
    r = wb.teach.check("09-similarity", lambda d: torch.log((d.sqrt() + 1) / (d.sqrt() + 1e-4)))
    assert not r and "squared" in r.message
    assert "RBF" in wb.teach.check("09-similarity", lambda d: torch.exp(-d)).message
    assert "raised" in wb.teach.check("09-similarity", lambda d: 1 / 0).message
    assert "fill in" in wb.teach.check("09-similarity", lambda d: ...).message  # the notebook's stub
    assert "fill in" in wb.teach.check("09-forgetting", lambda r: None).message
    assert "fill in" in wb.teach.check("09-teen", lambda p, b, t, a: ...).message


def test_hungarian_exercise():
    assert wb.teach.check("09-hungarian", 0.5)
    assert "v1" in wb.teach.check("09-hungarian", 0.75).message
    assert "v2b" in wb.teach.check("09-hungarian", 1 / 3).message
    assert "All" in wb.teach.check("09-hungarian", 2 / 3).message
    assert not wb.teach.check("09-hungarian", "half")


def test_forgetting_exercise():
    assert wb.teach.check("09-forgetting", lambda r: continual_metrics(r).forgetting)
    r = wb.teach.check("09-forgetting", lambda r: continual_metrics(r, convention="onpro").forgetting)
    assert not r and "divided by T" in r.message
    r = wb.teach.check("09-forgetting", lambda r: continual_metrics(r, convention="prd").forgetting)
    assert not r and "last row" in r.message
    r = wb.teach.check("09-forgetting", lambda r: continual_metrics(r).backward_transfer)
    assert not r and "backward transfer" in r.message


def test_teen_exercise():
    assert wb.teach.check("09-teen", lambda p, b, t, a: teen_calibrate(p, b, temperature=t, alpha=a))

    def unnormalised(p, base, tau, alpha):
        bn = torch.nn.functional.normalize(base, dim=1)
        delta = torch.nn.functional.normalize((tau * p @ bn.T).softmax(1) @ bn, dim=1)
        return (1 - alpha) * p + alpha * delta

    r = wb.teach.check("09-teen", unnormalised)
    assert not r and "normalise the new means" in r.message
    r = wb.teach.check("09-teen", lambda p, b, t, a: teen_calibrate(p, b, temperature=1.0, alpha=a))
    assert not r and "softmax temperature" in r.message
    assert len(wb.teach.exercises("09")) == 4
