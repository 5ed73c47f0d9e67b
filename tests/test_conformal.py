"""Split conformal (LAC, APS) and conformal risk control against closed forms and coverage."""

import math

import pytest
import torch

import workbench as wb
from workbench.analyses import conformal as cf

GOLD = torch.tensor([.05, .10, .20, .30, .35, .50, .60, .70, .90], dtype=torch.float64)
P4 = torch.tensor([[.55, .25, .15, .05]], dtype=torch.float64)


def test_quantile_and_lac_golden():
    assert cf.conformal_quantile(GOLD, 0.2) == pytest.approx(0.70)      # k = 8 (numpy "higher": 0.90)
    assert cf.conformal_quantile(GOLD, 0.05) == math.inf                 # k = 10 > n
    lac = cf.SplitConformal(0.70, 0.2, "lac", 9)
    assert lac.predict_sets(P4)[0].tolist() == [True, False, False, False]
    assert cf.SplitConformal(0.90, 0.2, "lac", 9).predict_sets(P4)[0].tolist() == [True, True, True, False]
    assert cf.SplitConformal(math.inf, 0.05, "lac", 9).predict_sets(P4).all()


def test_aps_scores_golden():
    s = cf.class_scores(P4, "aps")[0]
    assert s.tolist() == pytest.approx([.55, .80, .95, 1.0])
    aps = cf.SplitConformal(0.9, 0.1, "aps", 9)
    assert aps.predict_sets(P4)[0].tolist() == [True, True, False, False]   # inclusive rule
    # randomised: mass above + U p_y; U is one uniform per sample, drawn from the seed
    u = torch.rand(1, 1, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    r = cf.class_scores(P4, "aps", randomized=True, seed=3)[0]
    assert r[1].item() == pytest.approx(.55 + u.item() * .25)


@pytest.fixture(scope="module")
def digit_probs():
    ds = wb.data.load("digits")
    train, held = ds.split(0.4, seed=0)
    torch.manual_seed(0)
    lin = torch.nn.Linear(64, 10).double()
    x, y = train.x.reshape(len(train), -1).double(), train.y
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=60)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(x), y) + 1e-3 * lin.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return lin(held.x.reshape(len(held), -1).double()).softmax(1), held.y


@pytest.mark.parametrize("score,randomized", [("lac", False), ("aps", False), ("aps", True)])
def test_coverage_over_100_splits(digit_probs, score, randomized):
    p, y = digit_probs                                        # ~1080 held-out digits
    g = torch.Generator().manual_seed(0)
    covs = []
    n_cal = len(y) // 2
    for r in range(100):
        perm = torch.randperm(len(y), generator=g)
        c, t = perm[:n_cal], perm[n_cal:]
        sc = cf.split_conformal(p[c], y[c], alpha=0.1, score=score, randomized=randomized, seed=r)
        ev = cf.evaluate_sets(sc.predict_sets(p[t], seed=1000 + r), y[t])
        covs.append(ev.coverage)
    mean = sum(covs) / len(covs)
    assert abs(mean - 0.9) <= 0.02
    assert mean >= 0.9 - 0.01           # the guarantee is a lower bound (mean of 100 splits: small noise)


def test_risk_control_golden():
    # reference table (columns λ = 0..1 with loss non-decreasing) reversed into the paper's direction
    t = torch.tensor([[0, 0, 0, .5, 1], [0, 0, .5, .5, 1], [0, 0, 0, 0, 1], [0, .5, .5, 1, 1]]).double()
    lam = torch.tensor([0, .25, .5, .75, 1]).double()
    rc = cf.conformal_risk_control(t.flip(1), lam, alpha=0.35)
    assert rc.bound.flip(0).tolist() == pytest.approx([.2, .3, .4, .6, 1])
    assert rc.lam == pytest.approx(0.75) and rc.feasible            # = 1 - 0.25 of the reference grid
    rc = cf.conformal_risk_control(t.flip(1), lam, alpha=0.1)
    assert not rc.feasible and rc.lam == 1.0
    with pytest.raises(ValueError, match="non-increasing"):
        cf.conformal_risk_control(t, lam, alpha=0.35)


def test_risk_control_miscoverage_is_split_conformal(digit_probs):
    p, y = digit_probs
    lam = torch.linspace(0, 1, 201, dtype=torch.float64)
    # LAC sets {k : p_k >= 1 - λ}; miscoverage loss 1[p_y < 1 - λ] is non-increasing in λ
    py = p.gather(1, y[:, None])
    loss = (py < 1 - lam[None, :]).double()
    g = torch.Generator().manual_seed(1)
    covs = []
    for _ in range(50):
        perm = torch.randperm(len(y), generator=g)
        c, t = perm[:500], perm[500:]
        rc = cf.conformal_risk_control(loss[c], lam, alpha=0.1)
        assert float(rc.bound[rc.index]) <= 0.1
        covs.append(float((py[t] >= 1 - rc.lam).double().mean()))
    assert sum(covs) / len(covs) >= 0.89          # E[miscoverage] <= alpha, up to the noise of 50 splits


def test_bad_inputs():
    with pytest.raises(ValueError, match="score"):
        cf.split_conformal(P4, [0], score="raps")
    with pytest.raises(ValueError, match="alpha"):
        cf.conformal_quantile(GOLD, 1.5)
    with pytest.raises(ValueError, match="randomized"):
        cf.class_scores(P4, "lac", randomized=True)
