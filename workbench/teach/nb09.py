"""Exercises of notebook 09 (prototypes beyond PALM): ProtoPNet's similarity, the GCD metric,
forgetting, TEEN's calibration."""

from __future__ import annotations

import math

import torch

from . import _core
from ._core import exercise, not_yet, right


def _tensor(value, what: str) -> torch.Tensor:
    """The student's return value as a float tensor, or a verdict saying what came back."""
    if value is None or value is Ellipsis:
        raise _core._StudentError(f"{what} returned {value!r}: fill in the function body")
    try:
        return torch.as_tensor(value.detach() if hasattr(value, "detach") else value).float()
    except (TypeError, ValueError, RuntimeError):
        raise _core._StudentError(f"{what} must return a tensor or a number, got {type(value).__name__}") from None


@exercise(
    "09-similarity",
    question="Write similarity(d): ProtoPNet's similarity of a squared patch distance d (a tensor).",
    hints=("log((d + 1) / (d + ε)) with ε = 1e-4: large (≈ 9.2) at d = 0, tending to 0 far away.",
           "use torch.log on tensors; d is already a squared distance, do not square or root it"),
    expects="a function of a tensor of squared distances",
)
def _similarity(fn):
    d = torch.tensor([0.0, 1e-4, 0.5, 1.0, 4.0, 127.0])
    want = torch.log((d + 1) / (d + 1e-4))
    got = _tensor(_core.call(fn, d.clone()), "similarity(d)")
    if got.shape != d.shape:
        return not_yet(f"similarity(d) must return one value per distance (shape {tuple(d.shape)}), got {tuple(got.shape)}")
    if _core.close(got, want, rtol=1e-4, atol=1e-5):
        return right("9.21 at d = 0, 0.69 at d = 1, 0.008 at d = 127: a patch on the prototype is strong evidence.")
    if _core.close(got, torch.log(1 / (d + 1e-4)), rtol=1e-4, atol=1e-5):
        return not_yet("without the + 1 in the numerator the similarity turns negative far away (log of < 1); "
                       "ProtoPNet's log((d + 1)/(d + ε)) stays positive and tends to 0")
    if _core.close(got, torch.log((d.sqrt() + 1) / (d.sqrt() + 1e-4)), rtol=1e-4, atol=1e-5):
        return not_yet("d is already the squared distance (ProtoPNet never takes the square root)")
    if _core.close(got, torch.exp(-d), rtol=1e-4, atol=1e-5):
        return not_yet("exp(−d) is an RBF detection (the CBC head); ProtoPNet uses a log ratio")
    return not_yet("at d = 0 the similarity must be log(1/1e-4) = 9.2103 and at d = 1 it is log(2/1.0001)")


@exercise(
    "09-hungarian",
    question="y_true = [0,0,0,1,2,2], y_pred = [0,0,1,1,1,1], old classes {0, 1}: the v2 Old accuracy?",
    hints=("v2 matches clusters to classes once, over all samples, then scores the old samples.",),
    expects="a number between 0 and 1",
)
def _hungarian(answer):
    try:
        v = float(answer)
    except (TypeError, ValueError):
        return not_yet("answer with a number between 0 and 1, e.g. 0.25")
    if math.isclose(v, 0.5, abs_tol=1e-3):
        return right("cluster 1 goes to class 2 (two samples beat one), so the old samples 2 and 3 are wrong: 2/4.")
    if math.isclose(v, 0.75, abs_tol=1e-3):
        return not_yet("0.75 is v1: a separate match on the old subset lets cluster 1 be class 1 there while it is "
                       "class 2 for the new samples. v2 uses one match for everything")
    if math.isclose(v, 1 / 3, abs_tol=1e-3):
        return not_yet("1/3 is v2b, the mean of the per-class accuracies (2/3 and 0/1); v2 counts samples")
    if math.isclose(v, 2 / 3, abs_tol=1e-3):
        return not_yet("2/3 is All (4 of 6 right); Old counts only the samples of classes 0 and 1")
    return not_yet("match cluster 0 -> class 0 and cluster 1 -> class 2, then count the old samples that are right")


