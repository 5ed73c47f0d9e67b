"""Curvature: HVP and Lanczos against torch.func.hessian + eigvalsh, trace, SLQ, sharpness."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

import workbench as wb
from workbench.analyses import curvature as C
from workbench.methods.base import Method


def _tiny(seed=0, activation="tanh"):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(60, 3, generator=g)
    y = torch.randint(0, 3, (60,), generator=g)
    model = wb.models.MLP(3, (5,), 3, activation=activation, seed=seed)
    return model, wb.methods.CrossEntropy(), wb.data.Dataset(x, y)


def _dense_hessian(model, ds, names=None):
    params = {k: v.detach() for k, v in model.named_parameters()}
    names = names or list(params)
    shapes = [params[k].shape for k in names]
    sizes = [params[k].numel() for k in names]
    flat0 = torch.cat([params[k].reshape(-1) for k in names])
    work = copy.deepcopy(model).eval()

    def f(flat):
        d = dict(params)
        for k, t, s in zip(names, torch.split(flat, sizes), shapes):
            d[k] = t.view(s)
        return F.cross_entropy(functional_call(work, d, (ds.x,)), ds.y)

    return torch.func.hessian(f)(flat0).double(), names, sizes, shapes


def _snap(model):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            {k: p.requires_grad for k, p in model.named_parameters()},
            {k: m.training for k, m in model.named_modules()})


def _same(model, s):
    assert all(torch.equal(v, s[0][k]) for k, v in model.state_dict().items())
    assert {k: p.requires_grad for k, p in model.named_parameters()} == s[1]
    assert {k: m.training for k, m in model.named_modules()} == s[2]
    assert all(p.grad is None for p in model.parameters())


def test_hvp_forward_over_reverse_and_cached_match_dense_hessian():
    model, ce, ds = _tiny()
    H, names, sizes, shapes = _dense_hessian(model, ds)
    v = torch.randn(H.shape[0], generator=torch.Generator().manual_seed(1))
    vd = {k: t.view(s) for k, t, s in zip(names, torch.split(v, sizes), shapes)}
    hv = wb.analyses.hvp(model, ce, ds, vd)
    got = torch.cat([hv[k].reshape(-1) for k in names]).double()
    torch.testing.assert_close(got, H @ v.double(), rtol=1e-4, atol=1e-6)
    assert C.HessianOperator(model, ce, ds.x, ds.y).mode == "chain"
    g_ref = torch.func.grad(lambda p: F.cross_entropy(functional_call(model, p, (ds.x,)), ds.y))(
        {k: p.detach() for k, p in model.named_parameters()})
    g_ref = torch.cat([g_ref[k].reshape(-1) for k in names])
    for mode in ("fwd-rev", "cached", "chain"):
        op = C.HessianOperator(model, ce, ds.x, ds.y, hvp_mode=mode)
        torch.testing.assert_close(op.gradient(), g_ref, rtol=1e-4, atol=1e-7)
        torch.testing.assert_close(op.matvec(v).double(), H @ v.double(), rtol=1e-4, atol=1e-6)
        V = torch.randn(3, H.shape[0])
        torch.testing.assert_close(op.matmat(V, chunk=2).double(), (H @ V.double().t()).t(), rtol=1e-4, atol=1e-6)
    # the written-out R-operator on deeper ReLU / GELU chains with image-shaped inputs
    for act in ("relu", "gelu"):
        g = torch.Generator().manual_seed(2)
        img = wb.data.Dataset(torch.randn(30, 1, 2, 3, generator=g), torch.randint(0, 3, (30,), generator=g))
        deep = wb.models.MLP(6, (5, 4), 3, activation=act, seed=1)
        Hd, *_ = _dense_hessian(deep, img)
        u = torch.randn(Hd.shape[0], generator=g)
        op = C.HessianOperator(deep, ce, img.x, img.y, hvp_mode="chain")
        torch.testing.assert_close(op.matvec(u).double(), Hd @ u.double(), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="hvp_mode='chain'"):
        C.HessianOperator(wb.models.MLP(3, (5,), 3, norm="batch"), ce, ds.x, ds.y, hvp_mode="chain")
    # sample blocks are weighted by their sizes: same product with 7 blocks
    op = C.HessianOperator(model, ce, ds.x, ds.y, batch_size=9)
    assert op.mode == "fwd-rev"
    torch.testing.assert_close(op.matvec(v).double(), H @ v.double(), rtol=1e-4, atol=1e-6)


def test_lanczos_matches_eigvalsh():
    model, ce, ds = _tiny()
    H, names, sizes, shapes = _dense_hessian(model, ds)
    ev = torch.linalg.eigvalsh(H)
    top = wb.analyses.hessian_eigs(model, ce, ds, k=3, tol=1e-6)
    torch.testing.assert_close(top.eigenvalues.double(), ev.flip(0)[:3], rtol=1e-4, atol=1e-6)
    assert top.converged and top.converged_each.all() and (top.residuals < 1e-2).all()
    v = torch.cat([top.eigenvector(0)[k].reshape(-1) for k in names]).double()
    torch.testing.assert_close(H @ v, ev[-1] * v, rtol=0, atol=1e-3)
    low = wb.analyses.hessian_eigs(model, ce, ds, k=2, which="SA", tol=1e-6, hvp_mode="fwd-rev")
    torch.testing.assert_close(low.eigenvalues.double(), ev[:2], rtol=1e-4, atol=1e-6)
    mag = wb.analyses.hessian_eigs(model, ce, ds, k=1, which="LM", return_vectors=False)
    assert abs(mag.top) == pytest.approx(float(ev.abs().max()), rel=1e-3)
    assert mag.eigenvectors is None and "HessianEigs(which='LM'" in repr(mag)
    rnd = wb.analyses.hessian_eigs(model, ce, ds, k=3, tol=1e-6, start="random")
    torch.testing.assert_close(rnd.eigenvalues.double(), ev.flip(0)[:3], rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="start"):
        wb.analyses.hessian_eigs(model, ce, ds, k=1, start="grad")
    few = wb.analyses.hessian_eigs(model, ce, ds, k=2, max_iter=3)
    assert not few.converged and few.iterations == 3


def test_parameter_subset_is_the_hessian_block():
    model, ce, ds = _tiny()
    H, names, sizes, _ = _dense_hessian(model, ds)
    i = names.index("fc.weight")
    s = sum(sizes[:i])
    block = H[s : s + sizes[i], s : s + sizes[i]]
    sub = wb.analyses.hessian_eigs(model, ce, ds, k=1, params=["fc.weight"])
    assert sub.n_params == sizes[i]
    assert sub.top == pytest.approx(float(torch.linalg.eigvalsh(block)[-1]), rel=1e-4)
    pred = wb.analyses.hessian_trace(model, ce, ds, estimator="exact", params=lambda n: n.startswith("fc."))
    j = names.index("fc.bias")
    assert pred.trace == pytest.approx(float(block.trace() + H[sum(sizes[:j]):, sum(sizes[:j]):].trace()), rel=1e-4)
    with pytest.raises(ValueError, match="unknown parameter"):
        wb.analyses.hessian_eigs(model, ce, ds, k=1, params=["nope"])


def test_trace_estimators():
    model, ce, ds = _tiny()
    H, *_ = _dense_hessian(model, ds)
    exact = wb.analyses.hessian_trace(model, ce, ds, estimator="exact")
    assert exact.trace == pytest.approx(float(H.trace()), rel=1e-4) and exact.stderr == 0
    hut = wb.analyses.hessian_trace(model, ce, ds, seed=0, n_probes=200)
    assert hut.stderr > 0 and abs(hut.trace - exact.trace) < 4 * hut.stderr
    assert hut.n_matvecs == 200 and hut.samples.shape == (200,)
    again = wb.analyses.hessian_trace(model, ce, ds, seed=0, n_probes=200)
    assert again.trace == hut.trace  # seeded
    hpp = wb.analyses.hessian_trace(model, ce, ds, seed=0, n_probes=60, estimator="hutch++")
    assert abs(hpp.trace - exact.trace) < 4 * hpp.stderr + 1e-6
    with pytest.raises(ValueError, match="n_probes"):
        wb.analyses.hessian_trace(model, ce, ds, n_probes=1)
    with pytest.raises(ValueError, match="estimator"):
        wb.analyses.hessian_trace(model, ce, ds, estimator="diag")
    with pytest.raises(ValueError, match="max_exact"):
        wb.analyses.hessian_trace(model, ce, ds, estimator="exact", max_exact=10)


def test_spectral_density_quadrature():
    model, ce, ds = _tiny()
    H, *_ = _dense_hessian(model, ds)
    ev = torch.linalg.eigvalsh(H)
    n = H.shape[0]
    dens = wb.analyses.spectral_density(model, ce, ds, seed=0, n_runs=2, steps=n)
    torch.testing.assert_close(dens.weights.sum(1), torch.ones(2), rtol=1e-5, atol=1e-5)
    # with as many Lanczos steps as parameters the nodes are the eigenvalues
    torch.testing.assert_close(dens.nodes[0].double().sort().values, ev, rtol=1e-3, atol=1e-4)
    # the quadrature reproduces tr(H)/n: sum_j w_j θ_j  ~ mean eigenvalue
    est = float((dens.nodes.double() * dens.weights.double()).sum(1).mean())
    assert est == pytest.approx(float(ev.mean()), abs=0.5 * float(ev.abs().max()) / n**0.5)
    grid, d = dens.density()
    area = float(torch.trapezoid(d, grid))
    assert area == pytest.approx(1.0, abs=0.02)
    assert "SpectralDensity(2 runs" in repr(dens)


def test_per_class_and_sharpness():
    model, ce, ds = _tiny()
    pc = wb.analyses.hessian_trace(model, ce, ds, estimator="exact", per_class=True)
    assert pc.classes == (0, 1, 2)
    sub = ds.subset(ds.y == 1)
    direct = wb.analyses.hessian_trace(model, ce, sub, estimator="exact")
    assert pc[1].trace == pytest.approx(direct.trace, rel=1e-6)
    assert pc.value("trace").shape == (3,)
    assert pc.overall.trace == pytest.approx(wb.analyses.hessian_trace(model, ce, ds, estimator="exact").trace)
    s = wb.analyses.sharpness(model, ce, ds, rho=0.05, steps=5)
    assert s.sharpness >= s.one_step - 1e-7 and s.sharpness > 0 and len(s.history) == 5
    lam = torch.linalg.eigvalsh(_dense_hessian(model, ds)[0])[-1]
    # in a small ball the first-order ascent gains at least what the top eigenvector gives to 2nd order
    assert s.sharpness > 0.5 * 0.05**2 * float(lam) * 0.5
    a = wb.analyses.sharpness(model, ce, ds, rho=0.5, adaptive=True, steps=3)
    assert a.adaptive and a.sharpness > 0
    with pytest.raises(ValueError, match="rho"):
        wb.analyses.sharpness(model, ce, ds, rho=0)
    with pytest.raises(ValueError, match="labelled"):
        wb.analyses.hessian_eigs(model, ce, wb.data.Dataset(ds.x), k=1, per_class=True)


class _MSE(Method):
    def loss(self, model, batch):
        x, y = batch
        p = model(x).softmax(1)
        return ((p - F.one_hot(y, 3).float()) ** 2).sum(1).mean(), {}


def test_method_loss_path_and_models_untouched():
    model, ce, ds = _tiny(activation="relu")
    bn = wb.models.MLP(3, (5,), 3, norm="batch", dropout=0.1, seed=0)
    wb.fit(bn, ce, ds, steps=2, lr=0.1, progress=False)
    for p in bn.parameters():
        p.grad = None
    bn.train()
    bn.fc.bias.requires_grad_(False)
    for m in (model, bn):
        s = _snap(m)
        wb.analyses.hessian_eigs(m, ce, ds, k=2)
        wb.analyses.hessian_trace(m, ce, ds, n_probes=4)
        wb.analyses.spectral_density(m, ce, ds, steps=5, n_runs=1)
        wb.analyses.sharpness(m, ce, ds, steps=2)
        wb.analyses.hvp(m, ce, ds, {})
        _same(m, s)
    # a method without loss_from_outputs goes through method.loss on the reparametrised copy
    mse = _MSE()
    tm, _, _ = _tiny()
    H = torch.func.hessian(lambda fl: _flat_loss(tm, mse, ds, fl))(_flat(tm)).double()
    got = wb.analyses.hessian_eigs(tm, mse, ds, k=1, tol=1e-6)
    assert got.top == pytest.approx(float(torch.linalg.eigvalsh(H)[-1]), rel=1e-4)


def _flat(m):
    return torch.cat([p.detach().reshape(-1) for p in m.parameters()])


def _flat_loss(m, method, ds, flat):
    params, i = {}, 0
    for k, p in m.named_parameters():
        params[k] = flat[i : i + p.numel()].view(p.shape)
        i += p.numel()
    work = copy.deepcopy(m).eval()

    class W(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = work

        def forward(self, x, y):
            return method.loss(self.model, (x, y))[0]

    return functional_call(W(), {f"model.{k}": v for k, v in params.items()}, (ds.x, ds.y))


# ----------------------------------------------------------------------------- engines and declarations
def test_r_operator_on_silu_and_label_smoothing_blocks_of_directions():
    """The written-out R-operator on a SiLU Sequential (its second derivative by autograd) with
    label-smoothed cross-entropy, several directions per call, against the dense Hessian."""
    g = torch.Generator().manual_seed(3)
    ds = wb.data.Dataset(torch.randn(50, 4, generator=g), torch.randint(0, 3, (50,), generator=g))
    torch.manual_seed(0)
    seq = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.SiLU(), torch.nn.Linear(5, 3))
    ls = wb.methods.CrossEntropy(label_smoothing=0.2)
    params = {k: v.detach() for k, v in seq.named_parameters()}
    names, sizes = list(params), [p.numel() for p in params.values()]

    def f(flat):
        d = {k: t.view(params[k].shape) for k, t in zip(names, torch.split(flat, sizes))}
        return F.cross_entropy(functional_call(seq, d, (ds.x,)), ds.y, label_smoothing=0.2)

    H = torch.func.hessian(f)(torch.cat([p.reshape(-1) for p in params.values()])).double()
    op = C.HessianOperator(seq, ls, ds.x, ds.y)
    assert op.mode == "chain" and type(op.engine.out_hess).__name__ == "SoftmaxCrossEntropyHessian"
    V = torch.randn(5, H.shape[0], generator=g)
    torch.testing.assert_close(op.matmat(V, chunk=5).double(), (H @ V.double().t()).t(), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(op.matmat(V, chunk=2), op.matmat(V, chunk=1), rtol=1e-5, atol=1e-7)


class _DeclaredCE(Method):
    """Not a CrossEntropy subclass: declares its loss form, and (``lie=True``) a wrong one."""

    def __init__(self, lie=False):
        super().__init__()
        self.lie = lie

    @property
    def loss_form(self):
        return wb.methods.CrossEntropyOnLogits(0.0)

    def loss_from_outputs(self, out, y):
        return F.cross_entropy(out, y) * (2.0 if self.lie else 1.0)

    def loss(self, model, batch):
        return self.loss_from_outputs(model(batch[0]), batch[1]), {}


def test_analyses_read_declared_capabilities_not_classes():
    ce = wb.methods.CrossEntropy(label_smoothing=0.1)
    assert ce.loss_form == wb.methods.CrossEntropyOnLogits(0.1)

    class Doubled(wb.methods.CrossEntropy):
        def loss_from_outputs(self, logits, y):
            return 2 * super().loss_from_outputs(logits, y)

    assert Doubled().loss_form is None and wb.methods.SupCon().loss_form is None
    model, _, ds = _tiny()
    H, *_ = _dense_hessian(model, ds)
    v = torch.randn(H.shape[0], generator=torch.Generator().manual_seed(4))
    honest = C.HessianOperator(model, _DeclaredCE(), ds.x, ds.y)
    assert type(honest.engine.out_hess).__name__ == "SoftmaxCrossEntropyHessian"
    torch.testing.assert_close(honest.matvec(v).double(), H @ v.double(), rtol=1e-4, atol=1e-6)
    liar = C.HessianOperator(model, _DeclaredCE(lie=True), ds.x, ds.y)  # checked, so not trusted
    assert type(liar.engine.out_hess).__name__ != "SoftmaxCrossEntropyHessian"
    torch.testing.assert_close(liar.matvec(v).double(), 2 * H @ v.double(), rtol=1e-4, atol=1e-6)
    import pathlib

    src = pathlib.Path(wb.analyses.__file__).parent
    for p in [*src.glob("_*.py"), *src.glob("landscape*.py"), *(src / "curvature").glob("*.py")]:
        assert "CrossEntropy)" not in p.read_text(), p  # no isinstance(method, CrossEntropy)


def test_engine_factory_rules():
    model, ce, ds = _tiny()
    bn = wb.models.MLP(3, (5,), 3, norm="batch", seed=0)
    assert C.HessianOperator(model, ce, ds.x, ds.y).mode == "chain"
    assert C.HessianOperator(bn, ce, ds.x, ds.y).mode == "cached"  # not a chain, one block
    assert C.HessianOperator(bn, ce, ds.x, ds.y, batch_size=7).mode == "fwd-rev"  # several blocks
    assert C.HessianOperator(model, _MSE(), ds.x, ds.y).mode == "cached"  # no loss_from_outputs
    assert C.HessianOperator(model, ce, ds.x, ds.y, hvp_mode="cached", batch_size=7).mode == "cached"
