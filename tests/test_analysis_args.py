"""Bad input to the landscape and curvature entry points: a clear ValueError/TypeError before any
evaluation, naming the argument and what to pass instead."""

from __future__ import annotations

import pytest
import torch

import workbench as wb
from workbench.methods.base import Method


@pytest.fixture(scope="module")
def setup():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 4, generator=g)
    y = torch.randint(0, 3, (40,), generator=g)
    return wb.models.MLP(4, (6,), 3, seed=0), wb.methods.CrossEntropy(), wb.data.Dataset(x, y)


A = wb.analyses
CURVATURE = {
    "hessian_eigs": lambda m, me, d, **kw: A.hessian_eigs(m, me, d, k=1, **kw),
    "hessian_trace": lambda m, me, d, **kw: A.hessian_trace(m, me, d, n_probes=2, **kw),
    "spectral_density": lambda m, me, d, **kw: A.spectral_density(m, me, d, n_runs=1, steps=3, **kw),
    "sharpness": lambda m, me, d, **kw: A.sharpness(m, me, d, steps=1, **kw),
    "hvp": lambda m, me, d, **kw: A.hvp(m, me, d, {}, **kw),
}
LANDSCAPE = {
    "loss_slice_2d": lambda m, me, d, **kw: A.loss_slice_2d(m, me, d, steps=3, **kw),
    "loss_slice_1d": lambda m, me, d, **kw: A.loss_slice_1d(m, me, d, steps=3, **kw),
    "interpolate": lambda m, me, d, **kw: A.interpolate(m, m, me, d, steps=2, **kw),
}
ENTRY = {**CURVATURE, **LANDSCAPE}


# ----------------------------------------------------------------------------- labels
@pytest.mark.parametrize("name", list(ENTRY))
def test_unlabelled_data_for_a_method_that_needs_labels(setup, name):
    model, ce, ds = setup
    with pytest.raises(ValueError, match="no labels.*labelled"):
        ENTRY[name](model, ce, wb.data.Dataset(ds.x))


@pytest.mark.parametrize("name", list(ENTRY))
def test_ood_labels_are_refused(setup, name):
    model, ce, ds = setup
    y = ds.y.clone()
    y[:5] = -1  # unknown / OOD, as wb.data.ood_split marks them
    with pytest.raises(ValueError, match=r"5 samples labelled -1 \(unknown/OOD\).*subset\(data.y >= 0\)"):
        ENTRY[name](model, ce, wb.data.Dataset(ds.x, y))


@pytest.mark.parametrize("name", list(ENTRY))
def test_labels_beyond_the_model_outputs(setup, name):
    model, ce, ds = setup
    with pytest.raises(ValueError, match="labels up to 5 but the model has 3 outputs"):
        ENTRY[name](model, ce, wb.data.Dataset(ds.x, ds.y + 3))


class _OutputEnergy(Method):
    """A label-free loss of the outputs (works on unlabelled data)."""

    needs_labels = False

    def loss_from_outputs(self, out, y):
        return (out**2).mean()

    def loss(self, model, batch):
        return self.loss_from_outputs(model(batch[0]), None), {}


@pytest.mark.parametrize("name", list(ENTRY))
def test_unlabelled_data_for_a_label_free_method(setup, name):
    model, _, ds = setup
    ENTRY[name](model, _OutputEnergy(), wb.data.Dataset(ds.x))  # runs


def test_per_class_with_ood_labels(setup):
    model, ce, ds = setup
    y = ds.y.clone()
    y[0] = -1
    with pytest.raises(ValueError, match="unknown/OOD"):
        A.hessian_trace(model, ce, wb.data.Dataset(ds.x, y), n_probes=2, per_class=True)


