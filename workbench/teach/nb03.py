"""Exercises of notebook 03 (diffusion trajectories, hallucinations and a one-step student)."""

from __future__ import annotations

from ._core import _StudentError, call, choice, close, exercise, not_yet, right


@exercise(
    "03-forward",
    question="Write noisy(x0, eps, abar): the DDPM forward process, x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε, where abar is "
             "the number ᾱ_t and x0, eps are (N, 2) tensors.",
    hints=("Both coefficients are square roots: their squares add up to 1, so x_t keeps unit variance when x0 "
           "has it. Use abar ** 0.5 and (1 - abar) ** 0.5.",),
    expects="a function noisy(x0, eps, abar) -> an (N, 2) tensor",
)
def _forward(fn):
    import torch

    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(16, 2, generator=g), torch.randn(16, 2, generator=g)  # (N, 2) each
    abar = 0.3
    got = call(fn, x0.clone(), eps.clone(), abar)
    if not isinstance(got, torch.Tensor):
        raise _StudentError(f"noisy should return a tensor like x0, got {type(got).__name__}")
    if tuple(got.shape) != tuple(x0.shape):
        raise _StudentError(f"noisy should return a tensor of x0's shape {tuple(x0.shape)}, got {tuple(got.shape)}")
    a, w = abar ** 0.5, (1 - abar) ** 0.5
    if close(got, a * x0 + w * eps):
        return right("√ᾱ_t x0 + √(1 − ᾱ_t) ε. The squares of the two coefficients add up to 1, so unit-variance "
                     "data stays unit variance at every t; ᾱ_t falls from ~1 to ~0 along the schedule.")
    if close(got, abar * x0 + (1 - abar) * eps):
        return not_yet("the coefficients are the square roots of ᾱ_t and 1 − ᾱ_t: with ᾱ_t itself, the variance "
                       "of x_t would shrink in the middle of the schedule.")
    if close(got, w * x0 + a * eps):
        return not_yet("x0 and ε are swapped: ᾱ_t is the share of the signal's variance that is left, so √ᾱ_t "
                       "multiplies x0.")
    if close(got, a * x0 + (1 - abar) * eps) or close(got, abar * x0 + w * eps):
        return not_yet("one coefficient has its square root, the other not: both need it.")
    if close(got, x0 + w * eps):
        return not_yet("the signal must shrink as noise is added (√ᾱ_t x0), or x_T would not be pure noise.")
    return not_yet("on a made-up case (ᾱ_t = 0.3) your x_t differs from √ᾱ_t x0 + √(1 − ᾱ_t) ε.")


def _share(flags) -> float:
    h = getattr(flags, "hallucination", None)
    if h is None:
        raise _StudentError("pass the hallucination flags (from wb.analyses.hallucination_flags)")
    return float(h.float().mean())


@exercise(
    "03-sampler",
    question="Sample the grid model with DDIM (deterministic, 50 steps) instead of DDPM (a fresh noise draw at "
             "every one of the T steps). Will DDIM give 'more', 'fewer' or the 'same' share of hallucinations? "
             "(pass ddpm_flags=flags, ddim_flags=ddim_flags)",
    hints=("Between two modes the learned score is smooth: it blends the two neighbours. A deterministic path "
           "that starts between two modes follows that blend; DDPM's fresh noise at every step keeps kicking "
           "the sample until it commits to one side.",),
    expects="'more', 'fewer' or 'same'",
)
def _sampler(answer, ddpm_flags=None, ddim_flags=None):
    if ddpm_flags is None or ddim_flags is None:
        raise _StudentError("pass both flags too: wb.teach.check('03-sampler', answer, ddpm_flags=flags, "
                            "ddim_flags=ddim_flags)")
    a = choice(answer, ["more", "fewer", "same"])
    p, d = _share(ddpm_flags), _share(ddim_flags)
    measured = "more" if d > p * 1.1 else ("fewer" if d < p / 1.1 else "same")
    numbers = f"DDPM {p:.1%}, DDIM-50 {d:.1%} hallucinations"
    if a == measured:
        why = (" The deterministic path follows the smooth score between modes to the end; DDPM's fresh noise "
               "at every step keeps pushing a sample off the ridge between two modes, towards one of them."
               ) if a == "more" else ""
        return right(f"{numbers}.{why}")
    return not_yet(f"measured: {numbers}. {_sampler_hint(a)}")


def _sampler_hint(a: str) -> str:
    if a == "fewer":
        return "Fewer steps sounds like less room to go wrong; but what does DDPM's noise do to a sample between modes?"
    return "Think about what the fresh noise of every DDPM step does to a sample sitting between two modes."


@exercise(
    "03-one-step",
    question="With a single denoiser call, who makes better moons: the 'student' (1 step) or the 'teacher' "
             "(DDIM with 1 step)? (pass quality=quality; better = lower energy distance)",
    hints=("In one DDIM step the teacher predicts the *mean* clean point for its noise: a blur of all the data. "
           "The student was trained to land on the end of the teacher's whole path.",),
    expects="'student' or 'teacher'",
)
def _one_step(answer, quality=None):
    if quality is None:
        raise _StudentError("pass the quality table too: wb.teach.check('03-one-step', answer, quality=quality)")
    a = choice(answer, ["student", "teacher"])
    try:
        s, t = quality["student 1-step"].energy, quality["teacher DDIM-1"].energy
    except KeyError:
        raise _StudentError("quality should hold 'student 1-step' and 'teacher DDIM-1' (the notebook's runs)") from None
    best = "student" if s < t else "teacher"
    numbers = f"energy distance: student {s:.3f}, teacher {t:.3f}"
    if a == best:
        return right(f"{numbers}. One DDIM step from pure noise predicts E[x0 | x_T], close to the mean of the data; "
                     "the student learned the endpoint of each ODE path instead.")
    return not_yet(f"{numbers}. One teacher step predicts the average clean point given pure noise: what does "
                   "that look like for two moons?")
