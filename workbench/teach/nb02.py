"""Exercises of notebook 02 (out-of-distribution detection on learned features)."""

from __future__ import annotations

from ._core import _StudentError, call, choice, close, exercise, not_yet, right


@exercise(
    "02-convention",
    question="ID scores ~ N(-2, 1), OOD scores ~ N(0, 1.5). Which convention gives the larger FPR@95: "
             "'id-positive', 'ood-positive', or are they the 'same'?",
    hints=("Draw the two bell curves. The wide OOD curve has a long tail reaching into the ID scores. "
           "Which convention has to put its threshold inside that tail?",),
    expects="'id-positive', 'ood-positive' or 'same'",
)
def _convention(answer):
    a = choice(answer, ["id-positive", "ood-positive", "same"])
    if a == "ood-positive":
        return right("to flag 95 % of a wide OOD distribution the threshold must reach deep into its tail, "
                     "which lies inside the ID scores: many ID samples are flagged. Keeping 95 % of the narrow "
                     "ID distribution costs less.")
    if a == "same":
        return not_yet("the two conventions put the threshold in different places (95 % of the ID samples kept "
                       "vs 95 % of the OOD samples caught), and the two distributions have different widths.")
    return not_yet("ID-positive keeps 95 % of the ID samples: its threshold sits in the ID tail, where few of "
                   "the OOD samples are. Where must the threshold go to catch 95 % of a *wide* OOD distribution?")


@exercise(
    "02-energy",
    question="Write energy(logits): the Energy OOD score of each row of an (N, C) logits tensor "
             "(temperature 1; larger = more OOD).",
    hints=("The free energy of a row is -logsumexp of its logits (torch.logsumexp(logits, dim=1)). Confident, "
           "in-distribution rows have a large logsumexp.",),
    expects="a function energy(logits) -> an (N,) tensor",
)
def _energy(fn):
    import torch

    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(64, 8, generator=g)  # (N, C)
    truth = -torch.logsumexp(logits, dim=1)
    got = call(fn, logits.clone())
    if not isinstance(got, torch.Tensor):
        try:
            got = torch.as_tensor(got, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise _StudentError(f"energy should return a tensor of N scores, got {type(got).__name__}") from None
    if got.numel() == 1 and truth.numel() > 1:
        return not_yet("that is one number for the whole batch; return one score per row (reduce over dim=1 only).")
    if got.shape == (logits.shape[1],):
        return not_yet("that reduces over the rows; each sample is a row, so reduce over the classes (dim=1).")
    if tuple(got.shape) != tuple(truth.shape):
        return not_yet(f"expected one score per row, shape {tuple(truth.shape)}; got {tuple(got.shape)}.")
    if close(got, truth):
        return right("-logsumexp of the logits. wb.ood.Energy() computes the same, with a temperature.")
    if close(got, -truth):
        return not_yet("the sign is flipped: logsumexp is large for confident (in-distribution) inputs, and the "
                       "workbench's scores are larger for more OOD inputs.")
    if close(got, -logits.amax(1)):
        return not_yet("that is the negative max logit (the MaxLogit detector). Energy sums over all classes: "
                       "logsumexp, a smooth maximum.")
    if close(got, -logits.softmax(1).amax(1)):
        return not_yet("that is the negative max softmax probability (MSP). Energy does not normalise: it uses "
                       "logsumexp of the raw logits.")
    if close(got, -torch.log(torch.exp(logits).mean(1))):
        return not_yet("close: that is log of the mean of exp; logsumexp takes the sum.")
    return not_yet("compare your scores with -torch.logsumexp(logits, dim=1) on a few rows.")


@exercise(
    "02-near-ood",
    question="On the cross-entropy features, which detector is closest to chance (lowest AUROC) on the held-out "
             "digits 8-9? (pass cmp=cmp_ce)",
    hints=("An 8 looks like a 3 and a 9 like a 4 or a 7: a held-out digit lands near some class. Which detector "
           "does not look at the classes at all?",),
    expects="a detector name, e.g. 'KNN'",
)
def _near_ood(answer, cmp=None, ood_set="digits 8-9"):
    if cmp is None:
        raise _StudentError("pass the comparison too: wb.teach.check('02-near-ood', answer, cmp=cmp_ce)")
    names = list(cmp.detectors)
    a = choice(answer, names)
    auroc = {d: cmp.metrics[(d, ood_set)].auroc for d in names}
    worst = min(auroc, key=auroc.get)
    if a == worst:
        why = (" It fits one Gaussian to all the training features, ignoring the classes: an 8 that sits "
               "between the class clusters is close to the centre of all of them.") if a == "SSD" else ""
        return right(f"{a}, AUROC {auroc[a]:.3f}.{why} On PALM's tightly packed features (below) the same "
                     "detector does much better.")
    return not_yet(f"{a} reaches AUROC {auroc[a]:.3f} on {ood_set}; one detector does worse. Which one ignores "
                   "the class labels?")
