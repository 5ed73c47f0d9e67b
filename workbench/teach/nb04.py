"""Exercises of notebook 04 (loss landscapes and curvature: SGD vs SAM)."""

from __future__ import annotations

import math

from ._core import _StudentError, call, choice, close, exercise, not_yet, right


@exercise(
    "04-raw-sharper",
    question="The twin's first layer is 10x larger and its second layer 10x smaller; both compute the same "
             "function. Along a raw (unnormalised) Gaussian direction of the same length, which looks "
             "sharper: 'original', 'twin' or 'same'?",
    hints=("A step of fixed length changes a small weight by a large fraction of itself. Which network has "
           "small weights somewhere, and what does that layer do to the output?",),
    expects="'original', 'twin' or 'same'",
)
def _raw_sharper(answer):
    got = choice(answer, ["original", "twin", "same"])
    if got == "twin":
        return right("the twin's second layer is 10x smaller, so the same Gaussian step changes it by a 10x "
                     "larger fraction of itself: its loss climbs much faster. Filter normalisation scales each "
                     "filter's step to that filter's norm, and the two curves coincide.")
    if got == "same":
        return not_yet("the two networks compute the same function at the centre, but not at θ + α d: the same "
                       "step d is a different *relative* change for their differently scaled layers.")
    return not_yet("the original's layers have their usual size. The twin's first layer is 10x larger (a step "
                   "barely moves it) but its second layer is 10x smaller: what does the same step do there?")


def _filter_normalise_reference(d, w):
    import torch

    d, w = torch.as_tensor(d, dtype=torch.float64), torch.as_tensor(w, dtype=torch.float64)
    dn = d.reshape(len(d), -1).norm(dim=1)
    wn = w.reshape(len(w), -1).norm(dim=1)
    return d * (wn / (dn + 1e-10)).reshape(-1, *([1] * (d.ndim - 1)))


@exercise(
    "04-filter-normalise",
    question="Write filter_normalise(d, w): rescale every filter (row d[i], a slice along dimension 0) of the "
             "direction d so that it has the norm of the same filter w[i] of the weights.",
    hints=("One scale factor per row: ||w[i]|| / ||d[i]||. Compute the norms along every dimension but the "
           "first (reshape(len(d), -1).norm(dim=1)) and multiply d row by row.",),
    expects="a function filter_normalise(d, w) -> tensor shaped like d",
)
def _filter_normalise(fn):
    import torch

    g = torch.Generator().manual_seed(4)
    cases = [(torch.randn(5, 3, generator=g, dtype=torch.float64), 3 * torch.randn(5, 3, generator=g, dtype=torch.float64)),
             (torch.randn(4, 2, 3, 3, generator=g, dtype=torch.float64), torch.randn(4, 2, 3, 3, generator=g, dtype=torch.float64))]
    cases[0][1][0] *= 20   # one large filter: a global rescale cannot match it
    for d, w in cases:
        got = call(fn, d.clone(), w.clone())
        want = _filter_normalise_reference(d, w)
        if not hasattr(got, "shape") or tuple(got.shape) != tuple(d.shape):
            shape = tuple(got.shape) if hasattr(got, "shape") else type(got).__name__
            return not_yet(f"return a tensor shaped like d {tuple(d.shape)}, got {shape}.")
        got = torch.as_tensor(got, dtype=torch.float64)
        if close(got, want, rtol=1e-4, atol=1e-8):
            continue
        if close(got, d * (w.norm() / d.norm()), rtol=1e-4, atol=1e-8):
            return not_yet("that rescales the whole tensor at once (layer normalisation). Filter normalisation "
                           "gives every filter, every row d[i], its own factor ||w[i]|| / ||d[i]||.")
        dn = d.reshape(len(d), -1).norm(dim=1).reshape(-1, *([1] * (d.ndim - 1)))
        wn = w.reshape(len(w), -1).norm(dim=1).reshape(-1, *([1] * (d.ndim - 1)))
        if close(got, d * wn, rtol=1e-4, atol=1e-8):
            return not_yet("each row must first be divided by its own norm ||d[i]||, so that only the weights' "
                           "norm ||w[i]|| is left.")
        if close(got, d / dn, rtol=1e-4, atol=1e-8):
            return not_yet("every row now has norm 1: multiply by the norm of the same row of the weights too.")
        if d.ndim == 2 and close(got, d * (w.norm(dim=0) / d.norm(dim=0)), rtol=1e-4, atol=1e-8):
            return not_yet("those are the norms of the columns (dim=0). A filter is a row: one output unit, a "
                           "slice along dimension 0; take norms over the other dimensions.")
        return not_yet("check one row by hand: after your function, (result[0].norm(), w[0].norm()) should be "
                       "equal, and result[0] should point the same way as d[0].")
    return right("every filter now moves by its own length at α = 1, whatever the scale of its layer. The "
                 "workbench does the same for every parameter with 2 or more dimensions and gives biases a zero "
                 "direction.")


