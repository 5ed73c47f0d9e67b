"""Dataset distillation by distribution matching (DM; Zhao & Bilen, WACV 2023, "Dataset
Condensation with Distribution Matching"; official code VICO-UoE/DatasetCondensation
``main_DM.py``, read at commit 53f63a6).

Learn a few synthetic images per class whose **mean embedding** under randomly initialised
networks matches the real class's. Every iteration:

1. draw a **fresh random network** (the DD ConvNet; never trained) and freeze it;
2. for each class c, take a batch of real images of c and the synthetic images of c, pass both
   through the same differentiable Siamese augmentation (one draw shared by both, ``dsa``), and
   embed them (the network's features, before the classifier);
3. loss = Σ_c ‖mean φ(real_c) − mean φ(syn_c)‖² (squared distance of mean embeddings = linear-
   kernel MMD²), and one SGD step on the **pixels** (lr 1, momentum 0.5).

Defaults follow the code (images initialised from random real images of the class, lr_img 1,
momentum 0.5) at digits scale (batch_real 128 — a class has ~140 images —, 8×8 ConvNet width 64
depth 2, a few hundred iterations instead of 20 000). Where this knowingly differs: each
network comes from a local seeded generator (the code re-seeds torch's global RNG from the clock
on every network, so its runs are not reproducible); all classes go through the network in one
forward (the code does so for BN networks only; instance norm makes it equivalent).
"""

from __future__ import annotations

import torch

from .._checks import check_int, check_number
from ._synthetic import SyntheticSet, default_net, dsa, real_init

__all__ = ["dm_loss", "distribution_matching"]


def dm_loss(real_embeddings, synthetic_embeddings) -> torch.Tensor:
    """Σ_c ‖mean(real_c) − mean(syn_c)‖² over per-class lists of (n_c, d) embeddings."""
    if len(real_embeddings) != len(synthetic_embeddings):
        raise ValueError("pass one real and one synthetic embedding batch per class")
    return sum(((r.mean(0) - s.mean(0)) ** 2).sum() for r, s in zip(real_embeddings, synthetic_embeddings))


def distribution_matching(data, ipc: int, *, iterations: int = 500, lr_img: float = 1.0, momentum: float = 0.5,
                          batch_real: int = 128, make_net=None, augment: bool = True, record_every: int | None = None,
                          seed: int = 0) -> SyntheticSet:
    """Distil ``data`` (a labelled image Dataset) into ``ipc`` images per class with DM.

    ``make_net(seed)``: the random embedding networks (default: the DD ConvNet); ``augment``:
    DSA on both sides; ``record_every``: iterations between recorded frames (default 10 frames).
    """
    iterations = check_int(iterations, "iterations", min=1)
    check_number(lr_img, "lr_img", min=0, min_open=True)
    batch_real = check_int(batch_real, "batch_real", min=1)
    g = torch.Generator().manual_seed(int(seed))
    syn_x, syn_y = real_init(data, ipc, g)
    syn_x.requires_grad_(True)
    make_net = make_net or (lambda s: default_net(data, s))
    opt = torch.optim.SGD([syn_x], lr=lr_img, momentum=momentum)
    x_real, y_real = data.x.detach().cpu(), data.y.cpu()
    by_class = [(y_real == c).nonzero().flatten() for c in range(int(syn_y.max()) + 1)]
    every = record_every or max(1, iterations // 10)
    frames, steps, losses = [syn_x.detach().clone()], [0], []
    for it in range(1, iterations + 1):
        net = make_net(int(seed) * 1_000_003 + it)
        for p in net.parameters():
            p.requires_grad_(False)
        reals = [x_real[idx[torch.randperm(idx.numel(), generator=g)[:batch_real]]] for idx in by_class]
        s = int(torch.randint(2**31 - 1, (), generator=g))
        rx = torch.cat(reals)
        sx = syn_x
        if augment:
            rx, sx = dsa(rx, torch.Generator().manual_seed(s)), dsa(sx, torch.Generator().manual_seed(s))
        fr, fs = net.features(rx), net.features(sx)  # (n_real, d), (M, d)
        fr = fr.split([r.shape[0] for r in reals])
        fs = fs.split(ipc)
        loss = dm_loss(fr, fs)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if it % every == 0 or it == iterations:
            frames.append(syn_x.detach().clone())
            steps.append(it)
    return SyntheticSet(syn_x.detach().clone(), syn_y, "DM", ipc, frames=torch.stack(frames),
                        frame_steps=torch.tensor(steps), losses=torch.tensor(losses),
                        info=dict(iterations=iterations, lr_img=lr_img, momentum=momentum, batch_real=batch_real,
                                  augment=augment, seed=seed))
