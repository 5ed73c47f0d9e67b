"""Seed sweeps: the same recipe trained with several seeds, reported as mean ± std.

``sweep(make_model, make_method, data, seeds=[0, 1, 2], steps=..., ...)`` builds a fresh model
(``make_model(seed=s)``) and method (``make_method(seed=s)``, or ``make_method()`` if it takes
no seed) per seed, trains it with
``wb.fit(..., seed=s)``, saves each fit as a run (one ``group`` for the sweep) and returns a
``SweepResult``: ``.runs`` (one row per seed), ``.summary`` (mean, std, n per metric; std is
the sample standard deviation, ddof=1).

**Running it elsewhere.** The work is split into independent tasks, one per seed; ``map_fn``
decides where they run:

* ``None`` (default): one after the other in this process;
* any object with a ``.map(fn, items)`` method: a ``concurrent.futures.ProcessPoolExecutor``,
  a ``multiprocessing.Pool``, or Ray's drop-in pool::

      import ray
      from ray.util.multiprocessing import Pool    # pip install "ray[default]"
      ray.init()                                   # or ray.init(address="auto") on a cluster
      res = wb.runs.sweep(make_model, make_method, train, seeds=range(10), steps=3000,
                          map_fn=Pool())

* any callable ``map_fn(fn, items) -> iterable of results`` (e.g. Ray tasks:
  ``lambda f, xs: ray.get([ray.remote(f).remote(x) for x in xs])``).

Use processes, not threads: ``fit`` seeds torch's global random generator for its duration,
which threads of one process share, so a thread pool could mix the seeds of concurrent fits.
A process pool gives the same numbers as the sequential run (checked here with two spawned
workers).

Workers only train: each returns plain data (configs, tensors, the history as a dict) and this
process rebuilds the objects and writes the store, so the store never needs to be reachable
(or safely shared over a network file system) from the workers. For process or cluster pools,
``make_model``/``make_method`` must be importable functions (or ``functools.partial`` of
them, e.g. ``partial(wb.models.MLP, in_dim=64, out_dim=10)``), not lambdas defined in a
notebook, because the pool sends them to the workers. Workers run ``fit`` with
``threads="auto"`` (one torch thread for small models); size the pool to the number of cores.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .._config import build, describe
from ..training.history import History
from .metrics import final_metrics
from .store import LIST_COLUMNS, RunStore, as_store


@dataclass(frozen=True)
class SweepTask:
    """Everything one worker needs to train one seed (sent to the worker by ``map_fn``)."""

    seed: int
    make_model: Callable
    make_method: Callable | str
    data: Any
    fit_kwargs: dict
    val: Any = None
    metrics_fn: Callable | None = None


def _make_method(make_method, seed: int | None = None):
    """A fresh method; ``make_method(seed=s)`` when it takes a seed (its head's initialisation,
    its augmentations), else ``make_method()``."""
    from .. import methods

    if isinstance(make_method, str):
        return methods.create(make_method)
    if seed is not None and _seed_keyword(make_method):
        return make_method(seed=seed)
    return make_method()


def run_task(task: SweepTask) -> dict[str, Any]:
    """Train one seed; return plain data (no live objects) for the caller to save."""
    from ..training import fit

    model = task.make_model(seed=task.seed)
    method = _make_method(task.make_method, task.seed)
    hist = fit(model, method, task.data, val=task.val, seed=task.seed, **task.fit_kwargs)
    extra = {}
    if task.metrics_fn is not None:
        extra = dict(task.metrics_fn(model, method))
    snaps = hist.snapshots
    hist.snapshots = None
    return {
        "seed": task.seed,
        "model": describe(model),
        "model_state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "method": describe(method),
        "method_state": {k: v.detach().cpu().clone() for k, v in method.state_dict().items()},
        "history": hist.to_dict(),
        "snapshots": snaps,
        "metrics": {k: float(v) for k, v in extra.items()},
    }


def _rebuild(out: dict[str, Any]):
    model = build(out["model"]["__class__"], out["model"]["config"])
    model.load_state_dict(out["model_state"])
    method = build(out["method"]["__class__"], out["method"]["config"])
    method.load_state_dict(out["method_state"])
    hist = History.from_dict(out["history"])
    hist.snapshots = out["snapshots"]
    return model, method, hist


@dataclass(frozen=True)
class SweepResult:
    """``runs``: one row per seed (run_id, seed, status, steps, metrics); ``summary``: one row
    per metric with mean, std (ddof=1) and n; ``run_ids`` in seed order; ``histories``."""

    name: str
    group: str | None
    runs: Any
    summary: Any
    run_ids: tuple[str, ...]
    histories: tuple[History, ...] = field(repr=False)

    def __repr__(self) -> str:
        lines = [f"SweepResult({self.name!r}, {len(self.runs)} seeds"
                 + (f", group {self.group!r}" if self.group else "") + ")"]
        for metric, row in self.summary.iterrows():
            lines.append(f"  {metric}: {_fmt(row['mean'], row['std'])} (n={int(row['n'])})")
        return "\n".join(lines)


def _fmt(mean: float, std: float, digits: int = 4) -> str:
    if mean is None or not np.isfinite(mean):
        return ""
    if std is None or not np.isfinite(std):
        return f"{mean:.{digits}g}"
    return f"{mean:.{digits}g} ± {std:.2g}"


def sweep(
    make_model: Callable,
    make_method: Callable | str,
    data,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    name: str | None = None,
    val=None,
    store: RunStore | str | None = None,
    save: bool = True,
    map_fn=None,
    metrics_fn: Callable | None = None,
    tags: dict | None = None,
    **fit_kwargs,
) -> SweepResult:
    """Train one recipe with several seeds; save each as a run; report mean ± std.

    make_model: ``make_model(seed=s)`` returns a fresh workbench model (e.g.
        ``functools.partial(wb.models.MLP, in_dim=64, out_dim=10)``, or a function).
    make_method: returns a fresh method: called as ``make_method(seed=s)`` when it accepts a
        ``seed`` keyword (e.g. ``functools.partial(wb.methods.SupCon, feature_dim=64)``: the
        head's initialisation and augmentations then differ per seed), else ``make_method()``;
        or a method name such as ``"cross_entropy"``. Methods carry state (prototypes), so
        never share one instance between seeds.
    data, val: training and validation Datasets (``val`` gives the ``val_*`` metrics).
    seeds: the seeds; each sets the model's initialisation and ``fit``'s batch order.
    fit_kwargs: passed to ``wb.fit`` (``steps=``, ``lr=``, ``optimizer=``, ``callbacks=``...);
        ``progress`` defaults to False.
    metrics_fn: ``metrics_fn(model, method) -> {name: number}`` extra metrics per seed
        (e.g. test accuracy, OOD AUROC), computed in the worker.
    store, save: where the runs go (default store) and whether to save them at all.
    map_fn: where the seeds run (module docstring): None = sequentially here.
    """
    import pandas as pd

    seeds = _check_sweep(make_model, make_method, seeds, fit_kwargs)
    fit_kwargs.setdefault("progress", False)
    st = as_store(store) if save else None
    group = None
    if save:
        import secrets

        group = f"sweep-{secrets.token_hex(3)}"
    if name is None:
        probe = make_method if isinstance(make_method, type) else type(_make_method(make_method))
        name = f"{probe.__name__.lower()}-sweep"

    tasks = [SweepTask(s, make_model, make_method, data, dict(fit_kwargs), val, metrics_fn) for s in seeds]
    results = _map(map_fn, run_task, tasks)

    rows, ids, hists = [], [], []
    for out in results:
        model, method, hist = _rebuild(out)
        rid = None
        if st is not None:
            rid = st.save(model, method, hist, name=name, group=group, data=data,
                          metrics=out["metrics"], tags={**(tags or {}), "sweep_seed": out["seed"]})
        m = {**final_metrics(hist), **out["metrics"]}
        rows.append({"run_id": rid, "seed": out["seed"], "status": hist.status, "steps": hist.last_step, **m})
        ids.append(rid)
        hists.append(hist)
    runs = pd.DataFrame(rows)
    metric_cols = [c for c in runs.columns if c not in ("run_id", "seed", "status", "steps")]
    metric_cols.sort(key=lambda c: (c.startswith("train_"), not c.startswith("val_")))  # val, yours, train
    summary = _summary(runs, metric_cols)
    return SweepResult(name, group, runs, summary, tuple(ids), tuple(hists))


def _check_sweep(make_model, make_method, seeds, fit_kwargs) -> list[int]:
    """Check ``sweep``'s arguments; returns the seeds as a list of ints."""
    if not callable(make_model):
        raise TypeError(f"make_model must be a callable make_model(seed=...) -> model, got {type(make_model).__name__}")
    if not (callable(make_method) or isinstance(make_method, str)):
        raise TypeError(
            "make_method must be a callable returning a fresh method (e.g. wb.methods.CrossEntropy) "
            f"or a method name, got {type(make_method).__name__}"
        )
    if isinstance(make_method, torch.nn.Module):
        raise TypeError(
            "make_method must build a fresh method per seed (pass the class, e.g. "
            "wb.methods.CrossEntropy, or a lambda), not a method instance"
        )
    if _seed_keyword(make_model) is False:
        raise TypeError("make_model must accept a seed= keyword (make_model(seed=s)); e.g. "
                        "lambda seed: wb.models.MLP(64, (128,), 10, seed=seed)")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty; pass e.g. seeds=[0, 1, 2]")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    if "seed" in fit_kwargs:
        raise TypeError("pass the seeds with seeds=[...], not seed=")
    return seeds


def _seed_keyword(f) -> bool | None:
    """Whether ``f`` accepts a ``seed=`` keyword (by name or ``**kwargs``); None when its
    signature cannot be read (some builtins and C extensions)."""
    try:
        params = inspect.signature(f).parameters
    except (TypeError, ValueError):
        return None
    return "seed" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _map(map_fn, fn, items: list) -> Iterable:
    if map_fn is None:
        return (fn(x) for x in items)  # lazy: each seed is saved as soon as it is done
    if hasattr(map_fn, "map") and callable(map_fn.map):
        return map_fn.map(fn, items)
    if callable(map_fn):
        return map_fn(fn, items)
    raise TypeError(
        "map_fn must be None, an executor/pool with .map(fn, items) (concurrent.futures, "
        f"multiprocessing, ray.util.multiprocessing.Pool) or a callable map_fn(fn, items); got {type(map_fn).__name__}"
    )


def _summary(df, metric_cols):
    import pandas as pd

    out = []
    for c in metric_cols:
        v = pd.to_numeric(df[c], errors="coerce").dropna().to_numpy(dtype=float)
        out.append({"metric": c, "mean": float(v.mean()) if v.size else math.nan,
                    "std": float(v.std(ddof=1)) if v.size > 1 else math.nan, "n": int(v.size)})
    return pd.DataFrame(out, columns=["metric", "mean", "std", "n"]).set_index("metric")


def summarize(runs=None, *, by: str | Sequence[str] = "name", metrics: Sequence[str] | None = None,
              store: RunStore | str | None = None, fmt: bool = False):
    """Mean ± std of the metrics over runs grouped by ``by`` (default: the run name).

    ``runs``: a DataFrame from ``wb.runs.list()`` (default: every run in ``store``). Returns a
    DataFrame indexed by group with columns ``(metric, "mean" | "std")`` and ``n``; with
    ``fmt=True`` one text column per metric, "mean ± std" (std: sample std, ddof=1).
    """
    import pandas as pd

    if runs is None:
        runs = as_store(store).list()
    if not isinstance(runs, pd.DataFrame):
        raise TypeError(f"runs must be a DataFrame from wb.runs.list(), got {type(runs).__name__}")
    by = [by] if isinstance(by, str) else list(by)
    missing = [b for b in by if b not in runs.columns]
    if missing:
        raise ValueError(f"cannot group by {missing}; columns are {list(runs.columns)}")
    if metrics is None:
        metrics = [c for c in runs.columns if c.startswith(("val_", "train_")) or
                   (c not in {*LIST_COLUMNS, "run_id"} and pd.api.types.is_numeric_dtype(runs[c]))]
    else:
        unknown = [m for m in metrics if m not in runs.columns]
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; available: {[c for c in runs.columns]}")
    g = runs.groupby(by, sort=False, dropna=False)
    agg = g[list(metrics)].agg(["mean", "std"])
    agg[("n", "")] = g.size()
    if not fmt:
        return agg
    out = pd.DataFrame(index=agg.index)
    for m in metrics:
        out[m] = [_fmt(a, b) for a, b in zip(agg[(m, "mean")], agg[(m, "std")])]
    out["n"] = agg[("n", "")]
    return out
