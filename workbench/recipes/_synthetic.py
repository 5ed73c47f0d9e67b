"""Shared pieces of the dataset-distillation recipes (DM, MTT/DATM, CV-DD).

* ``SyntheticSet``: a distilled data set — images (M, C, H, W), hard labels, optional learned
  soft-label logits (DATM) or a relabelling committee (CV-DD), the images over distillation
  (``frames``) and the loss curve;
* ``real_init`` / ``random_real_subset``: real images per class (the usual initialisation, and
  the baseline a distilled set must beat);
* ``dsa``: differentiable Siamese augmentation for small images (Zhao & Bilen, DSA): one family
  per call — colour (brightness, contrast), crop (shift), cutout, scale, rotate; **no flip**
  (flips hurt digits) — with ONE parameter draw for the whole batch, so two calls with equally
  seeded generators transform a real and a synthetic batch the same way; differentiable in the
  images (``grid_sample``, masks);
* ``train_on_synthetic`` / ``evaluate_synthetic``: train fresh networks on a synthetic set (SGD,
  momentum 0.9, weight decay 5e-4, learning rate ×0.1 after half the epochs, DSA) and score them
  on real test data: accuracy and calibration (ECE, max-logit statistics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int, check_number
from .._modes import eval_mode, train_mode
from ..analyses.ece import Calibration, calibration_of_logits
from ..data.dataset import Dataset
from ..models.distill_convnet import DistillConvNet

__all__ = ["SyntheticSet", "SyntheticEval", "real_init", "random_real_subset", "dsa", "DSA_FAMILIES",
           "train_on_synthetic", "evaluate_synthetic", "default_net"]

DSA_FAMILIES = ("color", "crop", "cutout", "scale", "rotate")


def default_net(data, seed: int) -> nn.Module:
    """The papers' ConvNet for ``data``'s images: width 64, depth 2, instance norm."""
    return DistillConvNet(tuple(data.shape), int(data.n_classes), width=64, depth=2, seed=seed)


@dataclass(frozen=True, eq=False)
class SyntheticSet:
    """A distilled (or baseline) set of labelled images.

    ``images`` (M, C, H, W) and ``labels`` (M,), class-major (``ipc`` images of class 0 first);
    ``soft_labels`` (M, C) learned label logits (DATM) or None; ``teachers`` / ``teacher_weights``
    / ``temperature``: a committee whose weighted logits relabel every training batch (CV-DD);
    ``frames`` (F, M, C, H, W) the images at ``frame_steps`` (F,) during distillation;
    ``losses`` (I,) the distillation loss per iteration; ``lr``: a learned training rate (MTT),
    else None; ``info``: settings.
    """

    images: torch.Tensor = field(repr=False)
    labels: torch.Tensor = field(repr=False)
    method: str
    ipc: int
    soft_labels: torch.Tensor | None = field(default=None, repr=False)
    frames: torch.Tensor | None = field(default=None, repr=False)
    frame_steps: torch.Tensor | None = field(default=None, repr=False)
    losses: torch.Tensor | None = field(default=None, repr=False)
    lr: float | None = None
    teachers: tuple[nn.Module, ...] = field(default=(), repr=False)
    teacher_weights: torch.Tensor | None = field(default=None, repr=False)
    temperature: float = 1.0
    info: dict[str, Any] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def dataset(self) -> Dataset:
        """The images with their hard labels as a ``wb.data.Dataset``."""
        return Dataset(self.images.detach().clone(), self.labels.clone(), name=f"{self.method} ({self.ipc}/class)",
                       kind="image")

    def __repr__(self) -> str:
        extra = ""
        if self.soft_labels is not None:
            extra += ", soft labels"
        if self.teachers:
            extra += f", committee of {len(self.teachers)} (T={self.temperature:g})"
        if self.lr is not None:
            extra += f", learned lr {self.lr:.4g}"
        if self.losses is not None and len(self.losses):
            extra += f", loss {float(self.losses[0]):.4g} → {float(self.losses[-1]):.4g}"
        return f"SyntheticSet({self.method}, {self.ipc} images/class, {len(self)} images{extra})"


def _class_index(y: torch.Tensor) -> list[torch.Tensor]:
    classes = int(y.max()) + 1
    return [(y == c).nonzero().flatten() for c in range(classes)]


def real_init(data, ipc: int, generator: torch.Generator, pick=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``ipc`` random real images of each class, class-major: (images (M, C, H, W), labels (M,)).
    ``pick``: an optional (N,) mask of images allowed (e.g. those experts classify correctly)."""
    ipc = check_int(ipc, "ipc", min=1, hint="images per class")
    if getattr(data, "y", None) is None or data.kind != "image":
        raise ValueError("dataset distillation needs a labelled image Dataset (kind 'image')")
    xs, ys = [], []
    for c, idx in enumerate(_class_index(data.y.cpu())):
        if pick is not None:
            ok = idx[pick[idx]]
            idx = ok if ok.numel() >= ipc else idx
        if idx.numel() < ipc:
            raise ValueError(f"class {c} has {idx.numel()} images, fewer than ipc={ipc}")
        chosen = idx[torch.randperm(idx.numel(), generator=generator)[:ipc]]
        xs.append(data.x[chosen].detach().cpu().clone())
        ys.append(torch.full((ipc,), c, dtype=torch.int64))
    return torch.cat(xs), torch.cat(ys)


