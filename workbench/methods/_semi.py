"""Batches for the semi-supervised methods: labelled rows and unlabelled rows.

A semi-supervised method (``FixMatch``, ``MeanTeacher``, ``WeightAwareDistillation``) gets its
unlabelled samples in one of two ways:

* **a pool** (the papers' batch composition): ``method.set_unlabelled(data)`` stores the
  unlabelled inputs (and, for pseudo-label methods, per-sample targets) on the method; ``wb.fit``
  then runs on the *labelled* set with batch size B and every ``loss`` call draws ``mu * B``
  pool rows with torch's global RNG (which ``fit`` forks and seeds, so a fit stays
  reproducible). FixMatch uses B = 64, μ = 7.
* **mixed batches**: without a pool, rows of the batch labelled ``-1`` are the unlabelled ones;
  ``wb.fit`` on ``concat([labelled, unlabelled.with_labels(-1)])`` then draws them in the
  proportion of the data set (a simpler set-up than the papers', with far fewer labelled rows
  per batch).

The pool is a non-persistent buffer: it moves with ``.to(device)`` but is not saved in
checkpoints (it is data, not model state); set it again after loading.
"""

from __future__ import annotations

import torch

from .._checks import check_int
from .cross_entropy import check_labels


def _as_inputs(data) -> torch.Tensor:
    x = getattr(data, "x", data)
    if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point or x.ndim < 2 or x.shape[0] == 0:
        raise TypeError(
            "the unlabelled data must be a wb.data.Dataset or a non-empty floating-point tensor "
            f"(N, ...), got {type(data).__name__}"
        )
    return x


class UnlabelledPool:
    """Mixin: ``set_unlabelled`` stores a pool; ``_split`` returns labelled and unlabelled rows."""

    mu: int

    def _init_pool(self, mu: int) -> None:
        self.mu = check_int(mu, "mu", min=1, hint="unlabelled rows per labelled row drawn from the pool")
        self.register_buffer("pool", torch.zeros(0), persistent=False)

    def set_unlabelled(self, data, **per_sample) -> None:
        """Use ``data`` (a Dataset or (N, ...) tensor; labels ignored) as the unlabelled pool;
        ``per_sample`` tensors (N,) travel with it (e.g. pseudo-labels and weights)."""
        x = _as_inputs(data)
        dev = self.pool.device
        self.pool = x.detach().to(dev)
        for name, v in per_sample.items():
            v = torch.as_tensor(v).detach()
            if v.shape[0] != x.shape[0]:
                raise ValueError(f"{name} has {v.shape[0]} rows but the unlabelled data has {x.shape[0]}")
            self.register_buffer(f"pool_{name}", v.to(dev), persistent=False)

    def clear_unlabelled(self) -> None:
        self.pool = torch.zeros(0, device=self.pool.device)

    @property
    def has_pool(self) -> bool:
        return self.pool.numel() > 0

    def _split(self, batch, who: str):
        """``(x_l, y_l, x_u, idx_u)``: labelled rows and unlabelled rows (``idx_u``: their pool
        indices, None for mixed batches)."""
        x, y = batch[0], batch[1]
        if self.has_pool:
            check_labels(y, None, who)
            n = self.mu * x.shape[0]
            idx = torch.randint(0, self.pool.shape[0], (n,), device=self.pool.device)
            return x, y, self.pool[idx].to(x.device), idx
        if y is None:
            raise ValueError(
                f"{who} got a batch without labels and has no unlabelled pool: pass labelled data "
                "(y = -1 marks the unlabelled rows) or call method.set_unlabelled(data) first"
            )
        lab = y >= 0
        return x[lab], y[lab], x[~lab], None
