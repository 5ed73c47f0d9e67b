"""Prototypes that keep learning: accuracy matrix and forgetting, TEEN calibration, OnPro, the
FSCIL and online recipes, and prototype drift.

Golden values: ``/work/shared/references/prototypes_ii.md`` §7, §8, §10.
"""

from __future__ import annotations

import math

import pytest
import torch

import workbench as wb
from workbench.analyses import accuracy_matrices, continual_metrics, teen_calibrate
from workbench.methods.onpro import apf_pair_probabilities, ope_loss

R = [[90, 0, 0], [60, 85, 0], [50, 70, 80]]


# ----------------------------------------------------------------------------- metrics
def test_metrics_on_the_hand_case_in_every_convention():
    m = continual_metrics(R)
    assert math.isclose(m.final_accuracy, 66.666667, abs_tol=1e-5)
    assert math.isclose(m.average_incremental_accuracy, 76.388889, abs_tol=1e-5)
    assert math.isclose(m.forgetting, 27.5) and m.convention == "chaudhry"
    assert math.isclose(m.backward_transfer, -27.5)
    assert torch.allclose(m.task_forgetting, torch.tensor([40.0, 15.0], dtype=torch.float64))
    assert math.isclose(continual_metrics(R, convention="onpro").forgetting, 18.333333, abs_tol=1e-5)
    assert math.isclose(continual_metrics(R, convention="prd").forgetting, 27.5)


def test_forgetting_conventions_differ_when_a_task_improves_at_the_end():
    r = [[50, 0, 0], [40, 90, 0], [60, 80, 70]]  # task 0 ends above its earlier best
    assert math.isclose(continual_metrics(r).forgetting, ((50 - 60) + (90 - 80)) / 2)  # may go negative
    assert math.isclose(continual_metrics(r, convention="prd").forgetting, (0 + 10) / 2)  # clipped at 0
    assert math.isclose(continual_metrics(r, convention="onpro").forgetting, (0 + 10) / 3)


def test_metrics_refuse_bad_matrices():
    with pytest.raises(ValueError, match="square"):
        continual_metrics([[1, 2, 3]])
    with pytest.raises(ValueError, match="NaN"):
        continual_metrics([[float("nan"), 0], [1, 1]])
    with pytest.raises(ValueError, match="valid"):
        continual_metrics(R, convention="mai")


def test_accuracy_matrices_from_predictions_hand_case():
    y = torch.tensor([0, 0, 1, 1, 2, 3])
    tasks = [[0, 1], [2, 3]]
    preds = torch.tensor([[0, 0, 1, 0, 1, 1],    # after task 0: class 0 2/2, class 1 1/2
                          [0, 2, 2, 3, 2, 3]])   # after task 1: class 0 1/2, class 1 0/2, 2 and 3 right
    m = accuracy_matrices(preds, y, tasks)
    assert torch.allclose(m.per_task, torch.tensor([[0.75, 0.0], [0.25, 1.0]], dtype=torch.float64))
    assert torch.allclose(m.per_class, torch.tensor([[1.0, 0.5, 0, 0], [0.5, 0, 1, 1]], dtype=torch.float64))
    assert m.seen.tolist() == [[True, True, False, False], [True, True, True, True]]
    met = m.metrics()
    assert math.isclose(met.forgetting, 0.5) and math.isclose(met.final_accuracy, 0.625)


# ----------------------------------------------------------------------------- TEEN
def test_teen_calibration_golden():
    e, p = torch.eye(3), torch.tensor([[0.8, 0.6, 0.0]])
    assert torch.allclose(teen_calibrate(p, e), torch.tensor([[0.899585, 0.320364, 0.000001]]), atol=1e-6)
    assert torch.allclose(teen_calibrate(p, e, alpha=0.1), torch.tensor([[0.819917, 0.544073, 0.0]]), atol=1e-6)
    assert torch.allclose(teen_calibrate(p, e, temperature=1.0), torch.tensor([[0.765420, 0.599180, 0.164194]]),
                          atol=1e-6)
    assert torch.allclose(teen_calibrate(p, e, alpha=0.0), p)  # α = 0: the plain (unit) mean
    with pytest.raises(ValueError, match="share D"):
        teen_calibrate(torch.ones(1, 2), e)


