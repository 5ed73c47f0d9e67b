"""Exercises of notebook 01 (embedding spaces and prototype assignments)."""

from __future__ import annotations

import math

from ._core import _StudentError, call, choice, close, exercise, not_yet, right


def _scalar(got, name: str) -> float:
    try:
        return float(got)
    except (TypeError, ValueError, RuntimeError):
        raise _StudentError(f"{name} should return one number, got {type(got).__name__}") from None


def _pairs(seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    z1 = 2 * torch.randn(50, 6, generator=g)            # (N, D), not normalised on purpose
    z2 = z1 + 0.8 * torch.randn(50, 6, generator=g)     # (N, D) a second "view" of each row
    return z1, z2


@exercise(
    "01-alignment",
    question="Write alignment(z1, z2): Wang & Isola's alignment of two (N, D) embeddings whose rows i are two "
             "views of the same image: the mean over i of the squared distance between the L2-normalised rows.",
    hints=("Normalise each row to length 1 first (torch.nn.functional.normalize(z, dim=1)), then "
           "((a - b) ** 2).sum(1).mean().",),
    expects="a function alignment(z1, z2) -> a number",
)
def _alignment(fn):
    import torch.nn.functional as F

    z1, z2 = _pairs()
    a, b = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    v = _scalar(call(fn, z1.clone(), z2.clone()), "alignment")
    truth = float((a - b).pow(2).sum(1).mean())
    if close(v, truth):
        return right(f"{v:.4f} on a made-up pair of views; wb.analyses.alignment gives the same. On the unit "
                     "sphere the squared distance is 2 - 2 cos, so low alignment = views point the same way.")
    if close(v, float((z1 - z2).pow(2).sum(1).mean())):
        return not_yet("normalise the rows first: alignment is measured on the unit sphere, so that it does not "
                       "reward embeddings that simply shrink.")
    if close(v, float((a - b).norm(dim=1).mean())):
        return not_yet("that is the mean distance; the alignment of the paper squares it (α = 2).")
    if close(v, float((a - b).pow(2).sum(1).sum())):
        return not_yet("that is the sum over the pairs; take the mean, so the number does not grow with N.")
    if close(v, float((a - b).pow(2).mean())):
        return not_yet("that averages over the coordinates too; sum the squared differences over D first "
                       "(the squared length of a - b), then average over the rows.")
    if close(v, float(torch_cdist_mean(a, b))):
        return not_yet("that compares every row with every other row; alignment only compares row i of z1 with "
                       "row i of z2 (the two views of one image).")
    return not_yet(f"on a made-up pair of views your function gave {v:.4g}, expected {truth:.4g}.")


def torch_cdist_mean(a, b):
    import torch

    return torch.cdist(a, b).pow(2).mean()


@exercise(
    "01-uniformity",
    question="Write uniformity(z): Wang & Isola's uniformity of an (N, D) embedding: the log of the mean, over "
             "all pairs i < j, of exp(-2 ‖z_i - z_j‖²), on L2-normalised rows.",
    hints=("torch.pdist(a) gives the distances of all pairs i < j; square them, take exp(-2 d²), average, log.",),
    expects="a function uniformity(z) -> a number",
)
def _uniformity(fn):
    import torch
    import torch.nn.functional as F

    z, _ = _pairs(1)
    a = F.normalize(z, dim=1)
    v = _scalar(call(fn, z.clone()), "uniformity")
    sq = torch.pdist(a).pow(2)
    truth = float(torch.log(torch.exp(-2 * sq).mean()))
    if close(v, truth):
        return right(f"{v:.4f} on a made-up embedding. It is never above 0; the more negative, the more evenly "
                     "the embeddings cover the sphere.")
    n = a.shape[0]
    all_sq = torch.cdist(a, a).pow(2)
    if close(v, float(torch.log(torch.exp(-2 * all_sq).mean()))) or close(
            v, float(torch.log(torch.exp(-2 * all_sq).sum() / (n * (n - 1))))):
        return not_yet("that includes the pairs (i, i), each contributing exp(0) = 1: use only the pairs i < j "
                       "(torch.pdist, or mask the diagonal).")
    if close(v, float(torch.exp(-2 * sq).mean())):
        return not_yet("take the log of the mean.")
    if close(v, float(torch.log(torch.exp(-2 * torch.pdist(z).pow(2)).mean())), atol=1e-4):
        return not_yet("normalise the rows first: uniformity is measured on the unit sphere.")
    if close(v, float(torch.log(torch.exp(-2 * torch.pdist(a)).mean()))):
        return not_yet("square the distances: exp(-2 ‖z_i - z_j‖²).")
    if math.isfinite(v) and close(v, float(torch.log(torch.exp(-sq).mean()))):
        return not_yet("the paper uses t = 2: exp(-2 ‖z_i - z_j‖²).")
    return not_yet(f"on a made-up embedding your function gave {v:.4g}, expected {truth:.4g}.")


@exercise(
    "01-best-alignment",
    question="Which objective's features have the lowest (best) alignment: 'cross-entropy', 'SupCon' or 'PALM'? "
             "(pass metrics=metrics)",
    hints=("Alignment measures how close the two augmented views of one image land. Views can be close because "
           "the objective pulls them together, or because every image is close to every other: read uniformity too.",),
    expects="'cross-entropy', 'SupCon' or 'PALM'",
)
def _best_alignment(answer, metrics=None):
    if metrics is None:
        raise _StudentError("pass the metrics too: wb.teach.check('01-best-alignment', answer, metrics=metrics)")
    names = [n for n in ("cross-entropy", "SupCon", "PALM") if n in metrics]
    if not names:
        raise _StudentError(f"metrics should hold 'cross-entropy', 'SupCon' and 'PALM'; got {list(metrics)}")
    a = choice(answer, names)
    values = {n: float(metrics[n].alignment) for n in names}
    best = min(values, key=values.get)
    table = ", ".join(f"{n} {v:.3f}" for n, v in values.items())
    if a == best:
        unif = ", ".join(f"{n} {float(metrics[n].uniformity):.2f}" for n in names)
        extra = (" Surprising? Look at uniformity too (" + unif + "): cross-entropy's features sit in a narrow "
                 "cone, where any two images are close, so two views of one are close as well."
                 ) if a == "cross-entropy" else (
                 " The contrastive losses pull the two views of an image together, so they land close.")
        return right(f"alignment: {table}.{extra} Alignment alone rewards collapse: all embeddings at one point "
                     "would score 0. Read it next to uniformity.")
    if a == "cross-entropy":
        return not_yet("cross-entropy never sees two views of one image; which objectives are trained to pull "
                       "them together?")
    return not_yet(f"{a} is trained on pairs of views, but measure it: alignment {table}. Then compare the "
                   "uniformity column: how spread out is each embedding?")
