"""Exercises of notebook 05 (distillation: teachers, students and random teachers)."""

from __future__ import annotations

import numbers

from ._core import _StudentError, call, choice, close, exercise, not_yet, right


def _number(answer) -> float:
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
        raise _StudentError(f"answer with a number, got {answer!r}")
    return float(answer)


@exercise(
    "05-soft-weight",
    question="With temperature T = 4 and alpha = 0.9, by what number is the KL term multiplied in the KD loss?",
    hints=("Two factors multiply the KL: the weight of the distillation term and a factor that depends on "
           "the temperature. Look at the loss above.",),
    expects="a number",
)
def _soft_weight(answer, temperature=4.0, alpha=0.9):
    v, t, a = _number(answer), float(temperature), float(alpha)
    if abs(v - a * t * t) <= 1e-6 * max(1.0, a * t * t):
        return right(f"α·T² = {a:g} x {t * t:g} = {a * t * t:g}. The T² keeps the soft term's gradients as large as "
                     "the hard term's: softening the logits by T shrinks their gradients by 1/T².")
    if abs(v - a) < 1e-9:
        return not_yet("α is only one of the two factors: what else multiplies the KL in the formula?")
    if abs(v - (1 - a)) < 1e-9 or abs(v - (1 - a) * t * t) < 1e-9:
        return not_yet("1 - α weights the hard-label cross-entropy; α weights the distillation term here.")
    if abs(v - a * t) < 1e-9:
        return not_yet("the temperature enters squared: the gradient of the softened term scales as 1/T².")
    if abs(v - t * t) < 1e-9:
        return not_yet("T² is one factor; the weight of the distillation term multiplies it too.")
    return not_yet("read the KD loss above: the KL is multiplied by α and by a power of T.")


def _kd_variants(zs, zt, t):
    import torch.nn.functional as F

    def kl(p_log, q_log):   # KL(p || q), summed over classes, mean over the batch
        return float((p_log.exp() * (p_log - q_log)).sum(-1).mean())

    ls, lt = F.log_softmax(zs / t, -1), F.log_softmax(zt / t, -1)
    return {
        "right": kl(lt, ls) * t * t,
        "no T²": kl(lt, ls),
        "reversed": kl(ls, lt) * t * t,
        "no temperature": kl(F.log_softmax(zt, -1), F.log_softmax(zs, -1)) * t * t,
        "mean over classes": kl(lt, ls) * t * t / zs.shape[-1],
    }


@exercise(
    "05-kd-term",
    question="Write kd_term(student_logits, teacher_logits, T): T² · KL(softmax(z_t / T) ‖ softmax(z_s / T)), "
             "the KL summed over classes and averaged over the batch.",
    hints=("p_t = softmax(z_t / T) and log p_s = log_softmax(z_s / T) along the class dimension; KL(p_t ‖ p_s) = "
           "sum of p_t (log p_t - log p_s) over classes; then the mean over the batch and the factor T².",),
    expects="a function kd_term(student_logits, teacher_logits, T) -> number",
)
def _kd_term(fn):
    import torch

    g = torch.Generator().manual_seed(5)
    zs = 3 * torch.randn(6, 10, generator=g, dtype=torch.float64)
    zt = 3 * torch.randn(6, 10, generator=g, dtype=torch.float64)
    for t in (4.0, 2.0):
        got = call(fn, zs.clone(), zt.clone(), t)
        v = _kd_variants(zs, zt, t)
        if close(got, v["right"], rtol=1e-4):
            continue
        if close(got, v["no T²"], rtol=1e-4):
            return not_yet("the KL is right; multiply it by T², which keeps the gradients of the softened term "
                           "the size of the hard term's.")
        if close(got, v["reversed"], rtol=1e-4):
            return not_yet("that is KL(student ‖ teacher). The teacher's distribution is the target: KL(p_t ‖ p_s) "
                           "= sum of p_t (log p_t - log p_s). (torch's F.kl_div(input, target) takes the "
                           "student's log-probabilities as input.)")
        if close(got, v["no temperature"], rtol=1e-4):
            return not_yet("divide both sets of logits by T before the softmax: that is what softens them.")
        if close(got, v["mean over classes"], rtol=1e-4):
            return not_yet("sum the KL over the classes (it is one divergence per sample), then average over the "
                           "batch (F.kl_div's reduction='batchmean', not 'mean').")
        return not_yet(f"with T = {t:g} the expected value is {v['right']:.4g}; check the softmax dimension "
                       "(the classes, dim=-1) and each factor.")
    return right("that is the distillation term of wb.methods.KnowledgeDistillation, to the last digit.")


@exercise(
    "05-collapse",
    question="Pure self-distillation (alpha = 0) in kernel ridge regression, after very many steps: the fit "
             "tends to 'the noisy labels', 'the true function', 'zero' or 'a fixed point between them'?",
    hints=("Every step multiplies the fit's coordinates in the kernel's eigenbasis by d/(d + λ), a number "
           "below 1. What happens to a number multiplied by 0.9 again and again?",),
    expects="'the noisy labels', 'the true function', 'zero' or 'a fixed point between them'",
)
def _collapse(answer):
    options = ["the noisy labels", "the true function", "zero", "a fixed point between them"]
    got = choice(answer, options)
    if got == "zero":
        return right("each step shrinks every eigen-coordinate by d/(d + λ) < 1: first the noise (small d) goes, "
                     "which helps, then the signal too. Only α > 0 stops it, at a fixed point.")
    if got == "a fixed point between them":
        return not_yet("that is what happens with α > 0: the ground truth pulls the fit back at every step. With "
                       "α = 0 nothing pulls back.")
    if got == "the true function":
        return not_yet("the first few steps do move towards it (the noise is removed first), but the shrinking "
                       "does not stop there. Look at the α = 0 curve at step 200.")
    return not_yet("the labels are used once, at step 0; every later step fits the previous fit and shrinks it.")
