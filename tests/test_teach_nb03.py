"""Notebook 03's exercises: right answers pass, typical wrong ones get their hint, never a traceback."""

from types import SimpleNamespace

import torch

import workbench as wb


def test_forward():
    assert wb.teach.check("03-forward", lambda x0, eps, abar: abar ** 0.5 * x0 + (1 - abar) ** 0.5 * eps)
    ddpm = wb.methods.DDPM(n_steps=10)
    # the library's add_noise is the same map
    x0, eps = torch.randn(4, 2), torch.randn(4, 2)
    abar = float(ddpm.abar(3))
    assert torch.allclose(ddpm.add_noise(x0, eps, 3), abar ** 0.5 * x0 + (1 - abar) ** 0.5 * eps, atol=1e-6)
    no_sqrt = wb.teach.check("03-forward", lambda x0, eps, a: a * x0 + (1 - a) * eps)
    assert "square roots" in no_sqrt.message
    swapped = wb.teach.check("03-forward", lambda x0, eps, a: (1 - a) ** 0.5 * x0 + a ** 0.5 * eps)
    assert "swapped" in swapped.message
    half = wb.teach.check("03-forward", lambda x0, eps, a: a ** 0.5 * x0 + (1 - a) * eps)
    assert "one coefficient" in half.message
    assert "must shrink" in wb.teach.check("03-forward", lambda x0, eps, a: x0 + (1 - a) ** 0.5 * eps).message
    assert "tensor like x0" in wb.teach.check("03-forward", lambda x0, eps, a: None).message
    assert "shape" in wb.teach.check("03-forward", lambda x0, eps, a: x0.sum()).message
    assert "raised" in wb.teach.check("03-forward", lambda x0, eps: x0).message


def _flags(share):
    n = 1000
    return SimpleNamespace(hallucination=torch.arange(n) < int(share * n))


def test_sampler():
    ddpm, ddim = _flags(0.05), _flags(0.12)
    r = wb.teach.check("03-sampler", "more", ddpm_flags=ddpm, ddim_flags=ddim)
    assert r and "DDPM 5.0%, DDIM-50 12.0%" in r.message
    assert "DDPM's noise" in wb.teach.check("03-sampler", "fewer", ddpm_flags=ddpm, ddim_flags=ddim).message
    assert not wb.teach.check("03-sampler", "same", ddpm_flags=ddpm, ddim_flags=ddim)
    # the measured shares decide
    assert wb.teach.check("03-sampler", "same", ddpm_flags=_flags(0.1), ddim_flags=_flags(0.105))
    assert "pass both flags" in wb.teach.check("03-sampler", "more").message
    assert "hallucination flags" in wb.teach.check("03-sampler", "more", ddpm_flags=1, ddim_flags=2).message


def test_one_step():
    quality = {"student 1-step": SimpleNamespace(energy=0.02), "teacher DDIM-1": SimpleNamespace(energy=0.6)}
    r = wb.teach.check("03-one-step", "Student", quality=quality)
    assert r and "student 0.020" in r.message
    assert "average clean point" in wb.teach.check("03-one-step", "teacher", quality=quality).message
    assert "pass the quality" in wb.teach.check("03-one-step", "student").message
    assert "should hold" in wb.teach.check("03-one-step", "student", quality={}).message
    assert "not one of the choices" in wb.teach.check("03-one-step", "both", quality=quality).message
    assert len(wb.teach.exercises("03")) == 3
