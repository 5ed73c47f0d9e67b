"""Hessian spectra: workbench vs PyHessian 0.1 on the same model and data (one batch of 1797).

Run:  OMP_NUM_THREADS=1 python benchmarks/bench_hessian.py [--seeds 5] [--rounds 3]

In one run, on the 64->128->128->10 ReLU MLP trained on all 1797 digits (as in
bench_landscape.py), eval mode, the whole set as one batch:

* ground truth: scipy ``eigsh(k=3, which="LA", tol=1e-10)`` on our HVP operator (a
  ``LinearOperator``), and the exact trace: for a ReLU network the output is piecewise linear
  in every single weight, so ``diag(H) = diag(GGN)`` almost everywhere and
  ``tr H = mean_n tr(J_nᵀ (diag p_n - p_n p_nᵀ) J_n)`` from per-sample Jacobians;
* top eigenvalue: PyHessian's default ``eigenvalues(top_n=1)`` (power iteration, tol 1e-3,
  including its constructor's gradient graph) vs ``wb.analyses.hessian_eigs(k=1)`` (Lanczos,
  tol 1e-4, including its own graph), over several seeds, interleaved; relative errors
  against eigsh and the time ratio;
* trace: PyHessian's ``trace()`` (stops on a small change of the running mean) vs
  ``hessian_trace`` (Hutchinson, fixed 64 probes, standard error) and Hutch++;
* density: PyHessian's ``density()`` (fails on torch >= 2: ``torch.eig`` was removed) vs
  ``spectral_density`` (SLQ), with its quadrature's trace estimate ``P Σ w θ`` and top node;
* the cost of one HVP by each route.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import numpy as np
import torch
from _common import train_model
from torch.func import functional_call, jacrev, vmap

import workbench as wb
from workbench.analyses.curvature import HessianOperator

warnings.filterwarnings("ignore")


def exact_trace_relu(model, X, chunk=64):
    """tr H = tr GGN for a piecewise-linear network (see the module docstring)."""
    params = {k: v.detach() for k, v in model.named_parameters()}

    def out(p, x):
        return functional_call(model, p, (x[None],))[0]

    total = 0.0
    for s in range(0, X.shape[0], chunk):
        xb = X[s : s + chunk]
        J = vmap(jacrev(out), in_dims=(None, 0))(params, xb)  # dict of (b, C, *shape)
        Jf = torch.cat([j.reshape(j.shape[0], j.shape[1], -1) for j in J.values()], 2).double()  # (b, C, P)
        with torch.no_grad():
            p = model(xb).softmax(1).double()
        A = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]  # (b, C, C)
        JJ = Jf @ Jf.transpose(1, 2)  # (b, C, C)
        total += float((A * JJ).sum())
    return total / X.shape[0]


def timed(fn):
    t = time.perf_counter()
    c = time.process_time()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c


def clear_grads(model):
    for p in model.parameters():
        p.grad = None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--probes", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, load average {os.getloadavg()}")
    from pyhessian import hessian as PyHessian
    from scipy.sparse.linalg import LinearOperator, eigsh

    model, data = train_model()
    X, y = data.x, data.y
    ce = wb.methods.CrossEntropy()
    crit = torch.nn.CrossEntropyLoss()
    P = sum(p.numel() for p in model.parameters())
    print(f"model: {P} parameters; data: {X.shape[0]} samples as one batch")

    # ------------------------------------------------------------------ ground truth
    op = HessianOperator(model, ce, X, y, hvp_mode="chain")

    def mv(v):
        return op.matvec(torch.from_numpy(np.asarray(v, dtype=np.float64).ravel()).float()).double().numpy()

    (ev, _), t_eigsh, _ = timed(lambda: eigsh(LinearOperator((P, P), matvec=mv, dtype=np.float64), k=3, which="LA",
                                              tol=1e-10, ncv=30))
    ev = np.sort(ev)[::-1]
    lam1 = float(ev[0])
    tr_exact, t_tr, _ = timed(lambda: exact_trace_relu(model, X))
    print(f"ground truth: eigsh top-3 {np.round(ev, 6).tolist()} ({t_eigsh:.2f} s, λ2/λ1 = {ev[1] / ev[0]:.3f}); "
          f"exact trace {tr_exact:.5f} ({t_tr:.2f} s)")

    # ------------------------------------------------------------------ one HVP
    v = torch.randn(P, generator=torch.Generator().manual_seed(0))
    cost = {}
    for mode in ("chain", "cached", "fwd-rev"):
        o = HessianOperator(model, ce, X, y, hvp_mode=mode)
        o.matvec(v)
        ts = []
        for _ in range(10):
            t = time.perf_counter()
            o.matvec(v)
            ts.append(time.perf_counter() - t)
        cost[mode] = statistics.median(ts)
    H = PyHessian(model, crit, data=(X, y), cuda=False)
    from pyhessian.utils import hessian_vector_product

    vl = [t.view_as(p) for t, p in zip(torch.split(v, [p.numel() for p in H.params]), H.params)]
    ts = []
    for _ in range(10):
        t = time.perf_counter()
        hessian_vector_product(H.gradsH, H.params, vl)
        ts.append(time.perf_counter() - t)
    cost["pyhessian"] = statistics.median(ts)
    del H
    clear_grads(model)
    print("one HVP (median of 10): " + ", ".join(f"{k} {1e3 * t:.1f} ms" for k, t in cost.items()))

    # ------------------------------------------------------------------ top eigenvalue
    import sys

    ph_mod = sys.modules["pyhessian.hessian"]  # the module (the package re-exports the class by that name)

    calls = {"n": 0}
    _hvp = ph_mod.hessian_vector_product

    def counted(*a, **k):  # count PyHessian's products (its API does not report them)
        calls["n"] += 1
        return _hvp(*a, **k)

    ph_mod.hessian_vector_product = counted
    rows = {"pyhessian": [], "workbench": []}
    for seed in range(args.seeds):
        torch.manual_seed(seed)

        def ph():
            Hh = PyHessian(model, crit, data=(X, y), cuda=False)
            e, _ = Hh.eigenvalues(top_n=1)
            return e[0]

        calls["n"] = 0
        e, wall, cpu = timed(ph)
        clear_grads(model)
        rows["pyhessian"].append((wall, cpu, abs(e - lam1) / lam1, calls["n"]))
        s, wall, cpu = timed(lambda seed=seed: wb.analyses.hessian_eigs(model, ce, data, k=1, seed=seed, return_vectors=False))
        rows["workbench"].append((wall, cpu, abs(s.top - lam1) / lam1, s.iterations))
    print(f"\n== top eigenvalue (λ1 = {lam1:.6f}), {args.seeds} seeds, interleaved")
    for k, r in rows.items():
        errs = [e for _, _, e, _ in r]
        it = [i for *_, i in r if i is not None]
        print(f"{k:<10} wall median {statistics.median([w for w, *_ in r]):.3f} s (cpu {statistics.median([c for _, c, *_ in r]):.3f} s); "
              f"relative error median {statistics.median(errs):.1e}, max {max(errs):.1e}"
              + f"; HVPs {it}" + f"; walls {[round(w, 3) for w, *_ in r]}")
    ratio = statistics.median([w for w, *_ in rows["pyhessian"]]) / statistics.median([w for w, *_ in rows["workbench"]])
    ratio_c = statistics.median([c for _, c, *_ in rows["pyhessian"]]) / statistics.median([c for _, c, *_ in rows["workbench"]])
    print(f"speed-up vs PyHessian's default top-1: {ratio:.2f}x wall, {ratio_c:.2f}x cpu "
          f"(workbench max error {max(e for _, _, e, _ in rows['workbench']):.1e} vs target 1e-4)")
    s5, w5, _ = timed(lambda: wb.analyses.hessian_eigs(model, ce, data, k=5, return_vectors=False))
    print(f"top-5 by Lanczos: {[round(float(e), 5) for e in s5.eigenvalues]} in {s5.iterations} steps, {w5:.2f} s, "
          f"converged={s5.converged}; eigsh top-3 errors {[f'{abs(float(a) - b) / b:.1e}' for a, b in zip(s5.eigenvalues[:3], ev)]}")

    # ------------------------------------------------------------------ trace
    print(f"\n== trace (exact {tr_exact:.4f})")
    ph_rows, wb_rows, pp_rows = [], [], []
    for seed in range(args.seeds):
        torch.manual_seed(seed)

        def pht():
            Hh = PyHessian(model, crit, data=(X, y), cuda=False)
            return Hh.trace()

        samples, wall, _ = timed(pht)
        clear_grads(model)
        ph_rows.append((wall, len(samples), abs(np.mean(samples) - tr_exact) / tr_exact))
        t, wall, _ = timed(lambda seed=seed: wb.analyses.hessian_trace(model, ce, data, seed=seed, n_probes=args.probes))
        wb_rows.append((wall, t.n_matvecs, abs(t.trace - tr_exact) / tr_exact, t.stderr / abs(t.trace),
                        abs(t.trace - tr_exact) / t.stderr))
        t2, wall2, _ = timed(lambda seed=seed: wb.analyses.hessian_trace(model, ce, data, seed=seed, n_probes=args.probes,
                                                              estimator="hutch++"))
        pp_rows.append((wall2, t2.n_matvecs, abs(t2.trace - tr_exact) / tr_exact, t2.stderr / abs(t2.trace),
                        abs(t2.trace - tr_exact) / t2.stderr))
    print(f"PyHessian trace(): wall median {statistics.median([r[0] for r in ph_rows]):.3f} s; probes {[r[1] for r in ph_rows]}; "
          f"relative errors {[f'{100 * r[2]:.1f}%' for r in ph_rows]} (no error estimate)")
    for name, rr in (("Hutchinson", wb_rows), ("Hutch++", pp_rows)):
        print(f"workbench {name} ({args.probes} HVPs): wall median {statistics.median([r[0] for r in rr]):.3f} s; "
              f"relative errors {[f'{100 * r[2]:.1f}%' for r in rr]}; reported stderr {[f'{100 * r[3]:.1f}%' for r in rr]}; "
              f"|error|/stderr {[round(r[4], 2) for r in rr]}")

    # ------------------------------------------------------------------ density
    print("\n== spectral density")
    try:
        Hh = PyHessian(model, crit, data=(X, y), cuda=False)
        Hh.density(iter=30, n_v=1)
        print("PyHessian density(): ran")
    except Exception as err:  # torch.eig was removed in torch 2
        print(f"PyHessian density(): {type(err).__name__}: {str(err).splitlines()[0][:120]}")
    clear_grads(model)
    d, wall, _ = timed(lambda: wb.analyses.spectral_density(model, ce, data, seed=0, n_runs=1, steps=30))
    est = P * float((d.nodes.double() * d.weights.double()).sum(1).mean())
    print(f"workbench spectral_density (1 run x 30 Lanczos steps): {wall:.3f} s; top node {float(d.nodes.max()):.5f} "
          f"(λ1 {lam1:.5f}); quadrature trace P·Σwθ = {est:.3f} (exact {tr_exact:.3f}, one probe)")
    d4, wall4, _ = timed(lambda: wb.analyses.spectral_density(model, ce, data, seed=0, n_runs=4, steps=30))
    est4 = P * float((d4.nodes.double() * d4.weights.double()).sum(1).mean())
    print(f"workbench spectral_density (4 runs x 30 steps): {wall4:.3f} s; quadrature trace {est4:.3f}")
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
