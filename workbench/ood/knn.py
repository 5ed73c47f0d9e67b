"""Deep nearest neighbours: distance to the k-th nearest normalised training feature.

Paper: Sun, Ming, Zhu & Li, "Out-of-Distribution Detection with Deep Nearest Neighbors"
(ICML 2022).

In words: L2-normalise the training features once (the bank) and every test feature; the OOD
score is the Euclidean distance from the test feature to its k-th nearest neighbour in the bank
(the paper's ID score is its negative). On the unit sphere that distance is
sqrt(2 − 2·cos), so this ranks like "the k-th largest cosine similarity", from the top.

**Two engines, one answer.** ``engine="torch"`` computes every distance exactly (chunked
``torch.cdist`` without the matrix-product shortcut). ``engine="faiss"`` (the official code's
library; ``pip install faiss-cpu``) searches an exact ``faiss.IndexFlatL2`` of the normalised
bank, ~15x faster here, but faiss forms squared distances as ‖x‖² + ‖y‖² − 2x·y in float32,
which can misorder neighbours closer than ~1e-5. So faiss only proposes candidates: the
k + ``margin`` nearest by its ranking, whose distances are then recomputed exactly as the torch
engine does (the same ``cdist`` kernel, so the same bits), and a row is re-done by the torch
engine unless the k-th exact distance is below the last candidate's faiss distance minus a
bound on faiss's rounding error (in which case no row outside the candidates can be nearer).
Both engines break ties by the lower bank index. Hence the same scores and the same
neighbours, exactly, whichever engine runs (tested). ``engine="auto"`` (default) uses faiss
when it is installed and the features are on the CPU.

Where this differs from the paper / official code: ``k`` defaults to 50 (the paper's CIFAR-10
value; it used 200 for CIFAR-100 and 1000 for ImageNet with a 1% subsample of the training set);
scoring the training points themselves counts each point as its own nearest neighbour (distance
0), as the paper's bank would. ``normalize=False`` gives the plain (unnormalised) k-NN distance
the paper ablates. The faiss engine keeps the bank twice (``bank_`` and faiss's own copy).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import torch
import torch.nn.functional as F

from .._checks import check_bool, check_choice
from .._stream import row_chunks
from .base import Detector

__all__ = ["KNN", "ENGINES"]

ENGINES = ("auto", "faiss", "torch")
_FAISS_BLOCK = 16384  # query rows per faiss search (k'·rows distances and indices at a time)
_REFINE_BLOCK = 256  # query rows per exact re-computation of faiss's candidates (measured fastest)


def _cdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def _k_smallest(d: torch.Tensor, idx: torch.Tensor | None, k: int):
    """The k smallest distances per row of ``d`` (B, m) and their bank indices (``idx`` (B, m),
    or the column numbers when None), ties broken by the lower index."""
    if idx is None:
        idx = torch.arange(d.shape[1], device=d.device).expand_as(d)
    order = idx.argsort(dim=1, stable=True)  # by index, then (stable) by distance
    d, idx = d.gather(1, order), idx.gather(1, order)
    order = d.argsort(dim=1, stable=True)[:, :k]
    return d.gather(1, order), idx.gather(1, order)


class KNN(Detector):
    """Distance to the k-th nearest (normalised) training feature.

    Parameters
    ----------
    k: which neighbour (1 = the nearest); at most the number of training samples.
    space: "backbone" (default), "embedding" or "logits".
    normalize: L2-normalise features (the paper's key ingredient).
    batch_size: test rows per distance block (memory ~ batch_size × n_train floats).
    engine: "auto" (faiss when installed and the features are on the CPU), "faiss" or "torch";
        both give the same result (module docstring).
    margin: extra candidates faiss proposes beyond k (None: 16 + k // 8).

    Fitted attributes: ``bank_`` (n_train, d) normalised training features, ``engine_``,
    ``n_features_in_``.
    """

    def __init__(self, *, k: int = 50, space: str = "backbone", normalize: bool = True,
                 batch_size: int = 2048, engine: str = "auto", margin: int | None = None):
        self.k = k
        self.space = space
        self.normalize = normalize
        self.batch_size = batch_size
        self.engine = engine
        self.margin = margin

    def _prep(self, z):
        z = z.float()
        return F.normalize(z, dim=1) if self.normalize else z

    def _fit(self, z, y):
        k = self.k
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        if k > z.shape[0]:
            raise ValueError(
                f"k={k} but only {z.shape[0]} training samples were given; pass k <= {z.shape[0]} "
                "(the paper uses k=50 for 50k training images)"
            )
        check_bool(self.normalize, "normalize")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {self.batch_size!r}")
        m = self.margin
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 0):
            raise ValueError(f"margin must be None or a non-negative int, got {m!r}")
        self.engine_ = self._resolve_engine(z)
        bank = torch.empty(z.shape, dtype=torch.float32, device=z.device)
        for i, block in row_chunks(z, 65536):
            bank[i : i + block.shape[0]] = self._prep(block)
        self.bank_ = bank
        self._index = None
        if self.engine_ == "faiss":
            import faiss

            self._index = faiss.IndexFlatL2(bank.shape[1])
            for i in range(0, bank.shape[0], 65536):
                self._index.add(np.ascontiguousarray(bank[i : i + 65536].numpy()))
            self._bank_sq = float(bank.square().sum(1).max()) if bank.numel() else 0.0

    def _resolve_engine(self, z) -> str:
        engine = check_choice(self.engine, "engine", ENGINES)
        has_faiss = importlib.util.find_spec("faiss") is not None
        if engine == "faiss":
            if not has_faiss:
                raise ImportError("engine='faiss' needs faiss; run: pip install faiss-cpu (or engine='torch')")
            if z.device.type != "cpu":
                raise ValueError(f"engine='faiss' (faiss-cpu) needs CPU features, got {z.device}; use engine='torch'")
        if engine == "auto":
            engine = "faiss" if has_faiss and z.device.type == "cpu" else "torch"
        return engine

    # ------------------------------------------------------------------ search
    def kneighbors(self, z) -> tuple[torch.Tensor, torch.Tensor]:
        """(distances, indices) of the k nearest training features of ``z``, each (N, k),
        nearest first (ties: lower index first)."""
        self._check_fitted()
        from .base import check_features

        z = check_features(z).to(self.bank_.device)
        if z.shape[1] != self.n_features_in_:
            raise ValueError(f"fitted on {self.n_features_in_}-d features, got {z.shape[1]}")
        n, k = z.shape[0], self.k
        dist = torch.empty(n, k, dtype=torch.float32)
        ind = torch.empty(n, k, dtype=torch.int64)
        block = _FAISS_BLOCK if self.engine_ == "faiss" else self.batch_size
        for i, zb in row_chunks(z, block):
            d, j = self._search(self._prep(zb))
            dist[i : i + zb.shape[0]], ind[i : i + zb.shape[0]] = d.cpu(), j.cpu()
        return dist, ind

    def _score(self, z):
        z = self._prep(z)
        out = torch.empty(z.shape[0], dtype=torch.float32, device=z.device)
        block = _FAISS_BLOCK if self.engine_ == "faiss" else self.batch_size
        for i in range(0, z.shape[0], block):
            out[i : i + block] = self._search(z[i : i + block])[0][:, -1]
        return out

    def _search(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """k nearest (distances, indices) of normalised queries ``q`` (B, d)."""
        if self.engine_ == "faiss":
            return self._search_faiss(q)
        return self._search_torch(q)

    def _search_torch(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, m = self.k, self._margin()
        ds, js = [], []
        for i in range(0, q.shape[0], self.batch_size):
            d = _cdist(q[i : i + self.batch_size], self.bank_)
            # the k + m smallest hold every distance tied with the k-th (unless > m ties)
            v, j = d.topk(min(k + m, d.shape[1]), dim=1, largest=False)
            v, j = _k_smallest(v, j, k)
            ds.append(v)
            js.append(j)
        return torch.cat(ds), torch.cat(js)

    def _search_faiss(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, n_bank = self.k, self.bank_.shape[0]
        kk = min(k + self._margin(), n_bank)
        approx, cand = self._index.search(np.ascontiguousarray(q.numpy()), kk)  # squared, float32
        cand = torch.from_numpy(cand)
        exact = torch.empty(cand.shape, dtype=torch.float32)  # (B, kk): the torch engine's bits
        for i in range(0, q.shape[0], _REFINE_BLOCK):  # small blocks: the gathered rows stay in cache
            c = cand[i : i + _REFINE_BLOCK]
            exact[i : i + _REFINE_BLOCK] = _cdist(q[i : i + _REFINE_BLOCK, None, :], self.bank_[c]).squeeze(1)
        v, j = _k_smallest(exact, cand, k)
        if kk < n_bank:  # rows whose k-th neighbour might lie outside faiss's candidates
            eps = 2.0 * (q.shape[1] + 4) * 2.0**-24 * (q.square().sum(1) + self._bank_sq)
            unsure = ~(v[:, -1].double().square() < torch.from_numpy(approx[:, -1]).double() - eps)
            if bool(unsure.any()):
                rows = unsure.nonzero().flatten()
                v[rows], j[rows] = self._search_torch(q[rows])
        return v, j

    def _margin(self) -> int:
        return 16 + self.k // 8 if self.margin is None else self.margin
