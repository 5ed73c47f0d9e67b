"""Test-session settings shared by unit tests and nbmake notebook runs.

Set before any kernel starts, so notebooks executed by nbmake inherit them:
* one intra-op thread (small models run several times faster than with two on a busy 2-core box);
* WORKBENCH_FAST=1: notebooks shrink their training (their parameters cell reads it);
* a numba cache folder so UMAP's JIT compiles once per machine, not per kernel.
"""

import os
import pathlib

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("WORKBENCH_FAST", "1")
os.environ.setdefault("NUMBA_CACHE_DIR", str(pathlib.Path.home() / ".cache" / "workbench-numba"))
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

torch.set_num_threads(1)
