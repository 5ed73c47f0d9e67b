"""Label-free multi-teacher feature distillation with PHI-S ("PHI-S: Distribution Balancing for
Label-Free Multi-Teacher Distillation", Ranzinger et al., NVIDIA; reference code NVlabs/RADIO
``examples/common/phi_s.py`` and ``hadamard.py``, read at commit c0f3701).

A student learns from several teachers at once, without labels: one small adaptor head per
teacher maps the student's features to that teacher's feature space, and the loss is the sum of
the regression errors. Teachers' features have very different scales and spectra, so whichever
teacher has the largest variance would dominate the sum. PHI-S standardises each teacher's
features first, with a map that makes the distribution **isotropic** without whitening it:

* fit once on the teacher's features X (N × d): mean μ, covariance Σ (unbiased) = U Λ Uᵀ
  (eigenvalues clamped at 0, sorted from the largest), H a d × d Hadamard matrix with
  orthonormal rows (entries ±1/√d), α = sqrt(mean(λ)) = sqrt(tr Σ / d);
* y = (1/α) · H Uᵀ (x − μ), and back x = α · U Hᵀ y + μ.

Every output dimension then has variance exactly 1 (each y_j mixes all eigen-directions with
weights 1/d), the total variance is kept up to one scalar, and nothing is divided by a tiny
eigenvalue (safe for low-rank teachers, unlike whitening); the off-diagonal covariances are not
0. Hadamard matrices exist for d = 1, 2 and multiples of 4; this file builds Sylvester's
(d a power of 2) and refuses other widths (the RADIO code falls back to a QR-orthogonalised
random ±1 matrix, which loses the exact unit variances).

``normalization`` also offers the baselines the paper compares: ``"none"`` (raw features),
``"standardize"`` (per-dimension z-score) and ``"whiten"`` (PCA whitening Λ^{-1/2} Uᵀ (x − μ),
eigenvalues floored at 1e-6 · λ_max).

Loss: Σ_k mean_{batch, dims} (adaptor_k(h_s) − N_k(f_k(x)))², h_s = ``model.features(x)``,
plus ``label_weight`` · CE(y, model(x)) when labels are wanted (0 = label-free). Adaptors are
``"mlp"`` (Linear → GELU → Linear, hidden 2·d_t capped at 256) or ``"linear"``.

Where this knowingly differs from the paper's runs: the normalisers are fitted on the training
data handed to ``fit`` (``setup``), in one pass, not on a separate sample; teachers' features are
their ``features(x)`` (the paper distils summary and patch tokens of vision transformers).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_number
from .._device import model_device
from .._modes import eval_mode
from .base import Method
from .cross_entropy import check_labels
from .kd import freeze

NORMALIZATIONS = ("phi-s", "standardize", "whiten", "none")


def hadamard(d: int) -> torch.Tensor:
    """Sylvester's d × d Hadamard matrix with orthonormal rows (±1/√d); d a power of 2."""
    if isinstance(d, bool) or not isinstance(d, int) or d < 1 or d & (d - 1):
        raise ValueError(
            f"PHI-S needs a Hadamard matrix of size d = the teacher's feature width; this builds "
            f"Sylvester's for powers of 2 only, got d={d!r}; give the teacher 32, 64, 128, ... features"
        )
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < d:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h / math.sqrt(d)


