"""Online class-incremental learning: one pass over a stream of tasks, scored after each task.

The stream is the training set split into tasks (the classes each task introduces); every task
is seen once, in batches of ``batch_size`` (10 in OnPro), by ``wb.fit(..., epochs=1)``, with a
method that keeps its own replay buffer (``wb.methods.OnPro``; with its replay terms switched off
it is experience replay, with ``buffer_size=0`` plain fine-tuning). After each task the
classifier (``model(x)``) predicts every test sample; from those predictions come the session x
task and session x class accuracy matrices (``wb.analyses.accuracy_matrices``) and the average
accuracy and forgetting (``wb.analyses.continual_metrics``). The test embeddings after each task
are kept for the prototype-drift map (``wb.analyses.prototype_drift``).

Each task builds a new optimizer (``wb.fit``), so Adam's moments restart at task boundaries;
the official OnPro keeps one optimizer for the whole stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .._checks import check_int, check_seed
from ..analyses.classification import predict
from ..analyses.continual import AccuracyMatrices, ContinualMetrics, accuracy_matrices
from ..analyses.embedding import embed
from ..training import fit

__all__ = ["online_continual", "OnlineCLResult"]


@dataclass(frozen=True, eq=False)
class OnlineCLResult:
    """``matrices`` (session x task / class accuracies), ``metrics`` (average accuracy and
    forgetting, ``convention``), ``predictions`` (S, N), ``embeddings`` (per session, the test
    features (N, d)), ``test_labels``, ``tasks``, ``histories``."""

    metrics: ContinualMetrics
    matrices: AccuracyMatrices = field(repr=False)
    predictions: torch.Tensor = field(repr=False)
    embeddings: tuple = field(repr=False)
    test_labels: torch.Tensor = field(repr=False)
    tasks: tuple = field(repr=False)
    histories: tuple[Any, ...] = field(repr=False)
    model: nn.Module | None = field(repr=False, default=None)
    method: nn.Module | None = field(repr=False, default=None)

    def __repr__(self) -> str:
        return f"OnlineCLResult({len(self.tasks)} tasks; {self.metrics})"


def online_continual(model: nn.Module, method, train, test, *, tasks, batch_size: int = 10, lr: float = 1e-3,
                     convention: str = "chaudhry", embed_fn=None, seed: int = 0, **fit_options) -> OnlineCLResult:
    """One pass over ``train`` split into ``tasks`` (lists of classes), scored on ``test`` after
    each task (module docstring). ``model`` and ``method`` train in place."""
    tasks = tuple(tuple(int(c) for c in t) for t in tasks)
    flat = [c for t in tasks for c in t]
    if not tasks or len(set(flat)) != len(flat):
        raise ValueError(f"tasks must be non-empty lists of distinct classes, got {tasks}")
    check_int(batch_size, "batch_size", min=1)
    check_seed(seed)
    if train.y is None or test.y is None:
        raise ValueError("train and test must be labelled")
    fit_options.setdefault("progress", False)
    preds, embs, hists = [], [], []
    y_cpu = train.y.cpu()
    for t, classes in enumerate(tasks):
        part = train.subset(torch.isin(y_cpu, torch.tensor(classes)).to(train.device))
        if len(part) < batch_size:
            raise ValueError(f"task {t} has {len(part)} training samples, fewer than one batch of {batch_size}")
        hists.append(fit(model, method, part, epochs=1, batch_size=batch_size, lr=lr, seed=seed + t, **fit_options))
        preds.append(predict(model, test).pred)
        embs.append(embed(model, test, fn=embed_fn))
    p = torch.stack(preds)
    mats = accuracy_matrices(p, test.y.cpu(), tasks)
    return OnlineCLResult(metrics=mats.metrics(convention), matrices=mats, predictions=p, embeddings=tuple(embs),
                          test_labels=test.y.cpu(), tasks=tasks, histories=tuple(hists), model=model, method=method)
