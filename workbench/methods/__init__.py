"""Training objectives, one per file: ``loss(model, batch) -> (loss, logs)``."""

from __future__ import annotations

from .base import Method
from .cross_entropy import CrossEntropy

__all__ = ["Method", "CrossEntropy"]


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
