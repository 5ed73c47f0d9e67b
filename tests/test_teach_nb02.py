"""Notebook 02's exercises: right answers pass, typical wrong ones get their hint, never a traceback."""

from types import SimpleNamespace

import torch

import workbench as wb


def test_convention():
    assert wb.teach.check("02-convention", "ood-positive")
    assert wb.teach.check("02-convention", "OOD positive")
    assert "wide" in wb.teach.check("02-convention", "id-positive").message
    assert "different places" in wb.teach.check("02-convention", "same").message
    assert "not one of the choices" in wb.teach.check("02-convention", "auroc").message


def test_energy():
    assert wb.teach.check("02-energy", lambda z: -torch.logsumexp(z, dim=1))
    assert wb.teach.check("02-energy", lambda z: -torch.logsumexp(z, dim=1).numpy())
    assert "sign is flipped" in wb.teach.check("02-energy", lambda z: torch.logsumexp(z, dim=1)).message
    assert "MaxLogit" in wb.teach.check("02-energy", lambda z: -z.amax(1)).message
    assert "MSP" in wb.teach.check("02-energy", lambda z: -z.softmax(1).amax(1)).message
    assert "whole batch" in wb.teach.check("02-energy", lambda z: -torch.logsumexp(z.flatten(), 0)).message
    assert "over the rows" in wb.teach.check("02-energy", lambda z: -torch.logsumexp(z, dim=0)).message
    assert "mean of exp" in wb.teach.check("02-energy", lambda z: -torch.log(torch.exp(z).mean(1))).message

    def unfinished(logits):
        return None

    assert "tensor of N scores" in wb.teach.check("02-energy", unfinished).message
    assert "raised" in wb.teach.check("02-energy", lambda z: z.nope).message


def _cmp(aurocs):
    metrics = {(d, s): SimpleNamespace(auroc=a) for d, per_set in aurocs.items() for s, a in per_set.items()}
    return SimpleNamespace(detectors=dict.fromkeys(aurocs), metrics=metrics)


def test_near_ood():
    cmp = _cmp({"MSP": {"digits 8-9": 0.9}, "SSD": {"digits 8-9": 0.55}, "KNN": {"digits 8-9": 0.8}})
    r = wb.teach.check("02-near-ood", "ssd", cmp=cmp)
    assert r and "one Gaussian" in r.message
    r = wb.teach.check("02-near-ood", "KNN", cmp=cmp)
    assert not r and "0.800" in r.message and "ignores" in r.message
    assert "not one of the choices" in wb.teach.check("02-near-ood", "Energy", cmp=cmp).message
    assert "pass the comparison" in wb.teach.check("02-near-ood", "SSD").message
    # whatever the run measured is the right answer
    assert wb.teach.check("02-near-ood", "KNN", cmp=_cmp({"SSD": {"digits 8-9": 0.7}, "KNN": {"digits 8-9": 0.6}}))
    assert len(wb.teach.exercises("02")) == 3
