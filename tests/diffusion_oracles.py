"""Closed-form diffusion oracles shared by the tests (not a test module)."""

from __future__ import annotations

import math

import torch

import workbench as wb


class GaussianClasses(torch.nn.Module):
    """Exact ε-predictor for 1-D (or D-dim isotropic) Gaussian classes N(m_c, s²) with priors π,
    as a class-conditional denoiser: ``den(x_t, t, y)``; y = K (null) gives the mixture's ε."""

    def __init__(self, ddpm, means, std, priors):
        super().__init__()
        self.ddpm = ddpm
        self.register_buffer("means", torch.as_tensor(means, dtype=torch.float64))
        self.std, self.n_classes = float(std), len(means)
        self.register_buffer("priors", torch.as_tensor(priors, dtype=torch.float64))
        self.dim = 1

    @property
    def null_label(self):
        return self.n_classes

    def _abar(self, t, n):
        return self.ddpm.abar(torch.as_tensor(t).expand(n)).double()[:, None]

    def log_joint(self, x_t, t):
        """(N, K) log π_c + log N(x_t; √ᾱ m_c, ᾱ s² + 1 − ᾱ)."""
        a = self._abar(t, len(x_t))
        var = a * self.std**2 + 1 - a
        d = x_t.double() - a.sqrt() * self.means[None, :]
        return self.priors.log()[None] - 0.5 * d**2 / var - 0.5 * torch.log(2 * math.pi * var)

    def eps_class(self, x_t, t):
        a = self._abar(t, len(x_t))
        var = a * self.std**2 + 1 - a
        return (1 - a).sqrt() * (x_t.double() - a.sqrt() * self.means[None, :]) / var  # (N, K)

    def forward(self, x_t, t, y=None):
        e = self.eps_class(x_t, t)
        if y is None:
            y = torch.full((len(x_t),), self.n_classes)
        y = torch.as_tensor(y).expand(len(x_t))
        post = torch.softmax(self.log_joint(x_t, t), -1)
        mix = (post * e).sum(-1)
        cond = e.gather(1, y.clamp(max=self.n_classes - 1)[:, None]).squeeze(1)
        return torch.where(y == self.n_classes, mix, cond).to(x_t.dtype)[:, None]


class ExactPosterior(torch.nn.Module):
    """The exact classifier p(y | x_t, t) of ``GaussianClasses`` (logits = log joint)."""

    def __init__(self, classes: GaussianClasses):
        super().__init__()
        self.classes = classes
        self.n_classes = classes.n_classes

    def forward(self, x_t, t):
        return self.classes.log_joint(x_t.reshape(len(x_t), -1)[:, 0:1], t).to(x_t.dtype)


def half_abar_ddpm():
    """A DDPM whose t = 0 has ᾱ = 0.5 exactly (linear β from 0.5)."""
    return wb.methods.DDPM(2, "linear", beta_start=0.5, beta_end=0.6)
