"""GPC's representation loss: contrastive learning plus a prototypical term on the mixture's
components.

Zhao, Wen & Han, "Learning Semi-supervised Gaussian Mixture Models for Generalized Category
Discovery" (ICCV 2023); released ``methods/contrastive_training/gmm_sm.py`` (DTennant/GPC at
e9716f4), which builds on GCD's contrastive training. A batch holds labelled samples (class
ids) and unlabelled ones (label −1), each seen in 2 augmented views:

* InfoNCE (SimCLR) over all views, τ = 1.0 (GCD's default), on the projection head's unit
  embeddings;
* SupCon over the labelled views, τ = 0.07;
* PCL (prototypical contrastive learning, Li et al. 2021) on the unit backbone features q:
  CE(q·Cᵀ/φ, assignment) with C the unit centroids of the current semi-supervised GMM
  (``set_prototypes``, from ``wb.analyses.fit_ss_gmm``) and φ_k each component's
  concentration (``cluster_density``);

    loss = 0.65·InfoNCE + 0.35·SupCon + PCL     (GCD's λ = 0.35 supervised weight)

The EM loop (``wb.recipes.discover_categories``) alternates: features -> SS-GMM with
split/merge (E step; K may change) -> ``set_prototypes`` -> some steps of this loss (M step).

Differences from the release: the release takes each sample's assignment from the epoch's
clustering by sample index; here a batch carries no index, so a labelled sample is assigned to
its class's (anchored) component and an unlabelled one to the component nearest to the mean of
its two views' features (the clustering's own E-step rule, on the current features). The
concentration φ_k = mean distance of the members to the centroid / log(n_k + 10), clipped to its
10-90 percentiles, is rescaled to mean τ_pcl = 0.1 (PCL's rescaling; the notes read the
release as rescaling to mean 1, which on cosine logits makes the term nearly flat).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import check_number
from ._heads import HeadMixin
from ._lazy import LazyStateMixin
from .augment import get_augmentation
from .base import Method
from .supcon import _mean_logs, supcon_loss

__all__ = ["GPCLoss", "cluster_density", "contrastive_terms", "component_targets"]


def cluster_density(z: torch.Tensor, assign: torch.Tensor, centroids: torch.Tensor, *,
                    temperature: float = 0.1) -> torch.Tensor:
    """φ (K,): mean distance of each component's members to its centroid / log(n + 10),
    clipped to the 10-90 percentiles and rescaled to mean ``temperature`` (components with
    fewer than 2 members get the largest φ)."""
    k = centroids.shape[0]
    dist = (z - centroids[assign]).norm(dim=1)
    n = torch.bincount(assign, minlength=k).to(z.dtype)
    mean = torch.zeros(k, dtype=z.dtype).index_add_(0, assign, dist) / n.clamp_min(1)
    phi = mean / torch.log(n + 10)
    ok = n >= 2
    if bool(ok.any()):
        lo, hi = torch.quantile(phi[ok], 0.1), torch.quantile(phi[ok], 0.9)
        phi = torch.where(ok, phi.clamp(lo, hi), hi)
    else:
        phi = torch.ones_like(phi)
    return temperature * phi / phi.mean()


def contrastive_terms(z: torch.Tensor, y2: torch.Tensor, unsup_temperature: float, sup_temperature: float):
    """(InfoNCE over all views, SupCon over the labelled views) of unit embeddings ``z``
    (2B, d) stacked view-major, with labels ``y2`` (2B,) (−1 = unlabelled)."""
    b = z.shape[0] // 2
    own = torch.arange(b, device=z.device).repeat(2)
    infonce, _ = supcon_loss(z, own, unsup_temperature)
    lab = y2 >= 0
    if int(lab.sum()) >= 2:
        supcon, _ = supcon_loss(z[lab], y2[lab], sup_temperature)
    else:
        supcon = z.new_zeros(())
    return infonce, supcon


def component_targets(q: torch.Tensor, y: torch.Tensor, centroids: torch.Tensor,
                      class_component: dict[int, int]) -> torch.Tensor:
    """(B,) component of each sample: its class's anchored component when labelled, else the
    component nearest to the mean of its two views' unit features ``q`` (2B, d)."""
    b = y.shape[0]
    with torch.no_grad():
        nearest = ((q[:b] + q[b:]) @ centroids.T).argmax(1)
    if not class_component:
        return nearest
    table = torch.full((max(class_component) + 1,), -1, dtype=torch.long, device=y.device)
    for c, k in class_component.items():
        table[c] = k
    known = (y >= 0) & (y < table.numel())
    mapped = table[y.clamp(0, table.numel() - 1)]
    return torch.where(known & (mapped >= 0), mapped, nearest)


