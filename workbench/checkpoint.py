"""Checkpoints: model (+ method) tensors in one safetensors file, configs as JSON metadata.

Nothing is ever unpickled: the file holds tensors and a JSON header naming the classes and
constructor arguments, from which the objects are rebuilt (``workbench._config``).

**Networks the workbench did not write** (``wb.models.wrap(net, ...)``): the file holds the
network's own ``state_dict`` (keys exactly as ``net.state_dict()`` names them, under ``model.``)
plus the wrapper's configuration (features, head, pool, output, input) and the network's class
name. The workbench cannot rebuild a class it did not write, so loading asks for the network to
load into: ``load_checkpoint(path, model=MyNet())`` (the raw network, wrapped again as it was
saved, or an already wrapped one); a missing ``model=`` or weights of other shapes give a clear
error. ``model=`` also works for workbench models, to load into one you already have.
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


class ModelRequiredError(ValueError):
    """The checkpoint holds a network the workbench cannot rebuild: pass ``model=``."""


class ModelMismatchError(ValueError):
    """The given ``model=`` does not fit the checkpoint's weights (names or shapes)."""


def _wrapped(model) -> bool:
    from .models.wrap import Wrapped

    return isinstance(model, Wrapped)


def describe_model(model: nn.Module) -> dict[str, Any]:
    """The JSON description of a model for checkpoints and runs: ``{"__class__", "config"}`` of a
    workbench model; for a wrapped network also ``"external"`` (its class's qualified name) and
    ``"wrap"`` (the wrapper's configuration)."""
    if _wrapped(model):
        return {"__class__": type(model.module).__name__, "config": {}, "external": model.module_class,
                "wrap": model.wrap_config}
    if not hasattr(model, "config"):
        raise TypeError(
            f"{type(model).__name__} does not record its config, so it could not be rebuilt; wrap it "
            "(wb.models.wrap(model): its weights are saved and loaded back with model=) or use a "
            "workbench model"
        )
    return describe(model)


def model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors a checkpoint stores for ``model``: ``model.<key>`` of its state_dict; for a
    wrapped network its own state_dict keys, and ``wrapper.<key>`` for a head module the wrapper
    added."""
    if not _wrapped(model):
        return state_tensors(model, "model.")
    out = state_tensors(model.module, "model.")
    if model.extra is not None:
        out.update(state_tensors(model.extra, "wrapper.extra."))
    return out


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
    meta: dict[str, Any] = {"format": FORMAT, "model": describe_model(model)}
    tensors = model_tensors(model)
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


def load_checkpoint(path, *, device=None, model: nn.Module | None = None) -> tuple[nn.Module, nn.Module | None]:
    """Rebuild ``(model, method)`` from a checkpoint (``method`` is None if none was saved).

    ``model``: a module to load the weights into (required for networks the workbench did not
    write; see the module docstring). ``device``: where to put the model and method (default:
    a rebuilt model stays on the CPU, a given one where it is; the method follows the model).
    """
    device = None if device is None else check_device(device)
    meta, tensors = read_checkpoint(path)
    model = _load_model(meta["model"], tensors, path, model)
    if device is not None:
        model.to(device)
    method = None
    if "method" in meta:
        method = build(meta["method"]["__class__"], meta["method"]["config"])
        _load_state(method, tensors, "method.", path)
        from ._device import model_device

        method.to(device if device is not None else model_device(model))
    return model, method


def _load_model(desc: dict, tensors, path, given: nn.Module | None) -> nn.Module:
    external = desc.get("external")
    if given is not None and not isinstance(given, nn.Module):
        raise TypeError(f"model must be an nn.Module to load the weights into, got {type(given).__name__}")
    if external is None:
        model = given if given is not None else build(desc["__class__"], desc["config"])
        _load_state(model, tensors, "model.", path, given is not None)
        return model
    if given is None:
        raise ModelRequiredError(
            f"checkpoint {path} holds the weights of {desc['__class__']} ({external}), a network the "
            f"workbench did not build; pass the network to load them into: model={desc['__class__']}(...) "
            "built with the same arguments as the saved one"
        )
    from .models.wrap import Wrapped, wrap

    net = given.module if isinstance(given, Wrapped) else given
    _load_state(net, tensors, "model.", path, True)
    cfg = desc.get("wrap")
    if isinstance(given, Wrapped) or cfg is None:
        wrapped = given
    else:
        wrapped = wrap(net, **_wrap_kwargs(cfg, desc["__class__"]))
    if any(k.startswith("wrapper.extra.") for k in tensors):
        if getattr(wrapped, "extra", None) is None:
            raise ModelRequiredError(
                f"checkpoint {path} has a head module the wrapper added; pass the wrapped network "
                "model=wb.models.wrap(MyNet(), head=<a new module of the same shape>, ...)"
            )
        _load_state(wrapped.extra, tensors, "wrapper.extra.", path, True)
    return wrapped


def _wrap_kwargs(cfg: dict, name: str) -> dict:
    """``wrap`` keywords from a saved wrapper configuration; functions cannot be restored."""
    kw = {}
    for key in ("features", "head", "pool", "output", "input"):
        v = cfg.get(key)
        if isinstance(v, dict) and ("__callable__" in v or "module" in v):
            what = v.get("__callable__") or v.get("module")
            raise ModelRequiredError(
                f"the saved wrapper used a function or module of your own for {key}= ({what}); pass the "
                f"wrapped network: model=wb.models.wrap({name}(...), {key}=..., ...) configured as when saved"
            )
        if key == "features" and isinstance(v, dict) and "input_of" in v:
            v = None  # the default: what the head receives
        kw[key] = v
    return kw


def _load_state(module: nn.Module, tensors: dict[str, torch.Tensor], prefix: str, path, given: bool = False) -> None:
    sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    if given:
        _check_fits(module, sd, path)
    try:
        module.load_state_dict(sd, strict=True)
    except RuntimeError as err:
        raise ValueError(f"checkpoint {path} does not match {type(module).__name__}: {err}") from err


def _check_fits(module: nn.Module, sd: dict[str, torch.Tensor], path) -> None:
    """A ``ModelMismatchError`` listing missing, unexpected and differently shaped weights."""
    own = module.state_dict()
    missing = [k for k in own if k not in sd]
    extra = [k for k in sd if k not in own]
    shapes = [f"{k}: checkpoint {tuple(sd[k].shape)}, model {tuple(own[k].shape)}"
              for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if not (missing or extra or shapes):
        return
    parts = []
    if shapes:
        parts.append(f"{len(shapes)} weights differ in shape ({'; '.join(shapes[:4])}{'; ...' if len(shapes) > 4 else ''})")
    if missing:
        parts.append(f"{len(missing)} are missing from the checkpoint ({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''})")
    if extra:
        parts.append(f"{len(extra)} are not in the model ({', '.join(extra[:4])}{', ...' if len(extra) > 4 else ''})")
    raise ModelMismatchError(
        f"checkpoint {path} does not fit the given {type(module).__name__}: {'; '.join(parts)}. Build the "
        "model with the same arguments as the saved one"
    )
