"""Prototypical few-shot episodes, inductive and transductive (soft k-means) accuracy, 95 % CI."""

from __future__ import annotations

import math

import pytest
import torch

import workbench as wb
from workbench.analyses import fewshot_eval, fewshot_from_embeddings, sample_episodes


def _clusters(n_classes=6, per=30, d=8, spread=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_classes, d, generator=g) * 3
    y = torch.arange(n_classes).repeat_interleave(per)
    return centres[y] + spread * torch.randn(len(y), d, generator=g), y


def test_episodes_are_well_formed_and_seeded():
    _, y = _clusters()
    sup, qry = sample_episodes(y, n_way=4, k_shot=2, n_query=5, n_episodes=20, seed=3)
    assert sup.shape == (20, 4, 2) and qry.shape == (20, 4, 5)
    for e in range(20):
        s, q = sup[e].flatten(), qry[e].flatten()
        assert len(set(s.tolist()) | set(q.tolist())) == 4 * 7  # no sample twice
        cls = y[sup[e][:, 0]]
        assert len(set(cls.tolist())) == 4  # distinct classes
        assert torch.equal(y[sup[e]], cls[:, None].expand(4, 2))  # row c = one class
        assert torch.equal(y[qry[e]], cls[:, None].expand(4, 5))
    again = sample_episodes(y, n_way=4, k_shot=2, n_query=5, n_episodes=20, seed=3)
    assert torch.equal(again[0], sup) and torch.equal(again[1], qry)
    with pytest.raises(ValueError, match="qualify"):
        sample_episodes(y, n_way=7)
    with pytest.raises(ValueError, match="qualify"):
        sample_episodes(y, n_way=2, k_shot=20, n_query=20)
    with pytest.raises(ValueError, match="n_way"):
        sample_episodes(y, n_way=0)
    only = sample_episodes(y, n_way=2, n_episodes=5, classes=[1, 4])[0]
    assert set(y[only].flatten().tolist()) == {1, 4}


def test_accuracy_and_ci():
    z, y = _clusters(spread=0.05)
    r = fewshot_from_embeddings(z, y, n_way=5, k_shot=1, n_query=10, n_episodes=50)
    assert r.accuracy == 1.0 and r.ci95 == 0.0 and r.n_episodes == 50
    # random features: chance level, and the CI is 1.96 std / sqrt(E) of the episode accuracies
    g = torch.Generator().manual_seed(0)
    rz = torch.randn(len(y), 8, generator=g)
    r = fewshot_from_embeddings(rz, y, n_way=5, k_shot=1, n_query=10, n_episodes=200)
    assert abs(r.accuracy - 0.2) < 0.05
    acc = r.episode_accuracy.double()
    assert r.ci95 == pytest.approx(1.96 * acc.std().item() / math.sqrt(200), rel=1e-5)
    assert "5-way 1-shot" in repr(r)


def test_transductive_soft_kmeans_refinement():
    # one-shot supports are noisy draws from wide clusters: refining the prototypes with the
    # (many) unlabelled queries moves them toward the true class means
    z, y = _clusters(n_classes=5, per=60, spread=2.0, seed=1)
    ind = fewshot_from_embeddings(z, y, n_way=5, k_shot=1, n_query=30, n_episodes=100, normalize=None)
    tra = fewshot_from_embeddings(z, y, n_way=5, k_shot=1, n_query=30, n_episodes=100, normalize=None,
                                  transductive=True, temperature=1.0)
    assert tra.transductive and not ind.transductive
    assert tra.accuracy > ind.accuracy + 0.02
    # iters=0 is the inductive classifier
    zero = fewshot_from_embeddings(z, y, n_way=5, k_shot=1, n_query=30, n_episodes=100, normalize=None,
                                   transductive=True, iters=0)
    assert zero.accuracy == ind.accuracy


def test_one_soft_kmeans_round_by_hand():
    # 2-way 1-shot in 1-D: supports at 0 (class 0) and 10 (class 1); queries at 4, 5.5 (class 0)
    # and 9, 6 (class 1). Inductive: 5.5 is nearer 10, so 3 of 4 are right. One soft k-means
    # round at T = 4, r_q = softmax_c(-(q - mu_c)^2 / 4):
    #   q=4: [0.9933, 0.0067]  q=5.5: [0.0759, 0.9241]  q=9: [0.0000, 1.0000]  q=6: [0.0067, 0.9933]
    #   mu0 = (0 + 0.9933*4 + 0.0759*5.5 + 0.0067*6) / (1 + 1.0759) = 2.134
    #   mu1 = (10 + 0.0067*4 + 0.9241*5.5 + 9 + 0.9933*6) / (1 + 2.9241) = 7.663
    # and 5.5 stays nearer mu1 (2.16 vs 3.37).
    from workbench.analyses.fewshot import prototype_classify

    sup = torch.tensor([0.0, 10.0]).reshape(1, 2, 1, 1)
    q = torch.tensor([4.0, 5.5, 9.0, 6.0]).reshape(1, 4, 1)
    assert prototype_classify(sup, q).tolist() == [[0, 1, 1, 1]]
    mu = torch.tensor([[0.0], [10.0]])
    r = (-(q[0] - mu.T) ** 2 / 4.0).softmax(-1)  # (4, 2)
    mu1 = (mu + r.T @ q[0]) / (1 + r.sum(0))[:, None]
    assert mu1[:, 0].tolist() == pytest.approx([2.134, 7.663], abs=2e-3)
    pred = prototype_classify(sup, q, transductive=True, iters=1, temperature=4.0)
    assert pred.tolist() == [torch.cdist(q[0], mu1).argmin(-1).tolist()]
    # many rounds at a low temperature: hard k-means from the supports
    hard = prototype_classify(sup, q, transductive=True, iters=20, temperature=1e-3)
    assert hard.shape == (1, 4)
    with pytest.raises(ValueError, match="support must be"):
        prototype_classify(sup[0], q)


def test_fewshot_eval_with_a_model():
    ds = wb.data.load("digits", n=400, seed=0)
    model = wb.models.MLP(64, (32,), 10, seed=0)
    r = fewshot_eval(model, ds, n_way=5, k_shot=5, n_query=5, n_episodes=20, center=ds)
    assert 0.2 < r.accuracy <= 1.0 and r.k_shot == 5
    r2 = fewshot_eval(model, ds, fn=lambda m, x: x.flatten(1), n_episodes=20)
    assert 0.2 < r2.accuracy <= 1.0
    with pytest.raises(ValueError, match="labelled"):
        fewshot_eval(model, wb.data.Dataset(ds.x))
    with pytest.raises(ValueError, match="normalize"):
        fewshot_from_embeddings(torch.randn(40, 3), torch.arange(40) % 4, n_way=2, normalize="zscore")
