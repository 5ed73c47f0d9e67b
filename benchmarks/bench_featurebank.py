"""FeatureBank at 2 million rows: peak RSS and time, features memory-mapped vs in RAM.

Run:  OMP_NUM_THREADS=1 python benchmarks/bench_featurebank.py [--rows 2000000] [--knn-bank 20000]

Each configuration runs in a fresh subprocess (so its peak RSS, Linux ``VmHWM``, is its own):

* inputs: ``rows`` x 32 float32 in a memory-mapped ``.npy`` file (256 MB at 2M rows), labels
  (4 classes) in RAM; the model: ``MLP(32, (64,), 4)``, so the bank holds 64-d backbone
  features and 4 logits per row (528 MB at 2M rows);
* ``FeatureBank(model, memory=...)``: ``disk`` writes the features to temporary memory-mapped
  files (``memory="256MB"``), ``ram`` keeps them in RAM (``memory=None``);
* Mahalanobis fitted on every row and every row scored; Energy on every row's logits; KNN
  (k=50, faiss engine) fitted on a random ``knn-bank`` rows (the paper's ImageNet set-up keeps a
  1% subsample of the training set) and every row scored.

Printed: the RSS after imports and building the inputs, the peak RSS, its file-backed part at
the end, and the seconds per stage. The goal (issue 14): 2 million 64-d rows within 1 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def run_one(mode: str, rows: int, knn_bank: int, folder: str) -> dict:
    import numpy as np
    import torch

    import workbench as wb
    from workbench import _stream

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    xw = _stream.RowWriter(rows, file=os.path.join(folder, "x.npy"))
    for i in range(0, rows, 65536):
        n = min(65536, rows - i)
        xw.write(i, torch.randn(n, 32, generator=g))
    x = xw.result()
    y = torch.randint(0, 4, (rows,), generator=g)
    ds = wb.data.Dataset(x, y, name="bench")
    model = wb.models.MLP(32, (64,), 4, seed=0)
    for det in (wb.ood.Mahalanobis(), wb.ood.Energy(), wb.ood.KNN(k=5)):  # warm up imports on a small set
        small = wb.data.Dataset(torch.randn(2000, 32), torch.randint(0, 4, (2000,)))
        det.fit(wb.ood.FeatureBank(model), small)
    _stream.release(x)
    base = _stream.rss()
    _stream.reset_peak_rss()
    times = {}
    t = time.perf_counter()
    bank = wb.ood.FeatureBank(model, batch_size=16384, memory="256MB" if mode == "disk" else None)
    feats = bank.features(ds)
    times["features"] = time.perf_counter() - t
    t = time.perf_counter()
    maha = wb.ood.Mahalanobis().fit(bank, ds)
    s_maha = maha.predict(bank, ds)
    times["mahalanobis fit+score"] = time.perf_counter() - t
    t = time.perf_counter()
    s_energy = wb.ood.Energy().fit(bank).predict(bank, ds)
    times["energy score"] = time.perf_counter() - t
    t = time.perf_counter()
    idx = torch.from_numpy(np.sort(np.random.default_rng(0).choice(rows, knn_bank, replace=False)))
    knn = wb.ood.KNN(k=50).fit_features(feats.backbone[idx])
    s_knn = knn.predict_features(feats.backbone)
    times[f"knn ({knn.engine_}, bank {knn_bank}) fit+score"] = time.perf_counter() - t
    end = _stream.rss()
    assert s_maha.shape == s_energy.shape == s_knn.shape == (rows,)
    assert all(bool(torch.isfinite(s).all()) for s in (s_maha, s_energy, s_knn))
    return {"mode": mode, "rows": rows, "on_disk": feats.on_disk, "base_rss_mib": base["rss"],
            "peak_rss_mib": end["peak"], "end_file_mib": end["file"], "times_s": times}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--knn-bank", type=int, default=20_000)
    ap.add_argument("--modes", default="disk,ram")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory(prefix="bench-featurebank-") as folder:
            print(json.dumps(run_one(args.child, args.rows, args.knn_bank, folder)))
        return
    load = os.getloadavg()
    print(f"FeatureBank on {args.rows} rows (64-d backbone + 4 logits), load average {load[0]:.2f}")
    for mode in args.modes.split(","):
        out = subprocess.run([sys.executable, __file__, "--child", mode, "--rows", str(args.rows),
                              "--knn-bank", str(args.knn_bank)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        total = sum(r["times_s"].values())
        print(f"\n[{mode}] features on disk: {r['on_disk']}; RSS before: {r['base_rss_mib']:.0f} MiB; "
              f"peak RSS: {r['peak_rss_mib']:.0f} MiB (goal < 1024); mapped file pages at the end: "
              f"{r['end_file_mib']:.0f} MiB; total {total:.1f} s")
        for k, v in r["times_s"].items():
            print(f"    {k:<40s} {v:7.2f} s")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
