"""Dataset distillation by matching training trajectories (MTT; Cazenavette, Wang, Torralba,
Efros & Zhu, CVPR 2022, "Dataset Distillation by Matching Training Trajectories"; official code
GeorgeCazenavette/mtt-distillation, commit 50dccea), with the difficulty-aligned schedule and
learned soft labels of DATM ("Towards Lossless Dataset Distillation via Difficulty-Aligned
Trajectory Matching", ICLR 2024; NUS-HPC-AI-Lab/DATM, commit 97ae510).

Experts (``experts.train_experts``) are networks trained on the real data, their parameters
θ*_0, θ*_1, ... kept after every epoch. Each iteration:

1. pick an expert and a start epoch t (uniform in [0, T⁺), MTT's ``max_start_epoch``);
2. start a student at θ̂_0 = θ*_t and take N SGD steps **on the synthetic images** with a
   learnable step size α: θ̂_{n+1} = θ̂_n − α ∇ CE(θ̂_n; synthetic batch) (DSA on every batch),
   keeping the graph (``create_graph``) so the result is differentiable in pixels and α;
3. loss = ‖θ̂_N − θ*_{t+M}‖² / ‖θ*_t − θ*_{t+M}‖² — how far N synthetic steps land from M
   real epochs, relative to how far the expert moved — and one SGD step (momentum 0.5) on the
   pixels (lr_img) and on α (lr_lr).

**DATM** changes three things, all optional here: (a) the start window follows the set's size —
small sets match *early* (easy) stretches, large sets later ones: ``start_schedule=(u0, u1, K)``
lets the window's upper end grow linearly from u0 to u1 over K iterations (the code's
"sequential generation"; for CIFAR-10 ipc 10: 10 → 20 over 1000); (b) ``soft_labels=True``: the
labels become learnable logits, initialised for each image as the mean of the final expert
logits over the experts that classify it correctly, trained by SGD (momentum 0.9, ``lr_label``);
the student steps then use soft cross-entropy; (c) ``skip_loss_above``: iterations whose
normalised loss exceeds it update nothing (DATM: 1.0). ``init="correct"`` starts from real
images the experts classify correctly (DATM's default).

Where this knowingly differs from the official code: α is kept positive by clamping at 1e-6 after
each step (mtt#16 reports it going negative); networks are the digits-sized DD ConvNet;
``unrolled_sgd`` draws the synthetic batches from a local generator; when no expert classifies
an image correctly its soft label starts from the mean over all experts (the code divides by 0).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int, check_number
from ._synthetic import SyntheticSet, dsa, real_init
from .experts import Experts

__all__ = ["functional_forward", "unrolled_sgd", "mtt_loss", "datm_soft_labels", "trajectory_matching"]


def functional_forward(model: nn.Module, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` with its parameters taken from the flat vector ``flat`` (P,) (differentiable
    in ``flat``; buffers are the model's own)."""
    params, i = {}, 0
    for name, p in model.named_parameters():
        params[name] = flat[i:i + p.numel()].view_as(p)
        i += p.numel()
    if i != flat.numel():
        raise ValueError(f"the flat vector has {flat.numel()} numbers but the model has {i} parameters")
    return torch.func.functional_call(model, params, (x,))


def _soft_ce(logits, targets) -> torch.Tensor:
    if targets.ndim == 1:
        return F.cross_entropy(logits, targets)
    return -(targets * F.log_softmax(logits, -1)).sum(-1).mean()


def unrolled_sgd(model: nn.Module, start: torch.Tensor, x: torch.Tensor, targets: torch.Tensor, lr, steps: int, *,
                 batch_size: int | None = None, generator: torch.Generator | None = None,
                 augment: bool = False, create_graph: bool = True, loss_fn=None) -> torch.Tensor:
    """θ̂_N after ``steps`` plain SGD steps θ̂ ← θ̂ − lr ∇ CE from ``start`` (P,) on the synthetic
    batch ``x`` (M, ...) with ``targets`` (hard (M,) or soft (M, C)); each step uses the next
    ``batch_size`` images of a random order (all of them by default). Differentiable in ``x``,
    ``lr`` and soft ``targets`` when ``create_graph``. ``loss_fn(outputs, targets)``: another loss
    than the (soft) cross-entropy."""
    m = x.shape[0]
    bs = m if batch_size is None else min(int(batch_size), m)
    w = start.detach().clone().requires_grad_(True)
    order = torch.randperm(m, generator=generator) if generator is not None else torch.arange(m)
    pos = 0
    for _ in range(int(steps)):
        if pos + bs > m:
            order = torch.randperm(m, generator=generator) if generator is not None else torch.arange(m)
            pos = 0
        idx = order[pos:pos + bs]
        pos += bs
        xb = dsa(x[idx], generator) if augment else x[idx]
        loss = (loss_fn or _soft_ce)(functional_forward(model, w, xb), targets[idx])
        (g,) = torch.autograd.grad(loss, w, create_graph=create_graph)
        w = w - lr * g
    return w


