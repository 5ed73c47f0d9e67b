"""A class-conditional diffusion model as a zero-shot classifier.

Paper: Li, Prabhudesai, Duggal, Brown & Pathak 2023, "Your Diffusion Model is Secretly a
Zero-Shot Classifier" (official code diffusion-classifier/diffusion-classifier).

The class whose conditional denoiser explains a sample best is the prediction: for each class
c, the error e_c = E_{t,ε} ‖ε − ε̂_θ(√ᾱ_t x + √(1 − ᾱ_t) ε, t, c)‖² (an estimate of the class's
ELBO up to weighting), and ŷ = argmin_c e_c. As in the paper and its code:

* **paired noise**: at each (timestep, trial) every class sees the *same* ε, so the class
  errors are compared on equal terms (a large variance reduction; ``shared_noise=False``
  draws independently, for the ablation);
* **timesteps**: with n = the largest budget, the evenly spread set
  t_all = range(⌊T/n/2⌋, T, ⌊T/n⌋)[:n]; stage k evaluates n_k of them, taken with stride
  len/n_k from offset len/n_k/2 (the timesteps already evaluated are not repeated);
* **timestep weighting**: ``"uniform"`` (the paper's choice: every evaluated t counts
  equally, which classified better than the ELBO weights), or ``"elbo"`` for the ablation:
  weights ∝ SNR(t−1)/SNR(t) − 1, which turn the ε-error into the diffusion ELBO's terms;
* **adaptive elimination**: after stage k only the ``to_keep[k]`` classes with the lowest
  running mean error stay (errors of earlier stages are reused), so the expensive late stages
  run on few classes (CIFAR-10 in the paper: ``n_samples=(50, 500), to_keep=(5, 1)``).

The cost is counted in network evaluations per sample: Σ_k |classes left at stage k| ·
(new timesteps of stage k) · trials.

Differences from the official code: ε-errors from any parametrisation (x0 or v outputs are
converted to ε first); ``loss`` "l2" (mean squared error over features, as the official
``--loss l2``), "l1" or "huber".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_int, check_seed
from .._device import model_device
from .._modes import eval_mode
from .diffusion import _check_ddpm

LOSSES = ("l2", "l1", "huber")
WEIGHTINGS = ("uniform", "elbo")


def classifier_timesteps(n_steps: int, n_samples: Sequence[int]) -> list[torch.Tensor]:
    """The timesteps each stage evaluates (new ones only), as the official code picks them."""
    n_samples = [check_int(v, "n_samples", min=1, max=n_steps) for v in n_samples]
    n = max(n_samples)
    t_all = torch.arange(n_steps // n // 2, n_steps, n_steps // n)[:n]
    done: set[int] = set()
    stages = []
    for nk in n_samples:
        step = len(t_all) / nk
        idx = [int(step / 2 + i * step) for i in range(nk)]
        new = [int(t_all[j]) for j in idx if int(t_all[j]) not in done]
        done.update(new)
        stages.append(torch.tensor(new, dtype=torch.long))
    return stages


def _weights(ddpm, ts: torch.Tensor, weighting: str) -> torch.Tensor:
    if weighting == "uniform":
        return torch.ones(len(ts))
    a = ddpm.alphas_cumprod.double().cpu()
    snr = a / (1 - a)
    prev = torch.where(ts > 0, snr[(ts - 1).clamp(min=0)], torch.full((len(ts),), float("inf"), dtype=torch.float64))
    w = prev / snr[ts] - 1
    w = torch.where(torch.isfinite(w), w, torch.zeros_like(w))  # t = 0: the decoder term, left out
    return (w / w[w > 0].mean()).float()


@dataclass(frozen=True, eq=False)
class DiffusionClassification:
    """Predictions of the diffusion classifier (CPU).

    ``pred``/``y`` (N,); ``accuracy``; ``errors`` (N, K): each class's weighted mean ε-error
    (inf for classes eliminated before the end); ``evaluations`` (N,) network calls spent on
    each sample; ``stages``: the timesteps of each stage; ``to_keep``.
    """

    pred: torch.Tensor
    y: torch.Tensor | None
    accuracy: float
    errors: torch.Tensor
    evaluations: torch.Tensor
    stages: tuple[torch.Tensor, ...]
    to_keep: tuple[int, ...]
    weighting: str
    shared_noise: bool

    @property
    def mean_evaluations(self) -> float:
        return float(self.evaluations.float().mean())

    def __repr__(self) -> str:
        return (f"DiffusionClassification(n={len(self.pred)}, accuracy={self.accuracy:.4f}, "
                f"{self.mean_evaluations:.0f} network evaluations per sample, stages "
                f"{[len(s) for s in self.stages]} timesteps, keep {list(self.to_keep)}, {self.weighting} weighting)")


def _pair_errors(denoiser, ddpm, x, pairs, t, noise, loss, chunk):
    """(M,) ε-errors of (sample, class) ``pairs`` (M, 2) at timestep ``t`` with noise (M, ...), in chunks."""
    out = []
    for i in range(0, len(pairs), chunk):
        p, nz = pairs[i:i + chunk], noise[i:i + chunk]
        tv = torch.full((len(p),), t, device=x.device)
        x_t = ddpm.add_noise(x[p[:, 0]], nz, tv)
        eps = ddpm.predict_x0_eps(denoiser(x_t, tv, p[:, 1]), x_t, tv)[1]
        if loss == "l2":
            e = (eps - nz) ** 2
        elif loss == "l1":
            e = (eps - nz).abs()
        else:
            e = F.huber_loss(eps, nz, reduction="none")
        out.append(e.reshape(len(p), -1).mean(1))
    return torch.cat(out)


@torch.no_grad()
def diffusion_classify(
    denoiser: nn.Module,
    ddpm,
    data,
    *,
    n_samples: Sequence[int] = (10, 50),
    to_keep: Sequence[int] = (3, 1),
    n_trials: int = 1,
    weighting: str = "uniform",
    loss: str = "l2",
    shared_noise: bool = True,
    n_classes: int | None = None,
    seed: int = 0,
    chunk: int = 16384,
) -> DiffusionClassification:
    """Classify ``data`` with a class-conditional denoiser ``denoiser(x_t, t, y)`` (see the module docstring).

    ``n_samples``/``to_keep``: per stage, the timesteps to have evaluated by its end and the
    classes to keep after it (the last entry of ``to_keep`` should be 1); ``n_trials``: noise
    draws per timestep. Noise comes from a private generator seeded by ``seed``.
    """
    _check_ddpm(ddpm)
    check_choice(weighting, "weighting", WEIGHTINGS)
    check_choice(loss, "loss", LOSSES)
    check_int(n_trials, "n_trials", min=1)
    check_seed(seed)
    if len(n_samples) != len(to_keep) or not n_samples:
        raise ValueError(f"n_samples and to_keep need one entry per stage, got {list(n_samples)} and {list(to_keep)}")
    K = n_classes if n_classes is not None else getattr(denoiser, "n_classes", None)
    if K is None:
        raise ValueError("pass n_classes=: the denoiser does not say how many classes it has")
    keep = [check_int(k, "to_keep", min=1, max=K) for k in to_keep]
    x = getattr(data, "x", data)
    y = getattr(data, "y", None)
    dev = model_device(denoiser)
    x = x.to(dev).float()
    N = len(x)
    stages = classifier_timesteps(ddpm.n_steps, n_samples)
    g = torch.Generator(device=dev).manual_seed(seed)
    sums = torch.zeros(N, K, device=dev, dtype=torch.float64)
    wsum = torch.zeros(N, K, device=dev, dtype=torch.float64)
    alive = torch.ones(N, K, dtype=torch.bool, device=dev)
    evals = torch.zeros(N, dtype=torch.long, device=dev)
    with eval_mode(denoiser, ddpm):
        for ts, k_keep in zip(stages, keep):
            w = _weights(ddpm, ts, weighting)
            for j, t in enumerate(ts.tolist()):
                for _ in range(n_trials):
                    pairs = alive.nonzero()  # (M, 2): sample, class still in the running
                    if shared_noise:  # one ε per sample, the same for all its classes
                        noise = torch.randn((N, *x.shape[1:]), generator=g, device=dev)[pairs[:, 0]]
                    else:
                        noise = torch.randn((len(pairs), *x.shape[1:]), generator=g, device=dev)
                    e = _pair_errors(denoiser, ddpm, x, pairs, t, noise, loss, chunk)
                    sums[pairs[:, 0], pairs[:, 1]] += float(w[j]) * e.double()
                    wsum[pairs[:, 0], pairs[:, 1]] += float(w[j])
                    evals += alive.sum(1)
            mean = torch.where(alive, sums / wsum.clamp(min=1e-12), torch.full_like(sums, float("inf")))
            best = mean.argsort(1)[:, :k_keep]
            alive = torch.zeros_like(alive).scatter_(1, best, True) & alive
    pred = mean.argmin(1).cpu()
    yy = None if y is None else y.cpu()
    acc = float((pred == yy).float().mean()) if yy is not None else float("nan")
    return DiffusionClassification(pred, yy, acc, mean.float().cpu(), evals.cpu(), tuple(stages), tuple(keep),
                                   weighting, bool(shared_noise))


@dataclass(frozen=True, eq=False)
class ClassifierCurve:
    """Accuracy of the diffusion classifier against the network evaluations per sample.

    ``n_timesteps`` (B,) budgets (every class evaluated at that many evenly spread timesteps, no
    elimination); ``evaluations`` (B,) = K · n_t · trials; ``accuracy`` (B,); ``adaptive``:
    the ``DiffusionClassification`` of the adaptive schedule, if computed, for comparison.
    """

    n_timesteps: torch.Tensor
    evaluations: torch.Tensor
    accuracy: torch.Tensor
    adaptive: DiffusionClassification | None = None
    label: str = "diffusion classifier"

    def __repr__(self) -> str:
        pts = ", ".join(f"{int(e)}: {float(a):.3f}" for e, a in zip(self.evaluations, self.accuracy))
        ad = f"; adaptive {self.adaptive.mean_evaluations:.0f}: {self.adaptive.accuracy:.3f}" if self.adaptive else ""
        return f"ClassifierCurve(evaluations: accuracy = {pts}{ad})"


def classifier_curve(denoiser: nn.Module, ddpm, data, *, budgets: Sequence[int] = (1, 2, 5, 10, 25, 50),
                     adaptive: dict | None = None, **options) -> ClassifierCurve:
    """Accuracy vs evaluations: ``diffusion_classify`` with every class kept at each budget of
    evenly spread timesteps (``options`` go to it: weighting, loss, n_trials, seed...), and once with
    the ``adaptive`` schedule (``dict(n_samples=..., to_keep=...)``) if given."""
    K = options.get("n_classes") or getattr(denoiser, "n_classes", None)
    if K is None:
        raise ValueError("pass n_classes=: the denoiser does not say how many classes it has")
    res = [diffusion_classify(denoiser, ddpm, data, n_samples=(int(b),), to_keep=(1,), **options) for b in budgets]
    ad = diffusion_classify(denoiser, ddpm, data, **adaptive, **options) if adaptive else None
    return ClassifierCurve(torch.tensor([len(r.stages[0]) for r in res]),
                           torch.tensor([r.mean_evaluations for r in res]),
                           torch.tensor([r.accuracy for r in res]), ad)
