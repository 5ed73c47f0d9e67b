"""Few-shot class-incremental learning with TEEN's training-free prototype calibration.

Wang, Zhou, Ye & Zhan, "Few-Shot Class-Incremental Learning via Training-Free Prototype
Calibration" (NeurIPS 2023). The protocol, on any labelled image set:

1. **base session**: the model (``model.features``) and a cosine classifier
   (``wb.methods.CosineClassifier``, T = 16, a linear 128-d embedding) train on the base
   classes; afterwards every base class is represented by the class mean of its training
   embeddings (TEEN's ``replace_base_fc``) and the backbone is frozen;
2. **session s ≥ 1**: ``shots`` training samples of each new class arrive; its prototype is their
   mean embedding ("plain"), or that mean calibrated toward the base prototypes it resembles
   (``wb.analyses.teen_calibrate``, τ = 16, α);
3. after each session, every test sample is classified by the nearest prototype (cosine) among
   the classes seen so far.

Reported per session, for plain and calibrated prototypes: the accuracy over the seen classes'
test samples (TEEN's ``va``), the mean per-class accuracy of the base classes and of the new
classes seen so far, their harmonic mean, and the session x class accuracy matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .._checks import check_int, check_number, check_seed
from ..analyses.continual import AccuracyMatrices, accuracy_matrices
from ..analyses.embedding import embed
from ..analyses.prototype_calibration import class_means, cosine_predict, teen_calibrate
from ..training import fit

__all__ = ["fscil_teen", "FSCILResult"]

VARIANTS = ("plain", "calibrated")


@dataclass(frozen=True, eq=False)
class FSCILResult:
    """Per variant ("plain", "calibrated"), per session: ``accuracy`` (seen test samples),
    ``base_accuracy`` / ``novel_accuracy`` (mean per-class), ``harmonic`` (2·b·n/(b+n)),
    ``matrices`` (session x class), ``prototypes`` (per session, class -> vector); the frozen
    test ``embeddings`` (N, d), ``test_labels``; ``sessions`` (classes of each session, the base
    first), ``shots``, ``alpha``, ``temperature``; ``history`` of the base training."""

    accuracy: dict[str, torch.Tensor]
    base_accuracy: dict[str, torch.Tensor] = field(repr=False)
    novel_accuracy: dict[str, torch.Tensor] = field(repr=False)
    harmonic: dict[str, torch.Tensor] = field(repr=False)
    matrices: dict[str, AccuracyMatrices] = field(repr=False)
    prototypes: dict[str, tuple] = field(repr=False)
    embeddings: torch.Tensor = field(repr=False)
    test_labels: torch.Tensor = field(repr=False)
    sessions: tuple = field(repr=False)
    shots: int = 5
    alpha: float = 0.5
    temperature: float = 16.0
    model: nn.Module | None = field(repr=False, default=None)
    method: nn.Module | None = field(repr=False, default=None)
    history: Any = field(repr=False, default=None)

    def table(self):
        """A pandas DataFrame: one row per session and variant."""
        import pandas as pd

        rows = []
        for v in VARIANTS:
            for s in range(len(self.sessions)):
                rows.append(dict(session=s, prototypes=v, accuracy=float(self.accuracy[v][s]),
                                 base=float(self.base_accuracy[v][s]), novel=float(self.novel_accuracy[v][s]),
                                 harmonic=float(self.harmonic[v][s])))
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        p = " ".join(f"{float(a):.3f}" for a in self.accuracy["plain"])
        c = " ".join(f"{float(a):.3f}" for a in self.accuracy["calibrated"])
        return (f"FSCILResult({len(self.sessions)} sessions, {self.shots}-shot, TEEN α={self.alpha:g}, "
                f"τ={self.temperature:g}; accuracy per session: plain [{p}], calibrated [{c}])")


def _pick_shots(y: torch.Tensor, classes, shots: int, g: torch.Generator) -> torch.Tensor:
    out = []
    for c in classes:
        idx = (y == c).nonzero().flatten()
        if idx.numel() < shots:
            raise ValueError(f"class {c} has {idx.numel()} training samples, fewer than shots={shots}")
        out.append(idx[torch.randperm(idx.numel(), generator=g)[:shots]])
    return torch.stack(out)  # (C_new, shots)


def _session_scores(pred, y, base, novel) -> tuple[float, float, float, float]:
    seen = base + novel
    m = torch.isin(y, torch.tensor(seen))
    acc = float((pred[m] == y[m]).float().mean())

    def per_class(cs):
        vals = [float((pred[y == c] == c).float().mean()) for c in cs if bool((y == c).any())]
        return sum(vals) / len(vals) if vals else float("nan")

    b, n = per_class(base), per_class(novel)
    hm = 2 * b * n / (b + n) if novel and (b + n) > 0 else float("nan")
    return acc, b, n, hm


def fscil_teen(model: nn.Module, train, test, *, base_classes, sessions, shots: int = 5, base_steps: int = 600,
               lr: float = 1e-3, batch_size: int = 128, temperature: float = 16.0, calib_temperature: float = 16.0,
               alpha: float = 0.5, method=None, seed: int = 0, **fit_options) -> FSCILResult:
    """The base session, then ``sessions`` (lists of new classes) with ``shots`` samples each;
    plain class means vs TEEN-calibrated prototypes (module docstring). ``model`` trains in
    place during the base session only."""
    from ..methods.cosine_classifier import CosineClassifier

    base = [int(c) for c in base_classes]
    news = [[int(c) for c in s] for s in sessions]
    if len(set(base + [c for s in news for c in s])) != len(base) + sum(map(len, news)):
        raise ValueError("base_classes and sessions must not share or repeat a class")
    check_int(shots, "shots", min=1)
    check_int(base_steps, "base_steps", min=1)
    check_number(alpha, "alpha", min=0, max=1)
    check_seed(seed)
    if train.y is None or test.y is None:
        raise ValueError("train and test must be labelled")
    fit_options.setdefault("progress", False)
    # 1. base session: cosine classifier over the base classes (labels remapped to 0..B-1)
    remap = torch.full((int(train.y.max()) + 1,), -1, dtype=torch.long)
    remap[torch.tensor(base)] = torch.arange(len(base))
    base_train = train.subset(torch.isin(train.y.cpu(), torch.tensor(base)).to(train.device))
    base_train = base_train.with_labels(remap[base_train.y.cpu()])
    method = CosineClassifier(len(base), temperature=temperature, seed=seed) if method is None else method
    hist = fit(model, method, base_train, steps=base_steps, lr=lr, batch_size=batch_size, seed=seed, **fit_options)
    ztr = embed(model, train, fn=method.embed)
    zte = embed(model, test, fn=method.embed)
    ytr, yte = train.y.cpu(), test.y.cpu()
    base_protos = class_means(ztr, ytr, base)  # replace_base_fc
    g = torch.Generator().manual_seed(seed)
    # 2. sessions
    out = {v: dict(acc=[], base=[], novel=[], hm=[], preds=[], protos=[]) for v in VARIANTS}
    new_protos = {v: [] for v in VARIANTS}
    seen_new: list[int] = []
    for cls in [[]] + news:
        if cls:
            idx = _pick_shots(ytr, cls, shots, g)
            means = torch.stack([ztr[i].mean(0) for i in idx])  # (C_new, d)
            new_protos["plain"].append(means)
            new_protos["calibrated"].append(teen_calibrate(means, base_protos, temperature=calib_temperature,
                                                           alpha=alpha))
            seen_new += cls
        for v in VARIANTS:
            protos = torch.cat([base_protos, *new_protos[v]])
            pred = cosine_predict(zte, protos, base + seen_new)
            acc, b, n, hm = _session_scores(pred, yte, base, list(seen_new))
            for k, val in (("acc", acc), ("base", b), ("novel", n), ("hm", hm)):
                out[v][k].append(val)
            out[v]["preds"].append(pred)
            out[v]["protos"].append({c: protos[i] for i, c in enumerate(base + seen_new)})
    tasks = [base] + news
    t = lambda v, k: torch.tensor(out[v][k])  # noqa: E731
    return FSCILResult(
        accuracy={v: t(v, "acc") for v in VARIANTS}, base_accuracy={v: t(v, "base") for v in VARIANTS},
        novel_accuracy={v: t(v, "novel") for v in VARIANTS}, harmonic={v: t(v, "hm") for v in VARIANTS},
        matrices={v: accuracy_matrices(torch.stack(out[v]["preds"]), yte, tasks) for v in VARIANTS},
        prototypes={v: tuple(out[v]["protos"]) for v in VARIANTS}, embeddings=zte, test_labels=yte,
        sessions=tuple(tuple(c) for c in tasks), shots=shots, alpha=float(alpha), temperature=float(calib_temperature),
        model=model, method=method, history=hist,
    )
