"""Training objectives, one per file: ``loss(model, batch) -> (loss, logs)``."""

from __future__ import annotations

from . import augment
from .asl import AsymmetricLoss, asymmetric_loss, multilabel_metrics
from .base import CrossEntropyOnLogits, LogitLoss, LossOnLogits, Method
from .center_loss import CenterLoss
from .consistency import ConsistencyDistillation
from .cross_entropy import CrossEntropy
from .ddpm import DDPM
from .focal import FocalLoss, focal_loss
from .kd import KnowledgeDistillation, kd_loss
from .logitnorm import LogitNorm, logitnorm_loss
from .logz_penalty import LogZPenalty, logz_penalty_loss
from .mixup import Mixup, mixup_loss
from .palm import PALM
from .poly import PolyLoss, poly1_loss
from .pskd import PSKD
from .random_teacher import L2BottleneckHead, RandomTeacherDistillation, interpolate_init
from .squentropy import Squentropy, squentropy_loss
from .supcon import SupCon
from .vat import VAT, vat_perturbation
from .zloss import ZLoss, z_loss

__all__ = [
    "Method", "CrossEntropyOnLogits", "LossOnLogits", "LogitLoss", "available", "create",
    "CrossEntropy", "CenterLoss",                                   # classification
    "FocalLoss", "PolyLoss", "Squentropy", "ZLoss", "LogZPenalty", "LogitNorm",
    "focal_loss", "poly1_loss", "squentropy_loss", "z_loss", "logz_penalty_loss", "logitnorm_loss",
    "AsymmetricLoss", "asymmetric_loss", "multilabel_metrics",      # multi-label
    "Mixup", "mixup_loss", "VAT", "vat_perturbation",              # geometry regularisers
    "SupCon", "PALM", "augment",                                    # embeddings, prototypes
    "KnowledgeDistillation", "kd_loss", "PSKD",                     # distillation
    "RandomTeacherDistillation", "L2BottleneckHead", "interpolate_init",
    "DDPM", "ConsistencyDistillation",                              # diffusion
]


def available() -> list[str]:
    """Names of the registered methods (class names)."""
    from .._config import _REGISTRY

    return sorted(n for n, c in _REGISTRY.items() if issubclass(c, Method) and c is not Method)


def create(name: str, **kwargs) -> Method:
    """Build a method by (case- and underscore-insensitive) class name, e.g. ``"cross_entropy"``."""
    from .._config import _REGISTRY

    key = str(name).replace("_", "").replace("-", "").lower()
    for n, cls in _REGISTRY.items():
        if issubclass(cls, Method) and cls is not Method and n.lower() == key:
            return cls(**kwargs)
    raise ValueError(f"unknown method {name!r}; valid names: {', '.join(available())}")
