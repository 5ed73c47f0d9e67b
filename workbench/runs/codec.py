"""Pickle-free encoding of results: tensors and arrays to safetensors, everything else to JSON.

``write_tensors_json(path, value)`` stores any nested result (workbench result dataclasses,
dicts with string keys, lists, tuples, tensors, numeric numpy arrays, numbers, strings, dtypes,
devices, a ``History``) in one safetensors file: the tensors under keys that are their path in
the value (``params/3/body.0.weight``, so other tools can read them) and the rest as a JSON tree
in the file's header, where a tensor is ``{"__tensor__": key}``, a tuple ``{"__tuple__": [...]}``,
a dataclass ``{"__dataclass__": "module:QualName", "fields": {...}}``, and so on.

``read_tensors_json`` rebuilds the value. A dataclass is rebuilt as its class only when that
class lives in the ``workbench`` package (nothing else is imported because a file names it);
otherwise it comes back as a dict with a ``"__class__"`` entry.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..training.history import History
from .files import FORMAT

__all__ = ["Encoder", "decode", "write_tensors_json", "read_tensors_json"]


def _join(path: str, key) -> str:
    return f"{path}/{key}" if path else str(key)


class Encoder:
    """Turns nested results (dataclasses, dicts, lists, tensors, numbers) into JSON + tensors.

    Tensor keys are the value's path (``params/3/body.0.weight``) so other tools can read the
    files too.
    """

    def __init__(self, what: str):
        self.what = what
        self.tensors: dict[str, torch.Tensor] = {}

    def _key(self, path: str) -> str:
        key = path or "value"
        n = 1
        while key in self.tensors:
            key = f"{path}#{n}"
            n += 1
        return key

    def encode(self, v: Any, path: str = "") -> Any:
        """The JSON tree of ``v``; its tensors and arrays are collected in ``self.tensors``."""
        if isinstance(v, torch.Tensor):
            key = self._key(path)
            self.tensors[key] = v.detach().cpu().contiguous().clone()
            return {"__tensor__": key}
        if isinstance(v, np.ndarray):
            if v.dtype == object or v.dtype.kind in "USV":
                raise TypeError(f"{self.what}: {path or 'value'} is a numpy array of {v.dtype}; only numeric arrays can be stored")
            key = self._key(path)
            self.tensors[key] = torch.from_numpy(np.ascontiguousarray(v).copy())
            return {"__ndarray__": key}
        if isinstance(v, np.generic):
            return v.item()
        if v is None or isinstance(v, (bool, int, str, float)):
            return v
        if isinstance(v, History):
            return {"__history__": v.to_dict()}
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            cls = type(v)
            fields = {f.name: self.encode(getattr(v, f.name), _join(path, f.name))
                      for f in dataclasses.fields(v)}
            return {"__dataclass__": f"{cls.__module__}:{cls.__qualname__}", "fields": fields}
        if isinstance(v, Mapping):
            out = {}
            for k, x in v.items():
                if not isinstance(k, str):
                    raise TypeError(f"{self.what}: {path or 'value'} has a non-string key {k!r}; use string keys")
                out[k] = self.encode(x, _join(path, k))
            if any(k.startswith("__") for k in out):
                return {"__dict__": out}
            return out
        if isinstance(v, tuple):
            return {"__tuple__": [self.encode(x, _join(path, i)) for i, x in enumerate(v)]}
        if isinstance(v, list):
            return [self.encode(x, _join(path, i)) for i, x in enumerate(v)]
        if isinstance(v, torch.dtype):
            return {"__dtype__": str(v).removeprefix("torch.")}
        if isinstance(v, torch.device):
            return {"__device__": str(v)}
        raise TypeError(
            f"{self.what}: {path or 'the value'} is a {type(v).__name__}, which cannot be stored "
            "without pickle; store tensors, numpy arrays, numbers, strings, lists/dicts of them, "
            "or workbench result dataclasses"
        )


def decode(v: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """The value an ``Encoder`` turned into the JSON tree ``v`` and ``tensors``."""
    if isinstance(v, list):
        return [decode(x, tensors) for x in v]
    if not isinstance(v, dict):
        return v
    if len(v) == 1:
        (k, x), = v.items()
        if k == "__tensor__":
            return tensors[x]
        if k == "__ndarray__":
            return tensors[x].numpy()
        if k == "__tuple__":
            return tuple(decode(y, tensors) for y in x)
        if k == "__dict__":
            return {kk: decode(y, tensors) for kk, y in x.items()}
        if k == "__dtype__":
            return getattr(torch, x)
        if k == "__device__":
            return torch.device(x)
        if k == "__history__":
            return History.from_dict(x)
    if "__dataclass__" in v and set(v) == {"__dataclass__", "fields"}:
        return _dataclass(v["__dataclass__"], {k: decode(x, tensors) for k, x in v["fields"].items()})
    return {k: decode(x, tensors) for k, x in v.items()}


def _dataclass(name: str, values: dict[str, Any]) -> Any:
    """The dataclass ``name`` ("module:QualName") rebuilt from its field values (fields that are
    not constructor arguments are set afterwards), or a dict if the class is not available."""
    cls = _dataclass_class(name)
    if cls is None:
        return {"__class__": name, **values}
    fields = dataclasses.fields(cls)
    obj = cls(**{f.name: values[f.name] for f in fields if f.init and f.name in values})
    for f in fields:
        if not f.init and f.name in values:
            object.__setattr__(obj, f.name, values[f.name])
    return obj


def _dataclass_class(path: str):
    """Import a result class named in a file, but only from the workbench package."""
    mod, _, qual = path.partition(":")
    if not (mod == "workbench" or mod.startswith("workbench.")):
        return None
    try:
        obj = importlib.import_module(mod)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    return obj if dataclasses.is_dataclass(obj) else None


def write_tensors_json(path: Path, value: Any, what: str) -> None:
    """Write ``value`` (any encodable result) to one safetensors file with a JSON header."""
    from safetensors.torch import save_file

    enc = Encoder(what)
    tree = enc.encode(value)
    save_file(enc.tensors, str(path), metadata={"workbench-value": json.dumps(tree, allow_nan=True),
                                                "format": str(FORMAT)})


def read_tensors_json(path: Path) -> Any:
    """The value ``write_tensors_json`` stored in ``path``."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if "workbench-value" not in meta:
        raise ValueError(f"{path.name} has no workbench header")
    return decode(json.loads(meta["workbench-value"]), tensors)
