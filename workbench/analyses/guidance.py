"""What guidance does to the score field and to the samples, for the guidance views.

* ``guided_fields``: the unguided (unconditional) score field and the classifier-free-guided
  one for every class and scale, on a 2-D grid at chosen timesteps. The guided score is
  −ε̃/√(1 − ᾱ_t) with ε̃ = ε_∅ + s (ε_c − ε_∅) (``wb.methods.cfg_combine``): at s = 0 the
  unconditional field, at s = 1 the conditional one, beyond it the class's pull grows and the
  other modes' pull turns into a push.
* ``guidance_sweep``: samples drawn at each guidance scale (classifier-free by default, or any
  guide built by ``guide(s)``, e.g. minority guidance) and what they look like against held-out
  data: ``sample_quality`` (energy distance, MMD, precision/recall, in-support share, modes
  covered), the share of samples landing in the mode of the class asked for
  (``class_accuracy``, for data with known modes) and each mode's share of the in-support
  samples (``mode_shares``: how guidance redistributes mass, e.g. toward rare modes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .._checks import check_int
from .._device import model_device
from .._modes import eval_mode
from .diffusion import (
    _check_ddpm,
    ddpm_device,
    field_timesteps,
    plane_grid,
    sample_trajectory,
)
from .diffusion_quality import SampleQuality, hallucination_flags, sample_quality


@dataclass(frozen=True, eq=False)
class GuidedFields:
    """Score fields on a G×G grid (CPU tensors).

    ``unguided``: (K, P, 2) unconditional score at the K ``timesteps``; ``guided``:
    (S, C, K, P, 2) the CFG score at each of the S ``scales`` and C ``classes``;
    ``points`` (P, 2), ``grid_x``/``grid_y`` (G,), ``sigmas`` (K,).
    """

    grid_x: torch.Tensor
    grid_y: torch.Tensor
    points: torch.Tensor
    unguided: torch.Tensor
    guided: torch.Tensor
    timesteps: torch.Tensor
    sigmas: torch.Tensor
    scales: torch.Tensor
    classes: tuple[int, ...]

    def index(self, *, t: int | None = None, scale: float | None = None, cls: int | None = None) -> dict:
        """Indices (``k``, ``s``, ``c``) of the nearest timestep, scale and the class."""
        out = {}
        if t is not None:
            out["k"] = int((self.timesteps - int(t)).abs().argmin())
        if scale is not None:
            out["s"] = int((self.scales - float(scale)).abs().argmin())
        if cls is not None:
            if int(cls) not in self.classes:
                raise ValueError(f"class {cls} was not computed; classes: {list(self.classes)}")
            out["c"] = self.classes.index(int(cls))
        return out

    def __repr__(self) -> str:
        g = len(self.grid_x)
        return (f"GuidedFields(grid {g}x{g}, {len(self.timesteps)} timesteps, scales {self.scales.tolist()}, "
                f"classes {list(self.classes)})")


@torch.no_grad()
def guided_fields(
    denoiser: nn.Module,
    ddpm,
    t,
    *,
    classes: Sequence[int] | None = None,
    scales: Sequence[float] = (0.0, 1.0, 2.0, 4.0),
    lim: float = 2.0,
    resolution: int = 19,
) -> GuidedFields:
    """Unguided and classifier-free-guided score fields of a class-conditional 2-D denoiser.

    ``t``: an int, a list, or a ``Trajectory`` (its frames' timesteps); ``classes``: default all
    (``denoiser.n_classes``); ``scales``: the guidance scales (0 = unconditional).
    """
    from ..methods._guidance import null_labels
    from ..methods.cfg import cfg_combine

    _check_ddpm(ddpm)
    ts = field_timesteps(t, ddpm)
    check_int(resolution, "resolution", min=2)
    n_classes = getattr(denoiser, "n_classes", None)
    if classes is None:
        if n_classes is None:
            raise ValueError("pass classes=[...]: the denoiser does not say how many classes it has")
        classes = range(n_classes)
    classes = tuple(int(c) for c in classes)
    sc = torch.as_tensor([float(s) for s in scales], dtype=torch.float32)
    if len(sc) == 0 or len(classes) == 0:
        raise ValueError("pass at least one scale and one class")
    gx, gy, pts = plane_grid(lim, resolution)
    dev = model_device(denoiser)
    K, P = len(ts), len(pts)
    x = pts.to(dev).repeat(K, 1)  # (K*P, 2)
    tt = ts.to(dev).repeat_interleave(P)  # (K*P,)
    with eval_mode(denoiser, ddpm):
        eps_u = ddpm.predict_x0_eps(denoiser(x, tt, null_labels(denoiser, len(x), dev)), x, tt)[1]
        eps_c = torch.stack([ddpm.predict_x0_eps(denoiser(x, tt, torch.full((len(x),), c, device=dev)), x, tt)[1]
                             for c in classes])  # (C, K*P, 2)
    sig = ddpm.sigma(ts.to(ddpm_device(ddpm))).float().to(dev)
    per_t = sig.repeat_interleave(P)[:, None]  # (K*P, 1)
    guided = torch.stack([cfg_combine(eps_u, eps_c, float(s)) for s in sc])  # (S, C, K*P, 2)
    unguided = (-eps_u / per_t).reshape(K, P, 2)
    guided = (-guided / per_t).reshape(len(sc), len(classes), K, P, 2)
    return GuidedFields(gx, gy, pts, unguided.float().cpu(), guided.float().cpu(), ts, sig.cpu(), sc, classes)


@dataclass(frozen=True, eq=False)
class GuidanceSweep:
    """Samples and their quality at each guidance scale (CPU).

    ``scales`` (S,); ``samples`` (S, N, D); ``labels`` (N,) the classes asked for (None for
    unconditional guides); ``quality``: S ``SampleQuality``; ``class_accuracy`` (S,): share of
    samples in-support in the mode of their label (NaN without labels or modes);
    ``mode_shares`` (S, M): share of the in-support samples in each of the M modes;
    ``evaluations``: network calls per sample at each scale.
    """

    scales: torch.Tensor
    samples: torch.Tensor
    labels: torch.Tensor | None
    quality: tuple[SampleQuality, ...]
    class_accuracy: torch.Tensor
    mode_shares: torch.Tensor | None
    evaluations: torch.Tensor
    guide: str = ""
    meta: dict = field(default_factory=dict, repr=False)

    def series(self, key: str) -> torch.Tensor:
        """(S,) one ``SampleQuality`` field (e.g. ``"precision"``) or ``"class_accuracy"`` along the scales."""
        if key == "class_accuracy":
            return self.class_accuracy
        if key not in SampleQuality.__dataclass_fields__:
            raise ValueError(f"unknown key {key!r}; valid: class_accuracy, {', '.join(SampleQuality.__dataclass_fields__)}")
        return torch.tensor([float("nan") if getattr(q, key) is None else float(getattr(q, key)) for q in self.quality])

    def __repr__(self) -> str:
        rows = ", ".join(f"s={float(s):g}: prec {q.precision:.2f} rec {q.recall:.2f}"
                         + ("" if torch.isnan(a) else f" acc {float(a):.2f}")
                         for s, q, a in zip(self.scales, self.quality, self.class_accuracy))
        return f"GuidanceSweep({self.guide}, n={self.samples.shape[1]}; {rows})"


def guidance_sweep(
    denoiser: nn.Module,
    ddpm,
    reference,
    *,
    scales: Sequence[float] = (0.0, 1.0, 2.0, 4.0),
    guide: Callable | None = None,
    y=None,
    n: int = 1024,
    steps: int | None = None,
    sampler: str | None = None,
    seed: int = 0,
    modes=None,
) -> GuidanceSweep:
    """Sample ``n`` points at each guidance scale (the same seed, hence the same x_T, at every scale)
    and score them against held-out ``reference`` data.

    ``guide``: ``guide(s)`` -> a ``wb.methods.Guidance`` (default ``wb.methods.CFG(s)``);
    ``y``: the labels asked for (default: classes 0..K−1 in turn, when the denoiser has
    ``n_classes``); ``modes``: data whose ``meta`` holds the mode centres (default ``reference``).
    """
    from ..methods.cfg import CFG

    check_int(n, "n", min=4)
    make = guide if guide is not None else CFG
    k = getattr(denoiser, "n_classes", None)
    if y is None and k is not None:
        y = torch.arange(n) % k
    labels = None if y is None else torch.as_tensor(y).expand(n).clone().long().cpu()
    sc = torch.as_tensor([float(s) for s in scales], dtype=torch.float32)
    samples, quality, acc, shares, evals, name = [], [], [], [], [], ""
    src = modes if modes is not None else reference
    has_modes = "centres" in (getattr(src, "meta", None) or {})
    for s in sc.tolist():
        g = make(s)
        name = type(g).__name__
        tr = sample_trajectory(denoiser, ddpm, n=n, steps=steps, sampler=sampler, seed=seed, record_every=None,
                               y=labels, guidance=g)
        x = tr.samples.reshape(n, -1)
        samples.append(x)
        quality.append(sample_quality(x, reference, modes=modes, seed=seed))
        evals.append(getattr(g, "evaluations", 1) * tr.steps)
        if has_modes:
            fl = hallucination_flags(x, src)
            hist = torch.bincount(fl.nearest[fl.in_support], minlength=fl.n_modes).double()
            shares.append((hist / hist.sum().clamp(min=1)).float())
            acc.append(float(((fl.nearest == labels) & fl.in_support).float().mean()) if labels is not None else float("nan"))
        else:
            acc.append(float("nan"))
    return GuidanceSweep(sc, torch.stack(samples), labels, tuple(quality), torch.tensor(acc),
                         torch.stack(shares) if shares else None, torch.tensor(evals), name,
                         {"steps": steps, "seed": seed})