def random_real_subset(data, ipc: int, *, seed: int = 0) -> SyntheticSet:
    """The baseline: ``ipc`` random real images per class."""
    x, y = real_init(data, ipc, torch.Generator().manual_seed(int(seed)))
    return SyntheticSet(x, y, "random real", ipc, info={"seed": int(seed)})


# --------------------------------------------------------------------------- DSA
def _affine(x, theta):
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def dsa(x: torch.Tensor, generator: torch.Generator, families=DSA_FAMILIES) -> torch.Tensor:
    """One augmentation family, one parameter draw, applied to the whole batch ``x`` (N, C, H, W).

    Parameters for 8×8 images: colour = brightness ±0.2 and contrast ×[0.5, 1.5] (pixels in
    [0, 1]); crop = shift by up to ±1 pixel (one eighth of the side); cutout = a zeroed square of
    half the side; scale = ×[1/1.2, 1.2]; rotate = ±15°.
    """
    def u(lo=0.0, hi=1.0):
        return lo + (hi - lo) * float(torch.rand((), generator=generator))

    fam = families[int(torch.randint(len(families), (), generator=generator))]
    n, _, h, w = x.shape
    eye = torch.eye(2, 3, device=x.device)
    if fam == "color":
        b, c = u(-0.2, 0.2), u(0.5, 1.5)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * c + mean + b
    if fam == "crop":
        theta = eye.clone()
        theta[0, 2], theta[1, 2] = u(-1, 1) * 2 / w, u(-1, 1) * 2 / h
        return _affine(x, theta.expand(n, 2, 3))
    if fam == "scale":
        theta = eye.clone()
        theta[0, 0], theta[1, 1] = 1 / u(1 / 1.2, 1.2), 1 / u(1 / 1.2, 1.2)
        return _affine(x, theta.expand(n, 2, 3))
    if fam == "rotate":
        a = math.radians(u(-15, 15))
        theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]], device=x.device)
        return _affine(x, theta.expand(n, 2, 3))
    # cutout: a square of half the side, zeroed
    sh, sw = h // 2, w // 2
    y0, x0 = int(u() * (h - sh + 1)), int(u() * (w - sw + 1))
    mask = torch.ones(h, w, device=x.device, dtype=x.dtype)
    mask[min(y0, h - sh):min(y0, h - sh) + sh, min(x0, w - sw):min(x0, w - sw) + sw] = 0
    return x * mask


# --------------------------------------------------------------------------- training on a synthetic set
def _targets(syn: SyntheticSet, idx, x_aug):
    """Soft targets (B, C) for a batch, or None for hard labels."""
    if syn.teachers:
        with torch.no_grad():
            logits = torch.stack([_train_mode_logits(t, x_aug) for t in syn.teachers])  # (K, B, C)
            w = syn.teacher_weights.to(logits.device)
            return F.softmax((w[:, None, None] * logits).sum(0) / syn.temperature, -1)
    if syn.soft_labels is not None:
        return F.softmax(syn.soft_labels[idx].to(x_aug.device), -1)
    return None


