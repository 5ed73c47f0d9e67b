"""Loss-landscape strategies for chain models (Linear layers and element-wise activations).

For ``wb.models.MLP`` without norm layers, or such an ``nn.Sequential`` (``_chain.Chain``), with a
method that has ``loss_from_outputs``, three tricks make a grid point cost a handful of ops:

* the first layer is linear in the parameters, so its pre-activations at every point are
  ``X W1ᵀ + b1 + Σ_j c_j (X D1jᵀ + e1j)``: the ``k + 1`` products are computed once per sample
  block (``ChainPlan.first_layer``) and each point only pays one ``(n·F1, k+1) @ c`` combination;
* every later layer's ``[W, b]`` at a point is ``c @ P`` for one stacked matrix ``P`` (k+1,
  n_all) of the origin and the directions: one small product gives all of a point's weights;
* the loss and metrics of a stack of points' outputs are computed together: through the
  method's declared form (``CrossEntropyOnLogits.batched`` on (m, C, n) logits: PyTorch's CPU
  log-softmax over a last dimension of ~10 classes ran ~30x slower than the same reduction over
  a non-innermost one here) when it declares one, else ``vmap`` of ``loss_from_outputs``.

Strategies: ``ChainLoop`` (``"mlp-loop"``) runs one point at a time through pre-allocated
buffers (its GEMMs are the work); with ``torch.get_num_threads() > 1`` on a CPU the grid is split
over that many Python threads, each running single-threaded kernels (``split_over_threads``: no
OpenMP barrier per op, so a core taken by another process slows one worker instead of stalling
every op). ``ChainBatched`` (``"mlp-batched"``) forms K points' weights in one GEMM and runs
batched matmuls; with K left open (``"auto"`` on a GPU, where a per-point loop is launch-bound)
``tune_chunk`` times K = 16, 64, 256 on the first grid points (part of the result) and keeps
the fastest. Measured on this project's 2-core CPU (26k-parameter MLP, 64 to 1797 samples) the
loop was faster at every size, so ``"auto"`` uses it on a CPU.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import torch
from torch.func import functional_call, vmap

from ..methods.base import CrossEntropyOnLogits
from ._chain import Activation, Chain, Flatten, Linear
from ._functional import declared_loss_form
from ._grid_generic import GridProblem


class ChainPlan:
    """The stacked weights of a chain for a set of directions (shared by the chain strategies).

    ``first``: (W (k+1, F1, in), b (k+1, F1) or None) when the chain starts with a Linear (after
    Flattens), else None; ``P`` (k+1, n_all): every later layer's [W, b] per origin/direction;
    ``layout``: per later Linear (weight offset, out, in, bias offset or None) into a row of P.
    """

    def __init__(self, pb: GridProblem, chain: Chain):
        self.chain = chain
        stacks = []  # (k+1, out, in), (k+1, out) per Linear: [origin; directions]
        for op in chain.linears:
            w = torch.stack([pb.origin[op.weight]] + [d[op.weight] for d in pb.dirs])
            b = None if op.bias is None else torch.stack([pb.origin[op.bias]] + [d[op.bias] for d in pb.dirs])
            stacks.append((w, b))
        self.widths = [w.shape[1] for w, _ in stacks]
        self.n_out = stacks[-1][0].shape[1]
        # the first-layer trick applies when the chain starts with (Flatten,) Linear
        self.start = next(i for i, op in enumerate(chain.ops) if not isinstance(op, Flatten))
        self.first = stacks[0] if isinstance(chain.ops[self.start], Linear) else None
        cols, self.layout, off = [], [], 0
        for w, b in stacks[1:] if self.first is not None else stacks:
            kp1, fo, fi = w.shape
            cols.append(w.reshape(kp1, -1))
            woff, off = off, off + fo * fi
            boff = None
            if b is not None:
                cols.append(b)
                boff, off = off, off + fo
            self.layout.append((woff, fo, fi, boff))
        self.P = torch.cat(cols, 1).contiguous()  # (k+1, n_all)

    def first_layer(self, xb):
        """(h0: the flattened input (n, in), Z: (k+1, n, F1) first-layer pre-activations or None,
        index of the first op still to run)."""
        h = xb
        for _ in range(self.start):
            h = h.reshape(h.shape[0], -1)
        if self.first is None:
            return h, None, self.start
        w, b = self.first
        kp1, fo, fi = w.shape
        z = (h @ w.reshape(kp1 * fo, fi).t()).view(h.shape[0], kp1, fo).transpose(0, 1)  # (k+1, n, F1)
        if b is not None:
            z = z + b[:, None, :]
        return h, z.contiguous(), self.start + 1


def declared_ce(pb: GridProblem, chain: Chain) -> CrossEntropyOnLogits | None:
    """The method's declared cross-entropy form when it reproduces ``loss_from_outputs`` and the
    accuracy on the first 64 samples at the origin (else None: the generic vmapped loss is used)."""
    form = declared_loss_form(pb.method)
    if not isinstance(form, CrossEntropyOnLogits) or not pb.is_logits or pb.y.dtype != torch.int64:
        return None
    last = max(i for i, op in enumerate(chain.ops) if isinstance(op, Linear))
    if any(isinstance(op, Flatten) for op in chain.ops[last:]):
        return None
    xb, yb = pb.x[:64], pb.y[:64]
    with torch.no_grad():
        out = functional_call(pb.work, {**pb.origin, **pb.buffers}, (xb,))
        got, correct = form.batched(out.t().contiguous()[None], yb, class_dim=-2, with_correct=True)
        ok = torch.allclose(got[0], pb.lfo(out, yb), rtol=1e-5, atol=1e-6)
    return form if ok and int(correct[0]) == int((out.argmax(1) == yb).sum()) else None


class _ChainStrategy:
    """Shared by the chain strategies: the plan, the loss/metric reductions, the sample blocks."""

    def __init__(self, pb: GridProblem, chain: Chain):
        self.pb, self.chain = pb, chain
        self.plan = ChainPlan(pb, chain)
        self.ce = declared_ce(pb, chain)
        # vmapped loss and metrics, created here: the loop's worker threads share them
        self.vlfo = vmap(pb.lfo, in_dims=(0, None))
        self.vmets = {name: vmap(f, in_dims=(0, None)) for name, f in pb.user_metrics.items()}
        self.timings: dict[str, float] = {}

    def reduce(self, logits, yb, sink, class_first: bool):
        """Loss and metrics of a stack of points' outputs: (m, C, n) through the declared CE form
        (``class_first``), else (m, n, C) through the vmapped ``loss_from_outputs``."""
        pb = self.pb
        if class_first:
            loss, correct = self.ce.batched(logits, yb, class_dim=-2, with_correct=True)
            sink.setdefault("loss", []).append(loss)
            if pb.want_acc:
                sink.setdefault("acc", []).append(correct)
            for name, f in self.vmets.items():
                sink.setdefault(name, []).append(f(logits.transpose(1, 2), yb))
            return
        try:
            sink.setdefault("loss", []).append(self.vlfo(logits, yb))
        except Exception:  # a loss that vmap cannot batch: one call per point
            sink.setdefault("loss", []).append(torch.stack([pb.lfo(o, yb) for o in logits]))
        if pb.want_acc:
            sink.setdefault("acc", []).append((logits.argmax(-1) == yb).sum(-1))
        for name, f in self.vmets.items():
            try:
                sink.setdefault(name, []).append(f(logits, yb))
            except Exception:
                sink.setdefault(name, []).append(
                    torch.stack([torch.as_tensor(pb.user_metrics[name](o, yb)) for o in logits]))

    def evaluate(self, coeffs: torch.Tensor) -> dict[str, torch.Tensor]:
        pb = self.pb
        G = coeffs.shape[0]
        # memory per sample: Z (k+1)*F1 + two activation buffers of the widest layer
        widths = self.plan.widths
        per_sample = 4.0 * ((pb.k + 1) * widths[0] + 2 * max(widths) + 64 * self.plan.n_out)
        totals = {n: torch.zeros(G, dtype=torch.float64, device=pb.device) for n in ["loss", *pb.metric_names]}
        blocks = list(pb.blocks(per_sample))
        c1 = torch.cat([torch.ones(G, 1, dtype=coeffs.dtype), coeffs], 1)
        cdev = c1.to(pb.device, self.plan.P.dtype)  # (G, k+1): (1, c_1, ..., c_k)
        for xb, yb in blocks:
            h0, z, start = self.plan.first_layer(xb)
            parts = self.points(h0, z, start, yb, cdev, single_block=len(blocks) == 1)
            for name, v in parts.items():
                totals[name] += v.double() * (1.0 if name == "acc" else xb.shape[0] / pb.n)
        if "acc" in totals:
            totals["acc"] /= pb.n
        return totals

    def kmax(self, n: int) -> int:
        """Points per batched call that fit the memory budget for a block of n samples."""
        per_point_bytes = 4.0 * (2 * n * max(self.plan.widths) + self.plan.P.shape[1])
        return int(max(1, min(256, self.pb.memory // max(1.0, per_point_bytes))))


class ChainLoop(_ChainStrategy):
    """One grid point at a time; on a multi-threaded CPU the grid is split over worker threads."""

    name = "mlp-loop"

    def describe(self) -> str:
        return self.name

    def points(self, h0, z, start, yb, cdev, single_block: bool):
        workers = torch.get_num_threads() if self.pb.device.type == "cpu" else 1
        if workers > 1 and cdev.shape[0] >= 16 * workers:
            return split_over_threads(lambda part: self.loop(h0, z, start, yb, part), cdev, workers)
        return self.loop(h0, z, start, yb, cdev)

    def loop(self, h0, z, start, yb, cdev):
        """Per point: one product for all its weights, one for its first-layer pre-activations,
        then the GEMMs into pre-allocated buffers; the loss and metrics of up to ``chunk``
        points at a time (vectorised), no host sync."""
        plan, n = self.plan, h0.shape[0]
        dev, dt = h0.device, h0.dtype
        wbuf = torch.empty(plan.P.shape[1], device=dev, dtype=dt)
        Pt = plan.P.t()
        views = [(wbuf[wo : wo + fo * fi].view(fo, fi), None if bo is None else wbuf[bo : bo + fo])
                 for wo, fo, fi, bo in plan.layout]
        hbuf = [torch.empty(n, fo, device=dev, dtype=dt) for _, fo, _, _ in plan.layout]
        n_lin = len(plan.layout)
        chunk = int(max(1, min(cdev.shape[0], (4 * 2**20) // max(1, 4 * n * plan.n_out))))
        fast = self.ce is not None
        lbuf = torch.empty(chunk, *((plan.n_out, n) if fast else (n, plan.n_out)), device=dev, dtype=dt)
        if z is not None:
            zt = z.view(z.shape[0], -1).t()  # (n*F1, k+1)
            zbuf = torch.empty(zt.shape[0], device=dev, dtype=dt)
            zview = zbuf.view(n, z.shape[2])
        sink: dict[str, list] = {}
        slot = 0
        rows = cdev.unbind(0)
        for g, c in enumerate(rows):
            torch.mv(Pt, c, out=wbuf)  # the point's weights for every later layer
            if z is not None:
                torch.mv(zt, c, out=zbuf)  # its first-layer pre-activations
                h = zview
            else:
                h = h0.clone()  # activations work in place
            li = 0
            for op in self.chain.ops[start:]:
                if isinstance(op, Activation):
                    h = op.fn_(h)
                elif isinstance(op, Flatten):
                    h = h.reshape(n, -1)
                else:
                    w, b = views[li]
                    out = lbuf[slot] if li == n_lin - 1 else hbuf[li]
                    if li == n_lin - 1 and fast:  # logits as (C, n): W @ hᵀ (+ b)
                        h = torch.addmm(b[:, None], w, h.t(), out=out) if b is not None else torch.mm(w, h.t(), out=out)
                    else:
                        h = torch.addmm(b, h, w.t(), out=out) if b is not None else torch.mm(h, w.t(), out=out)
                    li += 1
            if h.data_ptr() != lbuf[slot].data_ptr():  # an activation after the last layer
                lbuf[slot].copy_(h)
            slot += 1
            if slot == chunk or g == len(rows) - 1:
                self.reduce(lbuf[:slot], yb, sink, class_first=fast)
                slot = 0
        return {k_: torch.cat(v) for k_, v in sink.items()}


class ChainBatched(_ChainStrategy):
    """K grid points per call: their weights by one GEMM, then batched matmuls. ``k=None``: K
    chosen by ``tune_chunk`` on the first points of a single-block grid (accelerators)."""

    def __init__(self, pb: GridProblem, chain: Chain, k: int | None = None):
        super().__init__(pb, chain)
        self.k_requested = k
        self.chosen = "mlp-batched" if k is None else f"mlp-batched (K={k})"

    def describe(self) -> str:
        return self.chosen

    def points(self, h0, z, start, yb, cdev, single_block: bool):
        G, n = cdev.shape[0], h0.shape[0]
        kmax = self.kmax(n)
        if self.k_requested is not None:
            self.chosen = f"mlp-batched (K={min(kmax, self.k_requested)})"
            return self.batched(h0, z, start, yb, cdev, min(kmax, self.k_requested))
        cands = [k for k in (16, 64, 256) if k <= kmax] or [1]
        if not (single_block and G >= 160 and len(cands) > 1):
            self.chosen = f"mlp-batched (K={cands[-1]})"
            return self.batched(h0, z, start, yb, cdev, cands[-1])
        best, self.timings, outs, pos = tune_chunk(
            cands, lambda K, part: self.batched(h0, z, start, yb, part, K), cdev, self.pb.device)
        self.chosen = f"mlp-batched (K={best})"
        if pos < G:
            for k_, v in self.batched(h0, z, start, yb, cdev[pos:], best).items():
                outs.setdefault(k_, []).append(v)
        return {k_: torch.cat(v) for k_, v in outs.items()}

    def batched(self, h0, z, start, yb, cdev, K):
        plan, n, G = self.plan, h0.shape[0], cdev.shape[0]
        zf = None if z is None else z.reshape(z.shape[0], -1)  # (k+1, n*F1)
        sink: dict[str, list] = {}
        for s in range(0, G, K):
            c = cdev[s : s + K]
            kk = c.shape[0]
            wall = c @ plan.P  # (kk, n_all)
            h = (c @ zf).view(kk, n, -1) if zf is not None else h0.unsqueeze(0).expand(kk, *h0.shape).clone()
            li = 0
            for op in self.chain.ops[start:]:
                if isinstance(op, Activation):
                    h = op.fn_(h)
                elif isinstance(op, Flatten):
                    h = h.reshape(kk, n, -1)
                else:
                    wo, fo, fi, bo = plan.layout[li]
                    wg = wall[:, wo : wo + fo * fi].view(kk, fo, fi).transpose(1, 2)  # (kk, in, out)
                    h = torch.baddbmm(wall[:, bo : bo + fo].unsqueeze(1), h, wg) if bo is not None else torch.bmm(h, wg)
                    li += 1
            self.reduce(h, yb, sink, class_first=False)
        return {k_: torch.cat(v) for k_, v in sink.items()}


# ----------------------------------------------------------------------------- named helpers
def split_over_threads(fn, cdev: torch.Tensor, workers: int) -> dict[str, torch.Tensor]:
    """``fn`` on ``workers`` consecutive shares of the grid rows, in Python threads, each with
    single-threaded kernels (torch releases the GIL inside ops); torch's thread setting is
    restored afterwards. The shares' results are concatenated in grid order."""
    G = cdev.shape[0]
    bounds = [round(i * G / workers) for i in range(workers + 1)]
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(workers) as ex:
            parts = list(ex.map(lambda i: fn(cdev[bounds[i] : bounds[i + 1]]), range(workers)))
    finally:
        torch.set_num_threads(old)
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def tune_chunk(cands: list[int], run, cdev: torch.Tensor, device: torch.device):
    """Time ``run(K, points)`` for each candidate K on the first grid points, in two interleaved
    rounds (the points' results are kept, nothing is wasted); returns (best K, seconds per point
    by candidate, the results so far as lists per key, the index of the first point not done)."""

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    G, pos = cdev.shape[0], 0
    trials: dict[int, float] = {}
    outs: dict[str, list] = {}
    for _round in range(2):
        for K in cands:
            if pos + K > G:
                break
            sync()
            t = time.perf_counter()
            part = run(K, cdev[pos : pos + K])
            sync()
            trials[K] = min((time.perf_counter() - t) / K, trials.get(K, float("inf")))
            for k_, v in part.items():
                outs.setdefault(k_, []).append(v)
            pos += K
    best = min(trials, key=trials.get) if trials else cands[-1]
    return best, {f"mlp-batched K={K}": s for K, s in trials.items()}, outs, pos
