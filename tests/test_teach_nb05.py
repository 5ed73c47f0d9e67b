"""Notebook 05's exercises: right answers pass, typical wrong ones get their hint, never a traceback."""

import torch.nn.functional as F

import workbench as wb
from workbench.methods.kd import kd_loss


def test_soft_weight():
    assert wb.teach.check("05-soft-weight", 14.4)
    assert wb.teach.check("05-soft-weight", 0.5 * 9, temperature=3, alpha=0.5)
    assert "two factors" in wb.teach.check("05-soft-weight", 0.9).message
    assert "hard-label" in wb.teach.check("05-soft-weight", 0.1 * 16).message
    assert "squared" in wb.teach.check("05-soft-weight", 3.6).message
    assert "weight of the distillation term" in wb.teach.check("05-soft-weight", 16).message
    assert "number" in wb.teach.check("05-soft-weight", "14.4").message


def test_kd_term():
    def right(zs, zt, t):
        return kd_loss(zs, zt, None, temperature=t, alpha=1.0)[2]

    assert wb.teach.check("05-kd-term", right)

    def by_hand(zs, zt, t):
        p_t = F.softmax(zt / t, -1)
        return (p_t * (p_t.log() - F.log_softmax(zs / t, -1))).sum(-1).mean() * t**2

    assert wb.teach.check("05-kd-term", by_hand)
    no_t2 = wb.teach.check("05-kd-term", lambda zs, zt, t: by_hand(zs, zt, t) / t**2)
    assert "T²" in no_t2.message
    reversed_kl = wb.teach.check("05-kd-term", lambda zs, zt, t: by_hand(zt, zs, t))
    assert "KL(student ‖ teacher)" in reversed_kl.message
    assert "divide both" in wb.teach.check("05-kd-term", lambda zs, zt, t: by_hand(zs * t, zt * t, t)).message
    def mean_over_all(zs, zt, t):   # F.kl_div's reduction="mean": over classes too
        p_t = F.softmax(zt / t, -1)
        return (p_t * (p_t.log() - F.log_softmax(zs / t, -1))).mean() * t**2

    mean = wb.teach.check("05-kd-term", mean_over_all)
    assert "batchmean" in mean.message
    assert "raised" in wb.teach.check("05-kd-term", lambda zs, zt: 0).message
    assert not wb.teach.check("05-kd-term", lambda zs, zt, t: 0.0)


def test_collapse():
    assert wb.teach.check("05-collapse", "zero")
    assert "α > 0" in wb.teach.check("05-collapse", "a fixed point between them").message
    assert "does not stop" in wb.teach.check("05-collapse", "the true function").message
    assert "step 0" in wb.teach.check("05-collapse", "The noisy labels").message
    assert "not one of the choices" in wb.teach.check("05-collapse", "0").message
    assert len(wb.teach.exercises("05")) == 3
