"""``wb.models.wrap``: networks the workbench did not write, seen as workbench models, never changed;
and their checkpoints (weights + wrapper configuration, loaded into a given network)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import workbench as wb
from tests.zoo import HFStyle, TinyResNet, TinyViT
from workbench.checkpoint import ModelMismatchError, ModelRequiredError


def _x(n=4, size=8, seed=0):
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed))


def _snapshot(net: nn.Module):
    """Everything about a module that wrap must not change: state values, parameter objects,
    attributes and hooks of every submodule, mode flags."""
    return {
        "state": {k: v.clone() for k, v in net.state_dict().items()},
        "params": [id(p) for p in net.parameters()],
        "attrs": {name: sorted(vars(m)) for name, m in net.named_modules()},
        "hooks": {name: (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
                  for name, m in net.named_modules()},
        "modes": [m.training for m in net.modules()],
    }


def _same(a, b):
    assert a["params"] == b["params"] and a["attrs"] == b["attrs"]
    assert a["hooks"] == b["hooks"] and a["modes"] == b["modes"]
    assert a["state"].keys() == b["state"].keys()
    for k in a["state"]:
        assert torch.equal(a["state"][k], b["state"][k]), k


# ----------------------------------------------------------------------------- defaults
def test_resnet_defaults_take_the_input_of_fc():
    torch.manual_seed(0)
    net = TinyResNet()
    w = wb.models.wrap(net)
    assert isinstance(w, wb.models.WrappedClassifier) and w.module is net
    assert w.feature_dim == 16 and w.n_classes == 10
    x = _x()
    with torch.no_grad():
        z = w.features(x)
        oracle = torch.flatten(net.avgpool(net.layer2(net.layer1(net.relu(net.bn1(net.conv1(x)))))), 1)
        assert torch.equal(z, oracle)
        assert torch.equal(w.head(z), net(x)) and torch.equal(w(x), net(x))
    assert w.check(x)["consistent"]


def test_vit_uses_forward_features_and_head():
    torch.manual_seed(0)
    net = TinyViT().eval()
    w = wb.models.wrap(net)
    x = _x()
    with torch.no_grad():
        assert torch.equal(w.features(x), net.forward_features(x))
        assert torch.equal(w.head(w.features(x)), net(x))
    assert w.wrap_config["features"] == "forward_features" and w.wrap_config["head"] == "head"
    assert w.training is False  # starts in the network's mode


def test_hf_style_output_object_and_keyword_input():
    net = HFStyle()
    w = wb.models.wrap(net, input="pixel_values")
    x = _x()
    with torch.no_grad():
        assert torch.equal(w(x), net(pixel_values=x).logits)  # .logits found by default
        assert w.features(x).shape == (4, 32) and w.check(x)["consistent"]
    named = wb.models.wrap(net, output="logits")
    assert torch.equal(named(x), net(x).logits)


def test_dict_and_tuple_outputs():
    class DictNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.fc = nn.Linear(64, 8), nn.Linear(8, 3)

        def forward(self, x):
            h = self.body(x.flatten(1))
            return {"scores": self.fc(h), "h": h}

    class TupleNet(DictNet):
        def forward(self, x):
            out = super().forward(x)
            return out["h"], out["scores"]

    x = _x()
    d = DictNet()
    with pytest.raises(ValueError, match=r"a dict \(\['scores', 'h'\]\), not a tensor of logits.*output="):
        wb.models.wrap(d)(x)
    assert torch.equal(wb.models.wrap(d, output="scores")(x), d(x)["scores"])
    assert torch.equal(wb.models.wrap(d, output=lambda o: o["scores"] * 2)(x), 2 * d(x)["scores"])
    t = TupleNet()
    assert torch.equal(wb.models.wrap(t, output=1)(x), t(x)[1])
    with pytest.raises(ValueError, match="no key 'logits'"):
        wb.models.wrap(d, output="logits")(x)


# ----------------------------------------------------------------------------- options
def test_feature_maps_and_pooling():
    torch.manual_seed(0)
    net = TinyResNet().eval()
    x = _x()
    with torch.no_grad():
        maps = net.layer2(net.layer1(net.relu(net.bn1(net.conv1(x)))))  # (N, 16, 4, 4)
        avg = wb.models.wrap(net, features="layer2", head="fc")
        assert torch.equal(avg.features(x), maps.mean((2, 3)))
        assert torch.allclose(avg(x), avg.head(avg.features(x)))
        assert torch.equal(wb.models.wrap(net, features="layer2", pool="max").features(x), maps.amax((2, 3)))
        flat = wb.models.wrap(net, features="layer2", pool="flatten", head=False)
        assert flat.features(x).shape == (4, 16 * 4 * 4) and not hasattr(flat, "head")
        fn = wb.models.wrap(net, features="layer2", pool=lambda h: h[:, :, 0, 0])
        assert torch.equal(fn.features(x), maps[:, :, 0, 0])
        dotted = wb.models.wrap(net, features="layer2.bn2", head=False)
        assert dotted.features(x).shape == (4, 16)
        with pytest.raises(ValueError, match="pool='avg'"):
            wb.models.wrap(net, features="layer2", pool=None).features(x)
    vit = TinyViT().eval()
    cls = wb.models.wrap(vit, features="blocks", pool="cls", head="head")
    with torch.no_grad():
        t = vit.patch_embed(x).flatten(2).transpose(1, 2)
        t = torch.cat([vit.cls_token.expand(4, -1, -1), t], 1) + vit.pos_embed
        assert torch.allclose(cls.features(x), vit.blocks(t)[:, 0])
        tokens = wb.models.wrap(vit, features="blocks", pool="tokens", head="head")
        assert torch.allclose(tokens.features(x), vit.blocks(t).mean(1))
        with pytest.raises(ValueError, match=r"3-axis features \(4, 17, 16\).*pool='cls'.*'tokens'"):
            wb.models.wrap(vit, features="blocks", head="head").features(x)


def test_callable_features_and_a_new_head_module():
    torch.manual_seed(0)
    net = TinyResNet()
    probe = nn.Linear(16, 3)
    w = wb.models.wrap(net, features=lambda m, x: m.layer2(m.layer1(m.relu(m.bn1(m.conv1(x))))), head=probe)
    assert w.extra is probe and any(p is probe.weight for p in w.parameters())
    x = _x()
    assert w.head(w.features(x)).shape == (4, 3) and w.n_classes == 3
    assert torch.equal(w(x), w.head(w.features(x)))  # a head of one's own: forward = head(features)
    data = wb.data.Dataset(torch.rand(32, 1, 8, 8), torch.arange(32) % 3, kind="image")
    before, conv = probe.weight.detach().clone(), net.conv1.weight.detach().clone()
    wb.fit(w, wb.methods.CrossEntropy(), data, steps=2, batch_size=16, progress=False)
    assert not torch.equal(probe.weight, before) and not torch.equal(net.conv1.weight, conv)  # both trained


def test_wrap_is_the_identity_for_workbench_models():
    mlp = wb.models.MLP(64, (8,), 10)
    assert wb.models.wrap(mlp) is mlp
    w = wb.models.wrap(TinyResNet())
    assert wb.models.wrap(w) is w
    other = wb.models.wrap(mlp, features="body.0", head=False)  # options given: a real wrapper
    assert other.module is mlp and other.features(_x()).shape == (4, 8)


# ----------------------------------------------------------------------------- never changed
@pytest.mark.parametrize("make", [TinyResNet, TinyViT], ids=["resnet", "vit"])
def test_the_network_is_never_changed(make):
    torch.manual_seed(0)
    net = make()
    net.train()
    net.get_submodule("bn1" if make is TinyResNet else "norm").eval()  # a frozen layer: mixed modes
    before = _snapshot(net)
    w = wb.models.wrap(net, example=_x())
    x = _x()
    for features in (None, "layer2" if make is TinyResNet else "blocks"):
        v = wb.models.wrap(net, features=features, pool="avg" if make is TinyResNet else "cls")
        with torch.no_grad():
            v.features(x)
            v(x)
    copy.deepcopy(w).features(x)
    w.check(x)
    after = _snapshot(net)
    if make is TinyResNet:  # train-mode BatchNorm updates its running statistics on a forward:
        for k in after["state"]:  # as the network's own forward would; restore to compare the rest
            after["state"][k] = before["state"][k] if "running" in k or "num_batches" in k else after["state"][k]
    _same(before, after)
    assert [p for p in w.parameters()] == [p for p in net.parameters()]


def test_a_feature_hook_is_removed_when_the_forward_fails():
    net = TinyResNet()
    w = wb.models.wrap(net, features="layer2")
    with pytest.raises(RuntimeError):
        w.features(torch.rand(2, 3, 8, 8))  # wrong number of channels
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())


# ----------------------------------------------------------------------------- clear errors
def test_unknown_names_list_nearby_valid_ones():
    net = TinyResNet()
    with pytest.raises(ValueError, match=r"no submodule or method 'layer3'.*did you mean 'layer2'.*conv1, bn1"):
        wb.models.wrap(net, features="layer3")
    with pytest.raises(ValueError, match=r"'fcc'.*did you mean 'fc'"):
        wb.models.wrap(net, head="fcc")
    with pytest.raises(TypeError, match="torch.nn.Module"):
        wb.models.wrap(lambda x: x)
    with pytest.raises(ValueError, match="unknown pool"):
        wb.models.wrap(net, pool="mean")


def test_a_features_module_the_forward_never_reaches():
    net = TinyResNet()
    net.unused = nn.Conv2d(8, 8, 1)  # defined but never called by forward
    w = wb.models.wrap(net, features="unused", head=False)
    with pytest.raises(ValueError, match="never called submodule 'unused'"):
        w.features(_x())


def test_features_that_do_not_fit_the_head():
    w = wb.models.wrap(TinyResNet(), features="layer1", head="fc")
    with pytest.raises(ValueError, match=r"8 values per sample but the head 'fc' \(Linear\) expects 16"):
        w.head(w.features(_x()))
    with pytest.raises(ValueError, match="expects 16"):
        wb.models.wrap(TinyResNet(), features="layer1", head="fc", example=_x())
    with pytest.warns(UserWarning, match="differs from the model's forward"):
        wb.models.wrap(TinyResNet(), features="layer2", pool="max", head="fc", example=_x())


# ----------------------------------------------------------------------------- checkpoints
def _trained_resnet(classes=4, seed=0):
    torch.manual_seed(seed)
    net = TinyResNet(classes=classes)
    data = wb.data.Dataset(torch.rand(64, 1, 8, 8), torch.arange(64) % classes, kind="image")
    w = wb.models.wrap(net, features="layer2", head="fc")
    wb.fit(w, wb.methods.CrossEntropy(), data, steps=3, batch_size=32, progress=False)
    return net, w


def test_checkpoint_of_a_wrapped_network(tmp_path):
    net, w = _trained_resnet()
    path = wb.save_checkpoint(tmp_path / "w.safetensors", w, wb.methods.CrossEntropy())
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:  # the network's own keys, under model.
        assert sorted(k[len("model."):] for k in f.keys()) == sorted(net.state_dict())
    with pytest.raises(ModelRequiredError, match=r"TinyResNet \(tests.zoo.TinyResNet\).*model=TinyResNet"):
        wb.load_checkpoint(path)
    fresh = TinyResNet(classes=4)
    w2, m2 = wb.load_checkpoint(path, model=fresh)
    assert isinstance(w2, wb.models.WrappedClassifier) and w2.module is fresh and isinstance(m2, wb.methods.CrossEntropy)
    assert w2.wrap_config == w.wrap_config
    for k, v in net.state_dict().items():
        assert torch.equal(v, fresh.state_dict()[k])
    x = _x()
    w.eval(), w2.eval()
    assert torch.equal(w(x), w2(x)) and torch.equal(w.features(x), w2.features(x))
    with pytest.raises(ModelMismatchError, match=r"weights differ in shape \(conv1.weight: checkpoint \(8, 1, 3, 3\), model \(4, 1, 3, 3\)"):
        wb.load_checkpoint(path, model=TinyResNet(classes=4, width=4))
    with pytest.raises(ModelMismatchError, match="missing from the checkpoint"):
        wb.load_checkpoint(path, model=TinyViT(classes=4))
    data = path.read_bytes()
    assert b"\x80\x04" not in data[:64] and b"torch._utils" not in data


def test_checkpoint_of_a_wrapper_with_functions_needs_the_wrapped_network(tmp_path):
    torch.manual_seed(0)
    net = TinyResNet(classes=3)
    probe = nn.Linear(16, 3)
    w = wb.models.wrap(net, features=lambda m, x: m.layer2(m.layer1(m.relu(m.bn1(m.conv1(x))))), head=probe)
    path = wb.save_checkpoint(tmp_path / "f.safetensors", w)
    with pytest.raises(ModelRequiredError, match="function or module of your own"):
        wb.load_checkpoint(path, model=TinyResNet(classes=3))
    fresh, probe2 = TinyResNet(classes=3), nn.Linear(16, 3)
    w2 = wb.models.wrap(fresh, features=w._features.spec, head=probe2)
    got, _ = wb.load_checkpoint(path, model=w2)
    assert got is w2 and torch.equal(probe2.weight, probe.weight) and torch.equal(fresh.conv1.weight, net.conv1.weight)


def test_a_raw_network_still_cannot_be_saved_without_wrap(tmp_path):
    with pytest.raises(TypeError, match=r"config.*wb.models.wrap"):
        wb.save_checkpoint(tmp_path / "x.safetensors", TinyResNet())


def test_runs_round_trip_of_a_wrapped_network(tmp_path):
    net, w = _trained_resnet()
    method = wb.methods.CrossEntropy()
    data = wb.data.Dataset(torch.rand(64, 1, 8, 8), torch.arange(64) % 4, kind="image")
    hist = wb.fit(w, method, data, steps=2, batch_size=32, progress=False)
    store = wb.runs.RunStore(tmp_path / "runs")
    run_id = wb.runs.save(w, method, hist, store=store)
    row = wb.runs.list(store=store).iloc[0]
    assert row["model"] == "TinyResNet" and row["name"] == "crossentropy-tinyresnet"
    with pytest.raises(ModelRequiredError, match="pass the network"):
        wb.runs.load(run_id, store=store)
    w2, m2, h2 = wb.runs.load(run_id, store=store, model=TinyResNet(classes=4))
    assert h2.records == hist.records and w2.wrap_config == w.wrap_config
    for a, b in zip(w.state_dict().values(), w2.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ModelMismatchError, match="does not fit"):
        wb.runs.load(run_id, store=store, model=TinyResNet(classes=5))


def test_hf_style_checkpoint_restores_output_and_input(tmp_path):
    net = HFStyle()
    w = wb.models.wrap(net, input="pixel_values", output="logits")
    path = wb.save_checkpoint(tmp_path / "hf.safetensors", w)
    w2, _ = wb.load_checkpoint(path, model=HFStyle())
    x = _x()
    assert w2.wrap_config["input"] == "pixel_values" and torch.equal(w2(x), w(x))
