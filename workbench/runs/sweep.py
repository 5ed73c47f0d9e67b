"""Sweeps: one recipe trained with several seeds (``sweep``), or methods × hyperparameters ×
seeds (``grid``, in ``runs/grid.py``), saved as runs and reported as mean ± std.

``sweep(make_model, make_method, data, seeds=[0, 1, 2], steps=..., ...)`` builds a fresh model
(``make_model(seed=s)``) and method (``make_method(seed=s)``, or ``make_method()`` if it takes
no seed) per seed, trains it with ``wb.fit(..., seed=s)``, saves each fit as a run (one
``group`` for the sweep) and returns a ``SweepResult``: ``.runs`` (one row per seed),
``.summary`` (mean, std, n per metric; std is the sample standard deviation, ddof=1).

**Where the trials run** (``runs/backends.py``): ``backend="sequential"`` (default: one after
another in this process), ``backend="ray"`` (one Ray task per trial on a local cluster started
and shut down by the sweep, ``num_cpus=`` workers, or on the cluster you already started or name
with ``address=``), ``backend="tune"`` (a Ray Tune grid: ``tune.Tuner`` with
``tune.with_resources``), or ``map_fn=`` (any pool with ``.map``). Ray is optional:
``pip install -e ".[scale]"``. Ray trials get one torch thread each (``threads=`` to change);
sequential ones keep torch's setting unless ``threads=`` is given. Results are identical on every
backend (same seeds, one thread: checked in the tests).

**Only this process writes the store.** Workers return plain data (configs, tensors, the
history as a dict) and the driver rebuilds the objects and saves each run as soon as its trial
ends, so a store never needs to be reachable from (or shared over a network file system with)
the workers. Functions sent to Ray are pickled by value when defined in a notebook; process
pools need importable functions (``functools.partial(wb.models.MLP, in_dim=64, out_dim=10)``).

**Failures and resuming.** A trial that raises does not stop the sweep: the others are saved,
the failure is reported (a warning, and ``result.failures``: label -> traceback) and its row has
status ``"failed"``. Each run is saved with its identity (``runs/trials.py``: the name, seed,
model and method arguments, fit settings, data contents and metrics function, hashed) as the tag
``run_key``; running the same sweep again with ``resume=True`` (default) reuses the runs already
in the store instead of training them again, so an interrupted or partly failed sweep just
needs to be run again.

Use processes, not threads: ``fit`` seeds torch's global random generator for its duration,
which threads of one process share, so a thread pool could mix the seeds of concurrent fits.
"""

from __future__ import annotations

import math
import secrets
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .._config import describe
from ..training.history import History
from .backends import BACKENDS, require_ray, run_trials
from .metrics import final_metrics
from .store import LIST_COLUMNS, RunStore, as_store
from .trials import Trial, fingerprint, rebuild, run_key, seed_keyword
from .trials import make_method as new_method

#: columns of ``SweepResult.runs`` that are not metrics
ROW_COLUMNS = ("run_id", "name", "method", "seed", "status", "steps", "resumed")


@dataclass(frozen=True)
class SweepResult:
    """``runs``: one row per trial (run_id, seed, status, steps, resumed, metrics; a grid also
    has name, method and one column per hyperparameter); ``summary``: mean, std (ddof=1) and n
    per metric (a grid: per configuration, columns ``(metric, "mean" | "std")`` and ``n``);
    ``run_ids`` and ``histories`` in trial order (None for failed trials); ``failures``: trial
    label -> traceback; ``resumed``: ids of runs taken from the store instead of trained."""

    name: str
    group: str | None
    runs: Any
    summary: Any
    run_ids: tuple[str | None, ...]
    histories: tuple[History | None, ...] = field(repr=False)
    failures: dict[str, str] = field(default_factory=dict, repr=False)
    resumed: tuple[str, ...] = ()
    backend: str = "sequential"

    def __repr__(self) -> str:
        grid = "method" in self.runs.columns
        head = (f"SweepResult({self.name!r}, {len(self.runs)} {'trials' if grid else 'seeds'}"
                + (f", group {self.group!r}" if self.group else "") + f", {self.backend}"
                + (f", {len(self.resumed)} resumed" if self.resumed else "") + ")")
        lines = [head]
        if grid:
            lines.append(self.summary.to_string(max_cols=12) if len(self.summary) else "  (no results)")
        else:
            for metric, row in self.summary.iterrows():
                lines.append(f"  {metric}: {_fmt(row['mean'], row['std'])} (n={int(row['n'])})")
        for label, tb in self.failures.items():
            lines.append(f"  FAILED {label}: {_last_line(tb)}")
        return "\n".join(lines)