def _forgetting_cases():
    r1 = torch.tensor([[90.0, 0, 0], [60, 85, 0], [50, 70, 80]])
    r2 = torch.tensor([[50.0, 0, 0], [40, 90, 0], [60, 80, 70]])
    return r1, r2


@exercise(
    "09-forgetting",
    question="Write forgetting(R) (Chaudhry): mean over the first T-1 tasks of the best earlier accuracy "
             "(before the last task) minus the final accuracy.",
    hints=("for task j < T-1: max over rows j..T-2 of R[:, j], minus R[T-1, j]; then average over j",),
    expects="a function of a T x T tensor",
)
def _forgetting(fn):
    from ..analyses.continual import continual_metrics

    r1, r2 = _forgetting_cases()
    got = [float(_tensor(_core.call(fn, r.clone()), "forgetting(R)").reshape(-1)[0]) for r in (r1, r2)]
    want = [continual_metrics(r).forgetting for r in (r1, r2)]
    if all(math.isclose(g, w, abs_tol=1e-4) for g, w in zip(got, want)):
        return right("27.5 on the first matrix; on the second, task 0 ends above its earlier best, so it counts negative.")
    if math.isclose(got[0], continual_metrics(r1, convention="onpro").forgetting, abs_tol=1e-4):
        return not_yet("you divided by T (the last task, which cannot be forgotten yet, is averaged in): that is "
                       "the OnPro/Mai convention; Chaudhry averages over the first T-1 tasks")
    if math.isclose(got[0], 27.5, abs_tol=1e-4) and math.isclose(got[1], continual_metrics(r2, convention="prd").forgetting,
                                                                 abs_tol=1e-4):
        return not_yet("your max includes the last row, so an improvement counts 0 (the PRD repository's "
                       "convention); take the best accuracy *before* the last task")
    if math.isclose(got[0], -27.5, abs_tol=1e-4):
        return not_yet("that is backward transfer (final minus just-learned); forgetting is best-before minus final")
    return not_yet("on R = [[90,0,0],[60,85,0],[50,70,80]] the answer is ((90-50) + (85-70)) / 2 = 27.5")


@exercise(
    "09-teen",
    question="Write calibrate(p, base, tau, alpha): TEEN's calibrated prototypes (M, D) of new-class means p "
             "from base prototypes base (B, D).",
    hints=("normalise p and base; w = softmax(tau * p̂ basêᵀ) over the base classes; "
           "Δ = normalise(w basê); return (1 - alpha) p̂ + alpha Δ",),
    expects="a function calibrate(p, base, tau, alpha)",
)
def _teen(fn):
    from ..analyses.prototype_calibration import teen_calibrate

    g = torch.Generator().manual_seed(9)
    p, base = torch.randn(3, 5, generator=g) * 2, torch.randn(4, 5, generator=g) * 3
    for tau, alpha in ((16.0, 0.5), (1.0, 0.1)):
        got = _tensor(_core.call(fn, p.clone(), base.clone(), tau, alpha), "calibrate(...)")
        want = teen_calibrate(p, base, temperature=tau, alpha=alpha)
        if got.shape != want.shape:
            return not_yet(f"return one prototype per new class: shape {tuple(want.shape)}, got {tuple(got.shape)}")
        if not _core.close(got, want, rtol=1e-4, atol=1e-5):
            un = (1 - alpha) * p + alpha * torch.nn.functional.normalize(
                (tau * p @ torch.nn.functional.normalize(base, dim=1).T).softmax(1)
                @ torch.nn.functional.normalize(base, dim=1), dim=1)
            if _core.close(got, un, rtol=1e-4, atol=1e-5):
                return not_yet("normalise the new means first (p̂ = p/‖p‖): the cosines and the mix use unit vectors")
            return not_yet(f"with tau={tau}, alpha={alpha} the result differs; check the softmax temperature and "
                           "that Δ is normalised")
    return right("each new prototype leans toward the base prototypes it resembles; alpha sets how far.")
