"""The SimCLRv2 semi-supervised recipe ("Big Self-Supervised Models are Strong Semi-Supervised
Learners", Chen, Kornblith, Swersky, Norouzi & Hinton, NeurIPS 2020; google-research/simclr).

Three stages, each a ``wb.fit``:

1. **pre-train** the teacher with SimCLR (``wb.methods.SupCon(supervised=False)``, NT-Xent with a
   projection head) on *all* images, labels unused;
2. **fine-tune** the whole teacher with cross-entropy on the few labelled images (1 % or 10 % of
   the labels), its classifier initialised at zero (as the official code does);
3. **distil** into a (smaller) student on the *unlabelled* images only, with
   L = − Σ_y P_T(y | x; τ) log P_S(y | x; τ), teacher frozen — ``wb.methods.KnowledgeDistillation``
   with ``alpha=1`` (no labels) at temperature τ (the colab uses τ = 1): its KL term
   T²·KL(P_T ‖ P_S) has the same gradient as this cross-entropy (they differ by the teacher's
   entropy, a constant) and equals it in value up to that constant.

Where this knowingly differs from the paper / code: the projection head is SupCon's two-layer
MLP and fine-tuning starts from the encoder's output (SimCLRv2 uses a three-layer head and
fine-tunes from its first layer, ``ft_proj_selector=1``); augmentations are the workbench's for
8×8 digits (shift, rotation, zoom, noise, cutout; no colour or crop); optimisers are Adam with
the workbench's defaults instead of LARS; no labelled CE term during distillation (the paper's
main setting; its optional (1 − α)·CE term is left out). Trains ``teacher`` and ``student`` in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .._checks import check_number
from ..analyses.classification import predict
from ..data.dataset import Dataset
from ..methods.cross_entropy import CrossEntropy
from ..methods.kd import KnowledgeDistillation
from ..methods.supcon import SupCon
from ..training import fit

__all__ = ["SimCLRv2Result", "simclr_v2"]


@dataclass(frozen=True, eq=False)
class SimCLRv2Result:
    """The three stages: ``teacher`` and ``student`` (trained in place), their ``histories``
    (``"pretrain"``, ``"finetune"``, ``"distill"``) and test ``accuracy`` after each stage that
    has a classifier (``"teacher (fine-tuned)"``, ``"student (distilled)"``)."""

    teacher: nn.Module = field(repr=False)
    student: nn.Module = field(repr=False)
    histories: dict[str, Any] = field(repr=False)
    accuracy: dict[str, float]

    def __repr__(self) -> str:
        accs = ", ".join(f"{k} {v:.4f}" for k, v in self.accuracy.items())
        return f"SimCLRv2Result({accs})"


def _unlabelled(data) -> Dataset:
    return Dataset(data.x, None, name=f"{data.name}[unlabelled]", kind=data.kind)


def simclr_v2(teacher: nn.Module, student: nn.Module, images, labelled, *, unlabelled=None,
              pretrain_steps: int = 1000, finetune_steps: int = 300, distill_steps: int = 1000,
              contrastive_temperature: float = 0.5, distill_temperature: float = 1.0, batch_size: int = 256, lr: float = 1e-3, test=None,
              seed: int = 0, augment="auto") -> SimCLRv2Result:
    """Pre-train ``teacher`` on ``images`` (SimCLR), fine-tune it on ``labelled``, distil it into
    ``student`` on ``unlabelled`` (default: ``images``), scoring on ``test`` after each stage.

    ``contrastive_temperature``: NT-Xent τ (0.5, the CIFAR-10 example's); ``distill_temperature``:
    τ of the distillation (1).
    """
    check_number(contrastive_temperature, "contrastive_temperature", min=0, min_open=True)
    check_number(distill_temperature, "distill_temperature", min=0, min_open=True)
    if getattr(labelled, "y", None) is None:
        raise ValueError("labelled must be a labelled Dataset")
    hist = {}
    sim = SupCon(contrastive_temperature, supervised=False, augment=augment,
                 feature_dim=getattr(teacher, "feature_dim", None), seed=seed)
    hist["pretrain"] = fit(teacher, sim, _unlabelled(images), steps=pretrain_steps, batch_size=batch_size,
                           lr=lr, seed=seed, progress=False)
    fc = getattr(teacher, "fc", None)
    if isinstance(fc, nn.Linear):  # a zero-initialised classifier, as the official fine-tuning
        with torch.no_grad():
            fc.weight.zero_()
            fc.bias.zero_()
    hist["finetune"] = fit(teacher, CrossEntropy(), labelled, steps=finetune_steps,
                           batch_size=min(batch_size, len(labelled)), lr=lr, seed=seed + 1, progress=False)
    acc = {}
    if test is not None:
        acc["teacher (fine-tuned)"] = predict(teacher, test).accuracy
    kd = KnowledgeDistillation(teacher, temperature=distill_temperature, alpha=1.0)
    transfer = _unlabelled(images if unlabelled is None else unlabelled)
    hist["distill"] = fit(student, kd, transfer, steps=distill_steps, batch_size=batch_size, lr=lr,
                          seed=seed + 2, progress=False)
    if test is not None:
        acc["student (distilled)"] = predict(student, test).accuracy
    return SimCLRv2Result(teacher, student, hist, acc)