class GPCLoss(LazyStateMixin, HeadMixin, Method):
    """0.65·InfoNCE + 0.35·SupCon + PCL on the GMM's components (see the module docstring).

    Call ``set_prototypes(centroids, anchor_class, density)`` before training with PCL (without
    prototypes only the contrastive terms train). Logs ``infonce``, ``supcon``, ``pcl``.
    """

    needs_labels = True
    _lazy_buffers = ("prototypes", "density", "anchor_class")

    def __init__(self, *, unsup_temperature: float = 1.0, sup_temperature: float = 0.07,
                 sup_weight: float = 0.35, pcl_weight: float = 1.0, augment="auto", head: str | None = "mlp",
                 dim: int | None = None, head_hidden: int | None = None, feature_dim: int | None = None,
                 seed: int | None = 0):
        super().__init__()
        check_number(unsup_temperature, "unsup_temperature", min=0, min_open=True)
        check_number(sup_temperature, "sup_temperature", min=0, min_open=True)
        check_number(sup_weight, "sup_weight", min=0, max=1)
        check_number(pcl_weight, "pcl_weight", min=0)
        self.unsup_temperature, self.sup_temperature = float(unsup_temperature), float(sup_temperature)
        self.sup_weight, self.pcl_weight = float(sup_weight), float(pcl_weight)
        self.augment = get_augmentation(augment)
        self._init_head(head, dim, feature_dim, head_hidden, seed)
        self.register_buffer("prototypes", None)
        self.register_buffer("density", None)
        self.register_buffer("anchor_class", None)
        self.class_component: dict[int, int] = {}

    def _after_lazy_load(self):
        if self.anchor_class is not None:
            self.class_component = {int(a): i for i, a in enumerate(self.anchor_class.tolist()) if a >= 0}

    @torch.no_grad()
    def set_prototypes(self, centroids: torch.Tensor, anchor_class: torch.Tensor, density: torch.Tensor):
        """Use the unit ``centroids`` (K, d) of the backbone features, their ``anchor_class``
        (K,) (−1 = a free component) and concentrations ``density`` (K,)."""
        c = F.normalize(torch.as_tensor(centroids).float(), dim=1)
        if density.shape != (c.shape[0],) or anchor_class.shape != (c.shape[0],):
            raise ValueError("centroids (K, d), anchor_class (K,) and density (K,) must agree on K")
        dev = next((p.device for p in self.parameters()), c.device)
        self.prototypes = c.to(dev)
        self.density = density.float().to(dev)
        self.anchor_class = torch.as_tensor(anchor_class).long().to(dev)
        self._after_lazy_load()
        return self

    def loss(self, model, batch):
        x, y = batch
        if y is None:
            raise ValueError("GPCLoss needs labels (class ids, −1 for the unlabelled samples)")
        self._ready(model, x)
        v = torch.cat([self.augment(x), self.augment(x)])  # (2B, ...)
        h = model.features(v)
        h = h.reshape(h.shape[0], -1)
        z = F.normalize(self.proj(h), dim=1)
        y2 = y.repeat(2)
        infonce, supcon = contrastive_terms(z, y2, self.unsup_temperature, self.sup_temperature)
        loss = (1 - self.sup_weight) * infonce + self.sup_weight * supcon
        logs = {"infonce": infonce.detach(), "supcon": supcon.detach()}
        if self.prototypes is not None and self.pcl_weight > 0:
            q = F.normalize(h, dim=1)
            if q.shape[1] != self.prototypes.shape[1]:
                raise ValueError(f"the prototypes are {self.prototypes.shape[1]}-d but model.features gives "
                                 f"{q.shape[1]}-d; set them from the same features")
            target = component_targets(q, y, self.prototypes, self.class_component)
            logits = q @ self.prototypes.T / self.density
            pcl = F.cross_entropy(logits, target.repeat(2))
            loss = loss + self.pcl_weight * pcl
            logs["pcl"] = pcl.detach()
            logs["pcl_acc"] = (logits.detach().argmax(1) == target.repeat(2)).float().mean()
        return loss, logs

    @torch.no_grad()
    def evaluate(self, model, data, batch_size: int = 1024) -> dict[str, float]:
        return _mean_logs(self, model, data, batch_size)
