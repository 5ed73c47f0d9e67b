"""Prototypical few-shot evaluation, inductive and transductive, over random episodes.

Papers: Snell, Swersky & Zemel, "Prototypical Networks for Few-shot Learning" (NeurIPS 2017);
Ren et al., "Meta-Learning for Semi-Supervised Few-Shot Classification" (ICLR 2018, soft
k-means refinement); Ziko, Boudiaf, Dolz, Granger & Ben Ayed, "Transductive Few-Shot Learning:
Clustering is All You Need?" (arXiv 2106.09516, 2021: plain clustering of the queries, started
from the support prototypes, is a strong transductive few-shot learner).

An episode (N-way K-shot) draws N classes of a labelled set, K support and Q query samples of
each (without replacement). With a frozen embedding f (``model.features`` or any ``fn``):

* preprocessing: optionally subtract a centre (e.g. the mean embedding of a base/train set, as
  SimpleShot's "CL2N"), then L2-normalise (``normalize="l2"``);
* inductive: prototypes μ_c = mean of the class's support embeddings; each query goes to the
  class of the nearest prototype in squared Euclidean distance;
* transductive (soft k-means, ``iters`` rounds): soft assignments of the queries
  r_qc = softmax_c(-‖f(q) - μ_c‖² / T), then μ_c <- (Σ_{s ∈ S_c} f(s) + Σ_q r_qc f(q)) /
  (K + Σ_q r_qc); the support points keep their hard labels and anchor each cluster.

Accuracy is averaged over episodes and reported with a 95 % confidence interval
1.96 · std / √E (normal approximation, as the few-shot literature reports it). Everything runs
batched over episodes; the embedding is computed once for the whole data set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .._checks import check_bool, check_int, check_number, check_seed

__all__ = ["sample_episodes", "fewshot_eval", "fewshot_from_embeddings", "prototype_classify", "FewShotResult"]


@dataclass(frozen=True, eq=False)
class FewShotResult:
    """Mean accuracy over episodes, its 95 % CI half-width and the per-episode accuracies."""

    accuracy: float
    ci95: float
    episode_accuracy: torch.Tensor = field(repr=False)
    n_way: int = 5
    k_shot: int = 1
    n_query: int = 15
    transductive: bool = False

    @property
    def n_episodes(self) -> int:
        return int(self.episode_accuracy.shape[0])

    def __repr__(self) -> str:
        mode = "transductive soft k-means" if self.transductive else "inductive prototypes"
        return (
            f"FewShotResult({self.n_way}-way {self.k_shot}-shot, {mode}: accuracy "
            f"{self.accuracy:.2%} ± {self.ci95:.2%} (95% CI over {self.n_episodes} episodes, "
            f"{self.n_query} queries per class))"
        )


def sample_episodes(y, *, n_way: int = 5, k_shot: int = 1, n_query: int = 15, n_episodes: int = 600,
                    seed: int = 0, classes=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of ``n_episodes`` episodes: support (E, n_way, k_shot) and query (E, n_way, n_query).

    Class c of an episode is row c (its local label). Only classes with at least
    k_shot + n_query samples (labels >= 0) are used; ``classes`` restricts the pool (e.g. classes
    held out from training).
    """
    y = _labels(y)
    for name, v in (("n_way", n_way), ("k_shot", k_shot), ("n_query", n_query), ("n_episodes", n_episodes)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    check_seed(seed)
    pool = torch.unique(y[y >= 0]) if classes is None else _class_pool(classes, y)
    need = k_shot + n_query
    members = {int(c): (y == c).nonzero().flatten() for c in pool}
    eligible = [c for c, idx in members.items() if idx.numel() >= need]
    if len(eligible) < n_way:
        raise ValueError(
            f"{n_way}-way episodes with {k_shot} shots and {n_query} queries need {n_way} classes with "
            f">= {need} samples each; only {len(eligible)} qualify. Lower n_way, k_shot or n_query"
        )
    g = torch.Generator().manual_seed(seed)
    eligible_t = torch.as_tensor(eligible)
    sup = torch.empty(n_episodes, n_way, k_shot, dtype=torch.long)
    qry = torch.empty(n_episodes, n_way, n_query, dtype=torch.long)
    for e in range(n_episodes):
        chosen = eligible_t[torch.randperm(len(eligible), generator=g)[:n_way]]
        for c_local, c in enumerate(chosen.tolist()):
            idx = members[c]
            pick = idx[torch.randperm(idx.numel(), generator=g)[:need]]
            sup[e, c_local], qry[e, c_local] = pick[:k_shot], pick[k_shot:]
    return sup, qry


def _labels(y) -> torch.Tensor:
    """(N,) int64 labels from a tensor, array or list; non-integer values are refused."""
    try:
        y = torch.as_tensor(np.asarray(y) if isinstance(y, (list, tuple)) else y).detach().cpu()
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"y must be integer class labels (a tensor, array or list), got {type(y).__name__}: {err}") from None
    if y.ndim != 1:
        raise ValueError(f"y must be a flat (N,) array of labels, got shape {tuple(y.shape)}")
    if y.dtype == torch.bool or y.dtype.is_complex:
        raise TypeError(f"y must hold integer class labels, got {y.dtype}")
    if y.dtype.is_floating_point and not bool(torch.equal(y, y.round())):
        raise TypeError("y holds non-integer values; pass integer class labels (-1 = unlabelled)")
    return y.long()


