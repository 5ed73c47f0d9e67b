"""Landscapes and curvature on networks the workbench did not write (issue 13).

Every entry point (slices, interpolation, training paths, hvp, Hessian eigenvalues / trace /
density, sharpness) runs on a ResNet-style network (residual blocks, BatchNorm), a ViT-style
network (attention, LayerNorm, dropout) and ``wb.models.ConvNet(norm="batch")``, with exact
oracles: a slice's centre is the plain eval-mode loss, a slice point is the loss of a manually
perturbed copy, HVPs match ``torch.func.hessian`` on a tiny residual conv net with BatchNorm (in
both BatchNorm modes); the user's module comes back bit-identical and in its own (mixed) mode.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from zoo import TinyResNet, TinyViT

import workbench as wb
from workbench._modes import eval_mode
from workbench.analyses import _grid_folded as GF
from workbench.analyses._landscape_engine import GridEvaluator

CE = wb.methods.CrossEntropy()
BNS = (nn.modules.batchnorm._BatchNorm,)


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def digits():
    ds = wb.data.load("digits")
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(ds.x), generator=g)[:48]
    return wb.data.Dataset(ds.x[idx], ds.y[idx])


def _model(name):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if name == "resnet":
            return TinyResNet(width=4)
        if name == "vit":
            return TinyViT(dim=8, depth=1)
        return wb.models.ConvNet(norm="batch", width=8, feature_dim=16, seed=0)


@pytest.fixture(scope="module", params=["resnet", "vit", "convnet-bn"])
def net(request, digits):
    """A briefly trained model (non-trivial running statistics), left in a *mixed* mode: train
    mode with its first BatchNorm frozen in eval mode (a fine-tuning set-up), dropout active."""
    m = _model(request.param)
    wb.fit(m, CE, digits, steps=4, lr=1e-2, batch_size=16, seed=0, progress=False)
    m.train()
    bns = [b for b in m.modules() if isinstance(b, BNS)]
    if bns:
        bns[0].eval()
    for p in m.parameters():
        p.grad = None
    return request.param, m


def _snapshot(m):
    return ({k: v.detach().clone() for k, v in m.state_dict().items()},
            {k: mod.training for k, mod in m.named_modules()})


def _assert_untouched(m, snap):
    sd, modes = snap
    now = m.state_dict()
    assert list(now) == list(sd)
    for k, v in now.items():
        assert v.dtype == sd[k].dtype and torch.equal(v, sd[k]), k
    assert {k: mod.training for k, mod in m.named_modules()} == modes
    assert all(p.grad is None for p in m.parameters())


def _plain_loss(m, ds, state=None):
    """The eval-mode loss of an independent copy (optionally with a state dict loaded)."""
    work = copy.deepcopy(m)
    if state is not None:
        work.load_state_dict(state)
    with eval_mode(work), torch.no_grad():
        return float(F.cross_entropy(work(ds.x), ds.y))


def _batch_stats_loss(m, ds):
    """The loss with BatchNorm on batch statistics, dropout off: a copy whose BatchNorm layers
    track no running statistics (PyTorch then uses the batch's in eval mode too)."""
    work = copy.deepcopy(m)
    for b in work.modules():
        if isinstance(b, BNS):
            b.track_running_stats, b.running_mean, b.running_var = False, None, None
    with eval_mode(work), torch.no_grad():
        return float(F.cross_entropy(work(ds.x), ds.y))


def _perturbed_loss(m, ds, dirs, coeffs):
    work = copy.deepcopy(m)
    with torch.no_grad():
        for k, p in work.named_parameters():
            for c, d in zip(coeffs, dirs):
                p.add_(c * d[k])
    return _plain_loss(work, ds)


# ----------------------------------------------------------------------------- landscapes
def test_slices_centre_points_and_untouched(net, digits):
    name, m = net
    snap = _snapshot(m)
    land = wb.analyses.loss_slice_2d(m, CE, digits, span=0.5, steps=5, seed=1, bias="keep")
    line = wb.analyses.loss_slice_1d(m, CE, digits, span=0.5, steps=5, seed=1, bias="keep")
    _assert_untouched(m, snap)
    plain = _plain_loss(m, digits)
    assert land.origin_loss == pytest.approx(plain, rel=1e-5)
    assert float(land.loss[2, 2]) == pytest.approx(plain, rel=1e-5)  # dropout off: deterministic
    assert float(line.loss[2]) == pytest.approx(plain, rel=1e-5)
    d1, d2 = land.directions
    for i, j in ((0, 4), (3, 1), (4, 4)):
        a, b = float(land.alphas[i]), float(land.betas[j])
        assert float(land.loss[i, j]) == pytest.approx(_perturbed_loss(m, digits, (d1, d2), (a, b)), rel=1e-4)
    torch.testing.assert_close(line.loss, land.loss[:, 2], rtol=1e-5, atol=1e-6)  # same seed: d1
    if name != "vit":
        assert land.evaluator.startswith("fold") and "BatchNorm folded" in land.evaluator


def test_fold_strategy_matches_plain_loop_everywhere(net, digits):
    """Folded BatchNorm (with BatchNorm parameters moving too: bias='keep'), channels-last and the
    first conv on patches give the plain loop's values at every point."""
    name, m = net
    dirs = list(wb.analyses.random_directions(m, 2, seed=3, bias="keep"))
    C = torch.tensor([[0.0, 0.0], [0.4, -0.7], [-1.0, 1.0], [1.5, 0.5]], dtype=torch.float64)
    loop = GridEvaluator(m, CE, digits.x, digits.y, dirs, evaluator="loop")
    ref = loop(C)
    for cl, pt in ((False, False), (True, True), (True, False)):
        fm, note = GF.folded_model(loop.problem, channels_last=cl, patches=pt)
        if fm is None:  # the ViT has no BatchNorm: without a layout lever there is nothing to do
            assert name == "vit" and not (cl or pt), note
            continue
        got = GF.FoldedPoints(loop.problem, fm).evaluate(C)
        torch.testing.assert_close(got["loss"].float(), ref["loss"], rtol=2e-5, atol=1e-6)
        torch.testing.assert_close(got["acc"].float(), ref["acc"])


def test_interpolation_and_training_path(net, digits):
    name, m = net
    other = copy.deepcopy(m)
    wb.fit(other, CE, digits, steps=3, lr=1e-2, batch_size=16, seed=1, progress=False,
           callbacks=[snaps := wb.training.Snapshots(every=1)])
    copy_modes = _snapshot(m)
    it = wb.analyses.interpolate(m, other, CE, digits, steps=5)
    _assert_untouched(m, copy_modes)
    assert it.loss_a == pytest.approx(_plain_loss(m, digits), rel=1e-5)
    assert it.loss_b == pytest.approx(_plain_loss(other, digits), rel=1e-5)  # its own running statistics
    land_dirs = wb.analyses.random_directions(m, 2, seed=0)
    tp = wb.analyses.project_path(snaps, m, CE, digits, land_dirs)
    _assert_untouched(m, copy_modes)
    for i in (0, len(tp) - 1):
        assert float(tp.loss[i]) == pytest.approx(_plain_loss(m, digits, snaps.params[i]), rel=1e-5)


def test_batch_statistics_mode(digits):
    m = _model("resnet")
    wb.fit(m, CE, digits, steps=3, lr=1e-2, batch_size=16, seed=0, progress=False)
    m.eval()
    for p in m.parameters():
        p.grad = None
    snap = _snapshot(m)
    land = wb.analyses.loss_slice_2d(m, CE, digits, span=0.5, steps=3, bn="batch")
    _assert_untouched(m, snap)
    assert land.bn == "batch" and "batch statistics" in repr(land)
    assert float(land.loss[1, 1]) == pytest.approx(_batch_stats_loss(m, digits), rel=1e-5)
    assert not land.evaluator.startswith("fold")  # nothing to fold: statistics move with the weights
    eval_land = wb.analyses.loss_slice_2d(m, CE, digits, span=0.5, steps=3)
    assert abs(float(eval_land.loss[1, 1]) - float(land.loss[1, 1])) > 1e-4  # the two modes differ
    # blocks are batches: 48 samples in batches of 16 = the mean of three batch-statistics losses
    blocks = wb.analyses.loss_slice_1d(m, CE, digits, span=0.5, steps=3, bn="batch", batch_size=16)
    parts = [_batch_stats_loss(m, wb.data.Dataset(digits.x[i:i + 16], digits.y[i:i + 16])) for i in (0, 16, 32)]
    assert float(blocks.loss[1]) == pytest.approx(sum(parts) / 3, rel=1e-5)
    with pytest.raises(ValueError, match="single sample"):
        wb.analyses.loss_slice_1d(wb.models.MLP(64, (8,), 10, norm="batch", seed=0), CE, digits, steps=3,
                                  bn="batch", batch_size=47)
    with pytest.raises(ValueError, match="unknown bn 'train'.*'eval'.*'batch'"):
        wb.analyses.loss_slice_2d(m, CE, digits, steps=3, bn="train")
    with pytest.raises(ValueError, match="unknown bn"):
        wb.analyses.hessian_trace(m, CE, digits, bn=None)


def test_fold_refused_when_the_normalised_tensor_is_read_elsewhere(digits):
    class Leaky(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 16, 3, padding=1)
            self.bn = nn.BatchNorm2d(16)
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            z = self.conv(x)
            h = torch.relu(self.bn(z)) + z  # z is read twice: folding would change the output
            return self.fc(h.mean((2, 3)))

    m = Leaky()
    with torch.no_grad():
        m.bn.running_mean.uniform_(-1, 1)
        m.bn.running_var.uniform_(0.5, 2)
    m.eval()
    dirs = list(wb.analyses.random_directions(m, 2, seed=0))
    ev = GridEvaluator(m, CE, digits.x, digits.y, dirs, evaluator="fold")
    probe = GF.find_folds(ev.work, {**ev.problem.origin, **ev.problem.buffers}, digits.x[:4])
    assert [(p.layer, p.norm) for p in probe.pairs] == [("conv", "bn")] and probe.first == "conv"  # found, refused
    assert type(ev.strategy) is GF.FoldedPoints and not ev.strategy.fm.pairs  # the layout levers alone
    assert "output changes with folding BatchNorm" in ev.name
    fm, note = GF.folded_model(ev.problem, channels_last=False, patches=False)
    assert fm is None and note.endswith("plain loop used")
    land = wb.analyses.loss_slice_2d(m, CE, digits, steps=3, span=0.3)
    assert land.evaluator.startswith("fold (first conv on patches, channels-last)")
    assert float(land.loss[1, 1]) == pytest.approx(_plain_loss(m, digits), rel=1e-5)
    torch.testing.assert_close(land.loss, wb.analyses.loss_slice_2d(m, CE, digits, steps=3, span=0.3,
                                                                    evaluator="loop").loss, rtol=1e-5, atol=1e-6)


def test_buffers_used_in_forward_move_with_interpolation(digits):
    """A model whose forward reads a buffer of its own (an input normalisation), not BatchNorm."""

    class Normalised(nn.Module):
        def __init__(self, shift):
            super().__init__()
            self.register_buffer("mean", torch.full((1, 1, 8, 8), shift))
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))

        def forward(self, x):
            return self.net(x - self.mean)

    a, b = Normalised(0.0), Normalised(3.0)
    b.load_state_dict({**b.state_dict(), **{k: v for k, v in a.state_dict().items() if k != "mean"}})
    it = wb.analyses.interpolate(a, b, CE, digits, steps=3)
    half = Normalised(1.5)
    half.load_state_dict({**a.state_dict(), "mean": torch.full((1, 1, 8, 8), 1.5)})
    assert float(it.loss[1]) == pytest.approx(_plain_loss(half, digits), rel=1e-5)
    keep = wb.analyses.interpolate(a, b, CE, digits, steps=3, buffers="a")
    assert float(keep.loss[2]) == pytest.approx(_plain_loss(a, digits), rel=1e-5)


