"""Similarity of two representations of the same samples: linear CKA and relative representations.

* **linear CKA** (Kornblith, Norouzi, Lee & Hinton, ICML 2019, "Similarity of Neural Network
  Representations Revisited"): for column-centred X (N, d1) and Y (N, d2),
  CKA = ‖YᵀX‖²_F / (‖XᵀX‖_F · ‖YᵀY‖_F). It is 1 for X against itself, invariant to orthogonal
  transforms and isotropic scaling of either side (not to arbitrary invertible maps), and
  compares representations of different widths. Computed in float64; for N < d through the
  N × N Gram matrices (‖YᵀX‖²_F = ⟨XXᵀ, YYᵀ⟩), which gives the same number.
* **relative representations** (Moschella, Maiorca, Fumero, Norelli, Locatello & Rodolà,
  ICLR 2023, "Relative representations enable zero-shot latent space communication"): each
  sample is described by its cosine similarities to a shared set of anchor samples,
  r(x) = [cos(z(x), z(a_1)), ..., cos(z(x), z(a_A))]. Two models' relative representations of
  the same sample can be compared directly even when their absolute spaces differ by a
  rotation, scale or width. ``relative_similarity`` reports the mean cosine between the two
  models' r(x) and the top-1 retrieval rate (how often the nearest relative representation in
  model B of sample i's model-A one is sample i itself). Centring each embedding first
  (``center=True``, the default) is our choice for post-ReLU features, which are all positive;
  the paper centres in some of its experiments.

Pure functions over (N, d) tensors or numpy arrays; results are floats or frozen dataclasses of
CPU tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["linear_cka", "relative_representation", "RelativeSimilarity", "relative_similarity"]


def as_matrix(z, what: str) -> torch.Tensor:
    """``z`` (a tensor or numpy array of shape (N, d)) as a finite float64 CPU tensor, or a
    clear error naming ``what``."""
    if isinstance(z, np.ndarray):
        z = torch.from_numpy(np.ascontiguousarray(z))
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"{what} must be a tensor or numpy array of shape (N, d), got {type(z).__name__}")
    if z.ndim != 2:
        raise ValueError(f"{what} must have shape (N, d), got {tuple(z.shape)}")
    z = z.detach().cpu().double()
    if not torch.isfinite(z).all():
        raise ValueError(f"{what} contains NaN or inf; check the model's features")
    return z


def linear_cka(x, y) -> float:
    """Linear CKA between two representations of the same N samples, (N, d1) and (N, d2).

    ``‖Y_cᵀ X_c‖²_F / (‖X_cᵀ X_c‖_F ‖Y_cᵀ Y_c‖_F)`` with column-centred X_c, Y_c, in float64.
    1 for identical representations (up to rotation, reflection and isotropic scale), 0 when
    every feature of one is uncorrelated with every feature of the other.
    """
    a, b = as_matrix(x, "x"), as_matrix(y, "y")
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"x has {a.shape[0]} rows but y has {b.shape[0]}; CKA compares two representations "
            "of the same samples (row i of each = sample i)"
        )
    if a.shape[0] < 2:
        raise ValueError("CKA needs at least 2 samples")
    a = a - a.mean(0)
    b = b - b.mean(0)
    # for N < d it is cheaper through the N x N Gram matrices: ‖YᵀX‖² = <XXᵀ, YYᵀ>
    if a.shape[0] < max(a.shape[1], b.shape[1]):
        ka, kb = a @ a.T, b @ b.T
        num, na, nb = (ka * kb).sum(), ka.norm(), kb.norm()
    else:
        num = (b.T @ a).pow(2).sum()
        na, nb = (a.T @ a).norm(), (b.T @ b).norm()
    if na == 0 or nb == 0:
        which = "x" if na == 0 else "y"
        raise ValueError(f"{which} is constant over the samples (all features identical), so CKA is undefined")
    return float(num / (na * nb))


def relative_representation(z, anchors) -> torch.Tensor:
    """(N, A) cosine similarities of each row of ``z`` (N, d) to each anchor (A, d)."""
    a, b = as_matrix(z, "z"), as_matrix(anchors, "anchors")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"z is {a.shape[1]}-d but the anchors are {b.shape[1]}-d; embed the anchors with the same model")
    return (F.normalize(a, dim=1) @ F.normalize(b, dim=1).T).float()


def _anchor_index(n: int, anchors, seed: int) -> torch.Tensor:
    if isinstance(anchors, (int, np.integer)) and not isinstance(anchors, bool):
        if not 1 <= anchors <= n:
            raise ValueError(f"anchors must be between 1 and the number of samples ({n}), got {anchors}")
        g = torch.Generator().manual_seed(seed)
        return torch.randperm(n, generator=g)[: int(anchors)].sort().values
    idx = torch.as_tensor(anchors).long().flatten()
    if idx.numel() == 0 or idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"anchor indices must lie in [0, {n}), got {idx.tolist()[:8]}...")
    return idx


@dataclass(frozen=True, eq=False)
class RelativeSimilarity:
    """How alike two models' relative representations of the same samples are.

    ``cosine``: mean over samples of cos(r_A(x), r_B(x)); ``per_sample`` (N,) those cosines;
    ``top1``: fraction of samples whose nearest model-B relative representation (cosine) is
    their own; ``absolute_cosine``: the same mean cosine on the raw features (NaN when the
    widths differ) — the baseline that relative representations improve on; ``anchors``: the
    anchor indices used.
    """

    cosine: float
    top1: float
    absolute_cosine: float
    per_sample: torch.Tensor = field(repr=False)
    anchors: torch.Tensor = field(repr=False)

    def __repr__(self) -> str:
        return (
            f"RelativeSimilarity(cosine={self.cosine:.4f}, top1={self.top1:.4f}, "
            f"absolute cosine={self.absolute_cosine:.4f}, anchors={self.anchors.numel()})"
        )


def relative_similarity(za, zb, *, anchors=64, seed: int = 0, center: bool = True) -> RelativeSimilarity:
    """Compare two embeddings (N, d_a), (N, d_b) of the same samples through relative reps.

    ``anchors``: how many anchor samples to draw (seeded) or their indices. ``center``: subtract
    each embedding's mean before taking cosines (Moschella et al. centre in some experiments;
    it makes post-ReLU features, which are all positive, comparable).
    """
    a, b = as_matrix(za, "za"), as_matrix(zb, "zb")
    n = a.shape[0]
    if b.shape[0] != n:
        raise ValueError(f"za has {n} rows but zb has {b.shape[0]}; pass embeddings of the same samples")
    if center:
        a, b = a - a.mean(0), b - b.mean(0)
    idx = _anchor_index(n, anchors, seed)
    ra = relative_representation(a, a[idx]).double()
    rb = relative_representation(b, b[idx]).double()
    ra_n, rb_n = F.normalize(ra, dim=1), F.normalize(rb, dim=1)
    per = (ra_n * rb_n).sum(1)
    top1 = float(((ra_n @ rb_n.T).argmax(1) == torch.arange(n)).double().mean())
    absolute = float("nan")
    if a.shape[1] == b.shape[1]:
        absolute = float((F.normalize(a, dim=1) * F.normalize(b, dim=1)).sum(1).mean())
    return RelativeSimilarity(float(per.mean()), top1, absolute, per.float(), idx)
