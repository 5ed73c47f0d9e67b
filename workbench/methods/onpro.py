"""OnPro: online prototype learning for online continual learning, with a replay buffer.

Wei, Ye, Huang, Yang, Li & Zhang, "Online Prototype Learning for Online Continual Learning"
(ICCV 2023); official code weilllllls/OnPro (read at a92f8ae). Online class-incremental: the
stream is seen once, in small batches (10), and a reservoir buffer (200 samples on CIFAR-10)
keeps a uniform sample of everything seen. Per incoming batch (x, y), with a replay batch
(x_m, y_m) of up to 64 buffer samples drawn *before* x enters the buffer:

* **OPE** (online prototype equilibrium): in each of two augmented views, the prototype of
  class c is the normalised mean of the unit projections of the batch's class-c samples; the
  2C′ prototypes are contrasted (τ = 0.5): a view-1 prototype's only positive is the view-2
  prototype of its class, every other prototype is a negative. OPE is applied to the incoming
  batch and to the replay batch, and the two are summed;
* **APF** (adaptive prototypical feedback): of the replay batch, a share ``mixup_base_rate``
  (0.75 on CIFAR-10) is mixed with random partners (the partner weighs U[0, 0.6], as kornia's
  mixup with ``lambda_val=(0, 0.6)``); the rest are mixes of class
  pairs (i, j) drawn with probability softmax over pairs of 1/‖μ_i − μ_j‖ (μ the replay
  batch's class-mean projections), so confusable classes are mixed more, λ ~ Beta(0.4, 0.4);
  each mix happens with probability ``mixup_p``; the CE on a mix is λ·CE(·, a) + (1−λ)·CE(·, b);
* **CE** on the incoming batch and the mixed replay batch (the classifier over all classes);
* **OCM**-style instance term: SupCon (τ = 0.07) over two views of every rotation of the
  stream and replay images, a rotation k of class c counting as class c + C·k.

    loss = CE + OPE_new + OPE_seen + OCM

The buffer is updated (reservoir sampling) after the loss, only in training mode. The class
predictions are the model's classifier (``model(x)``).

Differences from the official code: the OCM term uses ``n_rotations`` = 4 rotations (the code:
16 rotation/flip variants; each batch then grows 32-fold); no AMP; the optimizer is
``wb.fit``'s (the recipe builds one per task, so Adam's state restarts at each task); the APF
class means come from the replay batch's projections (the code: from the buffer).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import check_bool, check_int, check_number
from ._heads import HeadMixin
from ._lazy import LazyStateMixin
from .augment import get_augmentation
from .base import Method
from .cross_entropy import check_labels
from .supcon import supcon_loss

__all__ = ["OnPro", "ope_loss", "apf_pair_probabilities"]


def ope_loss(z1: torch.Tensor, z2: torch.Tensor, y: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """OPE of unit projections ``z1``, ``z2`` (B, d) of two views with labels ``y`` (B,)."""
    classes = torch.unique(y)
    c = classes.numel()
    if c < 1:
        return z1.new_zeros(())
    onehot = (y[None, :] == classes[:, None]).to(z1.dtype)  # (C', B)
    p1 = F.normalize(onehot @ F.normalize(z1, dim=1), dim=1)
    p2 = F.normalize(onehot @ F.normalize(z2, dim=1), dim=1)
    p = torch.cat([p1, p2])  # (2C', d)
    sim = p @ p.T / temperature
    sim = sim.masked_fill(torch.eye(2 * c, dtype=torch.bool, device=p.device), float("-inf"))
    pos = torch.cat([torch.arange(c, 2 * c), torch.arange(c)]).to(p.device)
    return -(sim[torch.arange(2 * c, device=p.device), pos] - torch.logsumexp(sim, dim=1)).mean()


def apf_pair_probabilities(means: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(pairs (Q, 2) with i < j, probabilities (Q,)): softmax over pairs of 1/‖μ_i − μ_j‖."""
    c = means.shape[0]
    i, j = torch.triu_indices(c, c, offset=1)
    d = (means[i] - means[j]).norm(dim=1).clamp_min(1e-12)
    return torch.stack([i, j], 1), (1.0 / d).softmax(0)


