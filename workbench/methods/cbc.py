"""Losses of the robust prototype network: the CBC margin loss and the robust (certified) loss.

Saralajew, Rana, Villmann & Shaker, "A Robust Prototype-Based Network with Interpretable RBF
Classifier Foundations" (AAAI 2025); code ``enlaight`` (``robust_stable_cbc_loss``), read in the
reference notes. For ``wb.models.DeepCBC`` with scores p(c|x) = Σ_k α_kc [r_kc d_k + (1 − r_kc)
(1 − d_k)] and d_k = exp(−dist_k / σ_k):

* ``kind="margin"``: relu(max_{c ≠ y} p_c − p_y + margin), margin 0.3 (CBC's loss);
* ``kind="robust"``: relu(margin − ρ) with margin 1.58 (the ℓ2 radius used on MNIST) and ρ a lower
  bound on the distance perturbation that can flip the decision. If every distance may change by
  at most ε, d_k can shrink or grow by a factor u = exp(ε/σ_min). Bounding each term on its own
  (as the code does: the positive-reasoning term of the true class i at d/u, its negative term
  at 1 − d·u, and the opposite for a wrong class j), p_i − p_j ≥ m(u) with
  u·m(u) = C2 u² + C1 u + C0,
  C0 = Σ_k (α r)_ki d_k + (α(1−r))_kj d_k, C1 = Σ_k (α(1−r))_ki − (α(1−r))_kj,
  C2 = −Σ_k (α(1−r))_ki d_k + (α r)_kj d_k;
  the positive root u* gives ρ_j = σ_min·log u*, and ρ = min over wrong classes j (with one
  reasoning concept per class, the code's max over correct concepts is that one concept).
  ρ < 0 when the sample is misclassified. It is a lower bound (it lets the same d_k move both
  ways): on the notes' example the bound is 0.5615 while brute force finds the flip at 0.752.

Differences: in ``DeepCBC`` the distances are between latent patches and prototypes, so ρ
certifies perturbations of the latent patches, not of the input image.
"""

from __future__ import annotations

import torch

from .._checks import check_choice, check_number
from .base import Method
from .cross_entropy import check_labels

__all__ = ["CBCLoss", "robustness", "cbc_margin_loss"]

KINDS = ("margin", "robust")


def cbc_margin_loss(p: torch.Tensor, y: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """mean relu(max_{c ≠ y} p_c − p_y + margin) of scores ``p`` (N, C)."""
    own = torch.nn.functional.one_hot(y, p.shape[1]).bool()
    wrong = p.masked_fill(own, float("-inf")).max(dim=1).values
    return torch.relu(wrong - p.gather(1, y[:, None])[:, 0] + margin).mean()


def robustness(d: torch.Tensor, alpha_r: torch.Tensor, alpha_not_r: torch.Tensor, y: torch.Tensor,
               sigma_min) -> torch.Tensor:
    """ρ (N,): the certified distance perturbation of stable CBC (module docstring).

    ``d`` (N, K) detection probabilities, ``alpha_r`` / ``alpha_not_r`` (K, C), ``y`` (N,),
    ``sigma_min`` the smallest σ."""
    pr, pn = d @ alpha_r, d @ alpha_not_r  # (N, C): Σ_k (α r)_kc d_k, Σ_k (α(1−r))_kc d_k
    sn = alpha_not_r.sum(0)  # (C,)
    yi = y[:, None]
    c0 = pr.gather(1, yi) + pn  # (N, C) over wrong classes j
    c1 = sn[y][:, None] - sn[None, :]
    c2 = -(pn.gather(1, yi) + pr)
    tiny = torch.finfo(d.dtype).tiny
    disc = (c1 * c1 - 4 * c2 * c0).clamp_min(0)
    quad = (-c1 - torch.sqrt(disc)) / (2 * c2.clamp_max(-tiny))
    # C2 = 0 (no term can grow): the margin is C1 + C0/u, positive for every u when C1 >= 0
    lin = torch.where(c1 < 0, c0 / (-c1).clamp_min(tiny), torch.full_like(c0, float("inf")))
    u = torch.where(c2 < 0, quad, lin)
    rho = sigma_min * torch.log(u.clamp_min(tiny))
    own = torch.nn.functional.one_hot(y, alpha_r.shape[1]).bool()
    return rho.masked_fill(own, float("inf")).min(dim=1).values


class CBCLoss(Method):
    """Margin or robust loss for ``wb.models.DeepCBC`` (see the module docstring).

    Logs ``acc``, ``margin_loss`` or ``rho`` (mean certified radius, negative when wrong)."""

    def __init__(self, kind: str = "margin", *, margin: float | None = None):
        super().__init__()
        check_choice(kind, "kind", KINDS)
        if margin is not None:
            check_number(margin, "margin", min=0, hint="0.3 for the margin loss, 1.58 for the robust loss")
        self.kind = kind
        self.margin = float(margin) if margin is not None else (0.3 if kind == "margin" else 1.58)

    def loss(self, model, batch):
        x, y = batch
        if type(model).__name__ != "DeepCBC":
            raise TypeError(f"CBCLoss trains wb.models.DeepCBC, got {type(model).__name__}")
        check_labels(y, model.n_classes, "CBCLoss")
        d = model.features(x)  # (N, K) detection probabilities
        ar, anr = model.reasoning_weights()
        p = model.head(d)
        if self.kind == "margin":
            loss = cbc_margin_loss(p, y, self.margin)
            extra = {"margin_loss": loss.detach()}
        else:
            rho = robustness(d, ar, anr, y, model.sigmas.min())
            loss = torch.relu(self.margin - rho).mean()
            extra = {"rho": rho.detach().clamp(-10, 10).mean()}
        with torch.no_grad():
            logs = {"acc": (p.argmax(1) == y).float().mean(), **extra}
        return loss, logs
