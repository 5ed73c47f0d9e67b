"""Hessian spectra: workbench vs PyHessian 0.1 across training states, in one run.

Run:  OMP_NUM_THREADS=1 python benchmarks/bench_hessian.py [--seeds 5] [--states 0,300,1500,bench]
      [--study] [--trace]

States (the README quick start's 64-128-128-10 MLP and the curvature benchmark's model):

* ``0``, ``300``, ``1500``: ``wb.models.MLP(64, (128, 128), 10, seed=0)`` trained by
  ``wb.fit(model, CrossEntropy(), train, steps=S, lr=1e-3, seed=0)`` on the 80 % digits split,
  evaluated on that split (1438 samples) as one batch;
* ``bench``: the reference notes' model (8 epochs SGD, lr 0.05, momentum 0.9, batch 64) on all
  1797 digits, evaluated on them.

For every state, in the same run:

* the reference: scipy ``eigsh(k=3, which="LA", tol=1e-10)`` on the exact HVP operator (a float64
  ``LinearOperator``; the chain R-operator is tested against ``torch.func.hessian``);
* the top eigenvalue: PyHessian's default ``eigenvalues(top_n=1)`` (power iteration, tol 1e-3,
  including its constructor's gradient graph) vs ``wb.analyses.hessian_eigs(k=1)`` (Lanczos,
  tol 1e-4, including its own set-up), over ``--seeds`` seeds in interleaved rounds; wall-clock
  medians, their ratio, products used, relative errors against eigsh;
* the cost of one product by each engine and by PyHessian's cached graph.

``--study`` adds what each of the three levers does (products to reach the tolerance, from
recorded Lanczos runs; no timing): the stopping rule (the previous one needed the error bound
and a change ``<= tol``; the current one a change ``<= 10 tol``), the start vector (gradient +
0.3 x random, random, gradient + 3 x random), and blocked HVPs (block Lanczos, block sizes 2 and
4, and the cost per direction of the R-operator on blocks). ``--trace`` adds trace and density
on the benchmark state (Hutchinson/Hutch++ vs PyHessian's ``trace()``, the exact trace of a
ReLU network from per-sample Jacobians, SLQ).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

import numpy as np
import torch
from _common import train_model
from torch.func import functional_call, jacrev, vmap

import workbench as wb
from workbench.analyses.curvature import HessianOperator
from workbench.analyses.curvature.lanczos import lanczos, ritz

warnings.filterwarnings("ignore")


# ----------------------------------------------------------------------------- set-up
def train_states(names):
    """{name: (model in eval mode, X, y)} for the requested states."""
    ds = wb.data.load("digits")
    train, _ = ds.split(0.8, seed=0)
    flat = wb.data.Dataset(train.flat, train.y)
    out = {}
    for name in names:
        if name == "bench":
            model, data = train_model()
            out[name] = (model, data.x, data.y)
            continue
        model = wb.models.MLP(64, (128, 128), 10, seed=0)
        if int(name):
            wb.fit(model, wb.methods.CrossEntropy(), train, steps=int(name), lr=1e-3, seed=0, progress=False)
        out[name] = (model.eval(), flat.x, flat.y)
    return out


def reference(model, X, y, k=3):
    """Top-k eigenvalues by scipy's eigsh on the exact operator (float64 in and out)."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    op = HessianOperator(model, wb.methods.CrossEntropy(), X, y, hvp_mode="chain")
    P = op.dim

    def mv(v):
        return op.matvec(torch.from_numpy(np.asarray(v, dtype=np.float64).ravel()).float()).double().numpy()

    ev, _ = eigsh(LinearOperator((P, P), matvec=mv, dtype=np.float64), k=k, which="LA", tol=1e-10, ncv=40)
    return np.sort(ev)[::-1]


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def timed_cpu(fn):
    """(result, wall s, process CPU s): on a shared machine CPU time is the steadier measure."""
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c


def clear_grads(model):
    for p in model.parameters():
        p.grad = None


