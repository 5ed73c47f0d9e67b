"""Training objectives, one per file: ``loss(model, batch) -> (loss, logs)``."""

from __future__ import annotations

from . import augment
from .base import Method
from .bdkd import BalancedDivergenceKD
from .center_loss import CenterLoss
from .consistency import ConsistencyDistillation
from .cross_entropy import CrossEntropy
from .ddpm import DDPM
from .dhkd import DualHeadKD
from .fixmatch import FixMatch
from .kd import KnowledgeDistillation, kd_loss
from .mean_teacher import MeanTeacher
from .palm import PALM
from .phis import FeatureNormalizer, MultiTeacherDistillation
from .pskd import PSKD
from .random_teacher import L2BottleneckHead, RandomTeacherDistillation, interpolate_init
from .sinkd import SinkhornKD
from .supcon import SupCon
from .taid import TAID
from .wad import WeightAwareDistillation

__all__ = [
    "Method", "available", "create",
    "CrossEntropy", "CenterLoss",                                   # classification
    "SupCon", "PALM", "augment",                                    # embeddings, prototypes
    "KnowledgeDistillation", "kd_loss", "PSKD",                     # distillation
    "RandomTeacherDistillation", "L2BottleneckHead", "interpolate_init",
    "SinkhornKD", "DualHeadKD", "BalancedDivergenceKD", "TAID",      # the logit-distillation family
    "MultiTeacherDistillation", "FeatureNormalizer",
    "FixMatch", "MeanTeacher", "WeightAwareDistillation",           # semi-supervised
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
