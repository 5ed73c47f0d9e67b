"""Dataset distillation by committee voting (CV-DD; "Dataset Distillation via Committee Voting";
official code Jiacheng8/CV-DD, recover/relabel/validate, read at commit 24097e9), an
SRe²L-style pipeline (squeeze, recover, relabel) in which a *committee* of networks votes.

1. **Squeeze** (``train_committee``): train a few different networks **with batch norm** on the
   real data; each one's accuracy on held-out real images is its *prior*.
2. **Recover**: synthesise the images from noise by Adam (lr 0.25, betas (0.5, 0.9), cosine
   decay), minimising for each image, over its committee pair m,
   Σ_m w_m [ CE(f_m(jitter(x̃)), y) + r_bn Σ_l ρ_l (‖μ_l(x̃) − μ_l^run‖₂ + ‖σ²_l(x̃) − σ²_l^run‖₂) ]
   — the class loss plus the distance of the batch's statistics at every batch-norm layer l to
   the statistics the model stored on real data (ρ = 10 for the first layer, 1 after; r_bn 0.01),
   the models in eval mode. The committee: two models per image index (index i of every class
   uses pair i mod #pairs; at 1 image per class the two best models), **prior-guided votes**
   w = softmax(prior / 5) (priors in %). Pixels are clipped to [0, 1].
3. **Relabel**: the images' soft labels are the committee's weighted logits Σ_m w_m z_m over all
   members, w = softmax(prior / 10), computed on each (augmented) training batch with the
   teachers **in train mode** (batch statistics), as the code does.
4. **Validate** (``evaluate_synthetic``): a student learns those soft labels by KL at T = 20.

Where this knowingly differs from the official code: digits-sized committee (a BN ConvNet, a BN
MLP and a BN DD-ConvNet instead of ResNet-18/50, ShuffleNetV2, MobileNetV2, DenseNet-121);
priors measured on a held-out fifth of the training data (the code uses a fixed table); jitter =
DSA shift/scale (the code: random-resized crop, flip, ±4 px roll); labels computed live on each
batch instead of stored per epoch (the same targets, FKD-style); SGD instead of AdamW/CutMix in
validation; 300 recovery iterations (4000 in the code for CIFAR-10 ipc 10).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int, check_number
from .._modes import eval_mode
from ..analyses.classification import predict
from ..methods.cross_entropy import CrossEntropy
from ..models import MLP, ConvNet
from ..models.distill_convnet import DistillConvNet
from ..training import fit
from ._synthetic import SyntheticSet, dsa, real_init

__all__ = ["Committee", "train_committee", "committee_votes", "bn_statistics_loss", "committee_voting"]


def committee_votes(priors, temperature: float) -> torch.Tensor:
    """softmax(prior / temperature) (priors in %)."""
    return torch.softmax(torch.as_tensor(priors, dtype=torch.float64) / temperature, 0).float()


@dataclass(frozen=True, eq=False)
class Committee:
    """Trained batch-norm networks and their ``priors`` (held-out accuracy in %)."""

    models: tuple[nn.Module, ...] = field(repr=False)
    priors: torch.Tensor
    names: tuple[str, ...]

    def __repr__(self) -> str:
        return "Committee(" + ", ".join(f"{n} {float(p):.1f}%" for n, p in zip(self.names, self.priors)) + ")"


def _default_members(data, seed):
    shape, c = tuple(data.shape), int(data.n_classes)
    return {
        "bn-convnet": ConvNet(shape, c, width=16, feature_dim=64, norm="batch", seed=seed),
        "bn-mlp": MLP(int(math.prod(shape)), (128,), c, norm="batch", seed=seed + 1),
        "bn-dd-convnet": DistillConvNet(shape, c, width=32, depth=2, norm="batch", seed=seed + 2),
    }


def train_committee(data, *, members: dict | None = None, steps: int = 600, holdout: float = 0.2,
                    seed: int = 0, **fit_options) -> Committee:
    """Train each member (default: three small BN networks) with cross-entropy on
    ``1 − holdout`` of ``data``; its prior is its accuracy (%) on the rest."""
    members = members or _default_members(data, seed)
    for name, m in members.items():
        if not any(isinstance(x, nn.modules.batchnorm._BatchNorm) for x in m.modules()):
            raise ValueError(f"committee member {name!r} has no batch norm; CV-DD matches BN statistics")
    fit_part, held = data.split(1.0 - holdout, seed=seed)
    fit_options.setdefault("lr", 1e-3)
    priors = []
    for k, m in enumerate(members.values()):
        fit(m, CrossEntropy(), fit_part, steps=steps, batch_size=128, seed=seed + k, progress=False, **fit_options)
        priors.append(100.0 * predict(m, held).accuracy)
    return Committee(tuple(members.values()), torch.tensor(priors), tuple(members))


class _BNStats:
    """Forward hooks recording each batch-norm layer's input mean and (biased) variance."""

    def __init__(self, model: nn.Module):
        self.layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        self.stats: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.handles = [m.register_forward_hook(self._hook) for m in self.layers]

    def _hook(self, module, inputs, output):
        x = inputs[0]
        dims = [0] + list(range(2, x.ndim))
        self.stats.append((x.mean(dims), x.var(dims, unbiased=False)))

    def close(self):
        for h in self.handles:
            h.remove()