class CountedPyHessian:
    """PyHessian's default top-1 with its products counted (its API does not report them)."""

    def __init__(self):
        from pyhessian import hessian as PyHessian

        self.cls = PyHessian
        self.mod = sys.modules["pyhessian.hessian"]  # the module (the package re-exports the class)
        self.inner = self.mod.hessian_vector_product
        self.calls = 0

        def counted(*a, **k):
            self.calls += 1
            return self.inner(*a, **k)

        self.mod.hessian_vector_product = counted

    def top1(self, model, X, y, seed, **kw):
        torch.manual_seed(seed)
        self.calls = 0
        H = self.cls(model, torch.nn.CrossEntropyLoss(), data=(X, y), cuda=False)
        e, _ = H.eigenvalues(top_n=1, **kw)
        clear_grads(model)
        return e[0], self.calls


# ----------------------------------------------------------------------------- the comparison
def compare_top1(ph, model, X, y, lam, seeds):
    """Interleaved rounds: {pyhessian, workbench: [(wall s, cpu s, products, relative error)]}."""
    ce = wb.methods.CrossEntropy()
    data = wb.data.Dataset(X, y)
    ph.top1(model, X, y, 0)  # warm-up of both
    wb.analyses.hessian_eigs(model, ce, data, k=1, return_vectors=False)
    rows = {"pyhessian": [], "workbench": []}
    for seed in range(seeds):
        (e, n), wall, cpu = timed_cpu(lambda seed=seed: ph.top1(model, X, y, seed))
        rows["pyhessian"].append((wall, cpu, n, abs(e - lam) / lam))
        s, wall, cpu = timed_cpu(lambda seed=seed: wb.analyses.hessian_eigs(model, ce, data, k=1, seed=seed,
                                                                            return_vectors=False))
        rows["workbench"].append((wall, cpu, s.iterations, abs(s.top - lam) / lam))
    return rows


def product_costs(model, X, y, reps=10):
    """Median ms per product: each engine and PyHessian's cached graph, interleaved."""
    from pyhessian import hessian as PyHessian
    from pyhessian.utils import hessian_vector_product

    ce = wb.methods.CrossEntropy()
    ops = {m: HessianOperator(model, ce, X, y, hvp_mode=m) for m in ("chain", "cached", "fwd-rev")}
    v = torch.randn(ops["chain"].dim, generator=torch.Generator().manual_seed(0))
    H = PyHessian(model, torch.nn.CrossEntropyLoss(), data=(X, y), cuda=False)
    vl = [t.view_as(p) for t, p in zip(torch.split(v, [p.numel() for p in H.params]), H.params)]
    runs = {**{m: (lambda o=o: o.matvec(v)) for m, o in ops.items()},
            "pyhessian": lambda H=H: hessian_vector_product(H.gradsH, H.params, vl)}
    ts = {k: [] for k in runs}
    for f in runs.values():
        f()
    for _ in range(reps):
        for k, f in runs.items():
            _, t = timed(f)
            ts[k].append(t)
    del H
    clear_grads(model)
    return {k: 1e3 * statistics.median(t) for k, t in ts.items()}


def report_state(name, X, ev, rows, costs):
    """Print one state's comparison; returns (wall ratio, cpu ratio) of the medians."""
    ph, wk = rows["pyhessian"], rows["workbench"]
    print(f"\n== state {name}: N={X.shape[0]}, eigsh top-3 {np.round(ev, 5).tolist()} (λ2/λ1 = {ev[1] / ev[0]:.3f})")
    print("one product (median ms): " + ", ".join(f"{k} {v:.2f}" for k, v in costs.items()))
    for key, r in rows.items():
        errs = [e for *_, e in r]
        print(f"{key:<10} median wall {1e3 * statistics.median(x[0] for x in r):6.1f} ms, cpu "
              f"{1e3 * statistics.median(x[1] for x in r):6.1f} ms; products {[x[2] for x in r]}; relative error "
              f"median {statistics.median(errs):.1e}, max {max(errs):.1e}; walls {[round(1e3 * x[0], 1) for x in r]}")
    ratios = tuple(statistics.median(p[i] for p in ph) / statistics.median(w[i] for w in wk) for i in (0, 1))
    print(f"speed-up vs PyHessian's default top-1: {ratios[0]:.2f}x wall, {ratios[1]:.2f}x cpu (ratios of medians); "
          f"per round (wall) {[round(p[0] / w[0], 2) for p, w in zip(ph, wk)]}")
    return ratios