def fit_normalizer(x: torch.Tensor, kind: str = "phi-s") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(mean (d,), forward (d, d), inverse (d, d))`` with y = forward @ (x − mean) for each row;
    computed in float64 from features (N, d)."""
    check_choice(kind, "normalization", NORMALIZATIONS)
    x = x.detach().double()
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"fitting a normaliser needs (N, d) features with N >= 2, got {tuple(x.shape)}")
    d = x.shape[1]
    mu = x.mean(0)
    if kind == "none":
        eye = torch.eye(d, dtype=torch.float64)
        return mu * 0, eye, eye
    if kind == "standardize":
        sd = x.std(0).clamp_min(1e-12)
        return mu, torch.diag(1 / sd), torch.diag(sd)
    cov = torch.cov(x.T)  # unbiased
    lam, u = torch.linalg.eigh(cov)
    lam, u = lam.flip(0).clamp_min(0), u.flip(1)  # largest first
    if kind == "whiten":
        lam = lam.clamp_min(1e-6 * float(lam.max().clamp_min(1e-30)))
        return mu, torch.diag(lam.rsqrt()) @ u.T, u @ torch.diag(lam.sqrt())
    h = hadamard(d)
    alpha = lam.mean().sqrt().clamp_min(1e-30)
    return mu, (h @ u.T) / alpha, alpha * (u @ h.T)


class FeatureNormalizer(nn.Module):
    """A fitted affine map y = forward (x − mean) and its inverse, as buffers (see ``fit``)."""

    def __init__(self, dim: int, kind: str = "phi-s"):
        super().__init__()
        self.kind = check_choice(kind, "normalization", NORMALIZATIONS)
        if kind == "phi-s":
            hadamard(dim)  # refuse unsupported widths at construction
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("forward_map", torch.eye(dim))
        self.register_buffer("inverse_map", torch.eye(dim))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def fit(self, x: torch.Tensor) -> FeatureNormalizer:
        mu, fwd, inv = fit_normalizer(x, self.kind)
        dev = self.mean.device
        self.mean.copy_(mu.float().to(dev))
        self.forward_map.copy_(fwd.float().to(dev))
        self.inverse_map.copy_(inv.float().to(dev))
        self.fitted.fill_(True)
        return self

    def forward(self, x):
        return (x - self.mean) @ self.forward_map.T

    def inverse(self, y):
        return y @ self.inverse_map.T + self.mean


class MultiTeacherDistillation(Method):
    """Regress every teacher's normalised features from the student's through adaptor heads.

    ``teachers``: workbench models with ``features`` (frozen copies; for ``"phi-s"`` their
    ``feature_dim`` must be a power of 2). ``normalization``: ``"phi-s"`` (default),
    ``"standardize"``, ``"whiten"`` or ``"none"``. ``adaptor``: ``"mlp"`` or ``"linear"``.
    ``feature_dim``: size of the student's features (None: ``setup`` reads it). ``label_weight``:
    weight of CE(y, model(x)) (0: label-free). Logs ``feat`` (the summed regression loss), one
    ``feat_k`` per teacher, and ``ce``/``acc`` with labels.
    """

    def __init__(self, teachers, *, normalization: str = "phi-s", adaptor: str = "mlp",
                 feature_dim: int | None = None, label_weight: float = 0.0, seed: int = 0):
        super().__init__()
        if isinstance(teachers, nn.Module) or not isinstance(teachers, (list, tuple)) or not teachers:
            raise TypeError("teachers must be a non-empty list of trained workbench models")
        for t in teachers:
            if not isinstance(t, nn.Module) or not isinstance(getattr(t, "feature_dim", None), int):
                raise TypeError(f"every teacher must be a workbench model with an int feature_dim, got {type(t).__name__}")
        self.normalization = check_choice(normalization, "normalization", NORMALIZATIONS)
        self.adaptor_kind = check_choice(adaptor, "adaptor", ("mlp", "linear"))
        self.label_weight = check_number(label_weight, "label_weight", min=0)
        self.needs_labels = self.label_weight > 0
        self.seed = int(seed)
        self.teachers = nn.ModuleList([freeze(copy.deepcopy(t)) for t in teachers])
        self.normalizers = nn.ModuleList([FeatureNormalizer(t.feature_dim, normalization) for t in teachers])
        self.feature_dim = feature_dim
        self.adaptors = None
        if feature_dim is not None:
            self._build_adaptors(feature_dim)

    def _build_adaptors(self, d: int) -> None:
        from ..models import _SeededInit

        heads = []
        with _SeededInit(self.seed):
            for t in self.teachers:
                dt = t.feature_dim
                if self.adaptor_kind == "linear":
                    heads.append(nn.Linear(d, dt))
                else:
                    hid = min(256, 2 * dt)
                    heads.append(nn.Sequential(nn.Linear(d, hid), nn.GELU(), nn.Linear(hid, dt)))
        self.adaptors = nn.ModuleList(heads)
        self.feature_dim = d
        if hasattr(self, "config"):  # built by setup: record the size so checkpoints rebuild it
            self.config["feature_dim"] = d

    def train(self, mode: bool = True):
        super().train(mode)
        self.teachers.eval()
        return self

    @torch.no_grad()
    def setup(self, model, data=None):
        """Build the adaptors for ``model`` and fit the normalisers on ``data`` (idempotent)."""
        d = getattr(model, "feature_dim", None)
        if not isinstance(d, int):
            raise ValueError(f"{type(model).__name__} has no integer feature_dim; pass feature_dim= to the method")
        if self.adaptors is None:
            self._build_adaptors(d)
            self.adaptors.to(model_device(model))
        elif d != self.feature_dim:
            raise ValueError(f"the adaptors were built for {self.feature_dim}-d student features, the model has {d}")
        if data is not None and not all(bool(n.fitted) for n in self.normalizers):
            self.fit_normalizers(data)
        return self

    @torch.no_grad()
    def fit_normalizers(self, data, batch_size: int = 1024):
        """Fit each teacher's normaliser on its features of ``data`` (a Dataset or a tensor)."""
        x = getattr(data, "x", data)
        for t, norm in zip(self.teachers, self.normalizers):
            dev = model_device(t)
            with eval_mode(t):
                z = torch.cat([t.features(x[i:i + batch_size].to(dev)).reshape(min(batch_size, len(x) - i), -1)
                               for i in range(0, len(x), batch_size)])
            norm.to(dev).fit(z)
        return self

    def targets(self, x) -> list[torch.Tensor]:
        """Each teacher's normalised features of ``x`` (no gradient)."""
        with torch.no_grad():
            return [norm(t.features(x).reshape(x.shape[0], -1)) for t, norm in zip(self.teachers, self.normalizers)]

    def loss(self, model, batch):
        x, y = batch
        if self.adaptors is None or not all(bool(n.fitted) for n in self.normalizers):
            raise ValueError("MultiTeacherDistillation is not set up: call method.setup(model, train_data) "
                             "(wb.fit does it) so the adaptors exist and the normalisers are fitted")
        h = model.features(x)
        h = h.reshape(h.shape[0], -1)
        terms = [F.mse_loss(a(h), tgt) for a, tgt in zip(self.adaptors, self.targets(x))]
        feat = torch.stack(terms).sum()
        logs = {"feat": feat.detach(), **{f"feat_{k}": v.detach() for k, v in enumerate(terms)}}
        loss = feat
        if self.label_weight > 0:
            logits = model.head(h)
            check_labels(y, logits.shape[-1], "MultiTeacherDistillation")
            ce = F.cross_entropy(logits, y)
            loss = loss + self.label_weight * ce
            logs["ce"] = ce.detach()
        if y is not None and (y >= 0).all() and hasattr(model, "head"):
            logs["acc"] = (model.head(h.detach()).argmax(1) == y).float().mean()
        return loss, logs
