"""Data pruning by per-example scores, then retraining ("Deep Learning on a Data Diet", Paul,
Ganguli & Dziugaite, NeurIPS 2021).

The paper scores every training example (EL2N early in training, GraNd at initialisation,
forgetting events), keeps the highest-scoring fraction (drops the easy examples) and trains a
fresh network on the subset from scratch; at moderate pruning the accuracy holds, and random
pruning of the same size is the baseline. This recipe does the retraining part:
``prune_and_retrain(model, method, train, val, scores, fractions=..., rules=...)`` builds, for each
(fraction, rule), a fresh copy of ``model``'s architecture (its recorded config, seed = ``seed``),
trains it with a copy of ``method`` on ``train.subset(scores.keep(fraction, which=rule))`` for
the same number of steps, and scores it on ``val``. The model and method you pass are not trained.

Difference from the paper: the number of optimisation steps is the same for every fraction
(the paper trains for the same number of epochs, hence fewer steps on smaller subsets) — pass
``scale_steps=True`` for the paper's rule.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .._checks import check_bool, check_choice, check_int, check_number, check_seed
from .._config import build
from .._device import model_device
from ..analyses.classification import predict
from ..analyses.data_scores import SampleScores
from ..training import fit

__all__ = ["PruningResult", "prune_and_retrain"]


@dataclass(frozen=True, eq=False)
class PruningResult:
    """Validation ``accuracy`` per (fraction, rule); ``sizes`` of the subsets; the ``models``
    and ``histories`` of every run (same keys); the ``score`` name used."""

    accuracy: dict[tuple[float, str], float]
    sizes: dict[tuple[float, str], int]
    score: str
    models: dict[tuple[float, str], nn.Module] = field(repr=False)
    histories: dict[tuple[float, str], Any] = field(repr=False)

    def table(self):
        """pandas DataFrame: fraction x rule -> validation accuracy."""
        from .._optional import require

        pd = require("pandas", "pruning tables")
        rows = [{"fraction": f, "rule": r, "size": self.sizes[(f, r)], "accuracy": a}
                for (f, r), a in self.accuracy.items()]
        return pd.DataFrame(rows).pivot(index="fraction", columns="rule", values="accuracy").sort_index(ascending=False)

    def __repr__(self) -> str:
        cells = ", ".join(f"{f:g}/{r}: {a:.4f}" for (f, r), a in self.accuracy.items())
        return f"PruningResult(by {self.score}; val accuracy {cells})"


def prune_and_retrain(model: nn.Module, method, train, val, scores: SampleScores, *,
                      fractions=(1.0, 0.5), rules=("hardest", "random"), steps: int = 1000,
                      scale_steps: bool = False, seed: int = 0, **fit_options) -> PruningResult:
    """Retrain a fresh copy of ``model`` on each pruned subset of ``train``; see the module doc."""
    if not isinstance(model, nn.Module) or not hasattr(model, "config"):
        raise TypeError("model must be a workbench model (it records its config, so fresh copies can be built)")
    if not isinstance(scores, SampleScores):
        raise TypeError("scores must be a SampleScores (wb.analyses.el2n / grand / forgetting_events)")
    if scores.scores.numel() != len(train):
        raise ValueError(f"scores has {scores.scores.numel()} entries but train has {len(train)} examples; "
                         "score the same training set")
    if getattr(val, "y", None) is None:
        raise ValueError("val must be a labelled Dataset")
    steps = check_int(steps, "steps", min=1)
    seed = check_seed(seed)
    check_bool(scale_steps, "scale_steps")
    fractions = [check_number(f, "fraction", min=0, max=1, min_open=True) for f in fractions]
    rules = [check_choice(r, "rule", ("hardest", "easiest", "random")) for r in rules]
    fit_options.setdefault("progress", False)
    acc, sizes, models, hists = {}, {}, {}, {}
    for f in fractions:
        for r in rules:
            if f == 1.0 and (1.0, rules[0]) in acc:   # the full set is the same for every rule
                continue
            keep = scores.keep(f, which=r, seed=seed)
            sub = train.subset(keep)
            net = _fresh(model, seed)
            n_steps = max(1, round(steps * f)) if scale_steps else steps
            hists[(f, r)] = fit(net, copy.deepcopy(method), sub, steps=n_steps, seed=seed, **fit_options)
            acc[(f, r)] = predict(net, val).accuracy
            sizes[(f, r)], models[(f, r)] = len(sub), net
    return PruningResult(acc, sizes, scores.name, models, hists)


def _fresh(model: nn.Module, seed: int) -> nn.Module:
    cfg = dict(model.config)
    if "seed" in cfg:
        cfg["seed"] = seed
    return build(type(model).__name__, cfg).to(model_device(model))


