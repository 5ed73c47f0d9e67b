"""Class-conditional DDPM with label dropout, and classifier-free guidance (CFG).

Paper: Ho & Salimans 2022, "Classifier-Free Diffusion Guidance"; the rescale option from Lin,
Liu, Li & Yang 2024, "Common Diffusion Noise Schedules and Sample Steps are Flawed".

* **Training** (``ConditionalDDPM``): one network ε_θ(x_t, t, c). With probability
  ``p_uncond`` each label is replaced by the null label ∅ (the denoiser's ``null_label``, an
  extra embedding row K, never a real class), so the same network learns the conditional and
  the unconditional prediction. Samples labelled −1 (unknown) are always trained as ∅.
* **Guided prediction** (``CFG(scale)``, used by ``sample_trajectory(..., y=, guidance=s)``):
  at the same (x_t, t), out = out_∅ + s·(out_c − out_∅), the **scale** s: s = 0 is the
  unconditional model, s = 1 the conditional one, s > 1 extrapolates past it toward samples the
  label explains well (the tilted target p(x|c)·p(c|x)^(s−1)). Ho & Salimans write
  (1 + w) ε_c − w ε_∅: their w is s − 1. The combination is affine in the network output, so
  it is the same step whether the network predicts ε, x0 or v (no clipping in between).
* ``rescale`` φ (Lin et al.): out ← φ·out·std(out_c)/std(out) + (1 − φ)·out, the standard
  deviation over each sample's values (unbiased, as torch's default), countering the
  over-exposure of large scales on images.

Exactness: the combination is ``torch.lerp(out_∅, out_c, s)``, which returns its end points
bit for bit, so scale 0 *is* the unconditional prediction and scale 1 the conditional one
(tested); both are evaluated at every scale (two network calls a step), as separate calls of
the same batch size as the plain ones, so that no batching difference creeps in.

Differences from the official/diffusers code: diffusers' pipelines skip CFG when scale ≤ 1
(saving the unconditional call); here every scale evaluates both. No guidance interval
(start/stop fractions).
"""

from __future__ import annotations

import torch

from .._checks import check_number
from ._guidance import Guidance, labels_for, null_labels
from .ddpm import DDPM


def cfg_combine(out_uncond: torch.Tensor, out_cond: torch.Tensor, scale) -> torch.Tensor:
    """out_∅ + s·(out_c − out_∅), exact at s = 0 (out_∅) and s = 1 (out_c); ``scale`` a number
    or a tensor broadcasting against the outputs (one scale per sample)."""
    if not isinstance(scale, torch.Tensor):
        scale = float(scale)
    return torch.lerp(out_uncond, out_cond, scale)


def rescale_guided(guided: torch.Tensor, out_cond: torch.Tensor, phi: float) -> torch.Tensor:
    """Lin et al.'s rescale: φ·guided·std(out_c)/std(guided) + (1 − φ)·guided, std per sample (ddof 1)."""
    dims = tuple(range(1, guided.ndim))
    ratio = out_cond.std(dim=dims, keepdim=True) / guided.std(dim=dims, keepdim=True)
    return phi * guided * ratio + (1 - phi) * guided


class ConditionalDDPM(DDPM):
    """DDPM whose denoiser sees the label: ``model(x_t, t, y)``, with label dropout.

    Parameters: those of ``DDPM``, plus ``p_uncond`` (probability of replacing a label by the
    null label, default 0.1; Ho & Salimans used 0.1–0.2). The denoiser must expose
    ``null_label`` (``wb.models.TimeMLP(dim, n_classes=K)`` does: K).
    """

    needs_labels = True

    def __init__(self, n_steps: int = 100, schedule: str = "cosine", *, p_uncond: float = 0.1, **ddpm_options):
        super().__init__(n_steps, schedule, **ddpm_options)
        self.p_uncond = check_number(p_uncond, "p_uncond", min=0, max=1,
                                     hint="the probability of training a label as the null label, e.g. 0.1")

    def loss(self, model, batch):
        if not isinstance(batch, (tuple, list)) or batch[1] is None:
            raise ValueError("ConditionalDDPM needs labels: pass a labelled Dataset (x, y)")
        x0, y = batch[0], batch[1]
        n = x0.shape[0]
        null = null_labels(model, n, x0.device)
        drop = (torch.rand(n, device=x0.device) < self.p_uncond) | (y < 0)
        t = torch.randint(0, self.n_steps, (n,), device=x0.device)
        per = self.denoising_loss(model, x0, t, torch.where(drop, null, y))
        return per.mean(), {"uncond_share": drop.float().mean()}

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", p_uncond={self.p_uncond:g})"


class CFG(Guidance):
    """Classifier-free guidance at ``scale`` (0 unconditional, 1 conditional; see the module
    docstring), optionally with Lin et al.'s ``rescale`` φ in [0, 1]."""

    evaluations = 2

    def __init__(self, scale: float = 1.0, *, rescale: float = 0.0):
        super().__init__()
        self.scale = check_number(scale, "scale", hint="the guidance scale: 0 unconditional, 1 conditional, >1 guided")
        self.rescale = check_number(rescale, "rescale", min=0, max=1, hint="Lin et al.'s phi, 0 (off) to 1")

    def forward(self, denoiser, ddpm, x_t, t, y):
        y = labels_for(y, x_t.shape[0], x_t.device)
        out_u = denoiser(x_t, t, null_labels(denoiser, x_t.shape[0], x_t.device))
        out_c = denoiser(x_t, t, y)
        out = cfg_combine(out_u, out_c, self.scale)
        return rescale_guided(out, out_c, self.rescale) if self.rescale > 0 else out

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}" + (f", rescale={self.rescale:g}" if self.rescale else "")