# ----------------------------------------------------------------------------- curvature
class TinyResidual(nn.Module):
    """conv -> BatchNorm -> ReLU, a residual conv, pooling, dropout, a linear head (72 parameters)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(2)
        self.res = nn.Conv2d(2, 2, 3, padding=1)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(2, 4)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x)))
        h = h + torch.tanh(self.res(h))
        return self.fc(self.drop(h.mean((2, 3))))


def _tiny_residual():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        m = TinyResidual()
        x = torch.randn(16, 1, 4, 4)
        y = torch.randint(0, 4, (16,))
        with torch.no_grad():
            m.bn.running_mean.uniform_(-0.5, 0.5)
            m.bn.running_var.uniform_(0.5, 2.0)
            m.bn.weight.uniform_(0.5, 1.5)
    return m, wb.data.Dataset(x, y)


def _dense(m, ds, bn):
    """The dense Hessian: ``torch.func`` (reverse over reverse) with running statistics; with batch statistics,
    central differences (step 1e-5) of float64 autograd gradients, symmetrised — PyTorch's nested
    derivatives of training-mode batch_norm are wrong under ``jacrev``/``jacfwd`` here (the
    Hessian they give is not even symmetric; pytorch/pytorch#196699 reports the forward-mode case)."""
    work = copy.deepcopy(m)
    if bn == "batch":
        work = work.double()
        work.bn.track_running_stats, work.bn.running_mean, work.bn.running_var = False, None, None
    names = [k for k, _ in work.named_parameters()]
    params = {k: v.detach() for k, v in work.named_parameters()}
    buffers = {k: v for k, v in work.named_buffers()}
    sizes = [params[k].numel() for k in names]
    flat0 = torch.cat([params[k].reshape(-1) for k in names])
    x = ds.x.to(flat0.dtype)

    def f(flat):
        d = {k: t.view(params[k].shape) for k, t in zip(names, torch.split(flat, sizes))}
        return F.cross_entropy(functional_call(work, {**d, **buffers}, (x,)), ds.y)

    with eval_mode(work):
        if bn == "eval":
            return torch.func.jacrev(torch.func.jacrev(f))(flat0).double(), names, sizes

        def g(flat):
            flat = flat.clone().requires_grad_(True)
            return torch.autograd.grad(f(flat), flat)[0]

        eye = torch.eye(len(flat0), dtype=torch.float64)
        H = torch.stack([(g(flat0 + 1e-5 * e) - g(flat0 - 1e-5 * e)) / 2e-5 for e in eye], 1)
    return (H + H.t()) / 2, names, sizes


@pytest.mark.parametrize("bn", ["eval", "batch"])
def test_hvp_eigs_trace_match_the_dense_hessian_of_a_residual_bn_net(bn):
    m, ds = _tiny_residual()
    m.train()
    snap = _snapshot(m)
    H, names, sizes = _dense(m, ds, bn)
    g = torch.Generator().manual_seed(1)
    v = torch.randn(H.shape[0], generator=g, dtype=torch.float64)
    vd = {k: t.view_as(dict(m.named_parameters())[k]).float() for k, t in zip(names, torch.split(v, sizes))}
    hv = wb.analyses.hvp(m, CE, ds, vd, bn=bn)
    got = torch.cat([hv[k].reshape(-1) for k in names]).double()
    torch.testing.assert_close(got, H @ v, rtol=1e-4, atol=1e-5)
    ev = torch.linalg.eigvalsh(H)
    for mode in ("cached", "fwd-rev"):
        top = wb.analyses.hessian_eigs(m, CE, ds, k=2, tol=1e-7, hvp_mode=mode, bn=bn)
        torch.testing.assert_close(top.eigenvalues.double(), ev.flip(0)[:2], rtol=1e-3, atol=1e-5)
    tr = wb.analyses.hessian_trace(m, CE, ds, estimator="exact", bn=bn)
    assert tr.trace == pytest.approx(float(H.trace()), rel=1e-4, abs=1e-6)
    d = wb.analyses.spectral_density(m, CE, ds, n_runs=2, steps=30, bn=bn)
    assert float(d.nodes.max()) == pytest.approx(float(ev[-1]), rel=1e-3)  # extreme Ritz values converge first
    assert float(ev[0]) - 1e-5 <= float(d.nodes.min()) and float(d.nodes.max()) <= float(ev[-1]) + 1e-5
    _assert_untouched(m, snap)


def test_curvature_entry_points_on_the_zoo(net, digits):
    """Every curvature entry point runs on the three networks (attention through the math
    kernel: the fused one has no double backward), leaving the model bit-identical and in its
    mode; forward-over-reverse agrees with the cached double backward; sharpness's first step
    is SAM's closed form."""
    name, m = net
    snap = _snapshot(m)
    eigs = wb.analyses.hessian_eigs(m, CE, digits, k=1, max_iter=8, tol=1e-3)
    tr = wb.analyses.hessian_trace(m, CE, digits, n_probes=4, chunk=2)
    dens = wb.analyses.spectral_density(m, CE, digits, n_runs=2, steps=4)
    sh = wb.analyses.sharpness(m, CE, digits, rho=0.05, steps=2)
    v = {k: torch.ones_like(p) for k, p in m.named_parameters()}
    h_fr = wb.analyses.hvp(m, CE, digits, v)
    _assert_untouched(m, snap)
    assert eigs.hvp_mode == "cached" and torch.isfinite(eigs.eigenvalues).all()
    assert tr.n_matvecs == 4 and dens.nodes.shape == (2, 4)
    from workbench.analyses.curvature import HessianOperator

    op = HessianOperator(m, CE, digits.x, digits.y, hvp_mode="cached")
    flat = op.flat({k: v[k] for k in op.names})
    torch.testing.assert_close(torch.cat([h_fr[k].reshape(-1) for k in op.names]), op.matvec(flat),
                               rtol=1e-3, atol=1e-4 * float(op.matvec(flat).abs().max()))
    # SAM's first-order step by hand on an eval-mode copy
    work = copy.deepcopy(m)
    with eval_mode(work):
        loss = F.cross_entropy(work(digits.x), digits.y)
        grads = torch.autograd.grad(loss, list(work.parameters()))
        gn = torch.sqrt(sum((g_ ** 2).sum() for g_ in grads))
        with torch.no_grad():
            for p, g_ in zip(work.parameters(), grads):
                p.add_(0.05 * g_ / gn)
            stepped = float(F.cross_entropy(work(digits.x), digits.y))
    assert sh.loss == pytest.approx(float(loss.detach()), rel=1e-5)
    assert sh.one_step == pytest.approx(stepped - float(loss.detach()), rel=1e-3, abs=1e-6)


def test_blocked_engines_and_lockstep_lanczos_agree():
    from workbench.analyses.curvature import HessianOperator
    from workbench.analyses.curvature.engines import CachedDoubleBackward
    from workbench.analyses.curvature.lanczos import lanczos, lanczos_runs

    m, ds = _tiny_residual()
    op = HessianOperator(m, CE, ds.x, ds.y, hvp_mode="cached")
    V = torch.randn(3, op.dim, generator=torch.Generator().manual_seed(0))
    one = op.matmat(V, chunk=1)
    batched = CachedDoubleBackward(op.f, op.theta, batched=True)
    got = op.flat(batched.matmat(op.unflat(V)), 3)
    torch.testing.assert_close(got, one, rtol=1e-4, atol=1e-6)
    fr = HessianOperator(m, CE, ds.x, ds.y, hvp_mode="fwd-rev")
    torch.testing.assert_close(fr.matmat(V, chunk=3), one, rtol=1e-4, atol=1e-6)
    mv = lambda q: op.matvec(q.float()).double()  # noqa: E731
    runs = lanczos_runs(lambda Q: op.matmat(Q.float()).double(), V.double(), 6)
    for r in range(3):
        a, b, _, _, _ = lanczos(mv, V[r].double(), 6)
        torch.testing.assert_close(torch.tensor(runs[r][0]), torch.tensor(a), rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(torch.tensor(runs[r][1]), torch.tensor(b), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["resnet", "vit"])
def test_mixed_mode_restored_after_every_entry_point(name, digits):
    """A model in train mode with one submodule frozen in eval mode (a BatchNorm of the ResNet, a
    dropout of the ViT) comes back exactly so, bit for bit, after every analysis entry point."""
    m = _model(name)
    m.train()
    frozen = m.layer1.bn1 if name == "resnet" else m.blocks[0].mlp[2]
    frozen.eval()
    snap = _snapshot(m)
    other = copy.deepcopy(m)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.01)
    g = torch.Generator().manual_seed(0)
    path = [{k: v.detach() + 0.01 * i * torch.randn(v.shape, generator=g) for k, v in m.named_parameters()}
            for i in range(3)]  # three points of a made-up training path
    dirs = wb.analyses.random_directions(m, 2, seed=0)
    calls = [
        lambda: wb.analyses.loss_slice_2d(m, CE, digits, steps=3),
        lambda: wb.analyses.loss_slice_2d(m, CE, digits, steps=3, evaluator="loop"),
        lambda: wb.analyses.loss_slice_1d(m, CE, digits, steps=3, bn="batch"),
        lambda: wb.analyses.interpolate(m, other, CE, digits, steps=3),
        lambda: wb.analyses.path_directions(path, m),
        lambda: wb.analyses.project_path(path, m, CE, digits, dirs),
        lambda: wb.analyses.hvp(m, CE, digits, {}),
        lambda: wb.analyses.hessian_eigs(m, CE, digits, k=1, max_iter=3),
        lambda: wb.analyses.hessian_trace(m, CE, digits, n_probes=2, bn="batch"),
        lambda: wb.analyses.spectral_density(m, CE, digits, n_runs=1, steps=3),
        lambda: wb.analyses.sharpness(m, CE, digits, steps=1),
    ]
    for call in calls:
        call()
        _assert_untouched(m, snap)
    assert m.training and not frozen.training
    assert sum(not mod.training for mod in m.modules()) == 1
