"""The evaluator behind loss landscapes: loss (and metrics) at ``origin + sum_j c_j d_j`` for
every row ``c`` of a coefficient matrix, without touching the user's model.

Three evaluators, chosen per situation (``evaluator="auto"``):

* ``"mlp"`` — for chains of Linear layers and element-wise activations (``wb.models.MLP`` without
  normalisation layers, or an ``nn.Sequential`` of Linear/activation/Dropout/Flatten) with a
  method that has ``loss_from_outputs``. Three tricks:
  - the first layer is linear in the parameters, so its pre-activations at every grid point are
    ``X W1ᵀ + b1 + sum_j c_j (X D1jᵀ + e1j)``: the ``k + 1`` products are computed once per
    sample block and each point only pays one ``(n·F1, k+1) @ c`` combination;
  - every later layer's ``[W, b]`` at a point is ``P @ c`` for one stacked matrix ``P`` of the
    origin and the directions: one small product gives all of a point's weights;
  - the loss and metrics of up to a few MiB of points' outputs are computed together (``vmap``
    of ``loss_from_outputs``), not once per point.
  ``"mlp-loop"`` runs one point at a time through pre-allocated buffers (a handful of ops per
  point, its GEMMs are the work); ``"mlp-batched"`` forms K points' weights in one GEMM and
  runs batched matmuls. Measured here (2-core AVX-512 CPU, 26k-parameter MLP, 64 to 1797
  samples) the loop was faster at every size, so ``"auto"`` uses it on a CPU — and with
  ``torch.get_num_threads() > 1`` it splits the grid over that many Python worker threads, each
  running single-threaded kernels (no OpenMP barrier per op: multi-threaded per-point loops
  collapse when another process takes a core, split grids just slow down); on a GPU,
  where a per-point loop is launch-bound, ``"auto"`` times K = 16, 64, 256 on the first grid
  points (part of the result, nothing wasted) and keeps the fastest. The model's forward is
  checked against this chain at the origin; a mismatch falls back.
* ``"vmap"`` — ``torch.func.vmap`` over ``functional_call`` for ``K`` points per call, ``K`` sized
  to the memory budget. The default on a GPU for other models.
* ``"loop"`` — one ``functional_call`` per point, all results kept as tensors (no ``.item()``
  per point, one transfer at the end). The default on a CPU for other models (measured here a
  naive vmap was ~3x slower than this on a CPU), and the only choice for methods without
  ``loss_from_outputs``, whose ``loss(model, batch)`` is called on the reparametrised copy.

Every evaluator computes each point from the origin (no in-place walk, so no drift), in eval
mode on a deep copy; the loss is the sample-weighted mean over sample blocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from ._functional import check_method, functional_copy, param_dict

EVALUATORS = ("auto", "mlp", "mlp-loop", "mlp-batched", "vmap", "loop")


# ----------------------------------------------------------------------------- chain detection
def _activation(mod: nn.Module):
    """(in-place fn for evaluation, pure fn, piecewise-linear?, derivative fn or None) or None.
    The derivative (of the pure fn, element-wise) is given where it is cheap to write down;
    curvature code differentiates the pure fn with ``torch.func`` otherwise."""
    if isinstance(mod, nn.ReLU):
        return (lambda h: h.relu_()), F.relu, True, (lambda a: (a > 0).to(a.dtype))
    if isinstance(mod, nn.LeakyReLU):
        s = mod.negative_slope
        return ((lambda h: F.leaky_relu_(h, s)), (lambda h: F.leaky_relu(h, s)), True,
                (lambda a: torch.where(a > 0, torch.ones_like(a), torch.full_like(a, s))))
    if isinstance(mod, nn.GELU):
        a = mod.approximate
        f = lambda h: F.gelu(h, approximate=a)  # noqa: E731
        return f, f, False, None
    if isinstance(mod, nn.SiLU):
        return (lambda h: F.silu(h, inplace=True)), F.silu, False, None
    if isinstance(mod, nn.Tanh):
        return (lambda h: h.tanh_()), torch.tanh, False, (lambda a: 1 - torch.tanh(a) ** 2)
    if isinstance(mod, nn.Sigmoid):
        return (lambda h: h.sigmoid_()), torch.sigmoid, False, (lambda a: torch.sigmoid(a) * (1 - torch.sigmoid(a)))
    if isinstance(mod, (nn.Identity, nn.Dropout)):
        return (lambda h: h), (lambda h: h), True, (lambda a: torch.ones_like(a))
    return None


def linear_chain(work: nn.Module):
    """The model as a list of ops ``("linear", weight_name, bias_name) | ("act", fn_inplace,
    fn_pure, piecewise_linear, derivative) | ("flatten",)``, or None when it is not such a chain (the
    caller checks it against the model's forward)."""
    from ..models import MLP

    names = {id(m): n for n, m in work.named_modules()}
    if isinstance(work, MLP):
        mods = [("flatten",), *list(work.body), work.fc]
    elif isinstance(work, nn.Sequential):
        mods = list(work)
    else:
        return None
    ops: list = []

    def add(m):
        if isinstance(m, tuple):
            ops.append(m)
        elif isinstance(m, nn.Sequential):
            for c in m:
                add(c)
        elif isinstance(m, nn.Linear):
            n = names[id(m)]
            ops.append(("linear", f"{n}.weight", None if m.bias is None else f"{n}.bias"))
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise _NotChain
            ops.append(("flatten",))
        else:
            f = _activation(m)
            if f is None:
                raise _NotChain
            ops.append(("act", *f))

    try:
        for m in mods:
            add(m)
    except _NotChain:
        return None
    if not any(op[0] == "linear" for op in ops):
        return None
    return ops


class _NotChain(Exception):
    pass


def chain_matches(work: nn.Module, chain, state: dict, xb: torch.Tensor) -> bool:
    """Whether running ``chain`` with ``state`` gives the model's own output on ``xb``."""
    with torch.no_grad():
        ref = functional_call(work, state, (xb,))
        h = xb
        for op in chain:
            if op[0] == "flatten":
                h = h.reshape(h.shape[0], -1)
            elif op[0] == "linear":
                h = F.linear(h, state[op[1]], None if op[2] is None else state[op[2]])
            else:
                h = op[1](h.clone())
    return h.shape == ref.shape and torch.allclose(h, ref, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- the evaluator
class GridEvaluator:
    """Loss and metrics at ``origin + C @ directions`` for a coefficient matrix ``C`` (G, k).

    ``metrics``: dict name -> ``fn(outputs, y) -> 0-d tensor`` (a mean over the samples); the
    accuracy ``"acc"`` is added for classifiers' logits when labels exist. ``buffer_directions``
    (generic evaluators only) moves floating-point buffers along with the parameters (used to
    interpolate BatchNorm statistics between two models).
    """

    def __init__(
        self,
        model: nn.Module,
        method,
        x: torch.Tensor,
        y: torch.Tensor | None,
        directions: list[dict[str, torch.Tensor]],
        *,
        origin: dict[str, torch.Tensor] | None = None,
        buffer_origin: dict[str, torch.Tensor] | None = None,
        buffer_directions: list[dict[str, torch.Tensor]] | None = None,
        metrics: dict[str, Callable] | None = None,
        evaluator: str = "auto",
        memory_mb: float = 256.0,
        batch_size: int | None = None,
    ):
        if evaluator not in EVALUATORS:
            raise ValueError(f"unknown evaluator {evaluator!r}; valid: {', '.join(EVALUATORS)}")
        if not (isinstance(memory_mb, (int, float)) and memory_mb > 0):
            raise ValueError(f"memory_mb must be a positive number, got {memory_mb!r}")
        self.method = check_method(method)
        self.work = functional_copy(model)
        self.x, self.y = x, y
        self.n = int(x.shape[0])
        self.device = x.device
        self.origin = param_dict(self.work) if origin is None else origin
        self.names = list(self.origin)
        self.dirs = directions
        self.k = len(directions)
        self.buffers = {k: v.detach() for k, v in self.work.named_buffers()}
        if buffer_origin is not None:
            self.buffers = {**self.buffers, **buffer_origin}
        self.bdirs = buffer_directions
        self.memory = float(memory_mb) * 2**20
        self.user_metrics = dict(metrics or {})
        for k_, f in self.user_metrics.items():
            if not callable(f):
                raise TypeError(f"metrics[{k_!r}] must be a function (outputs, y) -> scalar tensor")
        self.lfo = getattr(self.method, "loss_from_outputs", None)
        if not callable(self.lfo):
            self.lfo = None
        self.requested = evaluator
        self.batch_size = batch_size
        self.chain = None
        self.note = ""
        self._choose()

    # ------------------------------------------------------------------ choice
    def _probe_outputs(self) -> torch.Tensor:
        with torch.no_grad():
            return functional_call(self.work, {**self.origin, **self.buffers}, (self.x[:4],))

    def _choose(self):
        want = self.requested
        out = self._probe_outputs()
        self.is_logits = (
            self.y is not None and out.ndim == 2 and out.shape[1] > 1
            and self.y.dtype in (torch.int64, torch.int32)
        )
        self.want_acc = self.is_logits and "acc" not in self.user_metrics
        self.metric_names = (["acc"] if self.want_acc else []) + list(self.user_metrics)
        if self.lfo is None:
            if want in ("mlp", "mlp-loop", "mlp-batched", "vmap"):
                raise ValueError(
                    f"evaluator={want!r} needs a method with loss_from_outputs(outputs, y); "
                    f"{type(self.method).__name__} has none, so its loss(model, batch) is called "
                    "once per point: pass evaluator='loop' (or 'auto')"
                )
            self.kind = "loop"
            self.note = "method.loss per point (the method has no loss_from_outputs)"
            self._setup_method_loss()
            return
        if want in ("auto", "mlp", "mlp-loop", "mlp-batched"):
            chain = linear_chain(self.work) if self.bdirs is None else None
            if chain is not None and not self._chain_matches(chain):
                chain = None
                self.note = "the model's forward differs from its layer chain; generic evaluator used"
            if chain is None and want != "auto":
                raise ValueError(
                    f"evaluator={want!r} needs a chain of Linear layers and element-wise "
                    "activations (wb.models.MLP without norm layers, or such an nn.Sequential), "
                    "without buffer directions; pass evaluator='auto', 'vmap' or 'loop'"
                )
            if chain is not None:
                self.chain = chain
                self.kind = {"mlp": "mlp-auto", "auto": "mlp-auto"}.get(want, want)
                self._setup_chain()
                return
        if want == "auto":
            want = "vmap" if self.device.type == "cuda" else "loop"
        self.kind = want

    # ------------------------------------------------------------------ public
    @property
    def name(self) -> str:
        n = getattr(self, "chosen", self.kind)
        return n + (f" ({self.note})" if self.note else "")

    def __call__(self, coeffs: torch.Tensor) -> dict[str, torch.Tensor]:
        """coeffs: (G, k) -> {"loss": (G,), metric: (G,)} as float32 CPU tensors."""
        coeffs = torch.as_tensor(coeffs, dtype=torch.float64)
        if coeffs.ndim != 2 or coeffs.shape[1] != self.k:
            raise ValueError(f"coefficients must have shape (G, {self.k}), got {tuple(coeffs.shape)}")
        with torch.no_grad():
            if self.chain is not None:
                out = self._eval_chain(coeffs)
            elif self.kind == "vmap":
                out = self._eval_generic(coeffs, vectorised=True)
            elif self.lfo is None:
                out = self._eval_method_loss(coeffs)
            else:
                out = self._eval_generic(coeffs, vectorised=False)
        return {k: v.detach().float().cpu() for k, v in out.items()}

    # ------------------------------------------------------------------ sample blocks
    def _blocks(self, per_sample_bytes: float, fixed_bytes: float = 0.0):
        if self.batch_size is not None:
            b = int(self.batch_size)
        else:
            b = int(max(1.0, (self.memory - fixed_bytes)) // max(1.0, per_sample_bytes))
        b = max(1, min(self.n, b))
        for i in range(0, self.n, b):
            yield self.x[i : i + b], (None if self.y is None else self.y[i : i + b])

    # ------------------------------------------------------------------ mlp chain
    def _chain_matches(self, chain) -> bool:
        return chain_matches(self.work, chain, {**self.origin, **self.buffers}, self.x[:16])

    def _setup_chain(self):
        # stacks (k+1, out, in) of [origin; directions] per linear layer
        self.stacks = []
        for op in self.chain:
            if op[0] != "linear":
                continue
            w = torch.stack([self.origin[op[1]]] + [d[op[1]] for d in self.dirs])
            b = None
            if op[2] is not None:
                b = torch.stack([self.origin[op[2]]] + [d[op[2]] for d in self.dirs])
            self.stacks.append((w, b))
        self.widths = [w.shape[1] for w, _ in self.stacks]
        # the first-layer trick applies when the chain starts with (flatten,) linear
        first = next(i for i, op in enumerate(self.chain) if op[0] != "flatten")
        self.first_linear = self.chain[first][0] == "linear"
        # every later layer's [W, b] in one (k+1, n_all) matrix: a point's weights are ONE
        # product c @ P (c = (1, c_1..c_k)), written into one buffer that the layers view
        rest = self.stacks[1:] if self.first_linear else self.stacks
        cols, self.layout, off = [], [], 0
        for w, b in rest:
            kp1, fo, fi = w.shape
            cols.append(w.reshape(kp1, -1))
            woff = off
            off += fo * fi
            boff = None
            if b is not None:
                cols.append(b)
                boff = off
                off += fo
            self.layout.append((woff, fo, fi, boff))
        self.P = torch.cat(cols, 1).contiguous()  # (k+1, n_all)
        self.n_out = self.stacks[-1][0].shape[1]
        self.fast_ce = self._check_fast_ce()

    def _check_fast_ce(self) -> bool:
        """Whether the loss is workbench's CrossEntropy, computed here from (C, n) logits.

        PyTorch's CPU log_softmax over a last dimension of ~10 classes runs at a fraction of
        memory speed (measured: 12 ms for 58 x 1797 x 10 values, ~30x slower than the same
        reduction over a non-innermost dimension), which made the loss a fifth of a grid
        point's cost. With (C, n) logits the log-sum-exp is a reduction over dim 1. Checked
        against ``loss_from_outputs`` at the origin; any mismatch falls back.
        """
        from ..methods.cross_entropy import CrossEntropy

        m = self.method
        if not (isinstance(m, CrossEntropy) and type(m).loss_from_outputs is CrossEntropy.loss_from_outputs):
            return False
        if not self.is_logits or self.y.dtype != torch.int64:
            return False
        last = max(i for i, op in enumerate(self.chain) if op[0] == "linear")
        if any(op[0] == "flatten" for op in self.chain[last:]):
            return False
        self.ce_smoothing = float(m.label_smoothing)
        xb, yb = self.x[:64], self.y[:64]
        with torch.no_grad():
            out = functional_call(self.work, {**self.origin, **self.buffers}, (xb,))
            ref = self.lfo(out, yb)
            sink: dict[str, list] = {}
            self._ce_from_transposed(out.t().contiguous()[None], yb, sink)
            got = sink["loss"][0][0]
            acc_ref = (out.argmax(1) == yb).sum()
        return bool(torch.allclose(got, ref, rtol=1e-5, atol=1e-6)) and int(sink["acc"][0][0]) == int(acc_ref)

    def _ce_from_transposed(self, lt, yb, sink):
        """Cross-entropy (with label smoothing) and correct counts from logits (m, C, n)."""
        m, _, n = lt.shape
        mx = lt.amax(1, keepdim=True)  # (m, 1, n)
        lse = torch.sub(lt, mx).exp_().sum(1).log_().add_(mx[:, 0])  # (m, n)
        picked = lt.gather(1, yb.view(1, 1, n).expand(m, 1, n))[:, 0]  # (m, n)
        nll = lse - picked
        if self.ce_smoothing > 0:
            s = self.ce_smoothing
            loss = ((1 - s) * nll + s * (lse - lt.mean(1))).mean(1)
        else:
            loss = nll.mean(1)
        sink.setdefault("loss", []).append(loss)
        if self.want_acc:
            # correct when the label's logit is the largest (argmax would break exact ties by
            # the first index; an argmax over dim 1 costs ~60x more here)
            sink.setdefault("acc", []).append((picked >= mx[:, 0]).sum(1))
        if self.user_metrics:
            self._ensure_vmapped()
            for name, f in self._vmets.items():
                sink.setdefault(name, []).append(f(lt.transpose(1, 2), yb))

    def _chain_pre(self, xb):
        """Flattened input and, with the first-layer trick, Z: (k+1, n, F1) pre-activations."""
        h = xb
        i = 0
        while self.chain[i][0] == "flatten":
            h = h.reshape(h.shape[0], -1)
            i += 1
        if not self.first_linear:
            return h, None, i
        w, b = self.stacks[0]
        kp1, fo, fi = w.shape
        z = h @ w.reshape(kp1 * fo, fi).t()  # (n, (k+1)*F1)
        z = z.view(h.shape[0], kp1, fo).transpose(0, 1)
        if b is not None:
            z = z + b[:, None, :]
        return h, z.contiguous(), i + 1

    def _eval_chain(self, coeffs):
        G = coeffs.shape[0]
        # memory per sample: Z (k+1)*F1 + two activation buffers of the widest layer
        wmax = max(self.widths)
        per_sample = 4.0 * ((self.k + 1) * self.widths[0] + 2 * wmax + 64 * self.n_out)
        totals = {n: torch.zeros(G, dtype=torch.float64, device=self.device) for n in ["loss", *self.metric_names]}
        blocks = list(self._blocks(per_sample))
        c1 = torch.cat([torch.ones(G, 1, dtype=coeffs.dtype), coeffs], 1)
        cdev = c1.to(self.device, self.P.dtype)  # (G, k+1): (1, c_1, ..., c_k)
        single = len(blocks) == 1
        for xb, yb in blocks:
            h0, z, start = self._chain_pre(xb)
            nb = xb.shape[0]
            wgt = nb / self.n
            parts = self._run_chain(h0, z, start, yb, cdev, tune=single)
            for name, v in parts.items():
                totals[name] += v.double() * (1.0 if name == "acc" else wgt)
        if "acc" in totals:
            totals["acc"] /= self.n
        return totals

    def _run_chain(self, h0, z, start, yb, cdev, tune: bool):
        G = cdev.shape[0]
        kind = self.kind
        n = h0.shape[0]
        per_point_bytes = 4.0 * (2 * n * max(self.widths) + self.P.shape[1])
        kmax = int(max(1, min(256, self.memory // max(1.0, per_point_bytes))))
        cpu = self.device.type == "cpu"
        if kind == "mlp-loop":
            plan = [("loop", None)]
        elif kind == "mlp-batched":
            plan = [("batched", min(kmax, self._default_k(n)))]
        elif cpu:
            # measured on this project's CPU: the fused per-point loop beat K-point batches at
            # every evaluation-set size (64 to 1797 samples), so no trial is spent on them
            plan = [("loop", None)]
        else:  # accelerator: time candidate chunk sizes on the first points, keep the fastest
            cands = [("batched", k) for k in (16, 64, 256) if k <= kmax] or [("batched", 1)]
            plan = cands if (tune and G >= 160) else [cands[-1]]
        outs: dict[str, list] = {}
        pos = 0
        trials: dict = {}
        if len(plan) > 1:
            # two interleaved rounds over the candidates, on real grid points; keep the best time
            for _round in range(2):
                for cand in plan:
                    m = 8 if cand[0] == "loop" else cand[1]
                    if pos + m > G:
                        break
                    self._sync()
                    t = time.perf_counter()
                    part = self._chain_points(cand, h0, z, start, yb, cdev[pos : pos + m])
                    self._sync()
                    dt = (time.perf_counter() - t) / m
                    trials[cand] = min(dt, trials.get(cand, float("inf")))
                    for k_, v in part.items():
                        outs.setdefault(k_, []).append(v)
                    pos += m
        best = min(trials, key=trials.get) if trials else plan[0]
        self.chosen = "mlp-loop" if best[0] == "loop" else f"mlp-batched (K={best[1]})"
        self.timings = {("mlp-loop" if c[0] == "loop" else f"mlp-batched K={c[1]}"): s for c, s in trials.items()}
        if pos < G:
            part = self._chain_points(best, h0, z, start, yb, cdev[pos:])
            for k_, v in part.items():
                outs.setdefault(k_, []).append(v)
        return {k_: torch.cat(v) for k_, v in outs.items()}

    def _default_k(self, n: int) -> int:
        return 8 if self.device.type == "cpu" else 64

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _chain_points(self, cand, h0, z, start, yb, cdev):
        if cand[0] == "loop":
            workers = torch.get_num_threads() if self.device.type == "cpu" else 1
            if workers > 1 and cdev.shape[0] >= 16 * workers:
                return self._chain_loop_parallel(h0, z, start, yb, cdev, workers)
            return self._chain_loop(h0, z, start, yb, cdev)
        return self._chain_batched(h0, z, start, yb, cdev, cand[1])

    def _chain_loop_parallel(self, h0, z, start, yb, cdev, workers: int):
        """The per-point loop over ``workers`` Python threads, each on its own share of the
        grid with single-threaded kernels (torch releases the GIL inside ops). No OpenMP
        barrier per op: when another process takes a core, one worker slows down instead of
        every op of every point stalling (measured: multi-threaded per-point loops degraded
        up to 55x under contention here). torch's thread setting is restored afterwards."""
        from concurrent.futures import ThreadPoolExecutor

        G = cdev.shape[0]
        bounds = [round(i * G / workers) for i in range(workers + 1)]
        self._ensure_vmapped()  # shared by the workers: create it before they start
        old = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(workers) as ex:
                parts = list(ex.map(lambda i: self._chain_loop(h0, z, start, yb, cdev[bounds[i]:bounds[i + 1]]),
                                    range(workers)))
        finally:
            torch.set_num_threads(old)
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    def _ensure_vmapped(self):
        if not hasattr(self, "_vlfo"):
            self._vlfo = vmap(self.lfo, in_dims=(0, None))
            self._vmets = {name: vmap(f, in_dims=(0, None)) for name, f in self.user_metrics.items()}

    def _outputs_metrics(self, logits, yb, sink):
        """Loss and metrics of a stack of points' outputs (m, n, C), vectorised over m."""
        self._ensure_vmapped()
        try:
            sink.setdefault("loss", []).append(self._vlfo(logits, yb))
        except Exception:  # a loss that vmap cannot batch: one call per point
            sink.setdefault("loss", []).append(torch.stack([self.lfo(o, yb) for o in logits]))
        if self.want_acc:
            sink.setdefault("acc", []).append((logits.argmax(-1) == yb).sum(-1))
        for name, f in self._vmets.items():
            try:
                sink.setdefault(name, []).append(f(logits, yb))
            except Exception:
                sink.setdefault(name, []).append(torch.stack([torch.as_tensor(self.user_metrics[name](o, yb)) for o in logits]))

    def _chain_loop(self, h0, z, start, yb, cdev):
        """One point at a time: one product for all of the point's weights, one for its
        first-layer pre-activations, then the GEMMs into pre-allocated buffers; the loss and
        metrics of up to ``chunk`` points at a time (vectorised), no host sync."""
        n = h0.shape[0]
        dev, dt = h0.device, h0.dtype
        wbuf = torch.empty(self.P.shape[1], device=dev, dtype=dt)
        Pt = self.P.t()
        views = [(wbuf[wo : wo + fo * fi].view(fo, fi), None if bo is None else wbuf[bo : bo + fo])
                 for wo, fo, fi, bo in self.layout]
        hbuf = [torch.empty(n, fo, device=dev, dtype=dt) for _, fo, _, _ in self.layout]
        lin_total = len(self.layout)
        chunk = int(max(1, min(cdev.shape[0], (4 * 2**20) // max(1, 4 * n * self.n_out))))
        fast = self.fast_ce
        lbuf = torch.empty(chunk, *((self.n_out, n) if fast else (n, self.n_out)), device=dev, dtype=dt)
        if z is not None:
            kp1, _, f1 = z.shape
            zt = z.view(kp1, -1).t()  # (n*F1, k+1)
            zbuf = torch.empty(n * f1, device=dev, dtype=dt)
            zview = zbuf.view(n, f1)
        sink: dict[str, list] = {}
        slot = 0
        rows = cdev.unbind(0)
        last = len(rows) - 1
        for g, c in enumerate(rows):
            torch.mv(Pt, c, out=wbuf)
            if z is not None:
                torch.mv(zt, c, out=zbuf)
                h = zview
            else:
                h = h0.clone()  # activations work in place
            li = 0
            for op in self.chain[start:]:
                if op[0] == "act":
                    h = op[1](h)
                elif op[0] == "flatten":
                    h = h.reshape(n, -1)
                else:
                    w, b = views[li]
                    if li == lin_total - 1 and fast:  # logits as (C, n): W @ hᵀ (+ b)
                        out = lbuf[slot]
                        h = torch.addmm(b[:, None], w, h.t(), out=out) if b is not None else torch.mm(w, h.t(), out=out)
                    else:
                        out = lbuf[slot] if li == lin_total - 1 else hbuf[li]
                        h = torch.addmm(b, h, w.t(), out=out) if b is not None else torch.mm(h, w.t(), out=out)
                    li += 1
            if h.data_ptr() != lbuf[slot].data_ptr():  # an activation after the last layer
                lbuf[slot].copy_(h)
            slot += 1
            if slot == chunk or g == last:
                if fast:
                    self._ce_from_transposed(lbuf[:slot], yb, sink)
                else:
                    self._outputs_metrics(lbuf[:slot], yb, sink)
                slot = 0
        return {k_: torch.cat(v) for k_, v in sink.items()}

    def _chain_batched(self, h0, z, start, yb, cdev, K):
        """K points per call: all their weights by one GEMM, then batched matmuls."""
        n = h0.shape[0]
        G = cdev.shape[0]
        zf = None if z is None else z.reshape(z.shape[0], -1)
        sink: dict[str, list] = {}
        for s in range(0, G, K):
            c = cdev[s : s + K]
            kk = c.shape[0]
            wall = c @ self.P  # (kk, n_all)
            if zf is not None:
                h = (c @ zf).view(kk, n, -1)
            else:
                h = h0.unsqueeze(0).expand(kk, *h0.shape).clone()
            li = 0
            for op in self.chain[start:]:
                if op[0] == "act":
                    h = op[1](h)
                elif op[0] == "flatten":
                    h = h.reshape(kk, n, -1)
                else:
                    wo, fo, fi, bo = self.layout[li]
                    wg = wall[:, wo : wo + fo * fi].view(kk, fo, fi).transpose(1, 2)
                    if bo is not None:
                        h = torch.baddbmm(wall[:, bo : bo + fo].unsqueeze(1), h, wg)
                    else:
                        h = torch.bmm(h, wg)
                    li += 1
            self._outputs_metrics(h, yb, sink)
        return {k_: torch.cat(v) for k_, v in sink.items()}

    # ------------------------------------------------------------------ generic
    def _point_state(self, c: torch.Tensor) -> dict[str, torch.Tensor]:
        """Parameters (and buffers) at coefficients c (k,), built from the origin."""
        state = {}
        for name in self.names:
            v = self.origin[name]
            for j in range(self.k):
                v = v + c[j] * self.dirs[j][name]
            state[name] = v
        bufs = dict(self.buffers)
        if self.bdirs is not None:
            for name, b in self.buffers.items():
                if b.is_floating_point():
                    v = b
                    for j in range(self.k):
                        if name in self.bdirs[j]:
                            v = v + c[j] * self.bdirs[j][name]
                    bufs[name] = v
        state.update(bufs)
        return state

    def _activation_floats(self) -> float:
        """Floats of activations per sample (summed over leaf modules, from a 2-sample probe)."""
        total = [0]
        hooks = []

        def hook(_m, _i, o):
            if isinstance(o, torch.Tensor):
                total[0] += o.numel()

        for m in self.work.modules():
            if len(list(m.children())) == 0:
                hooks.append(m.register_forward_hook(hook))
        try:
            self._probe_outputs()
        finally:
            for h in hooks:
                h.remove()
        return max(1.0, total[0] / min(4, self.n)) + self.x[0].numel()

    def _eval_generic(self, coeffs, vectorised: bool):
        G = coeffs.shape[0]
        per_sample = 4.0 * self._activation_floats() * 2
        n_params = sum(v.numel() for v in self.origin.values())
        # one point's activations for a block must fit; vmap multiplies by K
        blocks = list(self._blocks(per_sample, 4.0 * n_params * (self.k + 2)))
        totals = {n: torch.zeros(G, dtype=torch.float64, device=self.device) for n in ["loss", *self.metric_names]}
        cdev = coeffs.to(self.device, next(iter(self.origin.values())).dtype)
        lfo = self.lfo

        def point(c, xb, yb):
            out = functional_call(self.work, self._point_state(c), (xb,))
            vals = [lfo(out, yb)]
            if self.want_acc:
                vals.append((out.argmax(-1) == yb).sum().to(out.dtype))
            for f in self.user_metrics.values():
                vals.append(torch.as_tensor(f(out, yb)).to(out.dtype))
            return torch.stack(vals)

        names = ["loss", *self.metric_names]
        for xb, yb in blocks:
            nb = xb.shape[0]
            if vectorised:
                per_point = per_sample * nb + 4.0 * n_params
                K = int(max(1, min(G, self.memory // max(1.0, per_point))))
                self.chosen = f"vmap (K={K})"
                f = vmap(point, in_dims=(0, None, None))
                res = torch.cat([f(cdev[s : s + K], xb, yb) for s in range(0, G, K)])
            else:
                self.chosen = "loop"
                res = torch.stack([point(cdev[g], xb, yb) for g in range(G)])
            for i, name in enumerate(names):
                totals[name] += res[:, i].double() * (1.0 if name == "acc" else nb / self.n)
        if "acc" in totals:
            totals["acc"] /= self.n
        return totals

    # ------------------------------------------------------------------ method.loss
    def _setup_method_loss(self):
        from ._functional import _MethodLoss

        self.method_copy = functional_copy(self.method)
        self.wrapper = _MethodLoss(self.work, self.method_copy)

    def _eval_method_loss(self, coeffs):
        G = coeffs.shape[0]
        per_sample = 4.0 * self._activation_floats() * 4
        blocks = list(self._blocks(per_sample))
        cdev = coeffs.to(self.device, next(iter(self.origin.values())).dtype)
        sums: dict[str, list] = {}
        counts = torch.zeros((), dtype=torch.float64)
        self.chosen = "loop"
        for xb, yb in blocks:
            nb = xb.shape[0]
            rows = []
            for g in range(G):
                state = {f"model.{k}": v for k, v in self._point_state(cdev[g]).items()}
                loss, logs = functional_call(self.wrapper, state, (xb, yb))
                vals = {"loss": loss}
                for k, v in logs.items():
                    if isinstance(v, (int, float)) or (isinstance(v, torch.Tensor) and v.numel() == 1):
                        vals[k] = torch.as_tensor(v, device=self.device, dtype=torch.float64).reshape(())
                if self.user_metrics:
                    out = functional_call(self.work, self._point_state(cdev[g]), (xb,))
                    for name, f in self.user_metrics.items():
                        vals[name] = torch.as_tensor(f(out, yb))
                rows.append(vals)
            keys = list(rows[0])
            for key in keys:
                col = torch.stack([r[key].double().reshape(()) for r in rows]) * nb
                sums[key] = sums.get(key, 0) + col
            counts += nb
        self.metric_names = [k for k in sums if k != "loss"]
        return {k: v / counts for k, v in sums.items()}


# ----------------------------------------------------------------------------- explicit points
def evaluate_states(model, method, x, y, states: list[dict[str, torch.Tensor]], *, batch_size: int | None = None):
    """Loss (and accuracy for logits) of the model at full state dicts (parameters and,
    where present, buffers): e.g. the snapshots of a fit. Returns {"loss": (S,), "acc": (S,)}."""
    method = check_method(method)
    work = functional_copy(model)
    base = {**param_dict(work), **{k: v.detach() for k, v in work.named_buffers()}}
    lfo = getattr(method, "loss_from_outputs", None)
    n = x.shape[0]
    bs = n if batch_size is None else max(1, min(n, batch_size))
    losses, accs = [], []
    wrapper = None
    if not callable(lfo):
        from ._functional import _MethodLoss

        wrapper = _MethodLoss(work, functional_copy(method))
    with torch.no_grad():
        for st in states:
            state = dict(base)
            for k, v in st.items():
                if k in state:
                    state[k] = v.to(device=state[k].device, dtype=state[k].dtype)
            tot = torch.zeros((), dtype=torch.float64, device=x.device)
            correct = torch.zeros((), dtype=torch.float64, device=x.device)
            have_acc = False
            for i in range(0, n, bs):
                xb = x[i : i + bs]
                yb = None if y is None else y[i : i + bs]
                if callable(lfo):
                    out = functional_call(work, state, (xb,))
                    tot += lfo(out, yb).double() * xb.shape[0]
                else:
                    l_, _ = functional_call(wrapper, {f"model.{k}": v for k, v in state.items()}, (xb, yb))
                    tot += l_.double() * xb.shape[0]
                    out = functional_call(work, state, (xb,))
                if yb is not None and out.ndim == 2 and out.shape[1] > 1:
                    correct += (out.argmax(1) == yb).sum()
                    have_acc = True
            losses.append(tot / n)
            accs.append(correct / n if have_acc else torch.full((), float("nan"), dtype=torch.float64))
    return {"loss": torch.stack(losses).float().cpu(), "acc": torch.stack(accs).float().cpu()}