class OnPro(LazyStateMixin, HeadMixin, Method):
    """OnPro (see the module docstring). ``ope_weight=0, apf=False, ocm_weight=0`` is plain
    experience replay (ER); ``buffer_size=0`` trains on the stream alone.

    Parameters: ``n_classes`` (the classifier's outputs); ``buffer_size`` (200), ``replay_batch``
    (64); ``proto_temperature`` (0.5); ``mixup_base_rate`` (0.75), ``mixup_p`` (0.5);
    ``ocm_temperature`` (0.07), ``n_rotations`` (4); head / dim / feature_dim of the projection.
    """

    needs_labels = True
    _lazy_buffers = ("buffer_x",)

    def __init__(self, n_classes: int, *, buffer_size: int = 200, replay_batch: int = 64, ope_weight: float = 1.0,
                 proto_temperature: float = 0.5, apf: bool = True, mixup_base_rate: float = 0.75,
                 mixup_p: float = 0.5, ocm_weight: float = 1.0, ocm_temperature: float = 0.07, n_rotations: int = 4,
                 augment="auto", head: str | None = "mlp", dim: int | None = 128, head_hidden: int | None = None,
                 feature_dim: int | None = None, seed: int | None = 0):
        super().__init__()
        check_int(n_classes, "n_classes", min=2)
        check_int(buffer_size, "buffer_size", min=0)
        check_int(replay_batch, "replay_batch", min=1)
        check_int(n_rotations, "n_rotations", min=1, max=4)
        for name, v in (("ope_weight", ope_weight), ("ocm_weight", ocm_weight)):
            check_number(v, name, min=0)
        for name, v in (("proto_temperature", proto_temperature), ("ocm_temperature", ocm_temperature)):
            check_number(v, name, min=0, min_open=True)
        check_number(mixup_base_rate, "mixup_base_rate", min=0, max=1)
        check_number(mixup_p, "mixup_p", min=0, max=1)
        self.n_classes, self.buffer_size, self.replay_batch = n_classes, buffer_size, replay_batch
        self.ope_weight, self.proto_temperature = float(ope_weight), float(proto_temperature)
        self.apf, self.mixup_base_rate, self.mixup_p = check_bool(apf, "apf"), float(mixup_base_rate), float(mixup_p)
        self.ocm_weight, self.ocm_temperature, self.n_rotations = float(ocm_weight), float(ocm_temperature), n_rotations
        self.augment = get_augmentation(augment)
        self._init_head(head, dim, feature_dim, head_hidden, seed)
        self.register_buffer("buffer_x", None)
        self.register_buffer("buffer_y", torch.full((buffer_size,), -1, dtype=torch.long))
        self.register_buffer("n_seen", torch.zeros((), dtype=torch.long))

    # ------------------------------------------------------------------ the reservoir
    def setup(self, model, data=None):
        """Size the projection head and the buffer (from one sample's shape) before training."""
        super().setup(model, data)
        if self.buffer_x is None and data is not None and self.buffer_size > 0:
            x = data.x if hasattr(data, "x") else data
            self.buffer_x = torch.zeros((self.buffer_size, *x.shape[1:]), dtype=x.dtype, device=self.buffer_y.device)
        return self

    @property
    def n_stored(self) -> int:
        return min(int(self.n_seen), self.buffer_size)

    @torch.no_grad()
    def _reservoir(self, x: torch.Tensor, y: torch.Tensor):
        if self.buffer_size == 0:
            return
        if self.buffer_x is None:
            self.buffer_x = torch.zeros((self.buffer_size, *x.shape[1:]), dtype=x.dtype, device=x.device)
        for i in range(x.shape[0]):
            n = int(self.n_seen)
            slot = n if n < self.buffer_size else int(torch.randint(n + 1, ()))
            if slot < self.buffer_size:
                self.buffer_x[slot] = x[i]
                self.buffer_y[slot] = y[i]
            self.n_seen += 1

    def _replay(self):
        k = self.n_stored
        if k == 0:
            return None
        idx = torch.randperm(k)[: self.replay_batch].to(self.buffer_y.device)
        return self.buffer_x[idx], self.buffer_y[idx]

    # ------------------------------------------------------------------ APF
    def _mix(self, xm, ym, zm):
        """Mixed replay inputs and (a, b, λ) label triples (module docstring)."""
        n = xm.shape[0]
        src = torch.arange(n, device=xm.device)
        partner = torch.randperm(n, device=xm.device)
        lam = 1 - torch.rand(n, device=xm.device) * 0.6  # random mixup: the partner weighs [0, 0.6]
        n_rand = int(round(self.mixup_base_rate * n))
        classes = torch.unique(ym)
        if n_rand < n and classes.numel() >= 2:  # APF: confusable class pairs
            onehot = (ym[None] == classes[:, None]).float()
            means = (onehot @ zm.detach()) / onehot.sum(1, keepdim=True)
            pairs, prob = apf_pair_probabilities(means)
            q = pairs[torch.multinomial(prob, n - n_rand, replacement=True)]  # (n - n_rand, 2)
            for r, (ci, cj) in enumerate(q.tolist()):
                ii = (ym == classes[ci]).nonzero().flatten()
                jj = (ym == classes[cj]).nonzero().flatten()
                src[n_rand + r] = ii[torch.randint(ii.numel(), ())]
                partner[n_rand + r] = jj[torch.randint(jj.numel(), ())]
            beta = torch.distributions.Beta(torch.tensor(0.4), torch.tensor(0.4))
            lam[n_rand:] = beta.sample((n - n_rand,)).to(xm.device)
        lam = torch.where(torch.rand(n, device=xm.device) < self.mixup_p, lam, torch.ones_like(lam))
        shape = (n,) + (1,) * (xm.ndim - 1)
        mixed = lam.view(shape) * xm[src] + (1 - lam.view(shape)) * xm[partner]
        a, b = ym[src], ym[partner]
        return mixed, a, b, lam

    # ------------------------------------------------------------------ the loss
    def _ocm(self, model, x, y):
        if x.ndim != 4:
            return x.new_zeros(())
        rots = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(self.n_rotations)])
        ids = torch.cat([y + self.n_classes * k for k in range(self.n_rotations)])
        z = self.embed(model, torch.cat([self.augment(rots), self.augment(rots)]))
        loss, _ = supcon_loss(z, ids.repeat(2), self.ocm_temperature)
        return loss

    def loss(self, model, batch):
        x, y = batch
        check_labels(y, self.n_classes, "OnPro")
        self._ready(model, x)
        mem = self._replay()
        b = x.shape[0]
        z = self.embed(model, torch.cat([self.augment(x), self.augment(x)]))
        ope = ope_loss(z[:b], z[b:], y, self.proto_temperature)
        ce_x, ce_y, ocm_x, ocm_y = [x], [(y, y, torch.ones(b, device=x.device))], [x], [y]
        if mem is not None:
            xm, ym = mem
            m = xm.shape[0]
            zm = self.embed(model, torch.cat([self.augment(xm), self.augment(xm)]))
            ope = ope + ope_loss(zm[:m], zm[m:], ym, self.proto_temperature)
            if self.apf:
                mixed, ya, yb, lam = self._mix(xm, ym, zm[:m])
            else:
                mixed, ya, yb, lam = xm, ym, ym, torch.ones(m, device=x.device)
            ce_x.append(mixed)
            ce_y.append((ya, yb, lam))
            ocm_x.append(xm)
            ocm_y.append(ym)
        logits = model(torch.cat(ce_x))
        ya = torch.cat([t[0] for t in ce_y])
        yb = torch.cat([t[1] for t in ce_y])
        lam = torch.cat([t[2] for t in ce_y])
        ce = (lam * F.cross_entropy(logits, ya, reduction="none")
              + (1 - lam) * F.cross_entropy(logits, yb, reduction="none")).mean()
        ocm = self._ocm(model, torch.cat(ocm_x), torch.cat(ocm_y)) if self.ocm_weight > 0 else x.new_zeros(())
        loss = ce + self.ope_weight * ope + self.ocm_weight * ocm
        if self.training:
            self._reservoir(x.detach(), y.detach())
        with torch.no_grad():
            logs = {"ce": ce.detach(), "ope": ope.detach(), "ocm": ocm.detach(),
                    "acc": (logits[:b].argmax(1) == y).float().mean(), "stored": float(self.n_stored)}
        return loss, logs

    @torch.no_grad()
    def evaluate(self, model, data, batch_size: int = 1024) -> dict[str, float]:
        """Classifier accuracy on ``data`` (the replay and buffer are not touched)."""
        from .._device import model_device

        device = model_device(model)
        right, n = 0, 0
        for x, y in data.loader(batch_size, shuffle=False, device=device):
            right += int((model(x).argmax(1) == y).sum())
            n += x.shape[0]
        return {"acc": right / max(n, 1)}
