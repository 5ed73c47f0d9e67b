"""A semi-supervised fit that watches its pseudo-labels: few labelled, many unlabelled samples.

``semi_supervised(model, method, labelled, unlabelled)`` gives the method (``wb.methods.FixMatch``,
``MeanTeacher``...) the unlabelled inputs as its pool (``method.set_unlabelled``; each step draws
``mu × batch_size`` of them beside ``batch_size`` labelled ones, the papers' batch composition),
trains with ``wb.fit`` on the labelled set, and every ``record_every`` steps records what the
pseudo-labeller says about every unlabelled sample (confidence and label, from
``method.pseudo_labels``, else the model's softmax) and the model's features of them. The result
holds the trained model, the history and a ``wb.analyses.PseudoLabelTrace`` for
``wb.widgets.PseudoLabelView``.

The labels of ``unlabelled`` (if it has any) never reach the method: they only score the
pseudo-labels in the trace (−1 marks a class the labelled data do not have).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int
from .._device import model_device
from .._modes import eval_mode
from ..analyses.classification import predict
from ..analyses.embedding import embed
from ..analyses.pseudo_labels import PseudoLabelTrace, pseudo_label_trace
from ..training import fit
from ..training.callbacks import Callback

__all__ = ["SemiSupervisedResult", "semi_supervised", "PseudoLabelRecorder", "few_labels"]


class PseudoLabelRecorder(Callback):
    """Record confidence, pseudo-label and features of ``x`` every ``every`` steps (and at the
    start and end of the fit) — the pseudo-labeller's view, in eval mode."""

    def __init__(self, method, x: torch.Tensor, every: int):
        self.method, self.x, self.every = method, x, check_int(every, "record_every", min=1)
        self.steps, self.confidence, self.labels, self.features = [], [], [], []

    @torch.no_grad()
    def _take(self, state) -> None:
        model = state.model
        x = self.x.to(model_device(model))
        if callable(getattr(self.method, "pseudo_labels", None)):
            conf, lab = self.method.pseudo_labels(model, x)
        else:
            with eval_mode(model):
                conf, lab = F.softmax(model(x), -1).max(-1)
        self.steps.append(int(state.step))
        self.confidence.append(conf.cpu())
        self.labels.append(lab.cpu())
        self.features.append(embed(model, x.cpu()))

    def on_fit_start(self, state):
        self._take(state)

    def on_step_end(self, state):
        if state.step % self.every == 0:
            self._take(state)

    def on_fit_end(self, state):
        if self.steps and self.steps[-1] != state.step:
            self._take(state)


@dataclass(frozen=True, eq=False)
class SemiSupervisedResult:
    """A semi-supervised fit: ``model`` (trained in place), ``method``, ``history``, ``trace``
    (a ``PseudoLabelTrace``; None when no truth was available) and ``test_accuracy`` (NaN
    without a test set)."""

    model: nn.Module = field(repr=False)
    method: Any = field(repr=False)
    history: Any = field(repr=False)
    trace: PseudoLabelTrace | None
    test_accuracy: float

    def __repr__(self) -> str:
        return (f"SemiSupervisedResult({type(self.method).__name__}, {len(self.history)} steps, "
                f"test accuracy {self.test_accuracy:.4f}; {self.trace!r})")


def semi_supervised(model: nn.Module, method, labelled, unlabelled, *, steps: int = 1000,
                    batch_size: int = 32, record_every: int | None = None, test=None, truth=None,
                    projection: str = "pca", seed: int = 0, **fit_options) -> SemiSupervisedResult:
    """Train ``model`` with a semi-supervised ``method`` on ``labelled`` + ``unlabelled``.

    ``record_every``: steps between pseudo-label snapshots (default: 10 snapshots per fit);
    ``truth``: the unlabelled samples' true labels for scoring (default ``unlabelled.y``);
    ``test``: a labelled set for the final accuracy; other keywords go to ``wb.fit`` (``lr``,
    ``optimizer``, ``schedule``...). The model is trained in place.
    """
    if not callable(getattr(method, "set_unlabelled", None)):
        raise TypeError(f"{type(method).__name__} takes no unlabelled pool; use a semi-supervised method "
                        "(wb.methods.FixMatch, MeanTeacher)")
    if getattr(labelled, "y", None) is None:
        raise ValueError("labelled must be a labelled Dataset")
    steps = check_int(steps, "steps", min=1)
    every = record_every if record_every is not None else max(1, steps // 10)
    method.set_unlabelled(unlabelled)
    x_u = getattr(unlabelled, "x", unlabelled)
    recorder = PseudoLabelRecorder(method, x_u, every)
    fit_options.setdefault("progress", False)
    hist = fit(model, method, labelled, steps=steps, batch_size=batch_size, seed=seed,
               callbacks=[recorder, *fit_options.pop("callbacks", [])], **fit_options)
    truth = getattr(unlabelled, "y", None) if truth is None else truth
    trace = None
    if truth is not None:
        trace = pseudo_label_trace(recorder.steps, recorder.confidence, recorder.labels, recorder.features,
                                   truth, threshold=float(getattr(method, "threshold", 0.95)),
                                   projection=projection, seed=seed,
                                   class_names=getattr(labelled, "classes", None))
    acc = predict(model, test).accuracy if test is not None else float("nan")
    return SemiSupervisedResult(model, method, hist, trace, float(acc))


def few_labels(data, per_class: int, *, seed: int = 0, classes=None):
    """``(labelled, unlabelled)``: ``per_class`` random samples of each class (of ``classes``,
    default all) and everything else (keeping its true labels, for scoring only)."""
    per_class = check_int(per_class, "per_class", min=1)
    if getattr(data, "y", None) is None:
        raise ValueError("few_labels needs a labelled Dataset to draw from")
    g = torch.Generator().manual_seed(int(seed))
    y = data.y.cpu()
    wanted = sorted(set(y.tolist()) if classes is None else {int(c) for c in classes})
    picked = []
    for c in wanted:
        idx = (y == c).nonzero().flatten()
        if idx.numel() < per_class:
            raise ValueError(f"class {c} has only {idx.numel()} samples, fewer than per_class={per_class}")
        picked.append(idx[torch.randperm(idx.numel(), generator=g)[:per_class]])
    lab = torch.cat(picked).sort().values
    rest = torch.ones(len(data), dtype=torch.bool)
    rest[lab] = False
    return data.subset(lab), data.subset(rest)
