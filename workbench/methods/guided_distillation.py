"""Guided distillation, first stage: one student that takes the guidance scale as input.

Paper: Meng, Rombach, Gao, Kingma, Ermon, Ho & Salimans 2023, "On Distillation of Guided
Diffusion Models" (no official code was found; read from the paper).

Classifier-free guidance costs two network calls a step (conditional and unconditional). The
first stage of Meng et al. trains a single student x̂_η(z_t, c, w) to match the teacher's
*combined* prediction at every guidance strength at once:

* draw x0 (with its label c) from the data, t ~ U{0..T−1}, the scale s ~ U[s_min, s_max] and
  z_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε;
* target (x space, teacher frozen): x̂^s = x̂_∅ + s (x̂_c − x̂_∅), i.e. Meng's
  (1 + w) x̂_c − w x̂_∅ with w = s − 1 (``cfg_combine``, exact at s = 0 and 1);
* loss: ω(λ_t)·‖x̂_η(z_t, c, s) − x̂^s‖² with the truncated-SNR weight ω = max(SNR_t, 1)
  (SNR_t = ᾱ_t/(1 − ᾱ_t), as in progressive distillation), averaged over the batch.

The student reads the scale through ``guidance_embedding`` (sinusoids of s·1000, the LCM /
diffusers convention) added to its first hidden layer by a zero-initialised projection
(``wb.models.TimeMLP(guidance_input=True)``); ``guided_student(teacher)`` builds one and loads
the teacher's weights, so it starts as the teacher's conditional model. Sampling with the
student (``StudentScale(s)`` as the guide) costs one call a step instead of two.

Differences from the paper: the scale s (= 1 + w) is what the student sees; the paper's default
range w ∈ [0, 4] for pixel-space models is ``scale_range=(1, 5)`` here (w ranges from memory of
the paper, not re-verified); the second (progressive, fewer-step) stage is not built.
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_number
from ._guidance import Guidance, labels_for, null_labels
from .base import Method
from .cfg import cfg_combine
from .ddpm import DDPM


def guided_student(teacher: nn.Module, *, seed: int | None = None) -> nn.Module:
    """A ``TimeMLP`` like ``teacher`` with a guidance-scale input, holding the teacher's weights."""
    from ..models import TimeMLP

    if not isinstance(teacher, TimeMLP) or teacher.n_classes is None:
        raise TypeError("guided_student copies a class-conditional wb.models.TimeMLP (built with n_classes=K); "
                        "for another network build the student yourself with a guidance-scale input")
    cfg = {k: v for k, v in teacher.config.items() if k not in ("seed", "guidance_input")}
    student = TimeMLP(**cfg, guidance_input=True, seed=seed).to(next(teacher.parameters()).device)
    missing, unexpected = student.load_state_dict(teacher.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("scale_proj") for k in missing), (missing, unexpected)
    return student


class GuidedDistillation(Method):
    """Train ``model(x_t, t, y, scale=s)`` to output the teacher's CFG prediction at scale s.

    Parameters
    ----------
    teacher: the class-conditional denoiser trained with ``ConditionalDDPM`` (frozen).
    ddpm: its ``DDPM`` (schedule, parametrisation); the student uses the same parametrisation.
    scale_range: (s_min, s_max) of the uniformly drawn guidance scale (0 = unconditional).
    """

    def __init__(self, teacher: nn.Module, ddpm: DDPM, *, scale_range=(1.0, 5.0)):
        super().__init__()
        if not isinstance(teacher, nn.Module):
            raise TypeError(f"teacher must be the trained conditional denoiser, got {type(teacher).__name__}")
        if not isinstance(ddpm, DDPM):
            raise TypeError(f"ddpm must be the wb.methods.DDPM the teacher was trained with, got {type(ddpm).__name__}")
        if not isinstance(scale_range, (tuple, list)) or len(scale_range) != 2:
            raise TypeError(f"scale_range must be a pair (low, high), got {scale_range!r}")
        lo = check_number(scale_range[0], "scale_range[0]", min=0)
        hi = check_number(scale_range[1], "scale_range[1]", min=lo, hint="scale_range is (low, high), low <= high")
        self.teacher, self.ddpm, self.scale_range = teacher, ddpm, (lo, hi)

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # frozen: never in train mode (dropout, BatchNorm statistics)
        return self

    def target(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """The teacher's guided x̂0: x̂_∅ + s (x̂_c − x̂_∅), per-sample scales ``scale`` (N,)."""
        with torch.no_grad():
            u, _ = self.ddpm.predict_x0_eps(self.teacher(x_t, t, null_labels(self.teacher, x_t.shape[0], x_t.device)), x_t, t)
            c, _ = self.ddpm.predict_x0_eps(self.teacher(x_t, t, y), x_t, t)
            return cfg_combine(u, c, scale.reshape(-1, *([1] * (u.ndim - 1))).to(u.dtype))

    def loss(self, model, batch):
        if not isinstance(batch, (tuple, list)) or batch[1] is None:
            raise ValueError("GuidedDistillation needs labels: pass a labelled Dataset (x, y)")
        x0, y = batch
        keep = y >= 0
        x0, y = x0[keep], y[keep]
        n = x0.shape[0]
        t = torch.randint(0, self.ddpm.n_steps, (n,), device=x0.device)
        lo, hi = self.scale_range
        s = lo + (hi - lo) * torch.rand(n, device=x0.device)
        x_t = self.ddpm.add_noise(x0, torch.randn_like(x0), t)
        target = self.target(x_t, t, y, s)
        pred, _ = self.ddpm.predict_x0_eps(model(x_t, t, y, scale=s), x_t, t)
        a, w = self.ddpm._abar_omega(t)
        weight = (a / w).clamp(min=1.0)  # max(SNR, 1)
        per = ((pred - target) ** 2).reshape(n, -1).mean(1)
        return (weight * per).mean(), {"mse_x0": per.mean()}


class StudentScale(Guidance):
    """Sample a guided-distillation student at ``scale``: one call ``model(x_t, t, y, scale=s)`` a step."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = check_number(scale, "scale", hint="the guidance scale the student was trained on")

    def forward(self, denoiser, ddpm, x_t, t, y):
        return denoiser(x_t, t, labels_for(y, x_t.shape[0], x_t.device), scale=self.scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}"
