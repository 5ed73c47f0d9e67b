"""Projections at a million points: peak RSS and time of ``wb.analyses.project``.

Run:  OMP_NUM_THREADS=1 python benchmarks/bench_project.py [--rows 1000000] [--dim 128] [--umap]

Each case runs in a fresh subprocess that first builds ``rows`` x ``dim`` float32 features
(10 Gaussian blobs; 512 MB at 10⁶ x 128) and warms up the imports on a small array, then resets
the peak RSS (Linux ``VmHWM``) and projects:

* ``pca (auto)``: ``project(z, "pca")``: the streamed exact PCA above 10⁷ values;
* ``pca (scikit-learn)``: ``project(z, "pca", solver="full")`` as before issue 14 (scikit-learn
  validates, i.e. copies, the array; for n ≥ 10·d it then uses its covariance solver);
* ``umap (sample 50k)`` with ``--umap``: UMAP fitted on 50 000 rows, the others placed with its
  ``transform`` in blocks (minutes: ~0.4 ms a row here).

Printed per case: seconds, the peak RSS above the RSS with the data loaded (MiB), and that
growth as a fraction of the data's size (a second copy of the data would be >= 100%).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def run_case(case: str, rows: int, dim: int) -> dict:
    import numpy as np
    import torch

    from workbench import _stream
    from workbench.analyses import project

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    centres = 4.0 * torch.randn(10, dim, generator=g)
    z = torch.empty(rows, dim)
    for i in range(0, rows, 65536):
        n = min(65536, rows - i)
        z[i : i + n] = centres[torch.randint(0, 10, (n,), generator=g)] + torch.randn(n, dim, generator=g)
    small = z[:20_000].clone()
    kw = {"pca (auto)": dict(method="pca"), "pca (scikit-learn)": dict(method="pca", solver="full"),
          "umap (sample 50k)": dict(method="umap", sample=50_000, n_neighbors=15)}[case]
    if kw["method"] == "umap":
        project(small[:6000], method="umap", sample=3000)  # numba JIT of fit and transform
    else:
        project(small, **kw)  # imports
    base = _stream.rss()["rss"]
    _stream.reset_peak_rss()
    t = time.perf_counter()
    p = project(z, **kw)
    dt = time.perf_counter() - t
    growth = _stream.rss()["peak"] - base
    assert p.coords.shape == (rows, 2) and bool(np.isfinite(p.coords.numpy()).all())
    return {"case": case, "seconds": dt, "growth_mib": growth, "data_mib": z.numel() * 4 / 2**20,
            "shares_input": p.fitted.data_ptr() == z.data_ptr()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--umap", action="store_true")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child, args.rows, args.dim)))
        return
    cases = ["pca (auto)", "pca (scikit-learn)"] + (["umap (sample 50k)"] if args.umap else [])
    print(f"project() on {args.rows} x {args.dim} float32; load average {os.getloadavg()[0]:.2f}")
    print(f"{'case':<22s} {'seconds':>8s} {'peak RSS growth':>16s} {'of data size':>13s}  shares input")
    for case in cases:
        out = subprocess.run([sys.executable, __file__, "--child", case, "--rows", str(args.rows),
                              "--dim", str(args.dim)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{case:<22s} {r['seconds']:8.2f} {r['growth_mib']:12.0f} MiB {r['growth_mib'] / r['data_mib']:12.0%}"
              f"  {r['shares_input']}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
