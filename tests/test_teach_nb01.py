"""Notebook 01's exercises: right answers pass, typical wrong ones get their hint, never a traceback."""

from types import SimpleNamespace

import torch
import torch.nn.functional as F

import workbench as wb


def test_alignment():
    def alignment(z1, z2):
        a, b = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
        return ((a - b) ** 2).sum(1).mean()

    assert wb.teach.check("01-alignment", alignment)
    assert wb.teach.check("01-alignment", lambda z1, z2: wb.analyses.alignment(z1, z2))
    assert "normalise" in wb.teach.check("01-alignment", lambda z1, z2: ((z1 - z2) ** 2).sum(1).mean()).message
    r = wb.teach.check("01-alignment", lambda z1, z2: (F.normalize(z1, dim=1) - F.normalize(z2, dim=1)).norm(dim=1).mean())
    assert "squares it" in r.message
    r = wb.teach.check("01-alignment", lambda z1, z2: ((F.normalize(z1, dim=1) - F.normalize(z2, dim=1)) ** 2).sum())
    assert "take the mean" in r.message
    r = wb.teach.check("01-alignment", lambda z1, z2: ((F.normalize(z1, dim=1) - F.normalize(z2, dim=1)) ** 2).mean())
    assert "coordinates" in r.message
    r = wb.teach.check("01-alignment", lambda z1, z2: torch.cdist(F.normalize(z1, dim=1), F.normalize(z2, dim=1)).pow(2).mean())
    assert "every row with every other" in r.message
    assert "one number" in wb.teach.check("01-alignment", lambda z1, z2: None).message
    assert "raised" in wb.teach.check("01-alignment", lambda z1: z1).message


def test_uniformity():
    def uniformity(z):
        a = F.normalize(z, dim=1)
        return torch.log(torch.exp(-2 * torch.pdist(a) ** 2).mean())

    assert wb.teach.check("01-uniformity", uniformity)
    assert wb.teach.check("01-uniformity", lambda z: wb.analyses.uniformity(z))

    def with_diagonal(z):
        a = F.normalize(z, dim=1)
        return torch.log(torch.exp(-2 * torch.cdist(a, a) ** 2).mean())

    assert "pairs (i, i)" in wb.teach.check("01-uniformity", with_diagonal).message
    no_log = wb.teach.check("01-uniformity", lambda z: torch.exp(-2 * torch.pdist(F.normalize(z, dim=1)) ** 2).mean())
    assert "log of the mean" in no_log.message
    raw = wb.teach.check("01-uniformity", lambda z: torch.log(torch.exp(-2 * torch.pdist(z) ** 2).mean()))
    assert "unit sphere" in raw.message
    unsquared = wb.teach.check("01-uniformity", lambda z: torch.log(torch.exp(-2 * torch.pdist(F.normalize(z, dim=1))).mean()))
    assert "square the distances" in unsquared.message
    t1 = wb.teach.check("01-uniformity", lambda z: torch.log(torch.exp(-torch.pdist(F.normalize(z, dim=1)) ** 2).mean()))
    assert "t = 2" in t1.message


def test_best_alignment():
    metrics = {n: SimpleNamespace(alignment=a, uniformity=u)
               for n, a, u in [("cross-entropy", 0.5, -1.0), ("SupCon", 0.1, -2.3), ("PALM", 0.2, -2.4)]}
    r = wb.teach.check("01-best-alignment", "supcon", metrics=metrics)
    assert r and "SupCon 0.100" in r.message
    # what the defaults measure: cross-entropy's narrow cone aligns best
    ce_best = {n: SimpleNamespace(alignment=a, uniformity=u)
               for n, a, u in [("cross-entropy", 0.24, -1.04), ("SupCon", 0.8, -2.27), ("PALM", 1.02, -2.44)]}
    r = wb.teach.check("01-best-alignment", "cross-entropy", metrics=ce_best)
    assert r and "narrow cone" in r.message and "-1.04" in r.message
    assert "uniformity column" in wb.teach.check("01-best-alignment", "SupCon", metrics=ce_best).message
    assert "never sees two views" in wb.teach.check("01-best-alignment", "cross-entropy", metrics=metrics).message
    assert "measure it" in wb.teach.check("01-best-alignment", "PALM", metrics=metrics).message
    assert "not one of the choices" in wb.teach.check("01-best-alignment", "MSP", metrics=metrics).message
    assert "pass the metrics" in wb.teach.check("01-best-alignment", "SupCon").message
    assert len(wb.teach.exercises("01")) == 3