# ----------------------------------------------------------------------------- the study
def _stop(hist, tol, change):
    """Products a rule needs on a recorded run: bound r²/gap <= tol |θ| and change <= change·|θ|."""
    prev = None
    for j, th, res, gap in hist:
        ok_c = prev is not None and abs(th - prev) <= change * abs(th)
        prev = th
        if res * res / max(gap, 1e-300) <= tol * abs(th) and ok_c:
            return j, th
    return hist[-1][0], hist[-1][1]


def block_lanczos_products(op, V0, tol, lam, max_steps=40):
    """Products block Lanczos (full re-orthogonalisation) needs for the top Ritz value (this
    project's bound-and-change rule), and its relative error."""
    Qs = [torch.linalg.qr(V0)[0]]
    A, B, prev, b = [], [], None, V0.shape[1]
    for j in range(max_steps):
        W = op.matmat(Qs[j].t().float(), chunk=b).double().t()  # (P, b)
        A.append(Qs[j].t() @ W)
        W = W - Qs[j] @ A[j] - (Qs[j - 1] @ B[j - 1].t() if j else 0)
        Qa = torch.cat(Qs, 1)
        W = W - Qa @ (Qa.t() @ W)
        W = W - Qa @ (Qa.t() @ W)
        Qn, R = torch.linalg.qr(W)
        B.append(R)
        Qs.append(Qn)
        m = (j + 1) * b
        T = torch.zeros(m, m, dtype=torch.float64)
        for i in range(j + 1):
            T[i * b:(i + 1) * b, i * b:(i + 1) * b] = (A[i] + A[i].t()) / 2
            if i < j:
                T[(i + 1) * b:(i + 2) * b, i * b:(i + 1) * b] = B[i]
                T[i * b:(i + 1) * b, (i + 1) * b:(i + 2) * b] = B[i].t()
        th, S = torch.linalg.eigh(T)
        res, gap = float((R @ S[-b:, -1]).norm()), float(th[-1] - th[-2])
        t1 = float(th[-1])
        if res * res / gap <= tol * abs(t1) and prev is not None and abs(t1 - prev) <= 10 * tol * abs(t1):
            break
        prev = t1
    return (j + 1) * b, abs(lam - t1) / lam


