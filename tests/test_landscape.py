"""Loss landscapes: directions, slices, evaluators, interpolation, training paths, the view."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import workbench as wb
from workbench.analyses import landscape as L
from workbench.methods.base import Method


# ----------------------------------------------------------------------------- fixtures
def _data(n=96, d=6, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = torch.randint(0, c, (n,), generator=g)
    return wb.data.Dataset(x, y)


@pytest.fixture
def setup():
    ds = _data()
    model = wb.models.MLP(6, (8, 8), 3, seed=0)
    return model, wb.methods.CrossEntropy(), ds


def _plain_loss(model, ds, state=None):
    work = __import__("copy").deepcopy(model).eval()
    if state is not None:
        work.load_state_dict(state)
    with torch.no_grad():
        out = work(ds.x)
    return float(F.cross_entropy(out, ds.y)), float((out.argmax(1) == ds.y).float().mean())


def _snapshot(model):
    return (
        {k: v.detach().clone() for k, v in model.state_dict().items()},
        {k: p.requires_grad for k, p in model.named_parameters()},
        {k: m.training for k, m in model.named_modules()},
        {k: None if p.grad is None else p.grad.clone() for k, p in model.named_parameters()},
    )


def _assert_same(model, snap):
    sd, rg, modes, grads = snap
    for k, v in model.state_dict().items():
        assert torch.equal(v, sd[k]), k
    assert {k: p.requires_grad for k, p in model.named_parameters()} == rg
    assert {k: m.training for k, m in model.named_modules()} == modes
    for k, p in model.named_parameters():
        assert (p.grad is None and grads[k] is None) or torch.equal(p.grad, grads[k]), k


def _perturbed_loss(model, ds, dirs, coeffs):
    work = __import__("copy").deepcopy(model).eval()
    with torch.no_grad():
        for k, p in work.named_parameters():
            for c, d in zip(coeffs, dirs):
                p.add_(c * d[k])
        out = work(ds.x)
    return float(F.cross_entropy(out, ds.y))


# ----------------------------------------------------------------------------- directions
def test_filter_normalisation_and_bias_policy(setup):
    model, _, _ = setup
    d1, d2 = L.random_directions(model, 2, seed=3)
    for k, w in model.named_parameters():
        if w.ndim >= 2:
            rows_d = d1[k].reshape(w.shape[0], -1).norm(dim=1)
            rows_w = w.detach().reshape(w.shape[0], -1).norm(dim=1)
            torch.testing.assert_close(rows_d, rows_w, rtol=1e-5, atol=1e-6)
        else:
            assert torch.count_nonzero(d1[k]) == 0
    (k1,) = L.random_directions(model, 1, seed=3, bias="keep")
    for k, w in model.named_parameters():
        if w.ndim == 1:
            assert torch.equal(k1[k], w.detach())
    # layer normalisation: whole-tensor norm matches
    (dl,) = L.random_directions(model, 1, seed=3, normalization="layer")
    w = model.body[0].weight.detach()
    torch.testing.assert_close(dl["body.0.weight"].norm(), w.norm())


def test_directions_seeded_and_raw(setup):
    model, _, _ = setup
    a = L.random_directions(model, 2, seed=1)
    b = L.random_directions(model, 2, seed=1)
    c = L.random_directions(model, 2, seed=2)
    assert all(torch.equal(a[0][k], b[0][k]) for k in a[0])
    assert not torch.equal(a[0]["body.0.weight"], c[0]["body.0.weight"])
    (raw,) = L.random_directions(model, 1, seed=1, normalization=None)
    g = torch.Generator().manual_seed(1)
    first = next(iter(model.named_parameters()))
    assert torch.equal(raw[first[0]], torch.randn(tuple(first[1].shape), generator=g))


def test_direction_errors(setup):
    model, ce, ds = setup
    with pytest.raises(ValueError, match="normalization"):
        L.random_directions(model, 2, normalization="unit")
    with pytest.raises(ValueError, match="bias policy"):
        L.random_directions(model, 2, bias="zero")
    with pytest.raises(ValueError, match="does not have"):
        wb.analyses.loss_slice_2d(model, ce, ds, steps=3, directions=({"nope": torch.zeros(1)}, {}))
    with pytest.raises(ValueError, match="shape"):
        wb.analyses.loss_slice_2d(model, ce, ds, steps=3, directions=({"fc.bias": torch.zeros(7)}, {}))
    with pytest.raises(ValueError, match="expected 2"):
        wb.analyses.loss_slice_2d(model, ce, ds, steps=3, directions=({},))
    with pytest.raises(TypeError, match="dict name -> tensor"):
        wb.analyses.loss_slice_2d(model, ce, ds, steps=3, directions=(1, 2))


# ----------------------------------------------------------------------------- slices
def test_centre_is_plain_loss_and_model_untouched(setup):
    model, ce, ds = setup
    model.train()
    model.body[0].weight.requires_grad_(False)
    snap = _snapshot(model)
    land = wb.analyses.loss_slice_2d(model, ce, ds, span=0.5, steps=7, seed=0)
    _assert_same(model, snap)
    loss0, acc0 = _plain_loss(model, ds)
    assert land.loss.shape == (7, 7) and land.alphas[3] == 0 and land.betas[3] == 0
    assert land.centre == (3, 3)
    assert abs(float(land.loss[3, 3]) - loss0) <= 1e-6 * max(1.0, loss0)
    assert abs(land.origin_loss - loss0) <= 1e-6
    assert abs(float(land.accuracy[3, 3]) - acc0) < 1e-6
    assert land.normalization == "filter" and land.bias == "ignore" and land.seed == 0
    assert "LossSurface(7x7" in repr(land)


@pytest.mark.parametrize("evaluator", ["mlp-loop", "mlp-batched", "vmap", "loop"])
def test_evaluators_agree_with_manual_points(setup, evaluator):
    model, ce, ds = setup
    d = L.random_directions(model, 2, seed=5)
    land = wb.analyses.loss_slice_2d(model, ce, ds, span=1.0, steps=5, directions=d, normalization=None,
                                     evaluator=evaluator)
    assert evaluator.split("-")[0] in land.evaluator
    for i, j in [(0, 0), (0, 4), (3, 1), (4, 4)]:
        want = _perturbed_loss(model, ds, d, (float(land.alphas[i]), float(land.betas[j])))
        assert abs(float(land.loss[i, j]) - want) < 1e-5 * max(1, want)


def test_auto_evaluator_and_sample_blocks(setup):
    model, ce, ds = setup
    ref = wb.analyses.loss_slice_2d(model, ce, ds, steps=13, evaluator="loop")
    auto = wb.analyses.loss_slice_2d(model, ce, ds, steps=13)
    assert auto.evaluator.startswith("mlp")
    torch.testing.assert_close(auto.loss, ref.loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(auto.metrics["acc"], ref.metrics["acc"])
    blocked = wb.analyses.loss_slice_2d(model, ce, ds, steps=5, batch_size=10)  # 10 sample blocks
    small = wb.analyses.loss_slice_2d(model, ce, ds, steps=5)
    torch.testing.assert_close(blocked.loss, small.loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(blocked.metrics["acc"], small.metrics["acc"])


def test_parallel_grid_workers_match_one_thread(setup):
    model, ce, ds = setup
    old = torch.get_num_threads()
    one = wb.analyses.loss_slice_2d(model, ce, ds, steps=9)
    try:
        torch.set_num_threads(2)  # two workers, each on half of the 81 points
        two = wb.analyses.loss_slice_2d(model, ce, ds, steps=9)
        assert torch.get_num_threads() == 2  # restored after the workers
    finally:
        torch.set_num_threads(old)
    assert torch.equal(one.loss, two.loss) and torch.equal(one.metrics["acc"], two.metrics["acc"])


def test_generic_models_batchnorm_and_sequential():
    ds = _data()
    ce = wb.methods.CrossEntropy()
    bn = wb.models.MLP(6, (8,), 3, norm="batch", dropout=0.2, seed=0)
    wb.fit(bn, ce, ds, steps=3, lr=0.1, progress=False)  # non-trivial running statistics
    bn.train()
    snap = _snapshot(bn)
    a = wb.analyses.loss_slice_2d(bn, ce, ds, steps=5, evaluator="vmap")
    b = wb.analyses.loss_slice_2d(bn, ce, ds, steps=5)
    _assert_same(bn, snap)
    assert b.evaluator.startswith("fold")  # BatchNorm: folded into the Linear layer per point
    torch.testing.assert_close(a.loss, b.loss, rtol=1e-5, atol=1e-6)
    assert abs(float(b.loss[2, 2]) - _plain_loss(bn, ds)[0]) < 1e-5
    seq = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    s = wb.analyses.loss_slice_2d(seq, ce, ds, steps=5)
    assert s.evaluator.startswith("mlp")
    assert abs(float(s.loss[2, 2]) - _plain_loss(seq, ds)[0]) < 1e-5


def test_slice_1d_matches_2d_row_and_eigen_direction(setup):
    model, ce, ds = setup
    line = wb.analyses.loss_slice_1d(model, ce, ds, span=0.5, steps=7, seed=4)
    plane = wb.analyses.loss_slice_2d(model, ce, ds, span=0.5, steps=7, seed=4)
    torch.testing.assert_close(line.loss, plane.loss[:, 3], rtol=1e-5, atol=1e-6)
    assert "LossLine(7 points" in repr(line)
    smooth = wb.models.MLP(6, (8,), 3, activation="tanh", seed=0)  # no ReLU kinks
    spec = wb.analyses.hessian_eigs(smooth, ce, ds, k=1)
    along = wb.analyses.loss_slice_1d(smooth, ce, ds, span=0.1, steps=5, direction=spec.eigenvector(0),
                                      normalization=None)
    assert along.direction_kind == "given" and along.normalization is None
    # curvature along the top eigenvector ~ λ (second difference of the loss)
    h = float(along.alphas[1] - along.alphas[0])
    second = float(along.loss[3] - 2 * along.loss[2] + along.loss[1]) / h**2
    assert abs(second - spec.top) < 0.03 * abs(spec.top)


def test_slice_arguments_are_checked(setup):
    model, ce, ds = setup
    with pytest.raises(ValueError, match="odd"):
        wb.analyses.loss_slice_2d(model, ce, ds, steps=4)
    with pytest.raises(ValueError, match="positive number"):
        wb.analyses.loss_slice_2d(model, ce, ds, span=-1.0, steps=3)
    with pytest.raises(ValueError, match="unknown evaluator"):
        wb.analyses.loss_slice_2d(model, ce, ds, steps=3, evaluator="fast")
    with pytest.raises(ValueError, match="path"):
        wb.analyses.loss_slice_2d(model, ce, ds, steps=3, directions="pca")
    with pytest.raises(ValueError, match="path"):
        wb.analyses.loss_slice_2d(model, ce, ds, steps=3, span="auto")
    with pytest.raises(TypeError, match="Dataset"):
        wb.analyses.loss_slice_2d(model, ce, [1, 2, 3], steps=3)
    with pytest.raises(ValueError, match="n_samples"):
        wb.analyses.loss_slice_2d(model, ce, ds, steps=3, n_samples=0)
    with pytest.raises(ValueError, match="chain of Linear"):
        wb.analyses.loss_slice_2d(wb.models.MLP(6, (8,), 3, norm="batch"), ce, ds, steps=3, evaluator="mlp-loop")


def test_subset_metrics_and_rectangular_grid(setup):
    model, ce, ds = setup
    a = wb.analyses.loss_slice_2d(model, ce, ds, steps=(5, 3), span=(1.0, 0.2), n_samples=40, seed=1,
                                  metrics={"max_logit": lambda out, y: out.max(1).values.mean()})
    b = wb.analyses.loss_slice_2d(model, ce, ds, steps=(5, 3), span=(1.0, 0.2), n_samples=40, seed=1)
    assert a.loss.shape == (5, 3) and float(a.betas[-1]) == pytest.approx(0.2)
    assert "40 of 96" in a.data and set(a.metrics) == {"acc", "max_logit"}
    torch.testing.assert_close(a.loss, b.loss)


class _SquaredError(Method):
    """A method without loss_from_outputs: MSE of the softmax to one-hot labels."""

    def loss(self, model, batch):
        x, y = batch
        p = model(x).softmax(1)
        loss = ((p - F.one_hot(y, p.shape[1]).float()) ** 2).sum(1).mean()
        return loss, {"acc": (p.argmax(1) == y).float().mean()}


def test_method_without_loss_from_outputs(setup):
    model, _, ds = setup
    m = _SquaredError()
    land = wb.analyses.loss_slice_2d(model, m, ds, steps=3)
    assert land.evaluator.startswith("loop") and "method.loss" in land.evaluator
    with torch.no_grad():
        want = float(m.loss(__import__("copy").deepcopy(model).eval(), (ds.x, ds.y))[0])
    assert abs(float(land.loss[1, 1]) - want) < 1e-6
    assert "acc" in land.metrics
    with pytest.raises(ValueError, match="loss_from_outputs"):
        wb.analyses.loss_slice_2d(model, m, ds, steps=3, evaluator="vmap")


# ----------------------------------------------------------------------------- interpolation
def test_interpolation_endpoints_barrier_and_buffers():
    ds = _data()
    ce = wb.methods.CrossEntropy()
    a = wb.models.MLP(6, (8,), 3, seed=0)
    b = wb.models.MLP(6, (8,), 3, seed=1)
    sa, sb = _snapshot(a), _snapshot(b)
    it = wb.analyses.interpolate(a, b, ce, ds, steps=6, t_range=(-0.5, 1.5))
    _assert_same(a, sa)
    _assert_same(b, sb)
    assert (it.ts == 0).any() and (it.ts == 1).any()
    assert it.loss_a == pytest.approx(_plain_loss(a, ds)[0], abs=1e-5)
    assert it.loss_b == pytest.approx(_plain_loss(b, ds)[0], abs=1e-5)
    inside = (it.ts >= 0) & (it.ts <= 1)
    excess = it.loss - ((1 - it.ts) * it.loss_a + it.ts * it.loss_b)
    assert it.barrier == pytest.approx(float(excess[inside].max()), abs=1e-5)
    same = wb.analyses.interpolate(a, a, ce, ds, steps=3)
    assert abs(same.barrier) < 1e-6
    # BatchNorm: running statistics are interpolated, so t = 1 is model b exactly
    na, nb = wb.models.MLP(6, (8,), 3, norm="batch", seed=0), wb.models.MLP(6, (8,), 3, norm="batch", seed=1)
    wb.fit(na, ce, ds, steps=2, lr=0.1, progress=False)
    wb.fit(nb, ce, ds, steps=2, lr=0.1, seed=1, progress=False)
    bn = wb.analyses.interpolate(na, nb, ce, ds, steps=3)
    assert bn.loss_b == pytest.approx(_plain_loss(nb, ds)[0], abs=1e-5)
    keep_a = wb.analyses.interpolate(na, nb, ce, ds, steps=3, buffers="a")
    assert keep_a.loss_b != pytest.approx(bn.loss_b, abs=1e-6)
    with pytest.raises(ValueError, match="contain"):
        wb.analyses.interpolate(a, b, ce, ds, t_range=(0.2, 1.0))
    with pytest.raises(ValueError, match="different parameter names"):
        wb.analyses.interpolate(a, wb.models.MLP(6, (8, 8), 3), ce, ds)


# ----------------------------------------------------------------------------- training path
def test_training_path_pca_projection_and_residuals():
    ds = _data()
    ce = wb.methods.CrossEntropy()
    model = wb.models.MLP(6, (8,), 3, seed=0)
    hist = wb.fit(model, ce, ds, steps=30, lr=0.1, optimizer="sgd", progress=False,
                  callbacks=[wb.training.Snapshots(every=10)])
    snaps = hist.snapshots
    land = wb.analyses.loss_slice_2d(model, ce, ds, steps=5, directions="pca", path=hist, span="auto")
    p = land.path
    assert land.direction_kind == "pca" and land.normalization is None
    assert p.steps == snaps.steps and p.coords.shape == (len(snaps), 2)
    torch.testing.assert_close(p.coords[-1], torch.zeros(2), atol=1e-6, rtol=0)  # the final model is θ
    assert float(p.loss[-1]) == pytest.approx(land.origin_loss, abs=1e-6)
    assert float(p.loss[0]) == pytest.approx(_plain_loss(model, ds, snaps.params[0])[0], abs=1e-5)
    assert float(land.alphas[-1]) >= float(p.coords[:, 0].abs().max())
    pd = wb.analyses.path_directions(snaps, model)
    assert 0 < float(pd.explained.sum()) <= 1 + 1e-6 and float(p.coords[0, 0]) < 0
    # directions through two snapshots: those snapshots lie on the plane exactly
    theta = dict(model.named_parameters())
    d1 = {k: snaps.params[0][k] - theta[k].detach() for k in theta}
    d2 = {k: snaps.params[1][k] - theta[k].detach() for k in theta}
    tp = wb.analyses.project_path(snaps, model, ce, ds, (d1, d2))
    torch.testing.assert_close(tp.coords[0], torch.tensor([1.0, 0.0]), atol=1e-5, rtol=0)
    torch.testing.assert_close(tp.coords[1], torch.tensor([0.0, 1.0]), atol=1e-5, rtol=0)
    assert float(tp.relative_residual[0]) < 1e-5 and float(tp.relative_residual[2]) > 1e-3
    # the surface under snapshot 0 is its own loss (on the plane, same buffers: no BN here)
    assert float(tp.plane_loss[0]) == pytest.approx(float(tp.loss[0]), abs=1e-5)
    with pytest.raises(ValueError, match="no snapshots"):
        wb.analyses.loss_slice_2d(model, ce, ds, steps=3, directions="pca",
                                  path=wb.fit(model.__class__(6, (8,), 3), ce, ds, steps=1, progress=False))


# ----------------------------------------------------------------------------- figures and view
def test_viz_and_landscape_view():
    pytest.importorskip("plotly")
    pytest.importorskip("ipywidgets")
    ds = _data()
    ce = wb.methods.CrossEntropy()
    lands, eigs = {}, {}
    for name, opt in (("SGD", dict(optimizer="sgd")), ("SAM", dict(optimizer="sam", rho=0.05))):
        m = wb.models.MLP(6, (8,), 3, seed=0)
        h = wb.fit(m, ce, ds, steps=20, lr=0.1, progress=False, callbacks=[wb.training.Snapshots(every=5)], **opt)
        lands[name] = wb.analyses.loss_slice_2d(m, ce, ds, steps=5, directions="pca", path=h, span="auto")
        eigs[name] = wb.analyses.hessian_eigs(m, ce, ds, k=1)
    fig = wb.viz.landscape_panels(lands, mode="contour")
    assert len(fig.data) == 2 * wb.viz.landscape.TRACES_PER_PANEL
    assert fig.data[0].type == "contour" and fig.data[0].coloraxis == fig.data[5].coloraxis == "coloraxis"
    lo = min(float(v.loss.min()) for v in lands.values())
    assert fig.layout.coloraxis.cmin == pytest.approx(lo)
    assert fig.data[0].z.shape == (5, 5) and len(fig.data[1].x) == len(lands["SGD"].path)
    surf = wb.viz.landscape_surface(lands["SGD"], log=True)
    assert surf.data[0].type == "surface"
    assert float(surf.data[0].z.max()) == pytest.approx(float(torch.log10(lands["SGD"].loss).max()), rel=1e-5)

    view = wb.widgets.LandscapeView(lands, eigs=eigs)
    assert view.mode == "contour" and view.figure is view.contour_figure
    assert "λ" in view.curvature.value and "SAM" in view.curvature.value
    z_before = view.contour_figure.data[0].z.copy()
    view.set_log(True)
    assert view.contour_figure.data[0].z.max() == pytest.approx(float(torch.log10(lands["SGD"].loss).max()), rel=1e-5)
    assert view.contour_figure.layout.coloraxis.colorbar.title.text == "log10 loss"
    view.set_log(False)
    assert (view.contour_figure.data[0].z == z_before).all()
    sel = view.select(1, 0, 4)
    assert sel["loss"] == pytest.approx(float(lands["SAM"].loss[0, 4]))
    assert view.contour_figure.data[5 + 3].x == (float(lands["SAM"].alphas[0]),)
    assert "accuracy" in view.readout.value
    assert view._surface is None  # the 3-D figure is built on first use, in the view's state
    view.set_log(True)
    view.set_mode("surface")
    assert view.figure is view.surface_figure and view.surface_box.layout.display == "flex"
    assert view.surface_figure.data[5 + 3].x == (float(lands["SAM"].alphas[0]),)
    assert float(view.surface_figure.data[0].z.max()) == pytest.approx(float(torch.log10(lands["SGD"].loss).max()), rel=1e-5)
    view.set_log(False)
    assert view.contour_box.layout.display == "none"
    view.set_path(False)
    assert view.contour_figure.data[1].visible is False
    view.set_snapshot(1)
    assert view.contour_figure.data[4].x == (float(lands["SGD"].path.coords[1, 0]),)
    view.set_metric("acc")
    assert view.contour_figure.layout.coloraxis.cmax <= 1.0
    with pytest.raises(ValueError, match="mode"):
        view.set_mode("3d")
    lines = wb.viz.loss_lines({"a": wb.analyses.loss_slice_1d(m, ce, ds, steps=5)})
    assert len(lines.data) == 1
    it = wb.analyses.interpolate(m, m, ce, ds, steps=3)
    assert len(wb.viz.interpolation_curve(it).data) == 3


# ----------------------------------------------------------------------------- strategies
def test_strategy_factory_and_state_fixed_in_init(setup):
    """One factory picks the strategy; evaluating creates no attribute a reader would not find in
    ``__init__`` (the helpers' state is all set there)."""
    from workbench.analyses import _grid_chain as GC
    from workbench.analyses import _grid_folded as GFo
    from workbench.analyses import _grid_generic as GG
    from workbench.analyses._landscape_engine import GridEvaluator

    model, ce, ds = setup
    d = L.random_directions(model, 2, seed=0)
    bn = wb.models.MLP(6, (8,), 3, norm="batch", seed=0)
    dbn = L.random_directions(bn, 2, seed=0)
    tanh = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    dt = L.random_directions(tanh, 2, seed=0)
    cases = [
        (model, ce, d, "auto", GC.ChainLoop), (model, ce, d, "mlp-batched", GC.ChainBatched),
        (model, ce, d, "vmap", GG.VmapPoints), (model, ce, d, "loop", GG.LoopPoints),
        (bn, ce, dbn, "auto", GFo.FoldedPoints), (bn, ce, dbn, "loop", GG.LoopPoints),
        (model, _SquaredError(), d, "auto", GG.MethodLossLoop), (model, ce, d, "fold", GFo.FoldedPoints),
        (tanh, ce, dt, "fold", GG.LoopPoints),  # nothing to fold, no layout or in-place lever
    ]
    for m, meth, dirs, ev, cls in cases:
        g = GridEvaluator(m, meth, ds.x, ds.y, list(dirs), evaluator=ev,
                          metrics={"mx": lambda o, y: o.max(1).values.mean()})
        assert type(g.strategy) is cls, (ev, type(g.strategy))
        before = set(vars(g.strategy))
        g(torch.zeros(3, 2))
        assert set(vars(g.strategy)) == before
    assert GridEvaluator(model, ce, ds.x, ds.y, list(d)).strategy.ce == wb.methods.CrossEntropyOnLogits(0.0)


def test_tuner_and_thread_split_helpers():
    from workbench.analyses._grid_chain import split_over_threads, tune_chunk

    cdev = torch.arange(40.0)[:, None]
    calls = []

    def run(K, part):
        calls.append(K)
        return {"loss": part[:, 0] * 2}

    best, timings, outs, pos = tune_chunk([4, 8], run, cdev, torch.device("cpu"))
    assert best in (4, 8) and set(timings) == {"mlp-batched K=4", "mlp-batched K=8"} and calls == [4, 8, 4, 8]
    assert pos == 24 and torch.equal(torch.cat(outs["loss"]), cdev[:24, 0] * 2)  # points kept, in order
    old = torch.get_num_threads()
    got = split_over_threads(lambda part: {"v": part[:, 0] + torch.get_num_threads() * 0}, cdev, 3)
    assert torch.equal(got["v"], cdev[:, 0]) and torch.get_num_threads() == old


def test_declared_cross_entropy_drives_the_fast_path_and_smoothing(setup):
    model, _, ds = setup
    ls = wb.methods.CrossEntropy(label_smoothing=0.1)
    fast = wb.analyses.loss_slice_2d(model, ls, ds, steps=5, evaluator="mlp-loop")
    ref = wb.analyses.loss_slice_2d(model, ls, ds, steps=5, evaluator="loop")
    torch.testing.assert_close(fast.loss, ref.loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast.metrics["acc"], ref.metrics["acc"])
