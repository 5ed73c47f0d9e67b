"""Grids: methods × hyperparameters × seeds, one run each, on any sweep backend.

    res = wb.runs.grid(make_model, {"ce": wb.methods.CrossEntropy,
                                    "supcon": partial(wb.methods.SupCon, feature_dim=64)},
                       train, params={"lr": [1e-3, 3e-3], "method.temperature": [0.1]},
                       seeds=[0, 1, 2], val=test, steps=500, backend="tune")
    res.summary          # one row per configuration: mean ± std over the seeds

Each configuration (a method and one value per hyperparameter) is trained once per seed. A
hyperparameter named ``"method.<arg>"`` is passed to the method's constructor
(``make_method(<arg>=value)``; methods that do not take it raise, and the trial is reported as
failed); any other name goes to ``wb.fit`` (``lr``, ``batch_size``, ``optimizer``,
``weight_decay``, an optimizer option such as ``rho``...). Runs are named
``<method>-<hyperparameter><value>-...`` (so ``wb.runs.summarize(by="name")`` groups the seeds of
a configuration) and tagged with ``recipe`` and ``params``. Everything else (backends, failures,
resuming, the run identity) is as for ``sweep`` (``runs/sweep.py``).

With ``backend="tune"`` this is a Ray Tune grid: one ``tune.grid_search`` over the trials, each
trial ``tune.with_resources({"cpu": threads})``, run by ``tune.Tuner`` on the local cluster the
grid starts (or the one you started).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Mapping, Sequence

from .store import RunStore
from .sweep import SweepResult, _check_common, _check_method, run_sweep
from .trials import Trial

__all__ = ["grid"]


def _expand(params: Mapping | None) -> tuple[list[str], list[dict]]:
    """Hyperparameter names and every combination of their values (a list of dicts)."""
    if params is None:
        return [], [{}]
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict name -> list of values, got {type(params).__name__}")
    names, values = [], []
    for k, v in params.items():
        if not isinstance(k, str) or not k or k in ("seed", "method", "name"):
            raise ValueError(f"hyperparameter names must be strings other than 'seed', 'method' and 'name'; got {k!r}")
        if isinstance(v, (str, bytes)) or not isinstance(v, Sequence) or len(v) == 0:
            raise TypeError(f"params[{k!r}] must be a non-empty list of values, e.g. [1e-3, 3e-3]; got {v!r}")
        names.append(k)
        values.append(list(v))
    return names, [dict(zip(names, combo)) for combo in itertools.product(*values)]


def _run_name(method: str, combo: dict) -> str:
    parts = [method] + [f"{k.removeprefix('method.')}{v}" for k, v in combo.items()]
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", "-".join(parts)).lstrip(".-")[:100] or "run"


def _methods(methods) -> dict[str, Callable | str]:
    if isinstance(methods, str):
        methods = [methods]
    if isinstance(methods, Mapping):
        out = dict(methods)
    elif isinstance(methods, Sequence):
        out = {}
        for m in methods:
            if not isinstance(m, str):
                raise TypeError("a list of methods must hold method names; pass a dict name -> make_method otherwise")
            out[m] = m
    else:
        raise TypeError(f"methods must be a dict name -> make_method or a list of method names, got {type(methods).__name__}")
    if not out:
        raise ValueError("methods is empty; pass e.g. {'ce': wb.methods.CrossEntropy}")
    for k, make in out.items():
        if not isinstance(k, str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,59}", k):
            raise ValueError(f"method names must be 1-60 letters, digits, '_', '-' or '.'; got {k!r}")
        _check_method(make, f"methods[{k!r}]")
    return out


def grid(
    make_model: Callable,
    methods,
    data,
    *,
    params: Mapping[str, Sequence] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
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
    """Train every method × hyperparameter combination × seed; save each as a run.

    make_model: ``make_model(seed=s)`` returns a fresh workbench model.
    methods: a dict name -> make_method (a method class, a ``functools.partial`` of one, a
        function, or a registered method name), or a list of registered method names.
    params: a dict hyperparameter -> list of values (module docstring: ``"method.<arg>"`` goes
        to the method, anything else to ``wb.fit``).
    The other arguments are ``sweep``'s; ``result.summary`` has one row per configuration.
    """
    _check_common(make_model, seeds, fit_kwargs, backend, map_fn, resume, progress)
    makers = _methods(methods)
    names, combos = _expand(params)
    clash = [k for k in names if k in fit_kwargs]
    if clash:
        raise ValueError(f"{clash} are given both as fixed keywords and in params=; pass each once")
    threads = fit_kwargs.pop("threads", None)
    fit_kwargs["progress"] = False
    trials = []
    for mname, make in makers.items():
        for combo in combos:
            method_kw = {k.removeprefix("method."): v for k, v in combo.items() if k.startswith("method.")}
            fit_kw = {k: v for k, v in combo.items() if not k.startswith("method.")}
            maker = make
            if method_kw:
                maker = functools.partial(_method_with, make, method_kw)
            for s in seeds:
                trials.append(Trial(len(trials), int(s), make_model, maker, {**fit_kwargs, **fit_kw}, metrics_fn,
                                    _run_name(mname, combo), {"method": mname, **combo}))
    return run_sweep(trials, data, val, name="grid", store=store, save=save, backend=backend, resume=resume,
                     progress=progress, threads=threads, num_cpus=num_cpus, address=address, map_fn=map_fn,
                     tags=tags, grid_params=["method", *names])


def _method_with(make, kwargs: dict, seed: int | None = None):
    """``make(**kwargs)`` (with ``seed=`` when it takes one): a method with grid hyperparameters."""
    from .trials import make_method, seed_keyword

    if isinstance(make, str):
        from .. import methods

        return methods.create(make, **kwargs)
    if seed is not None and seed_keyword(make):
        return make(seed=seed, **kwargs)
    return make_method(functools.partial(make, **kwargs))
