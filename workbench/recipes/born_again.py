"""Self-distillation generations: a model distilled into a fresh copy of itself, again and again.

Furlanello, Lipton, Tschannen, Itti & Anandkumar, ICML 2018, "Born-Again Neural Networks":
generation 0 is a trained teacher; generation g ≥ 1 has the teacher's architecture, a fresh
random initialisation, and is trained to match generation g − 1. Here the loss is Hinton's
knowledge distillation, ``wb.methods.KnowledgeDistillation(previous, temperature, alpha)``:
``alpha = 1`` trains on the previous generation's softened outputs alone, ``alpha < 1`` mixes
in the labels (the default 0.9 is KD's usual weighting, not a value from the paper). Every generation is scored on a labelled ``val`` set: its accuracy, its agreement with
the previous generation and with generation 0, and KL(previous ‖ this) at T = 1.

A recipe, not an analysis: it trains models (``wb.fit``). The teacher you pass is used, never
trained or changed (KnowledgeDistillation distils from its own frozen copy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .._config import build
from .._device import model_device
from .._modes import eval_mode
from ..analyses.classification import predict
from ..analyses.distillation import agreement_from_logits
from ..methods.kd import KnowledgeDistillation
from ..training import fit

__all__ = ["SelfDistillationResult", "self_distillation"]


@dataclass(frozen=True, eq=False)
class SelfDistillationResult:
    """Generations of self-distillation: generation 0 is the given teacher, g ≥ 1 a fresh copy
    of its architecture distilled from generation g − 1.

    ``models``: the G + 1 models (generation 0 is the teacher you passed, not a copy);
    ``histories``: the G fits; ``accuracy`` (G + 1,): accuracy on ``val``; ``agreement_previous``
    (G + 1,): agreement of each generation with the one before (NaN for 0);
    ``agreement_first``: with generation 0; ``kl_previous``: KL(previous ‖ this) at T = 1.
    """

    models: tuple[nn.Module, ...] = field(repr=False)
    histories: tuple[Any, ...] = field(repr=False)
    accuracy: torch.Tensor
    agreement_previous: torch.Tensor
    agreement_first: torch.Tensor
    kl_previous: torch.Tensor
    temperature: float
    alpha: float

    @property
    def generations(self) -> int:
        return len(self.models) - 1

    def __repr__(self) -> str:
        accs = ", ".join(f"{float(a):.4f}" for a in self.accuracy)
        return (
            f"SelfDistillationResult({self.generations} generations, T={self.temperature:g}, "
            f"alpha={self.alpha:g}; val accuracy by generation: [{accs}])"
        )


def _check(teacher, val, generations, seed) -> None:
    if not isinstance(teacher, nn.Module):
        raise TypeError(f"teacher must be a trained model (an nn.Module), got {type(teacher).__name__}")
    if not hasattr(teacher, "config"):
        raise TypeError(
            f"{type(teacher).__name__} does not record its config, so no fresh copy can be built; "
            "use a workbench model"
        )
    if isinstance(generations, bool) or not isinstance(generations, int) or generations < 1:
        raise ValueError(f"generations must be a positive int, got {generations!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    if getattr(val, "y", None) is None:
        raise ValueError("val must be a labelled Dataset (it scores every generation)")


def _fresh_copy(teacher: nn.Module, seed: int) -> nn.Module:
    """A new model of the teacher's architecture (its recorded config), initialised with
    ``seed`` when the config takes one, on the teacher's device."""
    cfg = dict(teacher.config)
    if "seed" in cfg:
        cfg["seed"] = seed
    return build(type(teacher).__name__, cfg).to(model_device(teacher))


def self_distillation(
    teacher: nn.Module,
    train,
    *,
    val,
    generations: int = 3,
    temperature: float = 4.0,
    alpha: float = 0.9,
    steps: int = 1000,
    seed: int = 0,
    **fit_options,
) -> SelfDistillationResult:
    """Distil ``teacher`` into a fresh copy of its architecture, then that copy into another, ...

    Generation g ≥ 1 is built from ``teacher.config`` with ``seed = seed + g`` (a fresh random
    initialisation) and trained with ``wb.methods.KnowledgeDistillation(previous, temperature,
    alpha)`` by ``wb.fit(..., steps=steps, seed=seed + g, **fit_options)``. ``val`` (labelled)
    scores every generation. The teacher you pass is neither trained nor changed.
    """
    _check(teacher, val, generations, seed)
    fit_options.setdefault("progress", False)
    models, hists = [teacher], []
    for g in range(1, generations + 1):
        student = _fresh_copy(teacher, seed + g)
        method = KnowledgeDistillation(models[-1], temperature=temperature, alpha=alpha)
        hists.append(fit(student, method, train, steps=steps, seed=seed + g, **fit_options))
        models.append(student)
    with eval_mode(*models):  # scored in eval mode; every submodule's flag comes back as it was
        preds = [predict(m, val) for m in models]
    logits = [p.logits for p in preds]
    nan = float("nan")
    previous = [agreement_from_logits(logits[i - 1], logits[i]) for i in range(1, len(models))]
    first = [agreement_from_logits(logits[0], logits[i]).agreement for i in range(1, len(models))]
    return SelfDistillationResult(
        models=tuple(models),
        histories=tuple(hists),
        accuracy=torch.tensor([p.accuracy for p in preds]),
        agreement_previous=torch.tensor([nan] + [a.agreement for a in previous]),
        agreement_first=torch.tensor([1.0] + first),
        kl_previous=torch.tensor([nan] + [a.kl for a in previous]),
        temperature=float(temperature),
        alpha=float(alpha),
    )
