"""The mode context managers restore every submodule's flag, also on error."""

import pytest
import torch
from torch import nn

from workbench._modes import eval_mode, train_mode


def _net():
    net = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.Linear(4, 2))
    net.train()
    net[1].eval()  # frozen BatchNorm inside a model in train mode (fine-tuning set-up)
    return net


def _flags(m):
    return [s.training for s in m.modules()]


def test_eval_mode_restores_mixed_modes():
    net = _net()
    before = _flags(net)
    with eval_mode(net, None):
        assert not any(_flags(net))
    assert _flags(net) == before


def test_train_mode_restores_after_error():
    net = _net()
    net.eval()
    before = _flags(net)
    with pytest.raises(RuntimeError), train_mode(net):
        assert all(_flags(net))
        raise RuntimeError("boom")
    assert _flags(net) == before


def test_module_train_override_is_honoured():
    class Frozen(nn.Module):
        def __init__(self):
            super().__init__()
            self.teacher = nn.Linear(2, 2)

        def train(self, mode=True):
            super().train(mode)
            self.teacher.eval()
            return self

    m = Frozen().eval()
    with train_mode(m):
        assert m.training and not m.teacher.training
    assert not m.training


def test_shared_module_listed_once():
    net = _net()
    with eval_mode(net, net):
        pass
    assert net.training and not net[1].training
    assert torch.is_grad_enabled()


# ---------------------------------------------------------------- the workbench's own switches
import workbench as wb  # noqa: E402


def _mixed_mlp():
    """An MLP in train mode whose BatchNorm is frozen in eval mode (a fine-tuning set-up)."""
    net = wb.models.MLP(64, (16,), 10, norm="batch", dropout=0.1, seed=0).train()
    net.body[1].eval()
    return net


@pytest.fixture(scope="module")
def digits():
    ds = wb.data.load("digits")
    return wb.data.Dataset.from_arrays(ds.flat, ds.y)


def test_fit_restores_every_submodule(digits):
    net = _mixed_mlp()
    method = wb.methods.PALM(10, 2, top_k=1, dim=8)
    before = _flags(net)
    seen = []

    class Look(wb.training.Callback):  # in train mode at every step, also after an evaluation
        def on_step_end(self, state):
            seen.append(all(_flags(state.model)) and all(_flags(state.method)))

        def on_eval(self, state, metrics):
            seen.append(all(_flags(state.model)) and all(_flags(state.method)))

    wb.fit(net, method, digits, steps=2, batch_size=64, val=digits, eval_every=1, progress=False,
           callbacks=[Look(), wb.training.Snapshots(every=1, embed=digits)])
    assert seen == [True] * 4 and _flags(net) == before
    method.eval()
    method.proj.train()
    m_before = _flags(method)
    method.evaluate(net, digits)  # PALM's own evaluate switches its mode
    assert _flags(method) == m_before and _flags(net) == before


def test_embed_and_feature_bank_restore_every_submodule(digits):
    net = _mixed_mlp()
    before = _flags(net)
    wb.analyses.embed(net, digits)
    assert _flags(net) == before
    wb.ood.FeatureBank(net).features(digits)
    assert _flags(net) == before


def test_diffusion_sampling_restores_every_submodule():
    den = wb.models.TimeMLP(dim=2, hidden=8, n_layers=1, time_dim=8, input_embedding=None, seed=0).train()
    first = next(m for m in den.modules() if m is not den)
    first.eval()
    before = _flags(den)
    wb.analyses.sample_trajectory(den, wb.methods.DDPM(10), n=4, seed=0)
    assert _flags(den) == before