def _train_mode_logits(model, x):
    """Logits in train mode (batch statistics, as CV-DD relabels), the model's buffers untouched."""
    state = {k: v.clone() for k, v in model.named_buffers()}
    params = dict(model.named_parameters())
    with train_mode(model):
        return torch.func.functional_call(model, {**params, **state}, (x,))


def train_on_synthetic(syn: SyntheticSet, model: nn.Module, *, epochs: int = 300, lr: float | None = None,
                       batch_size: int = 256, momentum: float = 0.9, weight_decay: float = 5e-4,
                       augment: bool = True, seed: int = 0) -> nn.Module:
    """Train ``model`` (in place) on ``syn``: SGD, lr ×0.1 after half the epochs, DSA per batch.

    ``lr``: default the set's learned rate (MTT) or 0.01. Hard labels → cross-entropy; learned soft
    labels or a committee → cross-entropy with the soft targets; a committee's targets come at its
    ``temperature`` and the loss is KL × T² (CV-DD's validation, T = 20)."""
    epochs = check_int(epochs, "epochs", min=1)
    if lr is None:
        lr = syn.lr if syn.lr is not None else 0.01
    lr = check_number(lr, "lr", min=0, min_open=True)
    g = torch.Generator().manual_seed(int(seed))
    dev = next(model.parameters()).device
    x_all, y_all = syn.images.detach().to(dev), syn.labels.to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    m = x_all.shape[0]
    with train_mode(model):
        for epoch in range(epochs):
            if epoch == epochs // 2:
                for group in opt.param_groups:
                    group["lr"] = lr * 0.1
            order = torch.randperm(m, generator=g).to(dev)
            for i in range(0, m, batch_size):
                idx = order[i:i + batch_size]
                x = dsa(x_all[idx], g) if augment else x_all[idx]
                out = model(x)
                target = _targets(syn, idx.cpu(), x)
                if target is None:
                    loss = F.cross_entropy(out, y_all[idx])
                elif syn.teachers:
                    t = syn.temperature
                    loss = F.kl_div(F.log_softmax(out / t, -1), target, reduction="batchmean") * t * t
                else:
                    loss = -(target * F.log_softmax(out, -1)).sum(-1).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return model


@dataclass(frozen=True)
class SyntheticEval:
    """Networks trained on one synthetic set, scored on real test data: ``accuracy`` / ``ece``
    means and standard deviations over the networks, and each network's ``calibrations``."""

    method: str
    ipc: int
    accuracy: float
    accuracy_std: float
    ece: float
    ece_std: float
    calibrations: tuple[Calibration, ...] = field(repr=False)

    def __repr__(self) -> str:
        return (f"SyntheticEval({self.method}, {self.ipc}/class, {len(self.calibrations)} nets: accuracy "
                f"{self.accuracy:.4f} ± {self.accuracy_std:.4f}, ECE {self.ece:.4f} ± {self.ece_std:.4f})")


def evaluate_synthetic(syn: SyntheticSet, test, *, make_model=None, n_models: int = 3, epochs: int = 300,
                       seed: int = 0, **train_options) -> SyntheticEval:
    """Train ``n_models`` fresh networks (``make_model(seed)``; default the DD ConvNet) on ``syn``
    and score them on ``test``: accuracy and ECE (10 bins), mean ± std over the networks."""
    n_models = check_int(n_models, "n_models", min=1)
    make_model = make_model or (lambda s: default_net(test, s))
    cals = []
    for k in range(n_models):
        net = train_on_synthetic(syn, make_model(seed * 1000 + k), epochs=epochs, seed=seed * 1000 + k,
                                 **train_options)
        with eval_mode(net), torch.no_grad():
            logits = torch.cat([net(x) for x, _ in test.loader(1024, shuffle=False,
                                                                 device=next(net.parameters()).device)])
        cals.append(calibration_of_logits(logits.cpu(), test.y.cpu()))
    acc = torch.tensor([c.accuracy for c in cals], dtype=torch.float64)
    ece = torch.tensor([c.ece for c in cals], dtype=torch.float64)
    def sd(v):
        return (float(v.std()) if len(v) > 1 else 0.0)
    return SyntheticEval(syn.method, syn.ipc, float(acc.mean()), sd(acc), float(ece.mean()), sd(ece), tuple(cals))
