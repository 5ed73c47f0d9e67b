"""PALM: learning with a mixture of prototypes (faithful to the official code).

Paper: Lu et al., "Learning with Mixture of Prototypes for Out-of-Distribution Detection"
(ICLR 2024). This file follows the released code (commit eecb59a); where the paper and the code
differ, the code's behaviour is the default and the paper's is an option.

Objects. C classes, K prototypes per class (``n_prototypes``, 6), Kt = C·K prototypes in total,
each a unit vector in the d-dimensional embedding space (``dim``, 128). They live in the
registered buffer ``protos`` (Kt, d), are never touched by the optimiser, and start as uniform
[0, 1) random numbers normalised to unit length (so all start in the positive orthant). The
buffer ``proto_class`` (Kt,) says which class owns each prototype; as in the code, ownership is
interleaved: row j belongs to class j mod C. Embeddings are z = normalise(head(features(x))),
the head being an MLP f -> f -> d on top of the model's f-d features.

One training step, with the B samples of a batch seen in V = 2 augmented views (N = V·B
embeddings, stacked view-major, labels repeated):

1. Soft assignments. S = Z·Pᵀ (N, Kt) without gradient; Sinkhorn-Knopp on exp(S / ε) (ε = 0.05,
   3 iterations) alternately gives every prototype the same total mass and every sample mass 1
   (rows of the result W sum to 1). Then W is masked to the sample's own class and pruned to the
   top-k entries of each row (k = 5 of K = 6). "Reciprocal neighbours": a weight is large only if
   the prototype is among the sample's nearest and the sample earns a share of the prototype's
   equal mass.
2. Prototype update (EMA, only in training mode). U = the pruned W, L1-normalised per row and
   then per column, so column j holds convex weights over the samples assigned to prototype j;
   p_j <- normalise(m·p_j + (1 - m)·Σ_i U_ij z_i), m = 0.999. The new prototypes keep the
   gradient path through z (the old ones are constants).
3. MLE loss (compactness). Sinkhorn again with the updated prototypes, masked to the class, and
   restricted to the top-k index set of step 1 (the pre-update weights), L1-normalised per row:
   w_ij. With logits l_ij = z_i·p_j / τ (τ = 0.1, prototypes detached) and a softmax over all Kt
   prototypes of every class: L_MLE = -mean_i [ Σ_j w_ij l_ij - log Σ_j' exp(l_ij') ].
4. Prototype-contrastive loss (separation). A = P·Pᵀ / 0.5 on the updated prototypes (minus each
   row's detached max); positives of p_j are the other prototypes of its class:
   L_proto = -mean_j [ mean_{j' ∈ pos(j)} A_jj' - log Σ_{j' ≠ j} exp(A_jj') ]. It reaches the
   encoder only through the EMA term (1 - m)·t_j.
5. Loss = L_MLE + λ·L_proto (λ = 1). The updated prototypes are stored, detached.

Paper vs code, and where this file stands:

* Sinkhorn: the code runs one global Sinkhorn over all Kt prototypes and all N samples (classes
  are coupled through the equipartition) and masks afterwards; the paper writes it per class.
  ``sinkhorn="global"`` (default, the code) or ``"per-class"`` (the paper). The per-class
  version is computed as Sinkhorn on the class-masked kernel M ⊙ exp(S/ε), which equals running
  it separately in each class (each prototype's row and each sample's column only see their own
  class, so the constant mass targets cancel).
* MLE: the code uses Σ_j w_ij l_ij (a lower bound, by Jensen, on the paper's log Σ_j w_ij
  exp(l_ij), so its loss is an upper bound on the paper's). ``mle="code"`` (default) or
  ``"paper"``: -mean_i [ log Σ_j w_ij exp(l_ij) - log Σ_j' exp(l_ij') ].
* The loss's top-k index set comes from the pre-update weights (as the code), not from the
  weights recomputed after the update.
* Overflow: the code computes exp(S/ε) directly and, on inf, renormalises and retries; here S is
  shifted by its maximum first (a constant factor that the first normalisation removes), so the
  result is identical without the retry.
* An empty column in step 2 (a prototype whose class has no sample in the batch) gets a zero
  target, so after renormalisation the prototype is unchanged (as in the code).
* A class with one prototype (K = 1) has no prototype positives; such rows are left out of
  L_proto (the code would divide by zero).
* Devices: no hard-coded ``.cuda()``, no autocast or GradScaler (the official training loop only
  works with a scaler on CUDA); the loop is ``wb.fit``.
* With ``optimizer="sam"`` the loss runs twice per step; ``wb.fit`` restores the method's
  buffers after SAM's second pass, so the prototypes move once per step (first pass).
* Unsupervised PALM (paper Table 2) is not in the released code and not offered here.
* Evaluation (``evaluate``) reports the loss without updating the prototypes and the accuracy
  of the nearest prototype's class (``proto_acc``); the backbone's classifier head is not
  trained by PALM, so no classifier accuracy is reported.

Defaults that are the official hyperparameters: K = 6, top-k = 5, d = 128, τ = 0.1, τ_proto =
0.5, ε = 0.05, 3 Sinkhorn iterations, m = 0.999, λ = 1, 2 views. The official recipe trains
500 epochs at batch 512; on the workbench's small data a smaller momentum (e.g. 0.99) lets the
prototypes settle within a few thousand steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import check_number
from .._modes import eval_mode
from ._heads import HeadMixin
from .augment import get_augmentation
from .base import Method
from .cross_entropy import check_labels

SINKHORN_MODES = ("global", "per-class")
MLE_FORMS = ("code", "paper")


def sinkhorn(scores: torch.Tensor, epsilon: float = 0.05, iters: int = 3, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Sinkhorn-Knopp soft assignments of N samples to Kt prototypes, rows summing to 1.

    ``scores``: (N, Kt) similarities. The kernel Q = exp(scores / ε) is arranged prototypes ×
    samples, divided by its sum, then ``iters`` times: each prototype row is scaled to total
    1/Kt, then each sample column to 1/N. The result is multiplied by N and transposed back to
    (N, Kt). ``mask`` (N, Kt bool): zero the kernel outside it first (per-class Sinkhorn: each
    prototype then shares its mass only among the samples it may receive). Gradient-free.
    """
    with torch.no_grad():
        n, kt = scores.shape
        s = scores.to(torch.promote_types(scores.dtype, torch.float32))  # fp16 -> fp32, fp64 kept
        q = torch.exp((s - s.max()) / epsilon).T  # (Kt, N); the shift cancels in the normalisation
        if mask is not None:
            q = q * mask.T
        q = q / q.sum().clamp_min(torch.finfo(q.dtype).tiny)
        # rows that are all zero (a prototype with no allowed sample) stay zero
        for _ in range(iters):
            q = q / q.sum(1, keepdim=True).clamp_min(torch.finfo(q.dtype).tiny) / kt
            q = q / q.sum(0, keepdim=True).clamp_min(torch.finfo(q.dtype).tiny) / n
        return (q * n).T.to(scores.dtype)


