"""A trained denoiser as a feature extractor: hidden activations at a chosen noise level.

Papers: Mukhopadhyay, Gwilliam, Agarwal, Padmanabhan, Swaminathan, Hegde, Zhou & Shrivastava
2023, "Diffusion Models Beat GANs on Image Classification" (and its follow-up "Do text-free
diffusion models learn discriminative visual representations?", code soumik-kanad/diffssl);
Yue, Wang, Sun, Hua & Zhang 2024, "Exploring Diffusion Time-steps for Unsupervised
Representation Learning".

``diffusion_features``: noise each clean sample to timestep t (x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε,
ε from a seeded generator, averaged over ``n_noise`` draws if more than one), run the frozen
denoiser once, and keep the outputs of the named hidden layers (forward hooks; flattened;
4-D feature maps are average-pooled to ``pool`` × ``pool`` first, as diffssl pools before its
linear head). A class-conditional denoiser is run unconditionally (its null label).

``probe_grid``: a logistic-regression probe (``linear_probe_accuracy``) trained on the features
of a training set and scored on a test set, for every (timestep, layer): the heat map of how
discriminative each layer is at each noise level. The papers find the best features at a small
to moderate t (diffssl: t ≈ 90–150 of 1000), not at t = 0, and just after the bottleneck.

Differences: diffssl trains its linear head with SGD for 28 epochs; here scikit-learn's
logistic regression (L-BFGS, standardised features). DiTi's chunked encoder is not built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int, check_seed
from .._device import model_device
from .._modes import eval_mode
from .diffusion import _check_ddpm
from .representation import linear_probe_accuracy


def _layer_names(denoiser: nn.Module, layers) -> tuple[str, ...]:
    if layers is None:
        layers = getattr(denoiser, "hidden_layers", None)
        if layers is None:
            children = [n for n, _ in denoiser.named_children()]
            raise ValueError(f"pass layers=[...] (module names of {type(denoiser).__name__}); its children: {children}")
    layers = (layers,) if isinstance(layers, str) else tuple(layers)
    names = dict(denoiser.named_modules())
    bad = [n for n in layers if n not in names]
    if bad:
        raise ValueError(f"no modules named {bad} in {type(denoiser).__name__}; valid: {[n for n in names if n][:30]}")
    return layers


@dataclass(frozen=True, eq=False)
class DiffusionFeatures:
    """``features``: layer name -> (N, D) activations at timestep ``t`` (CPU, float32); ``y`` (N,) labels or None."""

    features: dict
    t: int
    sigma: float
    y: torch.Tensor | None
    n_noise: int

    def __getitem__(self, layer: str) -> torch.Tensor:
        return self.features[layer]

    def __repr__(self) -> str:
        dims = ", ".join(f"{k}: {tuple(v.shape[1:])}" for k, v in self.features.items())
        return f"DiffusionFeatures(t={self.t}, sigma={self.sigma:.3f}, n={len(next(iter(self.features.values())))}, {dims})"


@torch.no_grad()
def diffusion_features(
    denoiser: nn.Module,
    ddpm,
    data,
    t: int,
    *,
    layers: Sequence[str] | str | None = None,
    n_noise: int = 1,
    pool: int = 2,
    seed: int = 0,
    batch_size: int = 1024,
) -> DiffusionFeatures:
    """Hidden activations of ``denoiser`` at x_t for ``data``'s samples (see the module docstring).

    ``layers``: module names (default ``denoiser.hidden_layers``, e.g. ``TimeMLP``'s "inp",
    "blocks.0", ...). The denoiser is left as it was (eval mode during the pass; hooks removed).
    """
    from ..methods._guidance import unconditional

    _check_ddpm(ddpm)
    t = check_int(t, "t", min=0, max=ddpm.n_steps - 1)
    check_int(n_noise, "n_noise", min=1)
    check_seed(seed)
    names = _layer_names(denoiser, layers)
    x = getattr(data, "x", data)
    dev = model_device(denoiser)
    g = torch.Generator(device=dev).manual_seed(seed)
    store: dict[str, list] = {n: [] for n in names}
    current: dict[str, torch.Tensor] = {}

    def hook(name):
        def fn(_m, _inp, out):
            out = out[0] if isinstance(out, (tuple, list)) else out
            if out.ndim == 4:
                out = F.adaptive_avg_pool2d(out, pool)
            current[name] = out.reshape(out.shape[0], -1).float()
        return fn

    modules = dict(denoiser.named_modules())
    handles = [modules[n].register_forward_hook(hook(n)) for n in names]
    try:
        with eval_mode(denoiser, ddpm):
            for i in range(0, len(x), batch_size):
                x0 = x[i:i + batch_size].to(dev).float()
                tv = torch.full((len(x0),), t, device=dev)
                acc = {}
                for _ in range(n_noise):
                    unconditional(denoiser, ddpm.add_noise(x0, torch.randn(x0.shape, generator=g, device=dev), tv), tv)
                    for n in names:
                        acc[n] = acc.get(n, 0) + current[n] / n_noise
                for n in names:
                    store[n].append(acc[n].cpu())
    finally:
        for h in handles:
            h.remove()
    y = getattr(data, "y", None)
    return DiffusionFeatures({n: torch.cat(v) for n, v in store.items()}, t, float(ddpm.sigma(t)),
                             None if y is None else y.cpu(), n_noise)


@dataclass(frozen=True, eq=False)
class ProbeGrid:
    """Linear-probe test accuracy ``accuracy`` (T, L) for ``timesteps`` (T,) × ``layers`` (L);
    ``sigmas`` (T,) their noise levels; ``input_accuracy`` the probe on the raw inputs."""

    accuracy: torch.Tensor
    timesteps: torch.Tensor
    sigmas: torch.Tensor
    layers: tuple[str, ...]
    input_accuracy: float

    def best(self) -> tuple[int, str, float]:
        """(timestep, layer, accuracy) of the best cell."""
        i = int(self.accuracy.argmax())
        r, c = divmod(i, len(self.layers))
        return int(self.timesteps[r]), self.layers[c], float(self.accuracy[r, c])

    def __repr__(self) -> str:
        t, layer, a = self.best()
        return (f"ProbeGrid({len(self.timesteps)} timesteps x {len(self.layers)} layers; best t={t} {layer!r}: "
                f"{a:.3f}; raw input {self.input_accuracy:.3f})")


def probe_grid(
    denoiser: nn.Module,
    ddpm,
    train,
    test,
    timesteps: Sequence[int],
    *,
    layers: Sequence[str] | None = None,
    n_noise: int = 1,
    C: float = 1.0,
    max_iter: int = 500,
    seed: int = 0,
) -> ProbeGrid:
    """Probe accuracy on ``test`` of logistic regressions trained on ``train``'s diffusion
    features, for every timestep in ``timesteps`` and every layer (see the module docstring)."""
    if getattr(train, "y", None) is None or getattr(test, "y", None) is None:
        raise ValueError("probe_grid needs labelled train and test sets")
    names = _layer_names(denoiser, layers)
    ts = [check_int(int(t), "timesteps", min=0, max=ddpm.n_steps - 1) for t in timesteps]
    acc = torch.zeros(len(ts), len(names))
    for i, t in enumerate(ts):
        ftr = diffusion_features(denoiser, ddpm, train, t, layers=names, n_noise=n_noise, seed=seed)
        fte = diffusion_features(denoiser, ddpm, test, t, layers=names, n_noise=n_noise, seed=seed + 1)
        for j, n in enumerate(names):
            acc[i, j] = linear_probe_accuracy(ftr[n], train.y, fte[n], test.y, C=C, max_iter=max_iter, seed=seed)
    raw = linear_probe_accuracy(train.x.reshape(len(train.x), -1), train.y, test.x.reshape(len(test.x), -1), test.y,
                                C=C, max_iter=max_iter, seed=seed)
    sig = torch.tensor([float(ddpm.sigma(t)) for t in ts])
    return ProbeGrid(acc, torch.tensor(ts), sig, names, raw)
