"""The any-model contract: networks the workbench did not write (a ResNet-style network with
BatchNorm, residual blocks and global pooling; a ViT-style network with a class token and
dropout), wrapped with ``wb.models.wrap``, pass the same calls the built-in models pass: fit,
embed, predict, every OOD detector, 1-D/2-D loss slices, Hessian eigenvalues and trace, a runs
round trip, and every classifier view. After each analysis the user's network is bit-identical
(parameters and buffers) and every submodule is in the mode it was in, with mixed modes (a frozen
normalisation layer in eval mode inside a network in train mode)."""

from __future__ import annotations

import pytest
import torch

import workbench as wb
from tests.zoo import TinyResNet, TinyViT

pytest.importorskip("plotly")
pytest.importorskip("ipywidgets")

NETS = {"resnet": TinyResNet, "vit": TinyViT}
FROZEN = {"resnet": "bn1", "vit": "blocks.0"}  # put in eval mode inside a train-mode network


@pytest.fixture(scope="module")
def splits():
    digits = wb.data.load("digits")
    idt, idte, ood = wb.data.ood_split(digits, ood_classes=[8, 9], seed=0)
    return idt[:240], idte[:96], ood[:96]


@pytest.fixture(scope="module", params=list(NETS))
def trained(request, splits):
    name = request.param
    idt, _, _ = splits
    torch.manual_seed(0)
    net = NETS[name](classes=8)
    model = wb.models.wrap(net)
    method = wb.methods.CrossEntropy()
    hist = wb.fit(model, method, idt, steps=8, batch_size=80, lr=3e-3, seed=0, progress=False)
    net.train()
    net.get_submodule(FROZEN[name]).eval()  # mixed modes from here on
    return name, net, model, method, hist


class Untouched:
    """``with Untouched(net): ...`` asserts the network is bit-identical and every submodule in
    its mode afterwards."""

    def __init__(self, net):
        self.net = net

    def __enter__(self):
        self.state = {k: v.clone() for k, v in self.net.state_dict().items()}
        self.modes = [(n, m.training) for n, m in self.net.named_modules()]
        self.params = [id(p) for p in self.net.parameters()]
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            return False
        assert [(n, m.training) for n, m in self.net.named_modules()] == self.modes, "a submodule changed mode"
        assert [id(p) for p in self.net.parameters()] == self.params
        for k, v in self.net.state_dict().items():
            assert torch.equal(v, self.state[k]), f"{k} changed"
        assert all(not m._forward_hooks and not m._forward_pre_hooks for m in self.net.modules())
        return False


def test_fit_trained_every_parameter(trained):
    name, net, model, _, hist = trained
    assert hist.status == "completed" and len(hist) == 8
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in net.parameters())


def test_embed_and_predict(trained, splits):
    _, net, model, _, _ = trained
    _, idte, _ = splits
    with Untouched(net):
        z = wb.analyses.embed(model, idte)
        pred = wb.analyses.predict(model, idte)
    assert isinstance(z, wb.data.Embeddings) and z.shape == (len(idte), 16)
    assert torch.equal(z.labels, idte.y) and z.images is not None
    assert pred.logits.shape == (len(idte), 8) and 0 <= pred.accuracy <= 1
    with torch.no_grad(), wb._modes.eval_mode(model):  # the logits are the network's own output
        assert torch.allclose(pred.logits, net(idte.x), atol=1e-5)


def test_every_ood_detector(trained, splits):
    _, net, model, _, _ = trained
    idt, idte, ood = splits
    with Untouched(net):
        bank = wb.ood.FeatureBank(model)
        protos = wb.analyses.fit_prototypes(wb.analyses.embed(model, idt), n_prototypes=2)
        for name, cls in wb.ood.DETECTORS.items():
            det = cls(prototypes=protos.prototypes) if name == "PrototypeScore" else cls()
            src = bank if name != "PrototypeScore" else bank
            if name == "PrototypeScore":  # scores the backbone features against k-means prototypes
                det = det.fit_features(bank.features(idt).backbone)
                s_id, s_ood = (det.predict_features(bank.features(d).backbone) for d in (idte, ood))
            else:
                det.fit(src, idt)
                s_id, s_ood = det.predict(model, idte), det.predict(bank, ood)
            assert s_id.shape == (len(idte),) and s_ood.shape == (len(ood),)
            assert torch.isfinite(s_id).all() and torch.isfinite(s_ood).all(), name


