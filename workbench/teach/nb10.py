"""Exercises of notebook 10 (diffusion guidance and beyond)."""

from __future__ import annotations

import torch

from ._core import _StudentError, call, choice, close, exercise, not_yet, right


@exercise(
    "10-guidance-recall",
    question="As the guidance scale grows from 1 to 4, which falls: precision or recall?",
    hints=("Guided samples crowd toward the part of each mode the label explains best: are they still "
           "inside the data, and do they still cover all of it?",),
    expects="'precision' or 'recall'",
)
def _guidance_recall(answer):
    if choice(answer, ["precision", "recall"]) == "recall":
        return right("guidance sharpens each class toward p(x|c)·p(c|x)^(s−1): samples stay inside the "
                     "modes (precision holds) but cover less of each one (recall falls) — the "
                     "fidelity/diversity trade-off of classifier-free guidance.")
    return not_yet("precision asks whether samples land inside the data. Guided samples move *toward* the "
                   "class centres, so they still do; look at what happens to how much of each mode they cover.")


@exercise(
    "10-minority-score",
    question="Write score(x0, x0_hat) -> (N,): the minority score's distance, the squared L2 norm of "
             "x0 − x̂0 per sample (x0, x0_hat: (N, D) tensors).",
    hints=("Subtract, square, and add up over the features of each sample (dim=1).",),
    expects="a function of two (N, D) tensors",
)
def _minority_score(fn):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    want = ((a - b) ** 2).sum(1)
    got = call(fn, a, b)
    if not isinstance(got, torch.Tensor):
        raise _StudentError(f"return a tensor of shape (N,), got {type(got).__name__}")
    if got.shape == ():
        return not_yet("you returned one number for the whole batch: the score is per sample, so reduce over "
                       "dim=1 only.")
    if close(got, want):
        return right("high scores mark samples the denoiser cannot rebuild from the noise: the posterior mean "
                     "x̂0 is pulled toward the common modes.")
    if close(got, want / a.shape[1]):
        return not_yet("that is the mean over features; the score uses the sum (the squared norm).")
    if close(got, want.sqrt()):
        return not_yet("that is the norm itself; the score squares it.")
    return not_yet("for each sample, add up (x0 − x0_hat)² over its features.")


@exercise(
    "10-classifier-cost",
    question="With 8 classes, n_samples=(5, 25) and to_keep=(2, 1), how many network evaluations does the "
             "adaptive diffusion classifier spend per sample?",
    hints=("Stage 1: every class at 5 timesteps. Stage 2: only the classes still in the running, and only "
           "at the timesteps not yet evaluated.",),
    expects="a number",
)
def _classifier_cost(answer):
    try:
        v = float(answer)
    except (TypeError, ValueError):
        raise _StudentError(f"answer with a number, got {answer!r}") from None
    if v == 80:
        return right("8 × 5 + 2 × 20 = 80, against 8 × 25 = 200 without elimination.")
    if v == 90:
        return not_yet("stage 2 reuses the 5 timesteps of stage 1: it evaluates only 25 − 5 = 20 new ones.")
    if v == 200:
        return not_yet("that is every class at all 25 timesteps; after stage 1 only 2 classes are kept.")
    if v == 240:
        return not_yet("the 25 timesteps include the 5 of stage 1, and stage 2 runs on the 2 classes kept.")
    return not_yet("count stage 1 (all 8 classes, 5 timesteps) and stage 2 (2 classes, the new timesteps).")


@exercise(
    "10-masked-share",
    question="Absorbing D3PM with the 'jsd' schedule β_t = 1/(T − t), T = 50: what share of the pixels is "
             "masked after 20 forward steps?",
    hints=("A pixel survives step t with probability 1 − β_t = (T − t − 1)/(T − t); multiply the first 20.",),
    expects="a number between 0 and 1",
)
def _masked_share(answer, d3pm=None):
    try:
        v = float(answer)
    except (TypeError, ValueError):
        raise _StudentError(f"answer with a number between 0 and 1, got {answer!r}") from None
    if abs(v - 0.4) < 1e-3:
        msg = "the survival product telescopes to (T − j)/T, so j/T = 20/50 are masked: the schedule masks evenly."
        if d3pm is not None and float(d3pm.q_bar[19, 0, d3pm.mask]) != 0:
            msg += f" (the model's q̄ says {float(d3pm.q_bar[19, 0, d3pm.mask]):.3f}.)"
        return right(msg)
    if abs(v - 0.6) < 1e-3:
        return not_yet("0.6 is the share still unmasked; the question asks for the masked share.")
    if abs(v - 20 / 49) < 1e-3 or abs(v - 21 / 50) < 1e-3:
        return not_yet("close: check the telescoping product (T − 1)/T · (T − 2)/(T − 1) · … over exactly 20 steps.")
    return not_yet("multiply the survival probabilities (T − t − 1)/(T − t) for t = 0..19: most factors cancel.")
