"""Supervised contrastive learning (SupCon), and SimCLR when labels are absent.

Papers: Khosla et al., "Supervised Contrastive Learning" (NeurIPS 2020); Chen et al., "A Simple
Framework for Contrastive Learning of Visual Representations" (SimCLR, ICML 2020).

Each batch of B samples is augmented ``n_views`` times (V = 2 by default); every view goes
through the model's features and a projection head, and is L2-normalised: z_i on the unit
sphere, N = V·B embeddings. For an anchor i, the positives P(i) are the other embeddings with
the same label (the other views of the same sample always count); every other embedding a ≠ i
is in the denominator. In words, the loss (the paper's L^sup_out, eq. 2) is

    L = mean_i  -1/|P(i)|  Σ_{p ∈ P(i)}  log [ exp(z_i·z_p / τ) / Σ_{a ≠ i} exp(z_i·z_a / τ) ]

with temperature τ (``temperature``). Without labels (``y is None``) each sample is its own
class, so P(i) is just the other views of i: that is SimCLR's NT-Xent loss. Samples labelled
-1 (unknown) are treated the same way inside a labelled batch.

The embedding used by the loss is ``embed(model, x)`` = normalise(head(model.features(x))).
After training, the paper discards the head and uses ``model.features``; both are available
(``wb.analyses.embed(model, data)`` for the features, ``fn=method.embed`` for the head output).

Where this differs from the official code (HobbitLong/SupContrast):
* the official loss multiplies by τ / base_τ (base_τ = 0.07); here ``base_temperature=None``
  (the default) leaves the loss unscaled, a constant factor that only rescales the gradient;
  pass ``base_temperature=0.07`` for the official scaling;
* the official default τ is 0.07; the workbench's contract default is 0.1;
* the head defaults to Linear(f, f) -> ReLU -> Linear(f, 128) on top of the f-d features, as in
  the official "mlp" head; augmentations are the workbench's per-kind ones (``augment.py``),
  not ImageNet-style crops and colour jitter.
"""

from __future__ import annotations

import torch

from .._checks import check_number
from ._heads import HeadMixin
from .augment import get_augmentation
from .base import Method


def supcon_loss(z: torch.Tensor, ids: torch.Tensor, temperature: float) -> tuple[torch.Tensor, dict]:
    """SupCon loss of unit-norm embeddings ``z`` (N, d) whose positives share an ``ids`` value.

    Anchors without any positive are left out of the mean. Returns (loss, logs).
    """
    n = z.shape[0]
    sim = z @ z.T  # (N, N) cosines
    logits = sim / temperature
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(eye, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos = (ids[:, None] == ids[None, :]) & ~eye
    n_pos = pos.sum(1)
    has = n_pos > 0
    if not bool(has.any()):
        raise ValueError(
            "no anchor has a positive: with n_views=1 every sample needs another of its class in "
            "the batch; use n_views=2 or a larger batch"
        )
    mean_log_prob_pos = log_prob.masked_fill(~pos, 0.0).sum(1) / n_pos.clamp_min(1)
    hasf = has.to(z.dtype)
    loss = -(mean_log_prob_pos * hasf).sum() / hasf.sum()
    with torch.no_grad():
        neg = ~pos & ~eye
        n_neg = neg.sum()
        logs = {
            "pos_cos": (sim * pos).sum() / n_pos.sum(),
            "neg_cos": (sim * neg).sum() / n_neg.clamp_min(1),
        }
    return loss, logs


class SupCon(HeadMixin, Method):
    """Supervised contrastive loss (SimCLR's NT-Xent for unlabelled batches).

    Parameters
    ----------
    temperature: τ of the softmax over cosine similarities.
    augment: ``"auto"`` (per data kind), a name, an augmentation object or a callable
        ``f(x) -> x'`` (see ``workbench.methods.augment``; a lambda cannot be rebuilt from a
        checkpoint).
    n_views: augmented views per sample (2 as in the paper).
    head: ``"mlp"`` (default), ``"linear"`` or None (embed the features directly).
    dim: embedding size (head output; 128).
    feature_dim: size of ``model.features(x)``; when None, call ``method.setup(model)`` before
        training (or let a fit that calls ``setup`` do it).
    supervised: ``"auto"`` uses labels when the batch has them, False always runs SimCLR.
    base_temperature: multiply the loss by τ / base_temperature as the official code (None: off).
    seed: initialisation seed of the head.
    """

    needs_labels = False

    def __init__(
        self,
        temperature: float = 0.1,
        *,
        augment="auto",
        n_views: int = 2,
        head: str | None = "mlp",
        dim: int | None = None,
        head_hidden: int | None = None,
        feature_dim: int | None = None,
        supervised="auto",
        base_temperature: float | None = None,
        seed: int | None = 0,
    ):
        super().__init__()
        check_number(temperature, "temperature", min=0, min_open=True, hint="SupCon's τ, e.g. 0.1")
        if isinstance(n_views, bool) or not isinstance(n_views, int) or n_views < 1:
            raise ValueError(f"n_views must be a positive int, got {n_views!r}")
        if supervised not in ("auto", True, False):
            raise ValueError(f"supervised must be 'auto', True or False, got {supervised!r}")
        if base_temperature is not None:
            check_number(base_temperature, "base_temperature", min=0, min_open=True, hint="or None (= temperature)")
        self.temperature = float(temperature)
        self.n_views = n_views
        self.supervised = supervised
        self.base_temperature = base_temperature
        self.augment = get_augmentation(augment)
        self._init_head(head, dim, feature_dim, head_hidden, seed)

    def views(self, x: torch.Tensor) -> torch.Tensor:
        """The ``n_views`` augmented copies of ``x`` stacked view-major: (V·B, ...)."""
        return torch.cat([self.augment(x) for _ in range(self.n_views)])

    def loss(self, model, batch):
        x, y = batch
        b = x.shape[0]
        if self.supervised is True and y is None:
            raise ValueError("SupCon(supervised=True) needs labels, but the batch has y=None")
        use_labels = y is not None and self.supervised is not False
        if self.n_views < 2 and not use_labels:
            raise ValueError("SimCLR (no labels) needs n_views >= 2: positives are the other views")
        self._ready(model, x)
        z = self.embed(model, self.views(x))  # (V·B, d)
        own = torch.arange(b, device=x.device)
        if use_labels:
            # unknown (-1) samples get their own id, beyond every class label
            ids = torch.where(y >= 0, y, int(y.max().clamp(min=0)) + 1 + own)
        else:
            ids = own
        ids = ids.repeat(self.n_views)
        loss, logs = supcon_loss(z, ids, self.temperature)
        if self.base_temperature is not None:
            loss = loss * (self.temperature / self.base_temperature)
        return loss, logs

    @torch.no_grad()
    def evaluate(self, model, data, batch_size: int = 1024) -> dict[str, float]:
        """Mean loss and logs over ``data`` (no classifier accuracy: SupCon trains no classifier)."""
        return _mean_logs(self, model, data, batch_size)


@torch.no_grad()
def _mean_logs(method, model, data, batch_size) -> dict[str, float]:
    from .._device import model_device

    device = model_device(model)
    totals: dict[str, torch.Tensor] = {}
    n = 0
    for x, y in data.loader(batch_size, shuffle=False, device=device):
        loss, logs = method.loss(model, (x, y))
        for k, v in {"loss": loss, **logs}.items():
            v = torch.as_tensor(v, device=device, dtype=torch.float32)
            totals[k] = totals.get(k, torch.zeros((), device=device)) + v * x.shape[0]
        n += x.shape[0]
    return {k: float(v) / n for k, v in totals.items()}