# ----------------------------------------------------------------------------- common arguments
@pytest.mark.parametrize("name", list(ENTRY))
def test_model_method_data_seed_n_samples(setup, name):
    model, ce, ds = setup
    f = ENTRY[name]
    with pytest.raises(TypeError, match="torch.nn.Module"):
        f("model", ce, ds) if name != "interpolate" else A.interpolate("a", model, ce, ds)
    with pytest.raises(TypeError, match="method must be a workbench method"):
        f(model, torch.nn.CrossEntropyLoss(), ds)
    with pytest.raises(TypeError, match="Dataset"):
        f(model, ce, ds.x)
    with pytest.raises(TypeError, match="seed must be an int"):
        f(model, ce, ds, seed="0")
    with pytest.raises(ValueError, match="n_samples must be an int >= 1 or None"):
        f(model, ce, ds, n_samples=0)
    with pytest.raises(TypeError, match="n_samples"):
        f(model, ce, ds, n_samples=2.5)


# ----------------------------------------------------------------------------- curvature
def test_hessian_eigs_arguments(setup):
    model, ce, ds = setup
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        A.hessian_eigs(model, ce, ds, k=0)
    for bad in (2.5, True, "3"):
        with pytest.raises(TypeError, match="k must be an int"):
            A.hessian_eigs(model, ce, ds, k=bad)
    with pytest.raises(ValueError, match="exceeds the number of parameters"):
        A.hessian_eigs(model, ce, ds, k=10_000)
    for bad in (0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="tol"):
            A.hessian_eigs(model, ce, ds, k=1, tol=bad)
    with pytest.raises(ValueError, match="max_iter must be an int >= 3"):
        A.hessian_eigs(model, ce, ds, k=3, max_iter=2)
    with pytest.raises(ValueError, match="unknown which 'top'; valid: 'LA', 'SA', 'LM'"):
        A.hessian_eigs(model, ce, ds, k=1, which="top")
    with pytest.raises(ValueError, match="unknown hvp_mode 'exact'; valid: 'auto', 'chain', 'cached', 'fwd-rev'"):
        A.hessian_eigs(model, ce, ds, k=1, hvp_mode="exact")
    with pytest.raises(ValueError, match="memory_mb must be a positive number"):
        A.hessian_eigs(model, ce, ds, k=1, memory_mb=0)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1 or None"):
        A.hessian_eigs(model, ce, ds, k=1, batch_size=0)
    with pytest.raises(TypeError, match="params must be None, a parameter name"):
        A.hessian_eigs(model, ce, ds, k=1, params=[0])


def test_trace_density_sharpness_hvp_arguments(setup):
    model, ce, ds = setup
    with pytest.raises(TypeError, match="n_probes must be an int"):
        A.hessian_trace(model, ce, ds, n_probes=8.0)
    with pytest.raises(ValueError, match="chunk must be an int >= 1"):
        A.hessian_trace(model, ce, ds, chunk=0)
    with pytest.raises(ValueError, match="unknown estimator 'diag'; valid: 'hutchinson', 'hutch\\+\\+', 'exact'"):
        A.hessian_trace(model, ce, ds, estimator="diag")
    for kw in ({"steps": 0}, {"n_runs": 0}):
        with pytest.raises(ValueError, match=f"{next(iter(kw))} must be an int >= 1"):
            A.spectral_density(model, ce, ds, **kw)
    dens = A.spectral_density(model, ce, ds, n_runs=1, steps=3)
    with pytest.raises(ValueError, match="sigma must be a positive number"):
        dens.density(sigma=-1.0)
    with pytest.raises(TypeError, match="rho must be a number"):
        A.sharpness(model, ce, ds, rho="0.05")
    with pytest.raises(ValueError, match="rho must be a positive number"):
        A.sharpness(model, ce, ds, rho=-0.1)
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        A.sharpness(model, ce, ds, steps=0)
    with pytest.raises(TypeError, match="v must be a dict name -> tensor"):
        A.hvp(model, ce, ds, torch.zeros(10))
    with pytest.raises(ValueError, match="does not have"):
        A.hvp(model, ce, ds, {"nope": torch.zeros(1)})