def topk_mask(weights: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean (N, Kt) mask of the ``k`` largest entries of each row."""
    idx = weights.topk(k, dim=1).indices
    return torch.zeros_like(weights, dtype=torch.bool).scatter_(1, idx, True)


class PALM(HeadMixin, Method):
    """PALM (mixture of prototypes per class), faithful to the official code by default.

    Parameters
    ----------
    n_classes: number of classes C.
    n_prototypes: prototypes per class K (6).
    top_k: assignments kept per sample (5; at most K).
    dim: embedding / prototype dimension d (128; with ``head=None``, the feature size).
    feature_dim: size of ``model.features(x)``; when None call ``method.setup(model)`` before
        training (or let a fit that calls ``setup`` do it).
    head: ``"mlp"`` (official), ``"linear"`` or None (prototypes live in feature space).
    temperature: τ of the MLE softmax (0.1). proto_temperature: τ of L_proto (0.5).
    lambda_proto: weight λ of L_proto (1). epsilon, sinkhorn_iters: Sinkhorn's ε (0.05) and
        iterations (3). momentum: EMA m (0.999).
    sinkhorn: ``"global"`` (code) or ``"per-class"`` (paper). mle: ``"code"`` or ``"paper"``.
    augment, n_views: views per sample (2) and how they are made (see ``augment.py``);
        ``augment=None`` with ``n_views=1`` trains on the raw inputs.
    seed: seed of the prototype initialisation and of the head's initialisation.

    Attributes: ``prototypes`` (Kt, d), ``proto_class`` (Kt,), ``last_assignment`` (N, Kt) the
    soft weights w of the last loss call and ``last_labels`` (N,) its labels.
    """

    needs_labels = True

    def __init__(
        self,
        n_classes: int = 10,
        n_prototypes: int = 6,
        *,
        top_k: int = 5,
        dim: int | None = None,
        feature_dim: int | None = None,
        head: str | None = "mlp",
        head_hidden: int | None = None,
        temperature: float = 0.1,
        proto_temperature: float = 0.5,
        lambda_proto: float = 1.0,
        epsilon: float = 0.05,
        sinkhorn_iters: int = 3,
        momentum: float = 0.999,
        sinkhorn: str = "global",
        mle: str = "code",
        augment="auto",
        n_views: int = 2,
        seed: int | None = 0,
    ):
        super().__init__()
        for name, v in (("n_classes", n_classes), ("n_prototypes", n_prototypes), ("top_k", top_k),
                        ("sinkhorn_iters", sinkhorn_iters), ("n_views", n_views)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if top_k > n_prototypes:
            raise ValueError(f"top_k ({top_k}) cannot exceed n_prototypes ({n_prototypes}); pass top_k <= {n_prototypes}")
        for name, v in (("temperature", temperature), ("proto_temperature", proto_temperature),
                        ("epsilon", epsilon)):
            check_number(v, name, min=0, min_open=True)
        check_number(momentum, "momentum", min=0, max=1, max_open=True, hint="the prototypes' EMA rate m, e.g. 0.999")
        check_number(lambda_proto, "lambda_proto", min=0, hint="the weight λ of the prototype-contrastive loss, e.g. 1.0")
        if sinkhorn not in SINKHORN_MODES:
            raise ValueError(f"unknown sinkhorn mode {sinkhorn!r}; valid: {', '.join(SINKHORN_MODES)}")
        if mle not in MLE_FORMS:
            raise ValueError(f"unknown mle form {mle!r}; valid: {', '.join(MLE_FORMS)}")
        if head is None and dim is None and feature_dim is None:
            raise ValueError("with head=None the prototypes live in feature space: pass dim=<feature size>")
        self.n_classes, self.n_prototypes, self.top_k = n_classes, n_prototypes, top_k
        self.temperature, self.proto_temperature = float(temperature), float(proto_temperature)
        self.lambda_proto, self.epsilon, self.sinkhorn_iters = float(lambda_proto), float(epsilon), sinkhorn_iters
        self.momentum, self.sinkhorn_mode, self.mle = float(momentum), sinkhorn, mle
        self.n_views = n_views
        self.augment = get_augmentation(augment)
        self._init_head(head, dim, feature_dim, head_hidden, seed)
        kt = n_classes * n_prototypes
        g = torch.Generator().manual_seed(0 if seed is None else seed)
        self.register_buffer("protos", F.normalize(torch.rand(kt, self.dim, generator=g), dim=1))
        self.register_buffer("proto_class", torch.arange(n_classes).repeat(n_prototypes))
        self.last_assignment: torch.Tensor | None = None
        self.last_labels: torch.Tensor | None = None

    # ------------------------------------------------------------------ state
    @property
    def prototypes(self) -> torch.Tensor:
        """The current prototypes (Kt, d), unit rows (a detached view of the buffer)."""
        return self.protos.detach()

    @property
    def n_total(self) -> int:
        return self.protos.shape[0]

    def class_mask(self, y: torch.Tensor) -> torch.Tensor:
        """(N, Kt) bool: prototype j belongs to sample i's class."""
        return y[:, None] == self.proto_class[None, :]

    def _weights(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.sinkhorn_mode == "global":
            w = sinkhorn(scores, self.epsilon, self.sinkhorn_iters)
        else:
            w = sinkhorn(scores, self.epsilon, self.sinkhorn_iters, mask=mask)
        return w * mask

    @torch.no_grad()
    def assign(self, z: torch.Tensor, y: torch.Tensor | None = None, *, prototypes: torch.Tensor | None = None) -> torch.Tensor:
        """Soft assignment weights (N, Kt) of unit embeddings ``z`` as the loss uses them.

        With labels: Sinkhorn (this method's mode), class mask, top-k, rows normalised to 1.
        Without labels: a softmax over all prototypes at the MLE temperature.
        ``prototypes`` (Kt, d) replaces the current ones (e.g. a training snapshot).
        """
        p = self.protos if prototypes is None else prototypes.to(z.device, z.dtype)
        scores = z @ p.T
        if y is None:
            return (scores / self.temperature).softmax(1)
        mask = self.class_mask(y.to(z.device))
        w = self._weights(scores, mask)
        w = w * topk_mask(w, self.top_k)
        return F.normalize(w, p=1, dim=1)

    @torch.no_grad()
    def predict_class(self, z: torch.Tensor) -> torch.Tensor:
        """Class of the most similar prototype for each unit embedding in ``z`` (N,)."""
        return self.proto_class[(z @ self.protos.T).argmax(1)]

    def proto_contrastive(self, p: torch.Tensor) -> torch.Tensor:
        """L_proto of unit prototypes ``p`` (Kt, d): SupCon between prototypes (τ_proto)."""
        kt = p.shape[0]
        a = p @ p.T / self.proto_temperature
        a = a - a.max(1, keepdim=True).values.detach()
        eye = torch.eye(kt, dtype=torch.bool, device=p.device)
        pos = (self.proto_class[:, None] == self.proto_class[None, :]) & ~eye
        n_pos = pos.sum(1)
        has = n_pos > 0
        if not bool(has.any()):
            return a.new_zeros(())
        log_den = torch.log(torch.exp(a).masked_fill(eye, 0.0).sum(1))
        mean_pos = a.masked_fill(~pos, 0.0).sum(1) / n_pos.clamp_min(1)
        return -(mean_pos - log_den)[has].mean()

    # ------------------------------------------------------------------ loss
    def loss(self, model, batch):
        x, y = batch
        check_labels(y, self.n_classes, "PALM")
        self._ready(model, x)
        xs = torch.cat([self.augment(x) for _ in range(self.n_views)])  # (V·B, ...)
        z = self.embed(model, xs)  # (N, d), N = V·B, view-major
        labels = y.repeat(self.n_views)  # (N,)
        mask = self.class_mask(labels)  # (N, Kt)
        p_old = self.protos  # (Kt, d) constants

        with torch.no_grad():
            w = self._weights(z.detach() @ p_old.T, mask)  # (N, Kt), masked
            keep = topk_mask(w, self.top_k)  # top-k index set from the pre-update weights

        if self.training:
            u = F.normalize(F.normalize(w * keep, p=1, dim=1), p=1, dim=0)  # convex weights per column
            target = u.T @ z  # (Kt, d), keeps the gradient through z
            p_new = F.normalize(self.momentum * p_old + (1 - self.momentum) * target, dim=1)
        else:
            p_new = p_old

        with torch.no_grad():
            w2 = self._weights(z.detach() @ p_new.detach().T, mask) * keep
            w2 = F.normalize(w2, p=1, dim=1)  # (N, Kt) targets

        logits = z @ p_new.detach().T / self.temperature  # (N, Kt), all prototypes of all classes
        log_norm = torch.logsumexp(logits, dim=1)
        if self.mle == "code":
            l_mle = -((w2 * logits).sum(1) - log_norm).mean()
        else:
            log_w = torch.log(w2).masked_fill(w2 <= 0, float("-inf"))
            l_mle = -(torch.logsumexp(logits + log_w, dim=1) - log_norm).mean()
        l_proto = self.proto_contrastive(p_new)
        loss = l_mle + self.lambda_proto * l_proto

        if self.training:
            with torch.no_grad():
                self.protos.copy_(p_new.detach())
        self.last_assignment = w2.detach()
        self.last_labels = labels.detach()
        with torch.no_grad():
            pred = self.proto_class[logits.detach().argmax(1)]
            logs = {
                "mle": l_mle.detach(),
                "proto": l_proto.detach(),
                "proto_acc": (pred == labels).float().mean(),
                "used": ((w2.sum(0) > 0).float().sum()) / self.n_total,
            }
        return loss, logs

    @torch.no_grad()
    def evaluate(self, model, data, batch_size: int = 1024) -> dict[str, float]:
        """Mean loss and logs over ``data`` (no prototype update in eval mode).

        ``proto_acc`` here is the nearest-prototype accuracy on the un-augmented inputs.
        """
        from .._device import model_device

        device = model_device(model)
        totals: dict[str, torch.Tensor] = {}
        n = 0
        with eval_mode(self):
            for x, y in data.loader(batch_size, shuffle=False, device=device):
                loss, logs = self.loss(model, (x, y))
                logs["proto_acc"] = (self.predict_class(self.embed(model, x)) == y).float().mean()
                for k, v in {"loss": loss, **logs}.items():
                    v = torch.as_tensor(v, device=device, dtype=torch.float32)
                    totals[k] = totals.get(k, torch.zeros((), device=device)) + v * x.shape[0]
                n += x.shape[0]
        return {k: float(v) / n for k, v in totals.items()}

    def extra_repr(self) -> str:
        return (
            f"classes={self.n_classes}, prototypes/class={self.n_prototypes}, top_k={self.top_k}, "
            f"dim={self.dim}, momentum={self.momentum}, sinkhorn={self.sinkhorn_mode!r}, mle={self.mle!r}"
        )
