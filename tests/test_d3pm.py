"""D3PM (uniform and absorbing transitions) and its sampler. Golden values: diffusion_ii.md §13-3."""

from __future__ import annotations

import math

import pytest
import torch

import workbench as wb

B4 = [0.1, 0.2, 0.3, 0.4]


def test_forward_marginals_equal_their_closed_form():
    # uniform: Q̄_t = ᾱ_t I + (1 − ᾱ_t)/K 11ᵀ, ᾱ_t = ∏(1 − β_s)
    u = wb.methods.D3PM(3, transition="uniform", betas=B4)
    torch.testing.assert_close(u.q_onestep[0, 0], torch.tensor([0.933333, 0.033333, 0.033333]), atol=1e-6, rtol=0)
    torch.testing.assert_close(u.q_bar[3, 0], torch.tensor([0.534933, 0.232533, 0.232533]), atol=1e-6, rtol=0)
    abar = torch.cumprod(1 - torch.tensor(B4, dtype=torch.float64), 0)
    closed = abar[:, None, None] * torch.eye(3) + (1 - abar)[:, None, None] / 3
    torch.testing.assert_close(u.q_bar.double(), closed, atol=1e-7, rtol=0)
    # absorbing (mask = state 3): a token stays with probability ∏(1 − β), else it is masked
    a = wb.methods.D3PM(3, transition="absorbing", betas=B4)
    assert a.n_total == 4 and a.mask == 3
    torch.testing.assert_close(a.q_bar[:, 0, 0], torch.tensor([0.9, 0.72, 0.504, 0.3024]))
    torch.testing.assert_close(a.q_bar[:, 0, 3], 1 - torch.tensor([0.9, 0.72, 0.504, 0.3024]))
    torch.testing.assert_close(a.q_bar[:, 3], torch.tensor([0.0, 0, 0, 1]).expand(4, 4))
    # "jsd" schedule: P(masked after j steps) = j/T, exactly 1 at the end
    j = wb.methods.D3PM(3, 4, "absorbing")
    torch.testing.assert_close(j.betas, torch.tensor([1 / 4, 1 / 3, 1 / 2, 1.0]))
    torch.testing.assert_close(j.q_bar[:, 1, 3], torch.tensor([0.25, 0.5, 0.75, 1.0]))
    # and forward samples follow the marginals
    x0 = torch.zeros(20000, 1, dtype=torch.long)
    xs = a.q_sample(x0, 2, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(xs.reshape(-1), minlength=4).double() / 20000
    torch.testing.assert_close(freq, a.q_bar[2, 0].double(), atol=0.01, rtol=0)


def test_posterior_model_step_and_losses_golden():
    u = wb.methods.D3PM(3, transition="uniform", betas=B4, hybrid=0.001)
    x0, x_t, t = torch.tensor([[0]]), torch.tensor([[1]]), 2  # 1-indexed t = 3
    q = torch.softmax(u.q_posterior_logits(torch.nn.functional.one_hot(x0, 3).float(), x_t, t), -1)
    torch.testing.assert_close(q[0, 0], torch.tensor([0.491935, 0.451613, 0.056452]), atol=1e-5, rtol=0)
    ptilde = torch.log(torch.tensor([0.7, 0.2, 0.1]))
    p = torch.softmax(u.p_logits(ptilde.expand(1, 1, 3), x_t, t), -1)
    torch.testing.assert_close(p[0, 0], torch.tensor([0.224449, 0.713427, 0.062124]), atol=1e-5, rtol=0)

    class Const(torch.nn.Module):
        def forward(self, x, t):
            return ptilde.expand(len(x), x.shape[1], 3)

    vb, ce = u._losses(Const(), x0, torch.tensor([t]), x_t)
    assert float(vb) == pytest.approx(0.251194, abs=2e-5) and float(vb) * math.log(2) == pytest.approx(0.174114, abs=2e-5)
    assert float(ce) * math.log(2) == pytest.approx(0.356675, abs=1e-5)
    assert float(vb + u.hybrid * ce) == pytest.approx(0.251708, abs=2e-5)
    # at t = 0 the variational term is the decoder NLL −log p̃(x0)
    vb0, _ = u._losses(Const(), x0, torch.tensor([0]), x_t)
    assert float(vb0) == pytest.approx(-math.log2(0.7), abs=1e-5)
    # absorbing posterior: from a mask it may unmask to x0; an unmasked token stays
    a = wb.methods.D3PM(3, transition="absorbing", betas=B4)
    oh = torch.nn.functional.one_hot(torch.tensor([[0]]), 4).float()
    qm = torch.softmax(a.q_posterior_logits(oh, torch.tensor([[3]]), 2), -1)
    torch.testing.assert_close(qm[0, 0], torch.tensor([0.435484, 0, 0, 0.564516]), atol=1e-5, rtol=0)
    q0 = torch.softmax(a.q_posterior_logits(oh, torch.tensor([[0]]), 2), -1)
    torch.testing.assert_close(q0[0, 0], torch.tensor([1.0, 0, 0, 0]), atol=1e-5, rtol=0)
    assert torch.isinf(a.x0_logits(torch.zeros(1, 1, 4))[0, 0, 3])  # the model never predicts a mask as x0


def test_d3pm_trains_samples_and_records_the_unmasking_order():
    digits = wb.data.load("digits", n=200, seed=0)
    binary = (digits.x > 0.5).float()
    for transition in ("absorbing", "uniform"):
        d = wb.methods.D3PM(2, 10, transition)
        model = wb.models.TokenDenoiser(64, d.n_total, hidden=32, n_layers=1, time_dim=8, seed=0)
        h = wb.fit(model, d, wb.data.Dataset.from_arrays(binary, digits.y), steps=15, batch_size=64, lr=3e-3,
                   progress=False)
        assert h.loss[-3:].mean() < h.loss[:3].mean()
        nll = d.nll_bound(model, binary[:16])
        assert nll.shape == (16,) and torch.isfinite(nll).all() and (nll > 0).all()
        tr = wb.analyses.sample_discrete(model, d, n=6, shape=(1, 8, 8), seed=0)
        assert tr.states.shape == (11, 6, 64) and tr.samples.max() <= 1 and "DiscreteTrajectory" in repr(tr)
        assert torch.equal(tr.timesteps, torch.tensor([9, 8, 7, 6, 5, 4, 3, 2, 1, 0, -1]))
        if transition == "absorbing":
            assert (tr.states[0] == 2).all() and tr.masked_share()[0] == 1 and tr.masked_share()[-1] == 0
            dec = tr.decided_at
            # a token decided at frame f is masked before f and fixed from f on (absorbing: never changes again)
            f = dec[0, 0]
            assert (tr.states[:f, 0, 0] == 2).all() and (tr.states[f:, 0, 0] == tr.samples[0, 0]).all()
        assert torch.equal(wb.analyses.sample_discrete(model, d, n=6, shape=(1, 8, 8), seed=0).states, tr.states)
    with pytest.raises(ValueError, match="integer states"):
        d.loss(model, (digits.x, None))
    with pytest.raises(ValueError, match="TokenDenoiser"):
        wb.methods.D3PM(2, 10, "absorbing").x0_logits(torch.zeros(1, 64, 2))


def test_sequences_and_their_stats():
    seq = wb.data.load("sequences", n=300, seed=0, length=12, vocab=5)
    P = seq.meta["transition"]
    assert seq.x.shape == (300, 12) and torch.allclose(P.sum(1), torch.ones(5))
    assert (P.diagonal() == 0).all()  # no self-transitions when branching < vocab
    s = wb.analyses.sequence_stats(seq.x, seq)
    assert s.allowed == 1.0 and s.loglik_allowed == pytest.approx(s.data_loglik)
    rnd = torch.randint(0, 5, (300, 12), generator=torch.Generator().manual_seed(0))
    assert wb.analyses.sequence_stats(rnd, seq).allowed < 0.6
    with pytest.raises(ValueError, match="outside"):
        wb.analyses.sequence_stats(rnd + 5, seq)
