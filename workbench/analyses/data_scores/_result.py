"""``SampleScores``: one score per training example, and pruning by it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..._checks import check_choice, check_number, check_seed

__all__ = ["SampleScores", "labelled", "logits_of"]


@dataclass(frozen=True, eq=False)
class SampleScores:
    """Per-example scores (N,) named ``name`` ("el2n", "grand", "forgetting"), averaged over
    ``n_models`` models. ``keep(fraction)`` gives the indices a pruned data set keeps."""

    scores: torch.Tensor
    name: str
    n_models: int = 1

    def keep(self, fraction: float, *, which: str = "hardest", seed: int = 0) -> torch.Tensor:
        """Indices (sorted) of the ``fraction`` of examples to keep: "hardest" (highest scores,
        the paper's rule: easy examples are dropped), "easiest" (lowest) or "random" (the
        baseline, drawn with ``seed``). Ties break by index."""
        f = check_number(fraction, "fraction", min=0, max=1, min_open=True)
        check_choice(which, "which", ("hardest", "easiest", "random"))
        n = self.scores.numel()
        k = max(1, round(f * n))
        if which == "random":
            order = torch.randperm(n, generator=torch.Generator().manual_seed(check_seed(seed)))
        else:
            s = torch.nan_to_num(self.scores.double(), posinf=float("inf"))
            order = torch.sort(-s if which == "hardest" else s, stable=True).indices
        return order[:k].sort().values

    def __repr__(self) -> str:
        s = self.scores[torch.isfinite(self.scores)]
        stats = f"mean {float(s.mean()):.4f}, max {float(s.max()):.4f}" if s.numel() else "no finite score"
        inf = int((~torch.isfinite(self.scores)).sum())
        return (f"SampleScores({self.name}, n={self.scores.numel()}, {self.n_models} model(s); {stats}"
                f"{f'; {inf} never learned (inf)' if inf else ''})")


def labelled(data, what: str):
    from ...data.dataset import Dataset

    if not isinstance(data, Dataset):
        raise TypeError(f"{what} needs a labelled wb.data.Dataset, got {type(data).__name__}")
    if data.y is None or data.y.ndim != 1:
        raise ValueError(f"{what} needs class labels y (N,) on the data set")
    if bool((data.y < 0).any()):
        raise ValueError(f"{what}: the data has OOD/unknown (-1) labels; score the labelled training set")
    return data


def logits_of(model, x):
    out = model(x)
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise ValueError("the model's forward must return (N, classes) logits")
    return out
