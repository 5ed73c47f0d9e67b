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

from ._checks import check_device
from ._config import build, describe

FORMAT = "workbench-checkpoint/1"


def state_tensors(module: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    """A module's state_dict as contiguous CPU tensors that own their memory (safetensors refuses
    shared storage)."""
    return {f"{prefix}{k}": v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}


def save_checkpoint(path, model: nn.Module, method: nn.Module | None = None, *, extra: dict | None = None) -> Path:
    """Write ``model`` (and ``method``) to ``path`` (a ``.safetensors`` file), atomically."""
    from safetensors.torch import save_file

    path = _as_path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; pass a file path such as {path / 'model.safetensors'}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if method is not None and not isinstance(method, nn.Module):
        raise TypeError(f"method must be a wb.methods method (an nn.Module) or None, got {type(method).__name__}")
    if extra is not None:
        if not isinstance(extra, dict):
            raise TypeError(f"extra must be a dict of JSON values, got {type(extra).__name__}")
        try:
            json.dumps(extra)
        except (TypeError, ValueError) as err:
            raise TypeError(f"extra must hold JSON values only (str, numbers, lists, dicts): {err}") from None
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
    try:
        save_file(tensors, str(tmp), metadata={"workbench": json.dumps(meta)})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _as_path(path) -> Path:
    if isinstance(path, (str, os.PathLike)):
        return Path(path)
    raise TypeError(f"path must be a file path (str or pathlib.Path), got {type(path).__name__}")


def read_checkpoint(path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(metadata, tensors) of a checkpoint file, with clear errors for missing or damaged files."""
    from safetensors import safe_open

    path = _as_path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; pass the checkpoint file inside it (a .safetensors file)")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f"checkpoint {path} is damaged or not a safetensors file: {err}") from err
    if "workbench" not in header:
        raise ValueError(f"{path} is a safetensors file but not a workbench checkpoint (no config header)")
    try:
        meta = json.loads(header["workbench"])
    except ValueError:
        meta = None
    ok = isinstance(meta, dict) and all(
        isinstance(meta.get(k), dict) and "__class__" in meta[k] and "config" in meta[k]
        for k in ("model", *(["method"] if "method" in meta else []))
    )
    if not ok:
        raise ValueError(f"{path} has a damaged workbench header (no model class and config); re-save the checkpoint")
    return meta, tensors


def load_checkpoint(path, *, device="cpu") -> tuple[nn.Module, nn.Module | None]:
    """Rebuild ``(model, method)`` from a checkpoint (``method`` is None if none was saved)."""
    device = check_device(device)
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
