import pytest
import torch

import workbench as wb


def test_mlp_features_head_and_flattening():
    m = wb.models.MLP(64, (32, 16), 10, seed=0)
    x = torch.rand(5, 1, 8, 8)
    z = m.features(x)
    assert z.shape == (5, 16) and m.feature_dim == 16
    assert torch.allclose(m(x), m.head(z))
    assert m(x.flatten(1)).shape == (5, 10)


def test_seeded_init_is_reproducible_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a = wb.models.MLP(4, (8,), 2, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = wb.models.MLP(4, (8,), 2, seed=3)
    c = wb.models.MLP(4, (8,), 2, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 40)])
def test_convnet_on_images_and_signals(shape):
    m = wb.models.ConvNet(shape, 10, width=8, feature_dim=16, seed=0)
    x = torch.rand(3, *shape)
    assert m.features(x).shape == (3, 16) and m(x).shape == (3, 10)
    flat = x.flatten(1)
    assert torch.allclose(m(flat), m(x))


def test_timemlp_shapes():
    d = wb.models.TimeMLP(dim=2, hidden=32, n_layers=2, seed=0)
    x = torch.randn(7, 2)
    assert d(x, torch.randint(0, 100, (7,))).shape == (7, 2)
    assert d(x, 5).shape == (7, 2)
    img = wb.models.TimeMLP(dim=64, hidden=32, seed=0)
    assert img.input_embedding is None
    assert img(torch.randn(3, 1, 8, 8), torch.tensor([1, 2, 3])).shape == (3, 1, 8, 8)
    with pytest.raises(ValueError, match="t must be"):
        d(x, torch.zeros(3))


def test_model_input_errors():
    m = wb.models.MLP(64, (8,), 10)
    with pytest.raises(ValueError, match="in_dim=2"):
        m(torch.zeros(4, 2))
    with pytest.raises(TypeError, match="floating-point"):
        m(torch.zeros(4, 64, dtype=torch.int64))
    with pytest.raises(ValueError, match="in_shape"):
        wb.models.ConvNet((1, 8, 8))(torch.zeros(2, 1, 7, 7))
    with pytest.raises(ValueError, match="activation"):
        wb.models.MLP(4, (8,), 2, activation="swishy")


def test_config_is_recorded():
    m = wb.models.MLP(64, hidden=(32,), out_dim=10, seed=1)
    assert m.config == {"in_dim": 64, "hidden": (32,), "out_dim": 10, "activation": "relu",
                        "dropout": 0.0, "norm": None, "seed": 1}


def test_pick_device():
    assert wb.pick_device().type in ("cpu", "cuda")
