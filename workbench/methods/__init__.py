"""Training objectives, one per file: ``loss(model, batch) -> (loss, logs)``."""

from __future__ import annotations

from . import augment
from ._guidance import Guidance
from .asl import AsymmetricLoss, asymmetric_loss, multilabel_metrics
from .base import CrossEntropyOnLogits, LogitLoss, LossOnLogits, Method
from .bdkd import BalancedDivergenceKD
from .cbc import CBCLoss
from .center_loss import CenterLoss
from .cfg import CFG, ConditionalDDPM, cfg_combine
from .classifier_guidance import ClassifierGuidance, NoisyClassification
from .consistency import ConsistencyDistillation
from .consistency_training import ConsistencyTraining
from .cosine_classifier import CosineClassifier
from .cross_entropy import CrossEntropy
from .curriculum import DifficultyCurriculum
from .d3pm import D3PM
from .ddpm import DDPM
from .dhkd import DualHeadKD
from .dmd import DMD
from .fixmatch import FixMatch
from .focal import FocalLoss, focal_loss
from .gpc import GPCLoss
from .guided_distillation import GuidedDistillation, StudentScale, guided_student
from .kd import KnowledgeDistillation, kd_loss
from .logitnorm import LogitNorm, logitnorm_loss
from .logz_penalty import LogZPenalty, logz_penalty_loss
from .mean_teacher import MeanTeacher
from .minority_guidance import MinorityGuidance
from .mixup import Mixup, mixup_loss
from .onpro import OnPro
from .palm import PALM
from .phis import FeatureNormalizer, MultiTeacherDistillation
from .poly import PolyLoss, poly1_loss
from .protogcd import ProtoGCD
from .protopnet import ProtoPNetLoss
from .pskd import PSKD
from .random_teacher import L2BottleneckHead, RandomTeacherDistillation, interpolate_init
from .sinkd import SinkhornKD
from .squentropy import Squentropy, squentropy_loss
from .st_protopnet import STProtoPNetLoss
from .supcon import SupCon
from .taid import TAID
from .vat import VAT, vat_perturbation
from .wad import WeightAwareDistillation
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
    "SinkhornKD", "DualHeadKD", "BalancedDivergenceKD", "TAID",      # the logit-distillation family
    "MultiTeacherDistillation", "FeatureNormalizer",
    "FixMatch", "MeanTeacher", "WeightAwareDistillation",           # semi-supervised
    "DDPM", "ConsistencyDistillation",                              # diffusion
    "ProtoPNetLoss", "STProtoPNetLoss", "CBCLoss",                  # prototype-part networks
    "GPCLoss", "ProtoGCD",                                          # category discovery
    "CosineClassifier", "OnPro",                                    # continual learning
    "ConditionalDDPM", "NoisyClassification", "GuidedDistillation",  # guidance
    "Guidance", "CFG", "ClassifierGuidance", "MinorityGuidance", "StudentScale", "cfg_combine", "guided_student",
    "DMD", "ConsistencyTraining", "DifficultyCurriculum",           # students, curricula
    "D3PM",                                                         # discrete diffusion
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
