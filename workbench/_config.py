"""Rebuildable objects: every model and method records the arguments it was built with.

``Configurable.__init_subclass__`` wraps each subclass's ``__init__`` so that the outermost
call stores its bound keyword arguments in ``self.config``. Checkpoints and runs save that
config as JSON (never pickle) and rebuild the object from a registry of class names.
Arguments that are themselves Configurable modules (a KD teacher, say) are stored as nested
``{"__class__": name, "config": {...}}`` entries.
"""

from __future__ import annotations

import functools
import inspect
import math
from typing import Any

_REGISTRY: dict[str, type] = {}


class Configurable:
    """Mixin: records constructor arguments in ``self.config`` and registers the class."""

    config: dict[str, Any]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        name = cls.__name__
        if name.startswith("_"):
            return
        _REGISTRY[name] = cls
        init = cls.__dict__.get("__init__")
        if init is None or getattr(init, "_wb_wrapped", False):
            return
        sig = inspect.signature(init)

        @functools.wraps(init)
        def wrapped(self, *args, **kw):
            outer = not getattr(self, "_wb_config_recording", False)
            if outer:
                object.__setattr__(self, "_wb_config_recording", True)
                bound = sig.bind(self, *args, **kw)
                bound.apply_defaults()
                cfg = {}
                for k, v in list(bound.arguments.items())[1:]:
                    p = sig.parameters[k]
                    if p.kind is p.VAR_KEYWORD:
                        cfg.update(v)
                    elif p.kind is p.VAR_POSITIONAL:
                        cfg[k] = list(v)
                    else:
                        cfg[k] = v
            try:
                init(self, *args, **kw)
            finally:
                if outer:
                    object.__setattr__(self, "_wb_config_recording", False)
            if outer:
                object.__setattr__(self, "config", cfg)

        wrapped._wb_wrapped = True
        cls.__init__ = wrapped


def registered(name: str) -> type:
    if name not in _REGISTRY:
        raise ValueError(f"unknown class {name!r} in a saved config; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def to_jsonable(value: Any, where: str = "config") -> Any:
    """Turn a recorded config value into JSON-safe data (raises TypeError for what cannot be)."""
    import torch

    if isinstance(value, Configurable):
        return {"__class__": type(value).__name__, "config": to_jsonable(value.config, where)}
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, where) for k, v in value.items()}
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, torch.dtype):
        return str(value)
    if callable(value) and hasattr(value, "__name__"):
        return {"__callable__": f"{value.__module__}.{value.__qualname__}"}
    raise TypeError(
        f"cannot store {type(value).__name__} in a {where} as JSON; pass plain numbers, "
        "strings, lists or workbench models/methods as constructor arguments"
    )


def from_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        if "__class__" in value:
            return build(value["__class__"], value["config"])
        if "__callable__" in value:
            import importlib

            mod, _, qual = value["__callable__"].rpartition(".")
            obj = importlib.import_module(mod)
            for part in qual.split("."):
                obj = getattr(obj, part)
            return obj
        return {k: from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    return value


def build(name: str, config: dict[str, Any]):
    """Rebuild a registered object from its class name and JSON config."""
    cls = registered(name)
    kwargs = {k: from_jsonable(v) for k, v in config.items()}
    return cls(**kwargs)


def describe(obj: Configurable) -> dict[str, Any]:
    """``{"__class__": name, "config": {...}}`` for a configurable object."""
    return to_jsonable(obj)
