"""One trial of a sweep: what it is, who it is (its run identity), and running it anywhere.

A ``Trial`` holds everything a worker needs except the data (which backends ship once):
the recipe (``make_model``, ``make_method``), the seed, ``fit``'s keywords, the extra metrics
function, and the run's name, hyperparameters and identity ``key``.

``run_trial(trial, data, val)`` trains it and returns **plain data**: the model's and method's
configs and state dicts, the history as a dict, the extra metrics, or, when anything raised,
``{"error": <traceback text>}``. It never touches a run store: the driver process saves (so
the store's SQLite file is only ever written by one process, and workers need no access to it).

**Run identity.** ``run_key(...)`` is a SHA-256 (first 16 hex digits) of a canonical JSON of

* the run name (one sweep's runs share it) and the seed;
* the model's and method's recorded constructor arguments (``describe(make_model(seed=s))``,
  ``describe(make_method(...))``: class names and every argument);
* ``fit``'s keywords (``steps``, ``lr``, ``optimizer``, ``batch_size``, ...), except those that
  do not change the result: ``progress``, ``callbacks`` and ``threads``;
* the training and validation data's contents (a SHA-256 of their tensors' bytes and shapes;
  not their names);
* the extra-metrics function's qualified name (not its code).

It is stored as the run's tag ``run_key``. A sweep run again with ``resume=True`` (the default)
finds the runs with these keys in its store and does not train them again. Change anything in
the list and the run is new; edit the body of ``metrics_fn`` or upgrade torch and it is not
(delete the old runs, or pass ``resume=False``).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .._config import build, describe

__all__ = ["Trial", "run_trial", "run_key", "fingerprint", "make_method", "rebuild", "IGNORED_FIT_KEYS"]

#: fit keywords that do not change a run's result (left out of its identity)
IGNORED_FIT_KEYS = ("progress", "callbacks", "threads")


@dataclass(frozen=True)
class Trial:
    """One run of a sweep (see the module docstring). ``index``: its position in the sweep."""

    index: int
    seed: int
    make_model: Callable
    make_method: Callable | str
    fit_kwargs: dict
    metrics_fn: Callable | None = None
    name: str = "run"
    params: dict = field(default_factory=dict)
    key: str = ""

    @property
    def label(self) -> str:
        """``name seed=s`` (a grid's run names hold the method and hyperparameters): how
        messages name the trial."""
        return f"{self.name} seed={self.seed}"


def make_method(make, seed: int | None = None):
    """A fresh method; ``make(seed=s)`` when it takes a seed (its head's initialisation, its
    augmentations), else ``make()``; a string is a registered method name."""
    from .. import methods

    if isinstance(make, str):
        return methods.create(make)
    if seed is not None and seed_keyword(make):
        return make(seed=seed)
    return make()


def seed_keyword(f) -> bool | None:
    """Whether ``f`` accepts a ``seed=`` keyword (by name or ``**kwargs``); None when its
    signature cannot be read (some builtins and C extensions)."""
    try:
        params = inspect.signature(f).parameters
    except (TypeError, ValueError):
        return None
    return "seed" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


# ------------------------------------------------------------------------------- identity
def _canonical(v: Any) -> Any:
    """JSON-able stand-in of a keyword value: callables by qualified name, partials unfolded."""
    import functools

    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [_canonical(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _canonical(x) for k, x in sorted(v.items(), key=lambda kv: str(kv[0]))}
    if isinstance(v, functools.partial):
        return {"partial": _canonical(v.func), "args": _canonical(list(v.args)),
                "keywords": _canonical(dict(v.keywords))}
    if callable(v) and hasattr(v, "__qualname__"):
        return f"{getattr(v, '__module__', '?')}.{v.__qualname__}"
    if isinstance(v, (torch.dtype, torch.device)):
        return str(v)
    return repr(v)


def fingerprint(data) -> str | None:
    """SHA-256 of a Dataset's tensors (bytes, shapes, dtypes), or None for no data."""
    if data is None:
        return None
    h = hashlib.sha256()
    for t in (data.x, data.y):
        if t is None:
            h.update(b"none")
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{tuple(t.shape)}{t.dtype}".encode())
        flat = t.reshape(-1).view(torch.uint8) if t.numel() else t.reshape(-1)
        step = 2**24
        for i in range(0, flat.numel(), step):
            h.update(flat[i : i + step].numpy().tobytes())
    return h.hexdigest()


def run_key(*, name: str, seed: int, model: dict, method: dict, fit_kwargs: dict,
            data_fp: str | None, val_fp: str | None, metrics_fn) -> str:
    """The identity of a run (module docstring) as 16 hex digits."""
    fit = {k: v for k, v in fit_kwargs.items() if k not in IGNORED_FIT_KEYS}
    doc = {
        "name": name, "seed": int(seed), "model": model, "method": method, "fit": _canonical(fit),
        "data": data_fp, "val": val_fp, "metrics_fn": None if metrics_fn is None else _canonical(metrics_fn),
    }
    text = json.dumps(doc, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------- running
def _train(trial: Trial, data, val) -> dict[str, Any]:
    from ..training import fit

    model = trial.make_model(seed=trial.seed)
    method = make_method(trial.make_method, trial.seed)
    hist = fit(model, method, data, val=val, seed=trial.seed, **trial.fit_kwargs)
    extra = {}
    if trial.metrics_fn is not None:
        extra = dict(trial.metrics_fn(model, method))
    snaps = hist.snapshots
    hist.snapshots = None
    return {
        "index": trial.index,
        "seed": trial.seed,
        "model": describe(model),
        "model_state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "method": describe(method),
        "method_state": {k: v.detach().cpu().clone() for k, v in method.state_dict().items()},
        "history": hist.to_dict(),
        "snapshots": snaps,
        "metrics": {k: float(v) for k, v in extra.items()},
    }


def run_trial(trial: Trial, data, val=None, threads: int | None = None) -> dict[str, Any]:
    """Train one trial and return plain data; ``{"index", "error"}`` with the traceback text if
    anything raised (the sweep reports it and keeps the other trials). ``threads``: torch's
    intra-op threads for the whole trial (fit and metrics), restored afterwards."""
    before = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(int(threads))
        return _train(trial, data, val)
    except Exception:  # a trial's failure is data for the driver, not a crash of the sweep
        return {"index": trial.index, "seed": trial.seed, "error": traceback.format_exc()}
    finally:
        torch.set_num_threads(before)


def rebuild(out: dict[str, Any]):
    """``(model, method, history)`` from ``run_trial``'s plain data."""
    from ..training.history import History

    model = build(out["model"]["__class__"], out["model"]["config"])
    model.load_state_dict(out["model_state"])
    method = build(out["method"]["__class__"], out["method"]["config"])
    method.load_state_dict(out["method_state"])
    hist = History.from_dict(out["history"])
    hist.snapshots = out["snapshots"]
    return model, method, hist
