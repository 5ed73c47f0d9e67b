"""Headline claims of issue 18 (distillation, second wave), guarded in the default run at a size
CI affords. The full measurements (3-5 seeds, long runs) are printed by
``benchmarks/distillation_ii_experiments.py``; here one seed and short runs, with margins
measured over seeds 0-2 at exactly these sizes (one torch thread):

* **semi-supervised beats supervised with 50 labels**: a mean teacher (EMA 0.99, μ 3, ramp-up over the
  first quarter) vs cross-entropy on the same 50 digits, MLP 64-256-256, 600 steps, batch 32.
  Measured gaps at this size (seeds 0, 1, 2): +5.0, +3.3, +3.1 points (10 s of CPU per seed).
  FixMatch needs longer: at 600 steps its gaps were +7.0, +0.3, −0.3 points (at 2000 steps, the
  benchmark: +7.2, +5.9, +1.1), and at 250 steps −4 to +5 — its unlabelled term only starts once
  the model is confident.
* **a DM set of 10 images per class beats 10 random real images per class**: 40 DM iterations
  (batch_real 64), each set judged by 2 DD ConvNets trained 60 epochs. Measured gaps (seeds 0, 1,
  2): +3.1, +3.9, +2.0 points (4 s of CPU per seed). The benchmark's 500-iteration, 300-epoch run
  gives a larger margin.
* **WAD's weights rank unseen-class images below known ones** (AUROC > 0.8): in
  ``tests/test_semi_supervised.py`` (raw-pixel teacher, 0.84).
"""

from __future__ import annotations

import pytest
import torch

import workbench as wb

STEPS = 600


@pytest.fixture(scope="module")
def digits():
    torch.set_num_threads(1)
    return wb.data.load("digits").split(0.8, seed=0)


def test_semi_supervised_student_beats_the_supervised_baseline_with_50_labels(digits):
    train, test = digits
    labelled, unlabelled = wb.recipes.few_labels(train, 5, seed=0)
    base = wb.models.MLP(64, (256, 256), 10, seed=0)
    wb.fit(base, wb.methods.CrossEntropy(), labelled, steps=STEPS, lr=1e-3, batch_size=32, seed=0, progress=False)
    sup = wb.analyses.predict(base, test).accuracy
    method = wb.methods.MeanTeacher(0.99, epoch_steps=STEPS // 20)
    r = wb.recipes.semi_supervised(wb.models.MLP(64, (256, 256), 10, seed=0), method, labelled, unlabelled,
                                   steps=STEPS, batch_size=32, lr=1e-3, test=test, seed=0, record_every=STEPS)
    print(f"50 labels, {STEPS} steps: supervised {sup:.4f}, mean teacher {r.test_accuracy:.4f}")
    assert r.test_accuracy >= sup + 0.02
    # the teacher's pseudo-labels of the unlabelled digits beat the 50-label model's own accuracy
    assert r.trace.summary()["all accuracy"].iloc[-1] > sup


def test_distribution_matching_beats_random_real_images_at_10_per_class(digits):
    train, test = digits
    dm = wb.recipes.distribution_matching(train, 10, iterations=40, batch_real=64, seed=0)
    rnd = wb.recipes.random_real_subset(train, 10, seed=0)
    e_dm = wb.recipes.evaluate_synthetic(dm, test, n_models=2, epochs=60, seed=0)
    e_rnd = wb.recipes.evaluate_synthetic(rnd, test, n_models=2, epochs=60, seed=0)
    print(f"10 images/class: DM {e_dm!r}; random {e_rnd!r}")
    assert e_dm.accuracy >= e_rnd.accuracy + 0.01