def _class_pool(classes, y: torch.Tensor) -> torch.Tensor:
    """The ``classes=`` restriction as a tensor of distinct labels that occur in ``y``."""
    if isinstance(classes, (int, str)) or not hasattr(classes, "__iter__"):
        raise TypeError(f"classes must be a list of class labels, got {classes!r}; e.g. classes=[5, 6, 7, 8, 9]")
    pool = _labels(list(classes))
    if pool.unique().numel() != pool.numel():
        raise ValueError(f"classes lists a label twice: {pool.tolist()}; pass each class once")
    present = set(torch.unique(y[y >= 0]).tolist())
    missing = [c for c in pool.tolist() if c not in present]
    if missing:
        raise ValueError(f"classes {missing} do not occur among the labels (>= 0); classes present: {sorted(present)}")
    return pool


def _preprocess(z: torch.Tensor, normalize, center) -> torch.Tensor:
    if center is not None:
        center = torch.as_tensor(center, dtype=z.dtype)
        if center.shape != (z.shape[-1],):
            raise ValueError(
                f"center must be one ({z.shape[-1]},) vector (e.g. the mean training embedding), "
                f"got shape {tuple(center.shape)}"
            )
        z = z - center
    if normalize == "l2":
        z = torch.nn.functional.normalize(z, dim=-1)
    elif normalize is not None:
        raise ValueError(f"normalize must be 'l2' or None, got {normalize!r}")
    return z


def prototype_classify(support: torch.Tensor, query: torch.Tensor, *, transductive: bool = False,
                       iters: int = 10, temperature: float = 0.1) -> torch.Tensor:
    """Class (0..W-1) of every query, batched over episodes.

    ``support``: (E, W, K, d) embeddings, row c = class c; ``query``: (E, Q, d). Inductive:
    nearest class mean. Transductive: ``iters`` rounds of soft k-means (see the module docstring)
    started from the class means, then nearest refined prototype. Returns (E, Q) int64.
    """
    if support.ndim != 4 or query.ndim != 3 or support.shape[0] != query.shape[0] or support.shape[-1] != query.shape[-1]:
        raise ValueError(
            f"support must be (E, W, K, d) and query (E, Q, d), got {tuple(support.shape)} and {tuple(query.shape)}"
        )
    check_bool(transductive, "transductive")
    check_int(iters, "iters", min=0, hint="rounds of soft k-means")
    check_number(temperature, "temperature", min=0, min_open=True, hint="the soft assignment's T, e.g. 0.1")
    k = support.shape[2]
    sum_s = support.sum(2)  # (E, W, d)
    mu = sum_s / k
    if transductive:
        for _ in range(iters):
            d2 = torch.cdist(query, mu).pow(2)  # (E, Q, W)
            r = (-d2 / temperature).softmax(-1)
            mu = (sum_s + r.transpose(1, 2) @ query) / (k + r.sum(1))[..., None]
    return torch.cdist(query, mu).argmin(-1)  # (E, Q)