def test_loss_slices(trained, splits):
    _, net, model, method, _ = trained
    _, idte, _ = splits
    with Untouched(net):
        line = wb.analyses.loss_slice_1d(model, method, idte, steps=5, seed=0)
        land = wb.analyses.loss_slice_2d(model, method, idte, steps=3, seed=0)
    assert line.loss.shape == (5,) and land.loss.shape == (3, 3)
    assert torch.isfinite(line.loss).all() and torch.isfinite(land.loss).all()
    # the centre is the trained weights: the loss there is the network's own eval-mode loss
    with torch.no_grad(), wb._modes.eval_mode(model):
        own = torch.nn.functional.cross_entropy(net(idte.x), idte.y)
    assert abs(float(line.loss[2]) - float(own)) < 1e-4


def test_hessian(trained, splits):
    name, net, model, method, _ = trained
    _, idte, _ = splits
    with Untouched(net):
        try:
            spec = wb.analyses.hessian_eigs(model, method, idte[:48], k=2)
            tr = wb.analyses.hessian_trace(model, method, idte[:48], seed=0, n_probes=4)
        except RuntimeError as err:
            if name == "vit" and "_scaled_dot_product_flash_attention" in str(err):
                pytest.xfail("reported: on CPU, double backward through scaled_dot_product_attention's "
                             "flash kernel is not implemented; curvature should run attention with the math kernel")
            raise
    assert spec.eigenvalues.shape == (2,) and spec.eigenvalues[0] >= spec.eigenvalues[1]
    assert torch.isfinite(torch.as_tensor(float(tr.trace)))


def test_runs_round_trip(trained, tmp_path):
    name, net, model, method, hist = trained
    store = wb.runs.RunStore(tmp_path)
    with Untouched(net):
        run_id = wb.runs.save(model, method, hist, store=store)
    fresh = NETS[name](classes=8)
    model2, _, hist2 = wb.runs.load(run_id, store=store, model=fresh)
    assert model2.module is fresh and hist2.records == hist.records
    for k, v in net.state_dict().items():
        assert torch.equal(v, fresh.state_dict()[k])


def test_every_classifier_view_builds(trained, splits):
    name, net, model, method, hist = trained
    idt, idte, ood = splits
    with Untouched(net):
        z = wb.analyses.embed(model, idte)
        views = [
            wb.widgets.EmbeddingView(wb.analyses.project(z), data=idte),
            wb.widgets.EmbeddingView(z),
            wb.widgets.PrototypeView(z),
            wb.widgets.LandscapeView(wb.analyses.loss_slice_2d(model, method, idte, steps=3, seed=0)),
            wb.widgets.CompareView([(model, method, hist)], data=idte),
            wb.widgets.DistillationView(wb.analyses.distillation_trajectory(model, {"self": model}, idte)),
        ]
        bank = wb.ood.FeatureBank(model)
        cmp = wb.ood.compare(["Energy", "KNN"], bank, idt, idte, {"8-9": ood})
        views.append(wb.widgets.OODLens(wb.ood.ood_map(cmp, bank, idte, {"8-9": ood})))
    palm = wb.methods.PALM(n_classes=8, n_prototypes=2, top_k=1, dim=8)
    palm.setup(model)  # sized from the wrapper's feature_dim
    with Untouched(net):
        views.append(wb.widgets.PrototypeView(palm, model, idte))
    live = wb.widgets.LiveTraining(min_interval=0)
    wb.fit(wb.models.wrap(NETS[name](classes=8)), method, idt, steps=2, batch_size=80, callbacks=[live],
           progress=False)
    views.append(live)
    for v in views:
        assert isinstance(v, wb.widgets.View) and len(v.figure.data) > 0


@pytest.mark.gpu
def test_a_wrapped_network_on_the_gpu(splits, tmp_path):
    """Every entry point takes the model's device: data stays on the CPU, results come back there."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    idt, idte, ood = splits
    torch.manual_seed(0)
    net = TinyResNet(classes=8).cuda()
    model = wb.models.wrap(net)
    method = wb.methods.CrossEntropy()
    hist = wb.fit(model, method, idt, steps=4, batch_size=80, progress=False)
    z = wb.analyses.embed(model, idte)
    assert isinstance(z, wb.data.Embeddings) and z.device.type == "cpu"
    assert wb.analyses.predict(model, idte).logits.device.type == "cpu"
    s = wb.ood.KNN(k=5).fit(model, idt).predict(model, ood)
    assert s.shape == (len(ood),) and torch.isfinite(s).all()
    with Untouched(net):
        line = wb.analyses.loss_slice_1d(model, method, idte, steps=3, seed=0)
        wb.analyses.hessian_eigs(model, method, idte[:48], k=1)
    assert torch.isfinite(line.loss).all()
    path = wb.save_checkpoint(tmp_path / "gpu.safetensors", model, method)
    fresh = TinyResNet(classes=8).cuda()
    model2, method2 = wb.load_checkpoint(path, model=fresh)
    assert next(fresh.parameters()).is_cuda and model2.module is fresh  # loaded where it is
    assert torch.equal(model2.module.fc.weight, net.fc.weight)
    assert hist.status == "completed"