def mtt_loss(end: torch.Tensor, target_end: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """‖θ̂_N − θ*_{t+M}‖² / ‖θ*_t − θ*_{t+M}‖²."""
    return (end - target_end).pow(2).sum() / (start - target_end).pow(2).sum().clamp_min(1e-30)


def datm_soft_labels(expert_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """DATM's initial label logits (M, C): for each image the mean of the experts' logits
    (``expert_logits`` (K, M, C)) over the experts that classify it correctly (all experts when
    none does)."""
    correct = (expert_logits.argmax(-1) == labels[None, :]).to(expert_logits.dtype)  # (K, M)
    none = correct.sum(0) == 0
    correct[:, none] = 1.0
    return (correct[..., None] * expert_logits).sum(0) / correct.sum(0)[:, None]


def _expert_logits(experts: Experts, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.stack([functional_forward(model, traj[-1], x) for traj in experts.trajectories])


def _start_window(it: int, max_start: int, schedule, epochs: int, m_epochs: int) -> int:
    hi = max_start
    if schedule is not None:
        u0, u1, k = schedule
        hi = u0 + (u1 - u0) * min(1.0, it / max(1, k))
    return max(1, min(int(math.floor(hi)), epochs - m_epochs + 1))


def trajectory_matching(data, experts: Experts, ipc: int, *, syn_steps: int = 20, expert_epochs: int = 2,
                        max_start_epoch: int = 4, start_schedule=None, iterations: int = 300,
                        lr_img: float = 100.0, lr_lr: float = 1e-5, lr_init: float | None = None,
                        batch_syn: int | None = None, soft_labels: bool = False, lr_label: float = 2.0,
                        skip_loss_above: float | None = None, init: str = "real", augment: bool = True,
                        record_every: int | None = None, seed: int = 0) -> SyntheticSet:
    """Distil ``data`` into ``ipc`` images per class by matching ``experts``' trajectories.

    MTT: ``syn_steps`` N, ``expert_epochs`` M, ``max_start_epoch`` T⁺, ``lr_img``, ``lr_lr``,
    ``lr_init`` (α₀, default the experts' lr), ``batch_syn`` (default all images). DATM:
    ``start_schedule=(u0, u1, K)``, ``soft_labels``, ``lr_label``, ``skip_loss_above``,
    ``init="correct"``. See the module docstring.
    """
    iterations = check_int(iterations, "iterations", min=1)
    syn_steps = check_int(syn_steps, "syn_steps", min=1)
    expert_epochs = check_int(expert_epochs, "expert_epochs", min=1)
    if expert_epochs > experts.epochs:
        raise ValueError(f"expert_epochs={expert_epochs} but the experts have {experts.epochs} epochs")
    if init not in ("real", "correct"):
        raise ValueError(f"unknown init {init!r}; valid: 'real', 'correct'")
    g = torch.Generator().manual_seed(int(seed))
    model = experts.make_model(0)
    pick = None
    if init == "correct" or soft_labels:
        logits_all = _expert_logits(experts, model, data.x)
        pick = (logits_all.argmax(-1) == data.y[None, :]).all(0) if init == "correct" else None
    syn_x, syn_y = real_init(data, ipc, g, pick=pick)
    syn_x.requires_grad_(True)
    alpha = torch.tensor(float(lr_init if lr_init is not None else experts.lr), requires_grad=True)
    opt_img = torch.optim.SGD([syn_x], lr=check_number(lr_img, "lr_img", min=0, min_open=True), momentum=0.5)
    opt_lr = torch.optim.SGD([alpha], lr=check_number(lr_lr, "lr_lr", min=0), momentum=0.5)
    label_logits, opt_lab = None, None
    if soft_labels:
        label_logits = datm_soft_labels(_expert_logits(experts, model, syn_x.detach()), syn_y).requires_grad_(True)
        opt_lab = torch.optim.SGD([label_logits], lr=check_number(lr_label, "lr_label", min=0), momentum=0.9)
    every = record_every or max(1, iterations // 10)
    frames, steps, losses, skipped = [syn_x.detach().clone()], [0], [], 0
    for it in range(1, iterations + 1):
        traj = experts.trajectories[int(torch.randint(len(experts), (), generator=g))]
        hi = _start_window(it, max_start_epoch, start_schedule, experts.epochs, expert_epochs)
        t = int(torch.randint(hi, (), generator=g))
        start, target = traj[t], traj[t + expert_epochs]
        targets = F.softmax(label_logits, -1) if soft_labels else syn_y
        end = unrolled_sgd(model, start, syn_x, targets, alpha, syn_steps, batch_size=batch_syn, generator=g,
                           augment=augment)
        loss = mtt_loss(end, target, start)
        losses.append(float(loss.detach()))
        opts = [o for o in (opt_img, opt_lr, opt_lab) if o is not None]
        for o in opts:
            o.zero_grad(set_to_none=True)
        if skip_loss_above is not None and losses[-1] > skip_loss_above:
            skipped += 1
        else:
            loss.backward()
            for o in opts:
                o.step()
            with torch.no_grad():
                alpha.clamp_(min=1e-6)
        if it % every == 0 or it == iterations:
            frames.append(syn_x.detach().clone())
            steps.append(it)
    name = "DATM" if (soft_labels or start_schedule is not None) else "MTT"
    return SyntheticSet(
        syn_x.detach().clone(), syn_y, name, ipc,
        soft_labels=None if label_logits is None else label_logits.detach().clone(),
        frames=torch.stack(frames), frame_steps=torch.tensor(steps), losses=torch.tensor(losses),
        lr=float(alpha.detach()),
        info=dict(syn_steps=syn_steps, expert_epochs=expert_epochs, max_start_epoch=max_start_epoch,
                  start_schedule=start_schedule, iterations=iterations, lr_img=lr_img, lr_lr=lr_lr,
                  soft_labels=soft_labels, skipped=skipped, init=init, seed=seed),
    )
