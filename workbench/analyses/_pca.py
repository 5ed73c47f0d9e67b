"""PCA of data too large to copy: the covariance accumulated in one streamed pass, then ``eigh``.

PCA's components are the top eigenvectors of the sample covariance C = Xcᵀ Xc / (n − 1) of the
centred data Xc. For n ≫ d, accumulating C over row blocks needs d² floats of memory and no copy
of X; this is scikit-learn's ``svd_solver="covariance_eigh"`` (which it picks itself when
n ≥ 10·d and d ≤ 1000), done in blocks and in float64:

* each block is shifted by a fixed vector s (the mean of the first block) before its sums are
  accumulated, S1 = Σ (x − s) and S2 = Σ (x − s)(x − s)ᵀ, so the final
  C = (S2 − S1 S1ᵀ / n) / (n − 1) does not lose digits to a large mean (scikit-learn forms
  Xᵀ X − n·μμᵀ in the data's own precision, float32 for float32 data);
* components are ordered by decreasing eigenvalue and their signs fixed as scikit-learn's
  ``svd_flip(u_based_decision=False)`` does (the entry of largest magnitude in each component is
  positive), so maps agree with ``sklearn.decomposition.PCA`` up to float rounding;
* ``transform`` streams too: (M, d) rows in blocks to an (M, k) result (x·W − μ·W in the
  data's float32, as scikit-learn's ``transform``).

Why not ``IncrementalPCA``: it keeps only k components between batches, so with k = 2 it is an
approximation of PCA, and scikit-learn's ``fit`` first validates (copies) the whole array. The
covariance pass is exact and reads the data once; its cost is O(n·d²) and d² memory, so it is
used for n ≥ 10·d and d ≤ 4096 (larger d: scikit-learn's randomised solver).
"""

from __future__ import annotations

import numpy as np
import torch

from .._stream import row_chunks, rows_for, shared_tensor

__all__ = ["ChunkedPCA"]

_BLOCK_BYTES = 32 * 2**20  # float64 working memory per block


class ChunkedPCA:
    """Exact PCA fitted in row blocks (attributes named as scikit-learn's ``PCA``).

    Fitted attributes: ``mean_`` (d,), ``components_`` (k, d), ``explained_variance_`` (k,),
    ``explained_variance_ratio_`` (k,), ``n_samples_``, ``n_features_in_``.
    """

    def __init__(self, n_components: int = 2, *, block_rows: int | None = None):
        self.n_components = n_components
        self.block_rows = block_rows

    def _rows(self, d: int) -> int:
        return self.block_rows or rows_for(_BLOCK_BYTES, 8 * d, at_least=256)

    def fit(self, z) -> ChunkedPCA:
        """Fit on (N, d) rows (a tensor, possibly memory-mapped, or a numpy array)."""
        z = _as_tensor(z)
        n, d = z.shape
        k = self.n_components
        if not 1 <= k <= min(n, d):
            raise ValueError(f"n_components must be between 1 and min(n, d) = {min(n, d)}, got {k}")
        if n < 2:
            raise ValueError("PCA needs at least 2 rows")
        shift = None
        s1 = torch.zeros(d, dtype=torch.float64)
        s2 = torch.zeros(d, d, dtype=torch.float64)
        for _, block in row_chunks(z, self._rows(d)):
            b = block.to(torch.float64)
            if shift is None:
                shift = b.mean(0)
            b -= shift
            s1 += b.sum(0)
            s2.addmm_(b.T, b)
            del b  # before the next block is converted: one float64 block alive at a time
        mean = shift + s1 / n
        cov = (s2 - torch.outer(s1, s1) / n) / (n - 1)
        evals, evecs = torch.linalg.eigh(cov)  # ascending
        evals = evals.flip(0).clamp_min(0.0)
        comps = evecs.flip(1).T[:k].clone()  # (k, d)
        big = comps.abs().argmax(1)
        comps *= torch.sign(comps[torch.arange(k), big])[:, None]
        total = evals.sum()
        self.mean_ = mean.numpy()
        self.components_ = comps.numpy()
        self.explained_variance_ = evals[:k].numpy()
        self.explained_variance_ratio_ = (evals[:k] / total).numpy() if total > 0 else np.zeros(k)
        self.n_samples_ = n
        self.n_features_in_ = d
        return self

    def transform(self, z) -> np.ndarray:
        """(M, k) coordinates of (M, d) rows, computed in blocks."""
        if not hasattr(self, "components_"):
            raise ValueError("this ChunkedPCA is not fitted yet; call fit(z) first")
        z = _as_tensor(z)
        if z.shape[1] != self.n_features_in_:
            raise ValueError(f"fitted on {self.n_features_in_}-d rows, got {z.shape[1]}")
        w = torch.from_numpy(self.components_).T  # (d, k) float64
        offset = torch.from_numpy(self.mean_) @ w  # (k,): x·W − μ·W, no centred copy of a block
        w32 = w.float()
        out = np.empty((z.shape[0], w.shape[1]), dtype=np.float32)
        for i, block in row_chunks(z, self._rows(z.shape[1])):
            out[i : i + block.shape[0]] = (block.float() @ w32 - offset).numpy()
        return out

    def __repr__(self) -> str:
        fitted = f", fitted on {self.n_samples_} rows" if hasattr(self, "n_samples_") else ""
        return f"ChunkedPCA(n_components={self.n_components}{fitted})"


def _as_tensor(z) -> torch.Tensor:
    if isinstance(z, np.ndarray):
        z = shared_tensor(z)
    if not isinstance(z, torch.Tensor) or z.ndim != 2:
        raise ValueError(f"expected an (N, d) array, got {type(z).__name__} of shape {getattr(z, 'shape', None)}")
    return z.detach().cpu()
