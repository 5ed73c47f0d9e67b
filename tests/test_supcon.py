"""SupCon / SimCLR loss, augmentations per data kind, projection heads, checkpoints."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import workbench as wb
from workbench._config import build, describe
from workbench.methods import augment as A
from workbench.methods.supcon import supcon_loss


def _naive_supcon(z, ids, tau):
    """Khosla et al. eq. 2 written as loops (the oracle)."""
    n = z.shape[0]
    total, anchors = 0.0, 0
    for i in range(n):
        pos = [p for p in range(n) if p != i and ids[p] == ids[i]]
        if not pos:
            continue
        den = sum(math.exp(float(z[i] @ z[a]) / tau) for a in range(n) if a != i)
        total += -sum(math.log(math.exp(float(z[i] @ z[p]) / tau) / den) for p in pos) / len(pos)
        anchors += 1
    return total / anchors


def test_supcon_loss_matches_loops():
    g = torch.Generator().manual_seed(0)
    z = F.normalize(torch.randn(8, 5, generator=g, dtype=torch.float64), dim=1)
    ids = torch.tensor([0, 1, 0, 2, 0, 1, 3, 2])  # id 3 has no positive: left out
    loss, logs = supcon_loss(z, ids, 0.5)
    assert loss.item() == pytest.approx(_naive_supcon(z, ids, 0.5), rel=1e-10)
    assert set(logs) == {"pos_cos", "neg_cos"}


def test_simclr_when_unlabelled_and_unknown_labels_are_own_class():
    model = wb.models.MLP(4, (8,), 3, seed=0)
    m = wb.methods.SupCon(temperature=0.2, augment=None, feature_dim=8, seed=0)
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    z = m.embed(model, torch.cat([x, x]))
    # no labels: positives are the other view of the same sample only
    loss, _ = m.loss(model, (x, None))
    ref, _ = supcon_loss(z, torch.arange(6).repeat(2), 0.2)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    # labels with -1: those samples behave as their own class
    y = torch.tensor([0, 0, -1, 1, -1, 1])
    loss, _ = m.loss(model, (x, y))
    ids = torch.tensor([0, 0, 100, 1, 101, 1]).repeat(2)
    ref, _ = supcon_loss(z, ids, 0.2)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    # supervised=False ignores labels
    m2 = wb.methods.SupCon(temperature=0.2, augment=None, feature_dim=8, seed=0, supervised=False)
    assert m2.loss(model, (x, y))[0].item() == pytest.approx(m.loss(model, (x, None))[0].item(), rel=1e-6)


def test_base_temperature_scales_the_loss():
    model = wb.models.MLP(4, (8,), 3, seed=0)
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    a = wb.methods.SupCon(0.1, augment=None, feature_dim=8)
    b = wb.methods.SupCon(0.1, augment=None, feature_dim=8, base_temperature=0.07)
    assert b.loss(model, (x, y))[0].item() == pytest.approx(a.loss(model, (x, y))[0].item() * 0.1 / 0.07, rel=1e-6)


@pytest.mark.parametrize(
    "kind,shape",
    [("points", (16, 2)), ("image", (16, 1, 8, 8)), ("image", (16, 8, 8)), ("signal", (16, 1, 40)),
     ("vector", (16, 7)), ("none", (16, 3))],
)
def test_augmentations_keep_shape_and_are_seeded(kind, shape):
    aug = A.get_augmentation(kind)
    x = torch.rand(shape)
    a = aug(x, generator=torch.Generator().manual_seed(3))
    b = aug(x, generator=torch.Generator().manual_seed(3))
    c = aug(x, generator=torch.Generator().manual_seed(4))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    if kind != "none":
        assert not torch.equal(a, c)
        assert not torch.equal(a, x)


def test_auto_picks_by_shape_and_image_shift_moves_pixels():
    assert A.kind_of_batch(torch.zeros(3, 1, 8, 8)) == "image"
    assert A.kind_of_batch(torch.zeros(3, 1, 40)) == "signal"
    assert A.kind_of_batch(torch.zeros(3, 2)) == "points"
    assert A.kind_of_batch(torch.zeros(3, 9)) == "vector"
    # a pure one-pixel shift of a single bright pixel lands on a neighbour
    aug = A.ImageAugment(shift=1.0, rotate=0, zoom=0, noise=0, erase=0)
    x = torch.zeros(64, 1, 8, 8)
    x[:, 0, 4, 4] = 1.0
    out = aug(x, generator=torch.Generator().manual_seed(0))
    com = (out[:, 0] * torch.arange(8.0)[None, None, :]).sum((1, 2)) / out[:, 0].sum((1, 2))
    assert ((com - 4).abs() <= 1.0 + 1e-5).all() and (com - 4).abs().max() > 0.3
    # erasing with probability 1 zeroes a rectangle in every image
    er = A.ImageAugment(shift=0, rotate=0, zoom=0, noise=0, erase=1.0, erase_size=0.5)
    assert ((er(torch.ones(10, 1, 8, 8)) == 0).flatten(1).any(1)).all()
    # signal shift is a zero-filled roll
    sa = A.SignalAugment(shift=0.25, scale=0, noise=0)
    s = torch.arange(1.0, 9.0).repeat(5, 1, 1)
    o = sa(s, generator=torch.Generator().manual_seed(1))
    for row in o[:, 0]:
        nz = row[row != 0]
        assert torch.equal(nz, torch.arange(nz[0].item(), nz[0].item() + len(nz)))


def test_user_augmentation_and_bad_names():
    calls = []

    def flip(x):
        calls.append(1)
        return x.flip(-1)

    m = wb.methods.SupCon(augment=flip, feature_dim=8)
    m.loss(wb.models.MLP(4, (8,), 2, seed=0), (torch.randn(4, 4), torch.tensor([0, 1, 0, 1])))
    assert len(calls) == 2  # two views
    with pytest.raises(ValueError, match="valid names"):
        wb.methods.SupCon(augment="crop")
    with pytest.raises(TypeError, match="augment must be"):
        wb.methods.SupCon(augment=3)
    with pytest.raises(ValueError, match="input's shape"):
        A.get_augmentation(lambda x: x[:1])(torch.zeros(3, 2))


def test_supcon_argument_errors():
    with pytest.raises(ValueError, match="temperature"):
        wb.methods.SupCon(temperature=0)
    with pytest.raises(ValueError, match="n_views"):
        wb.methods.SupCon(n_views=0)
    with pytest.raises(ValueError, match="head"):
        wb.methods.SupCon(head="resnet")
    m = wb.methods.SupCon(n_views=1, augment=None, feature_dim=8)
    with pytest.raises(ValueError, match="n_views >= 2"):
        m.loss(wb.models.MLP(4, (8,), 2, seed=0), (torch.randn(4, 4), None))


def test_head_needs_feature_size_before_training_and_setup_records_it():
    model = wb.models.MLP(4, (8,), 2, seed=0)
    m = wb.methods.SupCon()
    with pytest.raises(ValueError, match="feature_dim=8"):
        m.loss(model, (torch.randn(4, 4), torch.tensor([0, 1, 0, 1])))
    m.setup(model)
    assert m.config["feature_dim"] == 8 and m.proj[0].in_features == 8
    m.setup(model)  # idempotent
    with pytest.raises(ValueError, match="feature_dim=16"):
        m.setup(wb.models.MLP(4, (16,), 2, seed=0))


def test_fit_trains_head_and_checkpoint_round_trip(tmp_path):
    ds = wb.data.load("gaussians8", n=256, seed=0)
    model = wb.models.MLP(2, (16,), 8, seed=0)
    m = wb.methods.SupCon(temperature=0.2, augment=A.Jitter(std=0.05), dim=8, feature_dim=16)
    head0 = m.proj[0].weight.detach().clone()
    h = wb.fit(model, m, ds, steps=30, batch_size=64, lr=3e-3, progress=False)
    assert h.status == "completed"
    assert h.series("loss")[-5:].mean() < h.series("loss")[:5].mean()
    assert not torch.equal(head0, m.proj[0].weight)
    path = wb.save_checkpoint(tmp_path / "sc.safetensors", model, m)
    model2, m2 = wb.load_checkpoint(path)
    assert isinstance(m2.augment, A.Jitter) and m2.augment.std == 0.05
    x = ds.x[:10]
    assert torch.allclose(m.embed(model, x), m2.embed(model2, x))
    # evaluation reports the loss only (SupCon trains no classifier)
    ev = m.evaluate(model, ds)
    assert "loss" in ev and "acc" not in ev


def test_augmentation_config_rebuilds():
    aug = A.ImageAugment(shift=2.0, erase=0.0)
    again = build(*describe(aug).values())
    assert isinstance(again, A.ImageAugment) and again.shift == 2.0 and again.erase == 0.0


@pytest.mark.slow
def test_supcon_digits_knn_accuracy():
    """Done-when check: SupCon on digits reaches kNN accuracy >= 0.95 on the test split."""
    from workbench.analyses import embed, knn_accuracy

    train, test = wb.data.load("digits").split(0.8, seed=0)
    model = wb.models.MLP(64, (256, 256), 10, seed=0)
    method = wb.methods.SupCon(temperature=0.1, feature_dim=model.feature_dim)
    wb.fit(model, method, train, steps=500, batch_size=256, lr=1e-3, schedule="cosine", seed=0, progress=False)
    feats = knn_accuracy(embed(model, train), train.y, embed(model, test), test.y)
    head = knn_accuracy(embed(model, train, fn=method.embed), train.y, embed(model, test, fn=method.embed), test.y)
    print(f"SupCon digits kNN accuracy: features {feats:.4f}, head {head:.4f}")
    assert feats >= 0.95 and head >= 0.95
