"""Checkpoints: model (+ method) tensors in one safetensors file, configs as JSON metadata.

Nothing is ever unpickled: the file holds tensors and a JSON header naming the classes and
constructor arguments, from which the objects are rebuilt (``workbench._config``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._config import build, describe

FORMAT = "workbench-checkpoint/1"


def state_tensors(module: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    """A module's state_dict as contiguous CPU tensors that own their memory (safetensors refuses
    shared storage)."""
    return {f"{prefix}{k}": v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}


def save_checkpoint(path, model: nn.Module, method: nn.Module | None = None, *, extra: dict | None = None) -> Path:
    """Write ``model`` (and ``method``) to ``path`` (a ``.safetensors`` file), atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    if not hasattr(model, "config"):
        raise TypeError(
            f"{type(model).__name__} does not record its config, so it could not be rebuilt; "
            "use a workbench model or save model.state_dict() yourself"
        )
    tensors = state_tensors(model, "model.")
    meta: dict[str, Any] = {"format": FORMAT, "model": describe(model)}
    if method is not None:
        tensors.update(state_tensors(method, "method."))
        meta["method"] = describe(method)
    if extra is not None:
        meta["extra"] = extra
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"workbench": json.dumps(meta)})
    os.replace(tmp, path)
    return path


def read_checkpoint(path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(metadata, tensors) of a checkpoint file, with clear errors for missing or damaged files."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f"checkpoint {path} is damaged or not a safetensors file: {err}") from err
    if "workbench" not in header:
        raise ValueError(f"{path} is a safetensors file but not a workbench checkpoint (no config header)")
    return json.loads(header["workbench"]), tensors


def load_checkpoint(path, *, device="cpu") -> tuple[nn.Module, nn.Module | None]:
    """Rebuild ``(model, method)`` from a checkpoint (``method`` is None if none was saved)."""
    meta, tensors = read_checkpoint(path)
    model = build(meta["model"]["__class__"], meta["model"]["config"])
    _load_state(model, tensors, "model.", path)
    method = None
    if "method" in meta:
        method = build(meta["method"]["__class__"], meta["method"]["config"])
        _load_state(method, tensors, "method.", path)
        method.to(device)
    return model.to(device), method


def _load_state(module: nn.Module, tensors: dict[str, torch.Tensor], prefix: str, path) -> None:
    sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    try:
        module.load_state_dict(sd, strict=True)
    except RuntimeError as err:
        raise ValueError(f"checkpoint {path} does not match {type(module).__name__}: {err}") from err