def study(ph, name, model, X, y, lam, seeds, tol=1e-4):
    op = HessianOperator(model, wb.methods.CrossEntropy(), X, y)
    P = op.dim
    gr = op.gradient().double()
    gr /= gr.norm()
    print(f"\n-- study, state {name}: products to reach tol {tol:g} (median [min-max] over {seeds} seeds; max error)")
    for start, a in (("gradient + 0.3 random", 0.3), ("random", None), ("gradient + 3 random", 3.0)):
        res = {"previous rule (change <= tol)": [], "current rule (change <= 10 tol)": []}
        for seed in range(seeds):
            r = torch.randn(P, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
            r /= r.norm()
            v0 = r if a is None else gr + a * r
            al, be, _, _, _ = lanczos(lambda q: op.matvec(q.float()).double(), v0, 45)
            hist = [(j, float(z.values[0]), float(z.residuals[0]), float(z.gaps[0]))
                    for j in range(2, len(al) + 1) for z in [ritz(al[:j], be[:j], "LA", 1)]]
            for key, ch in zip(res, (tol, 10 * tol)):
                j, th = _stop(hist, tol, ch)
                res[key].append((j, abs(lam - th) / lam))
        for key, v in res.items():
            n = [j for j, _ in v]
            print(f"   start {start:<22} {key:<32} {statistics.median(n):5.1f} [{min(n)}-{max(n)}]  max error "
                  f"{max(e for _, e in v):.1e}")
    for b in (2, 4):
        v = []
        for seed in range(seeds):
            V0 = torch.randn(P, b, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
            V0[:, 0] = gr + 0.3 * V0[:, 0] / V0[:, 0].norm()
            v.append(block_lanczos_products(op, V0, tol, lam))
        n = [j for j, _ in v]
        print(f"   block Lanczos, block {b}, gradient in the block: {statistics.median(n):5.1f} [{min(n)}-{max(n)}] "
              f"products, max error {max(e for _, e in v):.1e}")
    V, cost = torch.randn(16, P), {b: [] for b in (1, 2, 4, 8)}
    for _ in range(5):  # interleaved rounds, 16 directions each, CPU time
        for b in cost:
            cost[b].append(1e3 * timed_cpu(lambda b=b: op.matmat(V, chunk=b))[2] / 16)
    print("   R-operator CPU time per direction (ms) by block size: "
          + ", ".join(f"{b}: {statistics.median(c):.2f}" for b, c in cost.items()))
    (e, n), wall = timed(lambda: ph.top1(model, X, y, 0, tol=1e-6, maxIter=1000))
    print(f"   PyHessian's power iteration run to tol 1e-6 (maxIter 1000): {n} products, {1e3 * wall:.0f} ms, "
          f"relative error {abs(e - lam) / lam:.1e}")


# ----------------------------------------------------------------------------- trace and density
def exact_trace_relu(model, X, chunk=64):
    """tr H = tr GGN for a piecewise-linear network: the output is linear in every single weight,
    so diag(H) = diag(GGN) almost everywhere; tr = mean_n tr(J_nᵀ (diag p_n - p_n p_nᵀ) J_n)."""
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
        total += float((A * (Jf @ Jf.transpose(1, 2))).sum())
    return total / X.shape[0]


def trace_and_density(model, X, y, seeds, probes):
    from pyhessian import hessian as PyHessian

    ce, data = wb.methods.CrossEntropy(), wb.data.Dataset(X, y)
    tr_exact = exact_trace_relu(model, X)
    print(f"\n== trace on the benchmark state (exact {tr_exact:.4f})")
    rows = {"PyHessian trace()": [], "Hutchinson": [], "Hutch++": []}
    for seed in range(seeds):
        torch.manual_seed(seed)
        samples, wall = timed(lambda: PyHessian(model, torch.nn.CrossEntropyLoss(), data=(X, y), cuda=False).trace())
        clear_grads(model)
        rows["PyHessian trace()"].append((wall, len(samples), abs(np.mean(samples) - tr_exact) / tr_exact, None))
        for key, est in (("Hutchinson", "hutchinson"), ("Hutch++", "hutch++")):
            t, wall = timed(lambda seed=seed, est=est: wb.analyses.hessian_trace(
                model, ce, data, seed=seed, n_probes=probes, estimator=est))
            rows[key].append((wall, t.n_matvecs, abs(t.trace - tr_exact) / tr_exact, t.stderr / abs(t.trace)))
    for key, r in rows.items():
        se = "" if r[0][3] is None else f"; reported stderr {[f'{100 * x[3]:.1f}%' for x in r]}"
        print(f"{key:<18} wall median {statistics.median(x[0] for x in r):.3f} s; products {[x[1] for x in r]}; "
              f"relative errors {[f'{100 * x[2]:.1f}%' for x in r]}{se}")
    try:
        PyHessian(model, torch.nn.CrossEntropyLoss(), data=(X, y), cuda=False).density(iter=30, n_v=1)
        print("PyHessian density(): ran")
    except Exception as err:  # torch.eig was removed in torch 2
        print(f"PyHessian density(): {type(err).__name__}: {str(err).splitlines()[0][:100]}")
    clear_grads(model)
    d, wall = timed(lambda: wb.analyses.spectral_density(model, ce, data, seed=0, n_runs=4, steps=30))
    est = sum(p.numel() for p in model.parameters()) * float((d.nodes.double() * d.weights.double()).sum(1).mean())
    print(f"workbench spectral_density (4 runs x 30 Lanczos steps): {wall:.3f} s; top node {float(d.nodes.max()):.5f}; "
          f"quadrature trace P·Σwθ = {float(est):.3f}")


def hvp_blocks(sizes, rounds):
    """Per-direction cost of a Hessian-vector product on the general models, by engine and block
    size (directions per engine call), interleaved rounds, medians of wall and process CPU time."""
    from _general import MODELS, trained

    from workbench.analyses.curvature.engines import CachedDoubleBackward

    ds = wb.data.load("digits")
    blocks = (1, 2, 4, 8)
    print(f"\n== HVP cost per direction by block size (ms; medians of {rounds} interleaved rounds of 8 directions)")
    for name in MODELS:
        model = trained(name, ds)
        for n in sizes:
            X, y = ds.x[:n], ds.y[:n]
            ops = {}
            for mode in ("fwd-rev", "cached", "cached-batched"):
                op = HessianOperator(model, wb.methods.CrossEntropy(), X, y,
                                     hvp_mode="cached" if mode == "cached-batched" else mode)
                if mode == "cached-batched":
                    op.engine = CachedDoubleBackward(op.f, op.theta, batched=True)
                op.engine.max_block = max(blocks)
                ops[mode] = op
            V = torch.randn(8, ops["cached"].dim, generator=torch.Generator().manual_seed(0))
            ref = ops["cached"].matmat(V[:2], chunk=1)
            for mode, op in ops.items():
                err = float((op.matmat(V[:2], chunk=2) - ref).abs().max() / ref.abs().max())
                assert err < 1e-3, (mode, err)
            res = {}
            for _ in range(rounds):
                for mode, op in ops.items():
                    for b in blocks:
                        if mode == "cached" and b > 1:
                            continue  # one backward per direction whatever the block
                        t, c = time.perf_counter(), time.process_time()
                        op.matmat(V, chunk=b)
                        res.setdefault((mode, b), []).append(((time.perf_counter() - t) / 8, (time.process_time() - c) / 8))
            cells = []
            for (mode, b), v in res.items():
                w, c = (statistics.median(r[i] for r in v) * 1e3 for i in (0, 1))
                cells.append(f"{mode} b={b}: {w:.1f} ({c:.1f} cpu)")
            print(f"{name:<11} N={n:<5} P={ops['cached'].dim:<6} " + "; ".join(cells)
                  + f"   [load {os.getloadavg()[0]:.1f}]", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--states", default="0,300,1500,bench")
    ap.add_argument("--study", action="store_true")
    ap.add_argument("--trace", action="store_true")
    ap.add_argument("--probes", type=int, default=64)
    ap.add_argument("--blocks", action="store_true", help="only the HVP block-size study on the general models")
    ap.add_argument("--sizes", default="256,1797", help="sample counts for --blocks")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, load average {os.getloadavg()}")
    if args.blocks:
        hvp_blocks([int(v) for v in args.sizes.split(",")], args.rounds)
        return
    states = train_states(args.states.split(","))
    ph = CountedPyHessian()
    ratios = {}
    for name, (model, X, y) in states.items():
        ev = reference(model, X, y)
        rows = compare_top1(ph, model, X, y, float(ev[0]), args.seeds)
        ratios[name] = report_state(name, X, ev, rows, product_costs(model, X, y))
        if args.study:
            study(ph, name, model, X, y, float(ev[0]), args.seeds)
        print(f"load average: {os.getloadavg()}", flush=True)
    for i, what in enumerate(("wall", "cpu")):
        r = {k: v[i] for k, v in ratios.items()}
        print(f"\n== speed-up vs PyHessian's default top-1 by state ({what} time): "
              f"{', '.join(f'{k}: {v:.2f}x' for k, v in r.items())}; median over states "
              f"{statistics.median(r.values()):.2f}x, min {min(r.values()):.2f}x")
    if args.trace and "bench" in states:
        trace_and_density(*states["bench"], args.seeds, args.probes)
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