def _fmt(mean: float, std: float, digits: int = 4) -> str:
    if mean is None or not np.isfinite(mean):
        return ""
    if std is None or not np.isfinite(std):
        return f"{mean:.{digits}g}"
    return f"{mean:.{digits}g} ± {std:.2g}"


def _last_line(tb: str) -> str:
    lines = [x for x in str(tb).strip().splitlines() if x.strip()]
    return lines[-1] if lines else "unknown error"


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
    backend: str = "sequential",
    resume: bool = True,
    progress: bool = True,
    num_cpus: int | None = None,
    address: str | None = None,
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
    fit_kwargs: passed to ``wb.fit`` (``steps=``, ``lr=``, ``optimizer=``, ``threads=``...);
        the fits show no progress bar of their own.
    metrics_fn: ``metrics_fn(model, method) -> {name: number}`` extra metrics per seed
        (e.g. test accuracy, OOD AUROC), computed in the worker.
    store, save: where the runs go (default store) and whether to save them at all.
    backend: ``"sequential"``, ``"ray"`` or ``"tune"`` (module docstring); ``num_cpus``: Ray
        workers of a cluster the sweep starts (default: one per trial, at most the cores);
        ``address``: an existing Ray cluster to use. ``map_fn``: a pool instead of a backend.
    resume: reuse runs of this sweep already in the store (same identity) instead of training.
    progress: a progress bar over the trials.
    """
    _check_common(make_model, seeds, fit_kwargs, backend, map_fn, resume, progress)
    _check_method(make_method, "make_method")
    if name is None:
        probe = make_method if isinstance(make_method, type) else type(new_method(make_method))
        name = f"{probe.__name__.lower()}-sweep"
    threads = fit_kwargs.pop("threads", None)
    fit_kwargs["progress"] = False
    trials = [Trial(i, int(s), make_model, make_method, dict(fit_kwargs), metrics_fn, name)
              for i, s in enumerate(seeds)]
    return run_sweep(trials, data, val, name=name, store=store, save=save, backend=backend, resume=resume,
                     progress=progress, threads=threads, num_cpus=num_cpus, address=address, map_fn=map_fn,
                     tags=tags)


def _check_method(make, what: str) -> None:
    if not (callable(make) or isinstance(make, str)):
        raise TypeError(
            f"{what} must be a callable returning a fresh method (e.g. wb.methods.CrossEntropy) "
            f"or a method name, got {type(make).__name__}"
        )
    if isinstance(make, torch.nn.Module):
        raise TypeError(
            f"{what} must build a fresh method per seed (pass the class, e.g. "
            "wb.methods.CrossEntropy, or a lambda), not a method instance"
        )


def _check_common(make_model, seeds, fit_kwargs, backend, map_fn, resume, progress) -> None:
    """Check the arguments every sweep takes."""
    from .._checks import check_bool, check_choice

    if not callable(make_model):
        raise TypeError(f"make_model must be a callable make_model(seed=...) -> model, got {type(make_model).__name__}")
    if seed_keyword(make_model) is False:
        raise TypeError("make_model must accept a seed= keyword (make_model(seed=s)); e.g. "
                        "lambda seed: wb.models.MLP(64, (128,), 10, seed=seed)")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty; pass e.g. seeds=[0, 1, 2]")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    if "seed" in fit_kwargs:
        raise TypeError("pass the seeds with seeds=[...], not seed=")
    check_choice(backend, "backend", BACKENDS)
    check_bool(resume, "resume")
    check_bool(progress, "progress")
    if map_fn is not None and backend != "sequential":
        raise ValueError(f"pass either map_fn= (your own pool) or backend={backend!r}, not both")
    if backend in ("ray", "tune"):
        require_ray(tune=backend == "tune")


# ------------------------------------------------------------------------------- the driver
def run_sweep(trials: list[Trial], data, val, *, name: str, store, save: bool, backend: str, resume: bool,
              progress: bool, threads, num_cpus, address, map_fn, tags,
              grid_params: Sequence[str] | None = None) -> SweepResult:
    """Give each trial its identity, take finished ones from the store, run the rest on
    ``backend`` (``threads``: torch threads per trial) and save each as it ends; then build
    the tables."""
    st = as_store(store) if save else None
    trials = _with_keys(trials, data, val)
    found = _stored(st, trials) if (st is not None and resume) else {}
    group = None
    if st is not None:
        groups = [r.group for r in found.values() if r.group]
        group = groups[0] if groups else f"sweep-{secrets.token_hex(3)}"
    rows: dict[int, dict] = {}
    hists: dict[int, History | None] = {}
    failures: dict[str, str] = {}
    for t in trials:
        if t.index in found:
            run = found[t.index]
            rows[t.index] = _row(t, run.id, run.status, run.steps, run.metrics, True)
            hists[t.index] = st.history(run.id)
    bar = _bar(progress, len(trials), len(found), name)

    def on_result(t: Trial, out: dict) -> None:
        if "error" in out:
            failures[t.label] = out["error"]
            rows[t.index] = _row(t, None, "failed", None, {}, False)
            hists[t.index] = None
        else:
            model, method, hist = rebuild(out)
            rid = None
            if st is not None:
                tg = {**(tags or {}), "sweep_seed": t.seed, "run_key": t.key,
                      **({"recipe": t.params.get("method"), "params": _plain(t.params)} if grid_params else {})}
                rid = st.save(model, method, hist, name=t.name, group=group, data=data,
                              metrics=out["metrics"], tags=tg)
            rows[t.index] = _row(t, rid, hist.status, hist.last_step, {**final_metrics(hist), **out["metrics"]}, False)
            hists[t.index] = hist
        if bar is not None:
            bar.update(1)
            if failures:
                bar.set_postfix(failed=len(failures))

    try:
        run_trials([t for t in trials if t.index not in found], data, val, on_result, backend=backend,
                   map_fn=map_fn, threads=threads, num_cpus=num_cpus, address=address)
    finally:
        if bar is not None:
            bar.close()
    _report_failures(failures, len(trials), any(r["status"] != "failed" for r in rows.values()))
    order = [t.index for t in trials]
    return _result(name, group, [rows[i] for i in order], tuple(rows[i]["run_id"] for i in order),
                   tuple(hists[i] for i in order), failures, tuple(found[i].id for i in order if i in found),
                   backend if map_fn is None else "map_fn", grid_params)


def _with_keys(trials: list[Trial], data, val) -> list[Trial]:
    """The trials with their identities (built models and methods are only described)."""
    from dataclasses import replace

    dfp, vfp = fingerprint(data), fingerprint(val)
    out = []
    for t in trials:
        model = describe(t.make_model(seed=t.seed))
        method = describe(new_method(t.make_method, t.seed))
        key = run_key(name=t.name, seed=t.seed, model=model, method=method, fit_kwargs=t.fit_kwargs,
                      data_fp=dfp, val_fp=vfp, metrics_fn=t.metrics_fn)
        out.append(replace(t, key=key))
    return out


def _stored(st: RunStore, trials: list[Trial]) -> dict:
    """Trial index -> the stored run with its identity (finished runs only: not stopped or
    interrupted ones)."""
    wanted = {t.key: t.index for t in trials}
    found = {}
    for run in st.runs():
        i = wanted.get(run.tags.get("run_key"))
        if i is not None and i not in found and run.status not in ("stopped", "interrupted"):
            found[i] = run
    return found


def _row(t: Trial, rid, status, steps, metrics: dict, resumed: bool) -> dict:
    row = {"run_id": rid}
    if "method" in t.params:
        row["name"] = t.name
        row.update(t.params)
    row.update({"seed": t.seed, "status": status, "steps": steps, "resumed": resumed, **metrics})
    return row


def _plain(params: dict) -> dict:
    return {k: (v if isinstance(v, (bool, int, float, str)) or v is None else repr(v)) for k, v in params.items()}


def _bar(progress: bool, total: int, done: int, name: str):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc=f"sweep {name}", unit="run")


def _report_failures(failures: dict[str, str], n: int, any_ok: bool) -> None:
    if not failures:
        return
    if not any_ok:
        first = next(iter(failures.values()))
        raise RuntimeError(f"every trial of the sweep failed ({len(failures)} of {n}); the first one's "
                           f"traceback:\n{first}")
    lines = "\n".join(f"  {label}: {_last_line(tb)}" for label, tb in failures.items())
    warnings.warn(
        f"{len(failures)} of {n} trials failed and were not saved (the others were); their "
        f"tracebacks are in result.failures, and running the sweep again retries only them:\n{lines}",
        UserWarning,
        stacklevel=3,
    )


def _result(name, group, rows, ids, hists, failures, resumed, backend, grid_params) -> SweepResult:
    import pandas as pd

    runs = pd.DataFrame(rows)
    skip = {*ROW_COLUMNS, *(grid_params or ())}
    metric_cols = [c for c in runs.columns if c not in skip]
    metric_cols.sort(key=lambda c: (c.startswith("train_"), not c.startswith("val_")))  # val, yours, train
    runs = runs[[c for c in runs.columns if c not in metric_cols] + metric_cols]
    ok = runs[runs["status"] != "failed"]
    if grid_params is not None:
        summary = summarize(ok, by="name", metrics=metric_cols) if len(ok) else pd.DataFrame()
    else:
        summary = _summary(ok, metric_cols)
    return SweepResult(name, group, runs, summary, ids, hists, failures, resumed, backend)


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