# ----------------------------------------------------------------------------- OnPro
def test_ope_and_apf_golden():
    z1 = torch.tensor([[1, 0], [.9, .1], [0, 1.0]])
    z2 = torch.tensor([[.8, .2], [1, 0], [.1, 1.0]])
    assert math.isclose(float(ope_loss(z1, z2, torch.tensor([0, 0, 1]))), 0.308608, abs_tol=1e-6)
    pairs, prob = apf_pair_probabilities(torch.tensor([[0.0, 0], [1, 0], [0, 3]]))
    assert pairs.tolist() == [[0, 1], [0, 2], [1, 2]]
    assert torch.allclose(prob, torch.tensor([0.495509, 0.254403, 0.250088]), atol=1e-6)


def test_reservoir_keeps_a_uniform_sample_and_only_trains_in_training_mode():
    m = wb.methods.OnPro(10, buffer_size=20, feature_dim=4, dim=4)
    x = torch.arange(200, dtype=torch.float32)[:, None].repeat(1, 4)
    y = torch.arange(200) % 10
    torch.manual_seed(0)
    for i in range(0, 200, 10):
        m._reservoir(x[i:i + 10], y[i:i + 10])
    assert m.n_stored == 20 and int(m.n_seen) == 200
    stored = m.buffer_x[:, 0]
    assert len(set(stored.tolist())) == 20 and float(stored.mean()) > 40  # not just the first 20
    model = wb.models.MLP(4, (4,), 10, seed=0)
    m.eval()
    m.loss(model, (x[:10], y[:10]))
    assert int(m.n_seen) == 200  # evaluation does not fill the buffer


# ----------------------------------------------------------------------------- recipes
@pytest.fixture(scope="module")
def digits_split():
    return wb.data.load("digits", n=500, seed=0).split(0.7, seed=0)


def test_online_continual_single_pass_and_matrix(digits_split):
    train, test = digits_split
    tasks = [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    model = wb.models.MLP(64, (32,), 10, seed=0)
    method = wb.methods.OnPro(10, buffer_size=30, replay_batch=16, feature_dim=32, dim=16, n_rotations=2)
    res = wb.recipes.online_continual(model, method, train, test, tasks=tasks, batch_size=10, lr=3e-3)
    n_task = [int(torch.isin(train.y, torch.tensor(t)).sum()) for t in tasks]
    assert [h.last_step for h in res.histories] == [n // 10 for n in n_task]  # one pass, batches of 10
    assert res.matrices.per_task.shape == (2, 2) and res.predictions.shape == (2, len(test))
    assert method.n_stored == 30 and int(method.n_seen) == sum(n // 10 * 10 for n in n_task)
    assert math.isclose(res.metrics.final_accuracy, float(res.matrices.per_task[-1].mean()))
    drift = wb.analyses.prototype_drift(res.embeddings, test.y, seen=tasks[:1] + [tasks[0] + tasks[1]])
    assert drift.prototypes.shape == (2, 10, 2) and drift.seen[0].sum() == 5
    assert torch.isfinite(drift.displacement()).all()


def test_fscil_teen_protocol(digits_split):
    train, test = digits_split
    res = wb.recipes.fscil_teen(wb.models.MLP(64, (32,), 10, seed=0), train, test, base_classes=[0, 1, 2, 3, 4, 5],
                                sessions=[[6, 7], [8, 9]], shots=3, base_steps=30, alpha=0.5)
    for v in ("plain", "calibrated"):
        assert res.accuracy[v].shape == (3,) and res.matrices[v].per_class.shape == (3, 10)
    # the base session has no new classes: calibration cannot change it
    assert float(res.accuracy["plain"][0]) == float(res.accuracy["calibrated"][0])
    assert math.isnan(float(res.novel_accuracy["plain"][0]))
    # calibrated new prototypes are TEEN of the plain ones against the base class means
    base = torch.stack([res.prototypes["plain"][0][c] for c in range(6)])
    plain_new = torch.stack([res.prototypes["plain"][1][c] for c in (6, 7)])
    cal_new = torch.stack([res.prototypes["calibrated"][1][c] for c in (6, 7)])
    assert torch.allclose(cal_new, teen_calibrate(plain_new, base, alpha=0.5), atol=1e-6)
    assert list(res.table().columns) == ["session", "prototypes", "accuracy", "base", "novel", "harmonic"]


def test_recipes_refuse_bad_protocols(digits_split):
    train, test = digits_split
    model = wb.models.MLP(64, (8,), 10, seed=0)
    with pytest.raises(ValueError, match="distinct"):
        wb.recipes.online_continual(model, wb.methods.OnPro(10, feature_dim=8), train, test, tasks=[[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="share"):
        wb.recipes.fscil_teen(model, train, test, base_classes=[0, 1], sessions=[[1, 2]])
