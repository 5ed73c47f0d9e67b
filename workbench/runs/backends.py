"""Where a sweep's trials run: here one after another, on a pool, as Ray tasks, or as Ray Tune
trials. Every backend calls ``on_result(trial, out)`` in the driver process as each trial ends
(``out``: ``run_trial``'s plain data, or ``{"error": traceback}``); the driver saves.

* ``"sequential"``: in this process, in order.
* ``map_fn``: any ``.map(fn, items)`` pool or ``map_fn(fn, items)`` callable (results in order).
* ``"ray"``: one Ray task per trial (``num_cpus=threads`` each, one torch thread by default), the
  data put in Ray's object store once; results are taken as they finish (``ray.wait``).
* ``"tune"``: a Ray Tune grid (``tune.Tuner`` over ``tune.grid_search`` of the trials, each
  ``tune.with_resources({"cpu": threads})``); each trial writes its plain data (safetensors +
  JSON, no pickle) as a Tune checkpoint in a temporary folder, which a driver-side Tune callback
  reads and hands on; the folder is removed afterwards.

**The cluster.** If Ray is already initialised in this process (``ray.init(...)`` by you, or
``ray.init(address="ray://...")`` to a remote cluster), it is used as it is and left running.
Otherwise ``address=`` (or ``$RAY_ADDRESS``) connects to that existing cluster, and without one
a local cluster is started with ``ray.init(num_cpus=...)``; either is shut down (disconnected)
when the sweep ends. Worker output is not forwarded to the notebook (``log_to_driver=False``):
failures come back as tracebacks in the sweep's result.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from .trials import Trial, run_trial

__all__ = ["BACKENDS", "require_ray", "ray_session", "start_ray", "run_trials"]

BACKENDS = ("sequential", "ray", "tune")
_INSTALL = 'pip install -e ".[scale]"  (or: pip install "ray[tune]")'


def require_ray(tune: bool = False):
    """Import ray (and ray.tune) or raise ImportError naming the extra to install."""
    try:
        import ray

        if tune:
            import ray.tune  # noqa: F401
    except ImportError as err:
        what = "Ray Tune" if tune else "Ray"
        raise ImportError(f'backend={"tune" if tune else "ray"!r} needs {what}, which is not installed; '
                          f"run: {_INSTALL}") from err
    return ray


@contextlib.contextmanager
def ray_session(num_cpus: int | None = None, address: str | None = None) -> Iterator:
    """Ray, initialised for the duration (module docstring: an existing session is kept)."""
    import logging

    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    opts = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                configure_logging=True)
    if address is not None:
        ray.init(address=address, **opts)
    else:
        start_ray(num_cpus or os.cpu_count() or 1, **opts)
    try:
        yield ray
    finally:
        ray.shutdown()


def start_ray(num_cpus: int, tries: int = 2, **opts):
    """``ray.init(num_cpus=...)`` of a local cluster, tried again once when it times out.

    Ray 2.60's raylet gives its Python agents 15 s to start (not configurable); on a busy
    machine (measured here at load average ~10 on 2 cores) they can take longer and ``ray.init``
    fails with "The current node timed out during startup"; a second try often gets through.
    """
    import warnings

    ray = require_ray()
    for attempt in range(tries):
        try:
            return ray.init(num_cpus=num_cpus, **opts)
        except Exception as err:  # Ray raises a bare Exception for this
            if "timed out during startup" not in str(err) or attempt == tries - 1:
                raise
            ray.shutdown()
            warnings.warn(f"Ray's local cluster did not start in time (a busy machine?); trying again: {err}",
                          RuntimeWarning, stacklevel=2)


def run_trials(trials: Sequence[Trial], data, val, on_result: Callable, *, backend: str = "sequential",
               map_fn=None, threads: int | None = None, num_cpus: int | None = None,
               address: str | None = None) -> None:
    """Run ``trials`` on ``backend`` and call ``on_result(trial, out)`` here as each ends."""
    if not trials:
        return
    if map_fn is not None:
        _mapped(trials, data, val, on_result, map_fn, threads)
    elif backend == "sequential":
        for t in trials:
            on_result(t, run_trial(t, data, val, threads))
    elif backend == "ray":
        with ray_session(num_cpus or min(len(trials), os.cpu_count() or 1), address) as ray:
            _ray_tasks(ray, trials, data, val, on_result, threads or 1)
    elif backend == "tune":
        require_ray(tune=True)
        with ray_session(num_cpus or min(len(trials), os.cpu_count() or 1), address):
            _ray_tune(trials, data, val, on_result, threads or 1)
    else:
        raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")


# ------------------------------------------------------------------------------- pools
class _Task:
    """``run_trial`` bound to the data, picklable for process pools."""

    def __init__(self, data, val, threads):
        self.data, self.val, self.threads = data, val, threads

    def __call__(self, trial: Trial) -> dict:
        return run_trial(trial, self.data, self.val, self.threads)


def _mapped(trials, data, val, on_result, map_fn, threads) -> None:
    fn = _Task(data, val, threads)
    if hasattr(map_fn, "map") and callable(map_fn.map):
        results = map_fn.map(fn, list(trials))
    elif callable(map_fn):
        results = map_fn(fn, list(trials))
    else:
        raise TypeError(
            "map_fn must be None, an executor/pool with .map(fn, items) (concurrent.futures, "
            "multiprocessing, ray.util.multiprocessing.Pool) or a callable map_fn(fn, items); got "
            f"{type(map_fn).__name__}"
        )
    for t, out in zip(trials, results):
        on_result(t, out)


# ------------------------------------------------------------------------------- Ray tasks
def _ray_tasks(ray, trials, data, val, on_result, threads: int) -> None:
    remote = ray.remote(num_cpus=threads, max_retries=0)(run_trial)
    data_ref = ray.put(data)
    val_ref = ray.put(val)
    pending = {remote.remote(t, data_ref, val_ref, threads): t for t in trials}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                t = pending.pop(ref)
                try:
                    out = ray.get(ref)
                except Exception as err:  # the worker died, or the result could not be read
                    out = {"index": t.index, "seed": t.seed, "error": f"{type(err).__name__}: {err}"}
                on_result(t, out)
    finally:
        for ref in pending:  # interrupted (KeyboardInterrupt): stop what is still running
            ray.cancel(ref, force=True)


# ------------------------------------------------------------------------------- Ray Tune
def _tune_trainable(config, trials, data, val, threads):
    """A Tune trial: train, write the plain data as a checkpoint (or report the traceback)."""
    from ray import tune

    from .codec import write_tensors_json

    t = trials[config["trial"]["index"]]
    out = run_trial(t, data, val, threads)
    if "error" in out:
        tune.report({"index": t.index, "failed": True, "error": out["error"]})
        return
    folder = Path(tempfile.mkdtemp(prefix="workbench-trial-"))
    try:
        write_tensors_json(folder / "trial.safetensors", out, f"trial {t.label}")
        tune.report({"index": t.index, "failed": False}, checkpoint=tune.Checkpoint.from_directory(str(folder)))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _ray_tune(trials, data, val, on_result, threads: int) -> None:
    from ray import tune

    from .codec import read_tensors_json

    by_index = {t.index: t for t in trials}
    delivered: set[int] = set()

    def deliver(index: int, out: dict) -> None:
        if index not in delivered:
            delivered.add(index)
            on_result(by_index[index], out)

    class Collect(tune.Callback):  # runs in this (the driver) process
        def on_trial_result(self, iteration, trials, trial, result, **info):
            if result.get("failed"):
                deliver(result["index"], {"index": result["index"], "error": result["error"]})

        def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
            index = trial.config["trial"]["index"]
            deliver(index, read_tensors_json(Path(checkpoint.path) / "trial.safetensors"))

    storage = tempfile.mkdtemp(prefix="workbench-tune-")
    space = {"trial": tune.grid_search([{"index": t.index, "name": t.name, "seed": t.seed, **t.params}
                                        for t in trials])}
    trainable = tune.with_resources(
        tune.with_parameters(_tune_trainable, trials=by_index, data=data, val=val, threads=threads),
        {"cpu": threads},
    )
    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(name="workbench-sweep", storage_path=storage, verbose=0, callbacks=[Collect()],
                                  failure_config=tune.FailureConfig(max_failures=0)),
    )
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # Tune prints its set-up even at verbose=0
            grid = tuner.fit()
        for res in grid:  # trials that died before reporting (e.g. a worker crash)
            index = res.config["trial"]["index"]
            if index not in delivered:
                why = str(res.error) if res.error is not None else "the trial ended without a result"
                deliver(index, {"index": index, "seed": by_index[index].seed, "error": why})
    finally:
        shutil.rmtree(storage, ignore_errors=True)