# ----------------------------------------------------------------------------- landscape
def test_slice_steps_span_directions_metrics(setup):
    model, ce, ds = setup
    with pytest.raises(ValueError, match="odd int >= 3.*e.g. 5"):
        A.loss_slice_2d(model, ce, ds, steps=4)
    for bad in (3.0, True):
        with pytest.raises(TypeError, match="steps must be an int"):
            A.loss_slice_2d(model, ce, ds, steps=bad)
    with pytest.raises(ValueError, match="steps as a pair"):
        A.loss_slice_2d(model, ce, ds, steps=(5,))
    with pytest.raises(ValueError, match=r"steps\[1\] must be an odd int"):
        A.loss_slice_2d(model, ce, ds, steps=(5, 4))
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="span must be a positive number"):
            A.loss_slice_2d(model, ce, ds, steps=3, span=bad)
    with pytest.raises(TypeError, match="span must be a positive number"):
        A.loss_slice_1d(model, ce, ds, steps=3, span=[1.0])
    with pytest.raises(ValueError, match="span must be a number, a pair of numbers, or 'auto'"):
        A.loss_slice_2d(model, ce, ds, steps=3, span="wide")
    with pytest.raises(ValueError, match="span as a pair"):
        A.loss_slice_2d(model, ce, ds, steps=3, span=(1.0, 2.0, 3.0))
    with pytest.raises(TypeError, match="directions must be a dict name -> tensor.*random_directions"):
        A.loss_slice_2d(model, ce, ds, steps=3, directions=torch.zeros(2, 10))
    with pytest.raises(TypeError, match="direction must be a dict name -> tensor"):
        A.loss_slice_1d(model, ce, ds, steps=3, direction=torch.zeros(10))
    with pytest.raises(ValueError, match="expected 1 direction"):
        A.loss_slice_1d(model, ce, ds, steps=3, direction=({}, {}))
    with pytest.raises(TypeError, match="metrics must be a dict"):
        A.loss_slice_2d(model, ce, ds, steps=3, metrics=[len])
    with pytest.raises(TypeError, match=r"metrics\['m'\] must be a function"):
        A.loss_slice_2d(model, ce, ds, steps=3, metrics={"m": 1})
    with pytest.raises(ValueError, match="unknown evaluator 'fast'; valid: 'auto', 'mlp'"):
        A.loss_slice_1d(model, ce, ds, steps=3, evaluator="fast")
    with pytest.raises(ValueError, match="memory_mb must be a positive number"):
        A.loss_slice_2d(model, ce, ds, steps=3, memory_mb=-5)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1 or None"):
        A.loss_slice_2d(model, ce, ds, steps=3, batch_size=0)
    with pytest.raises(ValueError, match="unknown normalization"):
        A.loss_slice_2d(model, ce, ds, steps=3, normalization="unit")


def test_directions_paths_and_interpolation_arguments(setup):
    model, ce, ds = setup
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        A.random_directions(model, 0)
    with pytest.raises(TypeError, match="n must be an int"):
        A.random_directions(model, 1.5)
    with pytest.raises(TypeError, match="seed must be an int"):
        A.random_directions(model, 2, seed=None)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        A.random_directions({"w": torch.zeros(1)})
    (one,) = A.normalize_directions(model, {"fc.weight": torch.ones(3, 6)})  # a single dict is one direction
    assert torch.count_nonzero(one["body.0.weight"]) == 0
    with pytest.raises(TypeError, match="directions must be a dict"):
        A.normalize_directions(model, "filter")
    with pytest.raises(TypeError, match="path must be a SnapshotSeries"):
        A.path_directions(42, model)
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        A.path_directions([{}, {}], model, n=0)
    d = A.random_directions(model, 2)
    with pytest.raises(ValueError, match=r"needs two directions \(d1, d2\), got 1"):
        A.project_path([dict(model.named_parameters())] * 3, model, ce, ds, d[:1])
    with pytest.raises(ValueError, match="steps must be an int >= 2"):
        A.interpolate(model, model, ce, ds, steps=1)
    with pytest.raises(ValueError, match="t_range must contain"):
        A.interpolate(model, model, ce, ds, t_range=(0.2, 1.0))
    with pytest.raises(TypeError, match="t_range must be a pair"):
        A.interpolate(model, model, ce, ds, t_range=1.0)
    with pytest.raises(ValueError, match="unknown buffers 'b'; valid: 'interpolate', 'a'"):
        A.interpolate(model, model, ce, ds, buffers="b")
    with pytest.raises(TypeError, match="model_b must be a torch.nn.Module"):
        A.interpolate(model, None, ce, ds)
