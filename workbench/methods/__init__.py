"""Training objectives, one per file: ``loss(model, batch) -> (loss, logs)``."""

from __future__ import annotations

from .base import Method
from .cross_entropy import CrossEntropy

__all__ = ["Method", "CrossEntropy"]

# issue 3: embedding methods
from . import augment  # noqa: E402
from .center_loss import CenterLoss  # noqa: E402
from .palm import PALM  # noqa: E402
from .supcon import SupCon  # noqa: E402

__all__ += ["SupCon", "PALM", "CenterLoss", "augment"]

# issue 7: distillation
from .kd import KnowledgeDistillation, kd_loss  # noqa: E402
from .pskd import PSKD  # noqa: E402
from .random_teacher import L2BottleneckHead, RandomTeacherDistillation, interpolate_init  # noqa: E402

__all__ += ["KnowledgeDistillation", "kd_loss", "PSKD", "RandomTeacherDistillation",
            "L2BottleneckHead", "interpolate_init"]


# issue 5: diffusion
from .consistency import ConsistencyDistillation  # noqa: E402
from .ddpm import DDPM  # noqa: E402

__all__ += ["DDPM", "ConsistencyDistillation"]


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