@exercise(
    "04-flatter",
    question="Which solution has the larger top Hessian eigenvalue λ_max (the sharper minimum): 'SGD' or "
             "'SAM'? Predict, then check with eigs=eigs.",
    hints=("SAM minimises the worst loss within a ball of radius ρ around the weights. Which kind of "
           "minimum has a low loss in a whole ball?",),
    expects="'SGD' or 'SAM'",
)
def _flatter(answer, eigs=None):
    got = choice(answer, ["SGD", "SAM"])
    if eigs is None:
        raise _StudentError("pass the measured eigenvalues too: wb.teach.check('04-flatter', answer, eigs=eigs)")
    try:
        top = {k: float(eigs[k].top) for k in ("SGD", "SAM")}
    except (KeyError, TypeError, AttributeError):
        raise _StudentError("eigs should be the notebook's dict {'SGD': ..., 'SAM': ...} of hessian_eigs "
                            "results") from None
    sharper = max(top, key=top.get)
    ratio = top["SGD"] / top["SAM"] if top["SAM"] > 0 else math.inf
    if got == sharper == "SGD":
        return right(f"λ_max is {top['SGD']:.3g} for SGD and {top['SAM']:.3g} for SAM ({ratio:.2g}x): SAM's "
                     "worst-case-in-a-ball objective steers it to a flatter minimum, as Foret et al. intend.")
    if got == sharper:
        return right(f"on this run SAM came out sharper ({top['SAM']:.3g} against {top['SGD']:.3g}), against the "
                     "usual expectation: one seed is an anecdote. Try other seeds, or a larger RHO.")
    if got == "SAM":
        return not_yet("SAM penalises exactly the directions where the loss rises fast within radius ρ. Which "
                       "of the two would that make sharper? Look at λ_max in the table.")
    return not_yet(f"on this run SGD's λ_max is {top['SGD']:.3g} and SAM's {top['SAM']:.3g}: look at the table "
                   "again.")


@exercise(
    "04-barrier",
    question="Write barrier(ts, loss): the largest excess of the loss over the straight line between its end "
             "values, max over t in [0, 1] of L(t) - ((1 - t) L(0) + t L(1)). ts may run past 0 and 1.",
    hints=("Find L(0) and L(1) in loss where ts equals 0 and 1, subtract the straight line (1 - t) L(0) + t L(1) "
           "from every point, and take the maximum over the points with 0 <= t <= 1 only.",),
    expects="a function barrier(ts, loss) -> float",
)
def _barrier(fn):
    import torch

    ts = torch.linspace(-0.25, 1.25, 7, dtype=torch.float64)   # -0.25, 0, 0.25, ..., 1.25
    cases = [torch.tensor([5.0, 1.0, 2.0, 1.6, 1.2, 0.5, 9.0], dtype=torch.float64),   # a hill, high outside
             torch.tensor([0.1, 2.0, 1.5, 1.0, 0.5, 0.2, 0.1], dtype=torch.float64)]   # convex: no barrier
    for loss in cases:
        got = call(fn, ts.clone(), loss.clone())
        l0, l1 = float(loss[1]), float(loss[5])
        excess = loss - ((1 - ts) * l0 + ts * l1)
        inside = (ts >= 0) & (ts <= 1)
        want = float(excess[inside].max())
        if close(got, want, rtol=1e-6, atol=1e-9):
            continue
        if close(got, float(excess.max()), rtol=1e-6, atol=1e-9):
            return not_yet("the maximum must be taken over 0 <= t <= 1 only: past the end points the straight "
                           "line is an extrapolation, not the path between the two solutions.")
        if close(got, float(loss[inside].max()) - max(l0, l1), rtol=1e-6, atol=1e-9):
            return not_yet("that compares with the higher end value. The barrier compares each point with the "
                           "straight line between L(0) and L(1) at the same t.")
        if close(got, float(loss.max()) - max(l0, l1), rtol=1e-6, atol=1e-9):
            return not_yet("compare each point with the straight line between L(0) and L(1) at the same t, "
                           "and only for 0 <= t <= 1.")
        return not_yet("check the second case by hand: a convex curve lies below its chord, so the barrier is 0 "
                       "(reached at the end points).")
    return right("a barrier near 0 means the two solutions are linearly connected: no hill on the straight "
                 "line between them. Runs from different initialisations usually show one.")