def fewshot_from_embeddings(
    z,
    y=None,
    *,
    n_way: int = 5,
    k_shot: int = 1,
    n_query: int = 15,
    n_episodes: int = 600,
    transductive: bool = False,
    iters: int = 10,
    temperature: float = 0.1,
    normalize: str | None = "l2",
    center=None,
    classes=None,
    seed: int = 0,
) -> FewShotResult:
    """Few-shot accuracy of the embedding ``z`` (N, d) with labels ``y`` (see the module docstring);
    ``y`` defaults to ``z.labels`` for ``wb.data.Embeddings``."""
    if y is None:
        y = getattr(z, "labels", None)
        if y is None:
            raise ValueError("few-shot episodes need labels: pass y=, or Embeddings with labels")
    if not isinstance(z, (torch.Tensor, np.ndarray)):
        raise TypeError(f"z must be an (N, d) tensor or numpy array of embeddings, got {type(z).__name__}")
    z = torch.as_tensor(z).detach().cpu().float()
    if z.ndim != 2:
        raise ValueError(f"z must be (N, d), got shape {tuple(z.shape)}")
    if not bool(torch.isfinite(z).all()):
        raise ValueError("z contains NaN or inf; check the model's features")
    y = _labels(y)
    if y.shape != (z.shape[0],):
        raise ValueError(f"y must have one label per row of z ({z.shape[0]}), got shape {tuple(y.shape)}")
    check_number(temperature, "temperature", min=0, min_open=True, hint="the soft assignment's T, e.g. 0.1")
    if not isinstance(iters, int) or isinstance(iters, bool) or iters < 0:
        raise ValueError(f"iters must be a non-negative int, got {iters!r}")
    check_bool(transductive, "transductive")
    z = _preprocess(z, normalize, center)
    sup, qry = sample_episodes(y, n_way=n_way, k_shot=k_shot, n_query=n_query, n_episodes=n_episodes,
                               seed=seed, classes=classes)
    zs = z[sup]  # (E, W, K, d)
    zq = z[qry].reshape(n_episodes, n_way * n_query, -1)  # (E, Q_all, d)
    truth = torch.arange(n_way).repeat_interleave(n_query)  # (Q_all,)
    pred = prototype_classify(zs, zq, transductive=transductive, iters=iters, temperature=temperature)
    acc = (pred == truth).float().mean(1).double()
    mean = float(acc.mean())
    ci = float(1.96 * acc.std(unbiased=True) / math.sqrt(n_episodes)) if n_episodes > 1 else float("nan")
    return FewShotResult(mean, ci, acc.float(), n_way, k_shot, n_query, bool(transductive))


def fewshot_eval(
    model,
    data,
    *,
    fn=None,
    n_way: int = 5,
    k_shot: int = 1,
    n_query: int = 15,
    n_episodes: int = 600,
    transductive: bool = False,
    iters: int = 10,
    temperature: float = 0.1,
    normalize: str | None = "l2",
    center=None,
    classes=None,
    seed: int = 0,
    batch_size: int = 1024,
) -> FewShotResult:
    """Prototypical few-shot accuracy of ``model``'s embedding on episodes drawn from ``data``.

    ``fn(model, x)``: the embedding (default ``model.features``). ``center``: a vector to
    subtract before normalising, or a Dataset whose mean embedding is used (e.g. the training
    set: SimpleShot's CL2N). ``classes``: restrict episodes to these labels (e.g. novel classes
    held out of training). The model is not changed.
    """
    from ..data.dataset import Dataset
    from .embedding import embed

    if not isinstance(data, Dataset):
        raise TypeError(
            f"fewshot_eval needs a labelled wb.data.Dataset, got {type(data).__name__}; for precomputed "
            "embeddings use fewshot_from_embeddings(z, y)"
        )
    if data.y is None:
        raise ValueError("fewshot_eval needs a labelled wb.data.Dataset (data.y is None)")
    z = embed(model, data, fn=fn, batch_size=batch_size)
    if isinstance(center, Dataset):
        center = embed(model, center, fn=fn, batch_size=batch_size).mean(0)
    return fewshot_from_embeddings(
        z, data.y, n_way=n_way, k_shot=k_shot, n_query=n_query, n_episodes=n_episodes,
        transductive=transductive, iters=iters, temperature=temperature, normalize=normalize,
        center=center, classes=classes, seed=seed,
    )