def bn_statistics_loss(stats, layers, first_weight: float = 10.0) -> torch.Tensor:
    """Σ_l ρ_l (‖μ_l − μ_l^run‖₂ + ‖σ²_l − σ²_l^run‖₂), ρ_1 = ``first_weight``, ρ_l = 1 after."""
    total = 0.0
    for i, ((mu, var), bn) in enumerate(zip(stats, layers)):
        rho = first_weight if i == 0 else 1.0
        total = total + rho * ((mu - bn.running_mean).norm() + (var - bn.running_var).norm())
    return total


def _frozen_forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` with its parameters detached: gradients reach the images only, never the
    committee's ``.grad`` fields (forward hooks still fire)."""
    state = {k: v.detach() for k, v in model.named_parameters()}
    state.update(dict(model.named_buffers()))
    return torch.func.functional_call(model, state, (x,))


def _pairs(committee: Committee, ipc: int) -> list[tuple[int, int]]:
    k = len(committee.models)
    if k < 2:
        return [(0,)]
    if ipc == 1:
        best = committee.priors.argsort(descending=True)[:2].tolist()
        return [tuple(sorted(best))]
    return list(itertools.combinations(range(k), 2))


def committee_voting(data, ipc: int, *, committee: Committee, iterations: int = 300, lr: float = 0.25,
                     r_bn: float = 0.01, first_bn_weight: float = 10.0, vote_temperature: float = 5.0,
                     relabel_temperature: float = 10.0, kd_temperature: float = 20.0, init: str = "noise",
                     jitter: bool = True, record_every: int | None = None, seed: int = 0) -> SyntheticSet:
    """Recover ``ipc`` images per class with the committee's votes; the result relabels its
    batches with the whole committee (see the module docstring)."""
    iterations = check_int(iterations, "iterations", min=1)
    check_number(lr, "lr", min=0, min_open=True)
    if init not in ("noise", "real"):
        raise ValueError(f"unknown init {init!r}; valid: 'noise', 'real'")
    g = torch.Generator().manual_seed(int(seed))
    x0, y = real_init(data, ipc, g)
    if init == "noise":
        mu, sd = float(data.x.mean()), float(data.x.std())
        x0 = (mu + sd * torch.randn(x0.shape, generator=g)).clamp(0, 1)
    syn = x0.clone().requires_grad_(True)
    opt = torch.optim.Adam([syn], lr=lr, betas=(0.5, 0.9))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * k / iterations)))
    pairs = _pairs(committee, ipc)
    n_classes = int(y.max()) + 1
    every = record_every or max(1, iterations // 10)
    frames, steps, losses = [syn.detach().clone()], [0], []
    hooks = [_BNStats(m) for m in committee.models]
    try:
        with eval_mode(*committee.models):
            for it in range(1, iterations + 1):
                loss = 0.0
                for i in range(ipc):
                    idx = torch.arange(n_classes) * ipc + i  # image i of every class
                    pair = pairs[i % len(pairs)]
                    w = committee_votes(committee.priors[list(pair)], vote_temperature)
                    xi = dsa(syn[idx], g, families=("crop", "scale")) if jitter else syn[idx]
                    for wm, m in zip(w, pair):
                        hooks[m].stats = []
                        ce = F.cross_entropy(_frozen_forward(committee.models[m], xi), y[idx])
                        bn = bn_statistics_loss(hooks[m].stats, hooks[m].layers, first_bn_weight)
                        loss = loss + wm * (ce + r_bn * bn)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                with torch.no_grad():
                    syn.clamp_(0, 1)
                losses.append(float(loss.detach()) / ipc)
                if it % every == 0 or it == iterations:
                    frames.append(syn.detach().clone())
                    steps.append(it)
    finally:
        for h in hooks:
            h.close()
    return SyntheticSet(
        syn.detach().clone(), y, "CV-DD", ipc, frames=torch.stack(frames), frame_steps=torch.tensor(steps),
        losses=torch.tensor(losses), teachers=committee.models,
        teacher_weights=committee_votes(committee.priors, relabel_temperature), temperature=float(kd_temperature),
        info=dict(iterations=iterations, lr=lr, r_bn=r_bn, pairs=pairs, init=init, seed=seed,
                  priors=committee.priors.tolist()),
    )
