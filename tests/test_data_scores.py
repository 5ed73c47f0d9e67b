"""EL2N, GraNd, forgetting events and pruning (golden values: references §4)."""

import math

import pytest
import torch
from torch import nn

import workbench as wb
from workbench.analyses import data_scores as dsc
from workbench.data import Dataset

P = torch.tensor([.7, .2, .1])


class LogitsOf(nn.Module):
    """Linear(2, 3) with W = 0 and b = log p: softmax is p for every input."""

    def __init__(self, p=P):
        super().__init__()
        self.fc = nn.Linear(2, 3)
        with torch.no_grad():
            self.fc.weight.zero_()
            self.fc.bias.copy_(p.log())

    def forward(self, x):
        return self.fc(x)


def test_el2n_golden_and_average():
    ds = Dataset(torch.tensor([[1.0, 2.0]]), torch.tensor([1]))
    s = wb.analyses.el2n(LogitsOf(), ds)
    assert s.scores.item() == pytest.approx(1.067708, abs=1e-5)
    q = torch.tensor([.1, .8, .1])
    two = wb.analyses.el2n([LogitsOf(), LogitsOf(q)], ds)
    assert two.scores.item() == pytest.approx((1.067708 + (q - torch.tensor([0, 1, 0])).norm().item()) / 2, abs=1e-5)
    assert two.n_models == 2


def test_grand_golden_closed_form():
    ds = Dataset(torch.tensor([[1.0, 2.0]]), torch.tensor([1]))
    assert wb.analyses.grand(LogitsOf(), ds).scores.item() == pytest.approx(2.615339, abs=1e-5)


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 3))


def test_grand_equals_a_per_sample_loop_and_leaves_the_model():
    net = _net()
    net.train()
    x = torch.randn(10, 4, generator=torch.Generator().manual_seed(1))
    y = torch.arange(10) % 3
    ds = Dataset(x, y)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    got = wb.analyses.grand(net, ds, chunk=4).scores
    assert net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    ref = copy_eval(net)
    for i in range(10):
        ref.zero_grad()
        nn.functional.cross_entropy(ref(x[i : i + 1]), y[i : i + 1]).backward()
        norm = torch.cat([p.grad.flatten() for p in ref.parameters()]).norm()
        assert got[i].item() == pytest.approx(norm.item(), rel=1e-4)
    # the head-only score equals ‖p − y‖·√(‖z‖² + 1) for a linear head with a bias
    head = wb.analyses.grand(net, ds, params=["4.weight", "4.bias"]).scores
    with torch.no_grad():
        z = ref[:4](x)
        p = ref(x).softmax(1)
    want = (p - nn.functional.one_hot(y, 3)).norm(dim=1) * (z.square().sum(1) + 1).sqrt()
    assert torch.allclose(head, want, rtol=1e-4)
    with pytest.raises(ValueError, match="valid: 0.weight"):
        wb.analyses.grand(net, ds, params=["fc.weight"])


def copy_eval(net):
    import copy

    ref = copy.deepcopy(net)
    return ref.eval()


def test_forgetting_golden():
    seq = torch.tensor([0, 1, 1, 0, 1, 0, 1]).bool()
    s = dsc.forgetting_events(torch.zeros(7, dtype=torch.long), seq, 1)
    assert s.scores.item() == 2
    s = dsc.forgetting_events(torch.tensor([0, 1, 1, 0, 0, 1]), torch.tensor([1, 0, 0, 0, 1, 0]).bool(), 3)
    assert s.scores[0].item() == 1 and math.isinf(s.scores[1].item()) and math.isinf(s.scores[2].item())


def test_forgetting_callback_leaves_the_fit_unchanged():
    ds = wb.data.load("moons", n=200, seed=0)

    def run(cbs):
        net = wb.models.MLP(in_dim=2, hidden=(16,), out_dim=2, seed=0, dropout=0.2)  # dropout draws in train mode
        wb.fit(net, wb.methods.CrossEntropy(), ds, steps=30, batch_size=50, seed=0, callbacks=cbs, progress=False)
        return net

    cb = wb.training.ForgettingEvents()
    a, b = run([]), run([cb])
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    idx, ok = cb.record()
    assert idx.shape == (30 * 50,) and ok.dtype == torch.bool
    s = dsc.forgetting_events(idx, ok, len(ds))
    assert s.scores.shape == (200,) and (s.scores >= 0).all()


def test_keep_and_prune_and_retrain():
    s = dsc.SampleScores(torch.tensor([.5, .1, .9, .3]), "el2n")
    assert s.keep(0.5).tolist() == [0, 2] and s.keep(0.5, which="easiest").tolist() == [1, 3]
    ds = wb.data.load("moons", n=200, seed=0)
    train, val = ds.split(0.7, seed=0)
    net = wb.models.MLP(in_dim=2, hidden=(16,), out_dim=2, seed=0)
    scores = wb.analyses.el2n(net, train)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    res = wb.recipes.prune_and_retrain(net, wb.methods.CrossEntropy(), train, val, scores,
                                       fractions=(1.0, 0.5), steps=20)
    assert set(res.accuracy) == {(1.0, "hardest"), (0.5, "hardest"), (0.5, "random")}
    assert res.sizes[(0.5, "random")] == len(train) // 2
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert res.table().shape == (2, 2)
