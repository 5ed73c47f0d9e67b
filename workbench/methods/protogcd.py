"""ProtoGCD: unified prototypes for old and new classes, with dual-level adaptive pseudo-labels.

Ma, Zhu, Zhang & Liu, "ProtoGCD: Unified and Unbiased Prototype Learning for Generalized
Category Discovery" (TPAMI 2025, arXiv 2504.03755); official ``train.py`` (mashijie1028/
ProtoGCD at 8835a4d). One set of K unit prototypes μ serves old and new classes alike: logits
are the cosines between the L2-normalised backbone feature and every prototype (a
weight-normalised linear layer with g = 1). For a batch of labelled (class id) and unlabelled
(−1) samples in 2 augmented views:

* CE_sup: cross-entropy of the labelled samples' logits / 0.1 against their class's prototype;
* DAPL (dual-level adaptive pseudo-labels): the teacher is the student's own *detached* logits
  (no EMA), softened as softmax(logits / 0.05); in each view the r·B samples with the largest
  top1/top2 teacher ratio get one-hot targets, the rest keep the soft ones; the loss is the
  cross-view CE (view a's targets for view b's softmax(logits / 0.1)) averaged over both pairs;
  r ramps linearly from ``ratio[0]`` to ``ratio[1]`` over ``ramp_steps`` training steps;
* L_ent = log K − H(mean over the batch of softmax(logits / 0.1)): keeps every prototype used;
* L_sep = mean_i log[ (1/(K−1)) Σ_{j≠i} exp(μ_i·μ_j / 0.1) ]: spreads the prototypes (it goes
  negative, as the authors note);
* InfoNCE (τ = 1.0) and SupCon (τ = 0.07) on the projection head, as in GCD;

    loss = (1−λ)·[DAPL + 2·L_ent + w_sep·L_sep] + λ·CE_sup + (1−λ)·InfoNCE + λ·SupCon, λ = 0.35.

Before ``set_prototypes`` (a warm-up before the first clustering) only InfoNCE and SupCon train.

Where it fits the workbench's GCD loop: ProtoGCD needs K given (the released K-estimation
script is missing). ``wb.recipes.discover_categories(method="protogcd")`` takes K and the
starting prototypes from the semi-supervised GMM with split/merge each round
(``set_prototypes``), trains them with this loss, and predicts by the nearest prototype.

Differences from the official code: the ratio ramps over steps (the code: over 100 epochs); no
balanced labelled/unlabelled sampler (the recipe's batches are uniform); w_sep defaults to
0.1 (the CIFAR-100 value; argparse default 1).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._checks import check_int, check_number
from ._heads import HeadMixin
from ._lazy import LazyStateMixin
from .augment import get_augmentation
from .base import Method
from .gpc import contrastive_terms
from .supcon import _mean_logs

__all__ = ["ProtoGCD", "separation_loss", "dapl_targets", "entropy_regulariser"]


def separation_loss(mu: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """L_sep of unit prototypes ``mu`` (K, d): mean_i log mean_{j≠i} exp(μ_i·μ_j / τ)."""
    k = mu.shape[0]
    s = mu @ mu.T / temperature
    s = s.masked_fill(torch.eye(k, dtype=torch.bool, device=mu.device), float("-inf"))
    return (torch.logsumexp(s, dim=1) - math.log(k - 1)).mean()


def dapl_targets(logits: torch.Tensor, ratio: float, temperature: float = 0.05) -> torch.Tensor:
    """Teacher targets (B, K) of one view: softmax(logits/τ) with the ⌊ratio·B⌋ most confident
    rows (largest top1/top2 ratio) made one-hot. Gradient-free."""
    with torch.no_grad():
        p = (logits / temperature).softmax(1)
        top2 = p.topk(2, dim=1).values
        conf = top2[:, 0] / top2[:, 1].clamp_min(torch.finfo(p.dtype).tiny)
        n_hard = int(ratio * logits.shape[0])
        out = p.clone()
        if n_hard > 0:
            rows = conf.topk(n_hard).indices
            out[rows] = F.one_hot(p[rows].argmax(1), p.shape[1]).to(p.dtype)
        return out


def entropy_regulariser(logits: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """log K − H(mean_i softmax(logits_i / τ)) (≥ 0; 0 when the batch uses every prototype equally)."""
    p = (logits / temperature).softmax(1).mean(0)
    return math.log(logits.shape[1]) + (p * torch.log(p.clamp_min(1e-12))).sum()


class ProtoGCD(LazyStateMixin, HeadMixin, Method):
    """Unified prototypes + DAPL (see the module docstring). Call ``set_prototypes`` first."""

    needs_labels = True
    _lazy_buffers = ("anchor_class",)
    _lazy_parameters = ("prototypes",)

    def __init__(self, *, sup_weight: float = 0.35, entropy_weight: float = 2.0, sep_weight: float = 0.1,
                 ratio=(0.0, 1.0), ramp_steps: int = 1000, unsup_temperature: float = 1.0,
                 sup_temperature: float = 0.07, augment="auto", head: str | None = "mlp", dim: int | None = None,
                 head_hidden: int | None = None, feature_dim: int | None = None, seed: int | None = 0):
        super().__init__()
        check_number(sup_weight, "sup_weight", min=0, max=1)
        check_number(entropy_weight, "entropy_weight", min=0)
        check_number(sep_weight, "sep_weight", min=0)
        if not (isinstance(ratio, (tuple, list)) and len(ratio) == 2):
            raise TypeError(f"ratio must be (start, end) fractions, got {ratio!r}; e.g. (0.0, 1.0)")
        for r in ratio:
            check_number(r, "ratio", min=0, max=1)
        check_int(ramp_steps, "ramp_steps", min=1)
        self.sup_weight, self.entropy_weight, self.sep_weight = float(sup_weight), float(entropy_weight), float(sep_weight)
        self.ratio, self.ramp_steps = (float(ratio[0]), float(ratio[1])), ramp_steps
        self.unsup_temperature, self.sup_temperature = float(unsup_temperature), float(sup_temperature)
        self.augment = get_augmentation(augment)
        self._init_head(head, dim, feature_dim, head_hidden, seed)
        self.register_parameter("prototypes", None)
        self.register_buffer("anchor_class", None)
        self.class_component: dict[int, int] = {}
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def set_prototypes(self, centroids: torch.Tensor, anchor_class: torch.Tensor):
        """Start the K prototypes at ``centroids`` (K, d) (unit-normalised); prototype i stands
        for class ``anchor_class[i]`` when ≥ 0 (the labelled classes). Creates a new parameter:
        call it before building the optimizer (``wb.fit`` does)."""
        c = F.normalize(torch.as_tensor(centroids).detach().float(), dim=1)
        if c.shape[0] < 2 or anchor_class.shape != (c.shape[0],):
            raise ValueError("need K >= 2 centroids (K, d) and anchor_class (K,)")
        dev = next((p.device for p in self.parameters()), c.device)
        self.prototypes = torch.nn.Parameter(c.to(dev))
        self.anchor_class = torch.as_tensor(anchor_class).long().to(dev)
        self._after_lazy_load()
        return self

    def _after_lazy_load(self):
        if self.anchor_class is not None:
            self.class_component = {int(a): i for i, a in enumerate(self.anchor_class.tolist()) if a >= 0}

    def current_ratio(self) -> float:
        t = min(1.0, float(self.step) / self.ramp_steps)
        return self.ratio[0] + t * (self.ratio[1] - self.ratio[0])

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Cosines (N, K) between backbone features ``h`` and the unit prototypes."""
        if self.prototypes is None:
            raise ValueError("ProtoGCD has no prototypes yet: call set_prototypes(centroids, anchor_class)")
        return F.normalize(h.reshape(h.shape[0], -1), dim=1) @ F.normalize(self.prototypes, dim=1).T

    @torch.no_grad()
    def predict(self, model, x: torch.Tensor) -> torch.Tensor:
        """Index of the nearest prototype for each sample (N,)."""
        return self.logits(model.features(x)).argmax(1)

    def loss(self, model, batch):
        x, y = batch
        if y is None:
            raise ValueError("ProtoGCD needs labels (class ids, −1 for the unlabelled samples)")
        self._ready(model, x)
        b = x.shape[0]
        h = model.features(torch.cat([self.augment(x), self.augment(x)]))
        h = h.reshape(h.shape[0], -1)
        z = F.normalize(self.proj(h), dim=1)
        infonce, supcon = contrastive_terms(z, y.repeat(2), self.unsup_temperature, self.sup_temperature)
        lam = self.sup_weight
        if self.prototypes is None:  # before the first clustering (warm-up): contrastive terms only
            return (1 - lam) * infonce + lam * supcon, {"infonce": infonce.detach(), "supcon": supcon.detach()}
        logits = self.logits(h)  # (2B, K)
        lab = y >= 0
        target = torch.tensor([self.class_component.get(int(c), -1) for c in y[lab].tolist()],
                              dtype=torch.long, device=y.device)
        if bool((target < 0).any()):
            raise ValueError("a labelled class has no prototype: pass its anchored component to set_prototypes")
        ce = F.cross_entropy(logits[:b][lab] / 0.1, target) + F.cross_entropy(logits[b:][lab] / 0.1, target) \
            if bool(lab.any()) else logits.new_zeros(())
        ce = ce / 2
        r = self.current_ratio()
        ta, tb = dapl_targets(logits[:b], r), dapl_targets(logits[b:], r)
        ls = F.log_softmax(logits / 0.1, dim=1)
        distill = (-(ta * ls[b:]).sum(1).mean() - (tb * ls[:b]).sum(1).mean()) / 2
        ent = entropy_regulariser(logits)
        sep = separation_loss(F.normalize(self.prototypes, dim=1))
        loss = ((1 - lam) * (distill + self.entropy_weight * ent + self.sep_weight * sep) + lam * ce
                + (1 - lam) * infonce + lam * supcon)
        if self.training:
            self.step += 1
        logs = {"ce_sup": ce.detach(), "dapl": distill.detach(), "ent": ent.detach(), "sep": sep.detach(),
                "infonce": infonce.detach(), "supcon": supcon.detach(), "ratio": r}
        return loss, logs

    @torch.no_grad()
    def evaluate(self, model, data, batch_size: int = 1024) -> dict[str, float]:
        return _mean_logs(self, model, data, batch_size)
