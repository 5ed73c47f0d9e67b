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
