"""Distribution Matching Distillation (DMD): a one- (or few-) step generator whose output
distribution is pulled onto the teacher's by the difference of two scores.

Papers: Yin, Gharbi, Zhang, Shechtman, Durand, Freeman & Park 2024, "One-step Diffusion with
Distribution Matching Distillation" (DMD, "v1"); Yin et al. 2024, "Improved Distribution
Matching Distillation for Fast Image Synthesis" (DMD2; official code tianweiy/DMD2,
``main/edm/edm_guidance.py``); Xu, Nie & Vahdat 2025, "One-step Diffusion Models with
f-Divergence Distribution Matching" (f-distill; read in NVlabs/FastGen ``f_distill.py``).

Three networks: the **generator** G (the model ``wb.fit`` trains), the frozen **teacher** (the
"real" score) and a **fake score** network (a copy of the teacher, owned by this method and
trained online on the generator's samples, so it tracks the score of the generator's current
distribution). One ``loss`` call:

1. **Generator sample.** z ~ N(0, I) is x_T; x = f(x_T, T−1), the generator's x̂0 read with
   ``student_prediction``. With ``student_steps`` K > 1 a step k ~ U{0..K−1} is drawn for the
   batch and the generator first runs k steps from noise without gradient, re-noising its x̂0
   to each next timestep (DMD2's backward simulation), then x = f(x_{t_k}, t_k) with gradient.
2. **Distribution-matching gradient** (no gradient through this block): t ~ U{⌊0.02(T−1)⌋..⌊0.98(T−1)⌋},
   x_t = √ᾱ_t x + √(1 − ᾱ_t) ε, μ_real / μ_fake = the teacher's / fake net's x̂0 at (x_t, t);
   grad = (μ_fake − μ_real) / mean|x − μ_real| per sample ("dmd" weighting, NaNs zeroed). It is
   the gradient of KL(p_fake,t ‖ p_real,t) with respect to x up to a positive per-sample scale:
   s_fake − s_real = √ᾱ_t (μ_fake − μ_real)/(1 − ᾱ_t) in VP form. ``weighting="snr"`` uses that
   unnormalised ᾱ_t/(1 − ᾱ_t)·(μ_fake − μ_real), whose expectation is exactly ∂KL/∂x (tested).
   The generator loss is ½·mean((x − sg(x − grad))²), so the generator moves x toward μ_real and
   away from μ_fake.
3. **f-divergence weighting** (option ``divergence``): grad is multiplied by h(r), r = p_real/p_fake
   at x_t, estimated by a discriminator D(x_t, t) trained alongside (softplus / logistic loss,
   noised data = real, noised generator samples = fake; its optimal logit is log r):
   r = exp(clamp(logit, −10, 10)) clipped to [0.1, 20]; h normalised to batch mean 1.
   h: ``rkl`` 1 (= DMD), ``kl`` r, ``js`` r/(1 + r), ``sf`` 1/(1 + r), ``sh`` √r, ``jf`` 1 + r,
   ``neyman`` 1/r (= r² f''(r) up to a constant). Forward-KL-like choices up-weight samples the
   teacher finds likelier than the generator does (less mode-seeking).
4. **Regression loss** (DMD v1, ``regression`` = λ_reg, default 0.25): on a fixed bank of
   ``n_pairs`` (z, y) pairs, y = the teacher's deterministic DDIM sample from z
   (``ode_steps`` steps), add λ_reg·mean‖f(z, T−1) − y‖² (the paper uses LPIPS on images; L2
   here). ``regression=0`` gives the DMD2 objective without its GAN term.
5. **Fake-score update**: the ordinary denoising loss of the fake net on the *detached*
   generator samples (t ~ U{0..T−1}, the teacher's parametrisation and DDPM loss).

All parts are summed into one loss: their gradients touch disjoint parameter sets (generator;
fake net; discriminator), so one optimiser step updates each as separate steps would (Adam is
per parameter), at a 1:1 update ratio as in DMD v1.

Differences from the official code: a discrete VP DDPM teacher (not EDM's Karras σ grid);
the fake net uses the plain DDPM loss (DMD2's Stable-Diffusion variant; its EDM variant weights
by 1/σ² + 1/σ_d²); 1:1 fake/generator updates (DMD2: 5 fake updates per generator update, a GAN
head on the fake net); the teacher is never guided; L2 instead of LPIPS in the regression;
f-distill's per-timestep-bin ratio normalisation and its GAN term on the generator are left
out (the discriminator only estimates r).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_int, check_number, check_seed
from ._few_step import FewStepSampler, teacher_ode
from ._guidance import unconditional
from .base import Method
from .ddpm import DDPM, PREDICTIONS

DIVERGENCES = ("rkl", "kl", "js", "sf", "sh", "jf", "neyman")
WEIGHTINGS = ("dmd", "snr")


def f_divergence_weight(r: torch.Tensor, divergence: str) -> torch.Tensor:
    """h(r) of f-distill for the density ratio r = p_teacher / p_student (not normalised)."""
    check_choice(divergence, "divergence", DIVERGENCES)
    return {
        "rkl": lambda: torch.ones_like(r), "kl": lambda: r, "js": lambda: r / (1 + r),
        "sf": lambda: 1 / (1 + r), "sh": lambda: r.sqrt(), "jf": lambda: 1 + r, "neyman": lambda: 1 / r,
    }[divergence]()


def ratio_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """r = exp(clamp(logit, −10, 10)) clipped to [0.1, 20] (f-distill's stabilisation)."""
    return logits.clamp(-10, 10).exp().clamp(0.1, 20.0)


def dmd_gradient(x: torch.Tensor, mu_real: torch.Tensor, mu_fake: torch.Tensor) -> torch.Tensor:
    """DMD's normalised gradient (μ_fake − μ_real) / mean|x − μ_real| (mean per sample), NaNs zeroed."""
    w = (x - mu_real).abs().reshape(x.shape[0], -1).mean(1).reshape(-1, *([1] * (x.ndim - 1)))
    return torch.nan_to_num((mu_fake - mu_real) / w)


class DMD(FewStepSampler, Method):
    """Train a few-step generator ``model(x_t, t)`` by distribution matching (see the module docstring).

    Parameters
    ----------
    teacher, ddpm: the frozen denoiser and the ``DDPM`` it was trained with (a class-conditional
        teacher is used unconditionally).
    fake: the fake-score network (default: a copy of the teacher, as in DMD), trained here.
    student_steps: K, the steps the generator is trained for (1 = one-step; more use backward
        simulation on the teacher's K trailing timesteps).
    student_prediction: how the generator's output is read (default ``"x0"``).
    regression: λ_reg of DMD v1's regression loss (0 = off); ``n_pairs`` pairs from
        ``ode_steps``-step teacher DDIM, drawn with ``seed``.
    divergence: ``"rkl"`` (DMD) or an f-distill weighting (``DIVERGENCES``); anything but rkl
        trains a ``discriminator`` (default a ``TimeClassifier`` on the data's shape).
    weighting: ``"dmd"`` (mean-|·| normalised) or ``"snr"`` (the unnormalised score difference).
    t_range: fractions of T bounding the DM loss's timesteps (DMD2: 0.02, 0.98).
    """

    needs_labels = False
    SAMPLERS_ = ("few-step",)

    def __init__(
        self,
        teacher: nn.Module,
        ddpm: DDPM,
        fake: nn.Module | None = None,
        *,
        student_steps: int = 1,
        student_prediction: str = "x0",
        regression: float = 0.25,
        n_pairs: int = 4096,
        ode_steps: int | None = None,
        divergence: str = "rkl",
        discriminator: nn.Module | None = None,
        weighting: str = "dmd",
        t_range=(0.02, 0.98),
        seed: int = 0,
    ):
        super().__init__()
        if not isinstance(teacher, nn.Module):
            raise TypeError(f"teacher must be a trained denoiser (nn.Module), got {type(teacher).__name__}")
        if not isinstance(ddpm, DDPM):
            raise TypeError(f"ddpm must be the wb.methods.DDPM the teacher was trained with, got {type(ddpm).__name__}")
        check_choice(student_prediction, "student_prediction", PREDICTIONS)
        check_choice(divergence, "divergence", DIVERGENCES)
        check_choice(weighting, "weighting", WEIGHTINGS)
        self.student_steps = check_int(student_steps, "student_steps", min=1, max=ddpm.n_steps)
        self.regression = check_number(regression, "regression", min=0, hint="DMD v1's lambda_reg, e.g. 0.25 (0 = off)")
        self.n_pairs = check_int(n_pairs, "n_pairs", min=1)
        self.ode_steps = check_int(min(100, ddpm.n_steps) if ode_steps is None else ode_steps, "ode_steps",
                                   min=1, max=ddpm.n_steps)
        lo, hi = (check_number(v, "t_range", min=0, max=1) for v in t_range)
        if not lo <= hi:
            raise ValueError(f"t_range must be (low, high) fractions with low <= high, got {t_range!r}")
        self.teacher, self.ddpm = teacher, ddpm
        self.fake = copy.deepcopy(teacher) if fake is None else fake
        self.student_prediction, self.divergence, self.weighting = student_prediction, divergence, weighting
        self.t_min, self.t_max = int(lo * (ddpm.n_steps - 1)), int(hi * (ddpm.n_steps - 1))
        self.seed = check_seed(seed)
        self.discriminator = discriminator
        self.register_buffer("pair_z", torch.zeros(0), persistent=False)
        self.register_buffer("pair_y", torch.zeros(0), persistent=False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()
        return self

    def setup(self, model, data) -> None:
        """Build the default discriminator for an f-divergence (sized from the data), once."""
        if self.divergence != "rkl" and self.discriminator is None:
            from ..models import TimeClassifier

            dim = int(data.x[0].numel())
            self.discriminator = TimeClassifier(dim, 2, hidden=64, n_layers=2, seed=self.seed)
            self.config["discriminator"] = self.discriminator

    # -------------------------------------------------------------- the generator
    def _f(self, model, x_t, t):
        return self.ddpm.predict_x0_eps(model(x_t, t), x_t, t, self.student_prediction)[0]

    def generate(self, model, z: torch.Tensor, k: int = 0) -> torch.Tensor:
        """The generator's sample from noise ``z`` after the first ``k`` of its K steps (without
        gradient) and one more with gradient (k = 0: one step from t = T−1)."""
        ts = self.ddpm.timesteps(self.student_steps, "trailing").tolist()
        x = z
        with torch.no_grad():
            for i in range(k):
                x0 = self._f(model, x, torch.full((x.shape[0],), ts[i], device=x.device))
                x = self.ddpm.add_noise(x0, torch.randn_like(x0), ts[i + 1])
        return self._f(model, x, torch.full((x.shape[0],), ts[k], device=x.device))

    # -------------------------------------------------------------- the pieces of the loss
    @torch.no_grad()
    def dm_gradient(self, x: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The distribution-matching gradient at generator samples ``x`` (timesteps ``t``, noise
        ``noise``), weighted by h(r) for an f-divergence (the discriminator is only read here)."""
        x_t = self.ddpm.add_noise(x, noise, t)
        mu_real = self.ddpm.predict_x0_eps(unconditional(self.teacher, x_t, t), x_t, t)[0]
        mu_fake = self.ddpm.predict_x0_eps(unconditional(self.fake, x_t, t), x_t, t)[0]
        if self.weighting == "dmd":
            grad = dmd_gradient(x, mu_real, mu_fake)
        else:
            a, w = (self.ddpm._bcast(v, x) for v in self.ddpm._abar_omega(t))
            grad = (a / w) * (mu_fake - mu_real)
        if self.divergence != "rkl":
            r = ratio_from_logits(self._disc_logit(x_t, t))
            h = f_divergence_weight(r, self.divergence)
            grad = grad * (h / h.mean()).reshape(-1, *([1] * (x.ndim - 1)))
        return grad

    def _disc_logit(self, x_t, t):
        out = self.discriminator(x_t, t)
        return out[:, 1] - out[:, 0] if out.ndim == 2 and out.shape[1] == 2 else out.reshape(-1)

    def _discriminator_loss(self, real, fake):
        n = min(real.shape[0], fake.shape[0])
        x = torch.cat([real[:n], fake[:n].detach()])
        t = torch.randint(self.t_min, self.t_max + 1, (2 * n,), device=x.device)
        logit = self._disc_logit(self.ddpm.add_noise(x, torch.randn_like(x), t), t)
        return F.softplus(-logit[:n]).mean() + F.softplus(logit[n:]).mean()

    @torch.no_grad()
    def build_pairs(self, shape, device) -> None:
        """DMD v1's regression pairs: ``n_pairs`` seeded noises and the teacher's DDIM samples from them."""
        g = torch.Generator(device=device).manual_seed(self.seed)
        z = torch.randn((self.n_pairs, *shape), generator=g, device=device)
        _, y = teacher_ode(self.teacher, self.ddpm, z, self.ode_steps)
        self.pair_z, self.pair_y = z, y

    def _regression_loss(self, model, x0):
        if self.pair_y.numel() == 0 or self.pair_y.shape[1:] != x0.shape[1:] or self.pair_y.device != x0.device:
            self.build_pairs(tuple(x0.shape[1:]), x0.device)
        idx = torch.randint(0, self.n_pairs, (x0.shape[0],), device=x0.device)
        t = torch.full((x0.shape[0],), self.ddpm.n_steps - 1, device=x0.device)
        pred = self._f(model, self.pair_z[idx], t)
        return ((pred - self.pair_y[idx]) ** 2).reshape(x0.shape[0], -1).sum(1).mean()

    def loss(self, model, batch):
        real = batch[0] if isinstance(batch, (tuple, list)) else batch
        n, dev = real.shape[0], real.device
        k = int(torch.randint(0, self.student_steps, ()))
        x = self.generate(model, torch.randn_like(real), k)
        t = torch.randint(self.t_min, self.t_max + 1, (n,), device=dev)
        grad = self.dm_gradient(x, t, torch.randn_like(x))
        loss_dm = 0.5 * F.mse_loss(x, (x - grad).detach())
        t_fake = torch.randint(0, self.ddpm.n_steps, (n,), device=dev)
        loss_fake = self.ddpm.denoising_loss(self.fake, x.detach(), t_fake).mean()
        total, logs = loss_dm + loss_fake, {"dm": loss_dm.detach(), "fake_dsm": loss_fake.detach()}
        if self.regression > 0:
            loss_reg = self._regression_loss(model, real)
            total = total + self.regression * loss_reg
            logs["regression"] = loss_reg.detach()
        if self.divergence != "rkl":
            loss_d = self._discriminator_loss(real, x)
            total = total + loss_d
            logs["discriminator"] = loss_d.detach()
        return total, logs
