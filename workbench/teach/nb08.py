"""Exercises of notebook 08 (losses, calibration, conformal prediction, data pruning)."""

from __future__ import annotations

import math

import numpy as np

from ._core import _StudentError, call, choice, close, exercise, not_yet, right

# confidences and correctness of six predictions; 0.8 sits exactly on an edge of 5 equal-width bins
_CONF = np.array([.95, .90, .80, .65, .55, .35])
_OK = np.array([1, 1, 0, 1, 0, 0])


def _ece_ref(conf, ok, n_bins, right_closed=True):
    edges = np.linspace(0, 1, n_bins + 1)
    total, gaps = 0.0, []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (conf > lo) & (conf <= hi) if right_closed else (conf >= lo) & (conf < hi)
        if lo == 0 and right_closed:
            sel |= conf == 0
        if sel.any():
            gaps.append(abs(conf[sel].mean() - ok[sel].mean()))
            total += sel.mean() * gaps[-1]
    return total, gaps


def _number(got, what="a number"):
    try:
        return float(got)
    except (TypeError, ValueError):
        raise _StudentError(f"return {what}, got {type(got).__name__}") from None


@exercise(
    "08-ece",
    question="Write ece(conf, correct, n_bins) -> float: the top-label expected calibration error with "
             "n_bins equal-width bins, each bin (lo, hi].",
    hints=("Bin edges: np.linspace(0, 1, n_bins + 1); a sample is in bin m when lo < conf <= hi.",
           "Each non-empty bin contributes (its share of the samples) x |mean confidence - accuracy|."),
    expects="a function of two (N,) numpy arrays and an int",
)
def _ece(fn):
    got = _number(call(fn, _CONF.copy(), _OK.copy(), 5))
    want, gaps = _ece_ref(_CONF, _OK, 5)
    if close(got, want):
        return right(f"{want:.4f}: the 0.8 prediction shares the (0.6, 0.8] bin with 0.65 — the binning is part "
                     "of the number, which is why every ECE must say its bins.")
    if close(got, _ece_ref(_CONF, _OK, 5, right_closed=False)[0]):
        return not_yet("your bins are [lo, hi) (np.digitize / torchmetrics): 0.8 went to the top bin. The "
                       "convention here (Guo et al.) is (lo, hi]: lo < conf <= hi.")
    if close(got, float(np.mean(gaps))):
        return not_yet("that is the plain mean of the bin gaps; weight each gap by its bin's share of the samples.")
    if close(got, max(gaps)):
        return not_yet("that is the maximum calibration error (MCE); ECE is the count-weighted average of the gaps.")
    if close(got, abs(_CONF.mean() - _OK.mean())):
        return not_yet("one bin for everything cancels over- and under-confidence; compute the gap bin by bin.")
    return not_yet("bin by confidence, then sum over bins of (n_bin / N) * |mean conf - mean correct|.")


@exercise(
    "08-conformal-quantile",
    question="Write qhat(scores, alpha) -> float: split conformal's threshold from n calibration scores: "
             "the k-th smallest score with k = ceil((n + 1)(1 - alpha)), or inf when k > n.",
    hints=("Sort the scores; the k-th smallest is sorted[k - 1] (Python indexes from 0).",
           "With few calibration points k can exceed n: then no finite threshold gives the guarantee."),
    expects="a function of an (n,) numpy array and alpha in (0, 1)",
)
def _qhat(fn):
    s = np.array([.05, .10, .20, .30, .35, .50, .60, .70, .90])
    got = _number(call(fn, s.copy(), 0.2))
    if close(got, 0.70):
        inf = call(fn, s.copy(), 0.05)
        try:
            is_inf = math.isinf(float(inf))
        except (TypeError, ValueError):
            is_inf = False
        if not is_inf:
            return not_yet("right for alpha = 0.2; but for alpha = 0.05 with n = 9, k = ceil(10 * 0.95) = 10 > n: "
                           "return float('inf') (the set must hold every label).")
        return right("0.70 = the 8th of 9 scores. The (n + 1) is the finite-sample correction: the test point is "
                     "the (n + 1)-th exchangeable score, which is what makes coverage >= 1 - alpha exact.")
    if close(got, np.quantile(s, 0.8)):
        return not_yet("np.quantile(scores, 1 - alpha) interpolates and has no finite-sample correction; take "
                       "the k-th smallest score with k = ceil((n + 1)(1 - alpha)).")
    if close(got, 0.90):
        return not_yet("one order statistic too high: np.quantile(..., ceil((n+1)(1-a))/n, method='higher') "
                       "returns the (k + 1)-th smallest. Sort and take sorted[k - 1].")
    if close(got, 0.60):
        return not_yet("off by one: with k = 8 the threshold is sorted[k - 1] = sorted[7].")
    return not_yet("k = ceil((n + 1) * (1 - alpha)); return np.sort(scores)[k - 1] (inf if k > n).")


@exercise(
    "08-temperature-accuracy",
    question="Temperature scaling divides every logit by one T > 0 fitted on validation data. Does it change "
             "the test accuracy? Answer 'yes' or 'no'.",
    hints=("Dividing all logits of a sample by the same positive number keeps their order.",),
    expects="'yes' or 'no'",
)
def _temperature(answer):
    if choice(answer, ["yes", "no"]) == "no":
        return right("argmax(l / T) = argmax(l) for T > 0: accuracy (and the ranking of classes) is untouched; only "
                     "the confidence — hence ECE, NLL, Brier and the conformal sets — moves.")
    return not_yet("look at the accuracy columns before and after scaling in the table: dividing a sample's logits "
                   "by the same T > 0 keeps their order, so the predicted class never changes.")


@exercise(
    "08-el2n",
    question="Write el2n(probs, y) -> (N,) array: the EL2N score ||softmax output - onehot(y)||_2 of each "
             "sample, from probabilities (N, C) and labels (N,).",
    hints=("Build the one-hot targets with np.eye(C)[y].",),
    expects="a function of an (N, C) numpy array and an (N,) int array",
)
def _el2n(fn):
    p = np.array([[.7, .2, .1], [.1, .8, .1], [.3, .3, .4]])
    y = np.array([1, 1, 0])
    onehot = np.eye(3)[y]
    got = call(fn, p.copy(), y.copy())
    if got is None:
        return not_yet("your function returned None: return the (N,) array of scores")
    want = np.linalg.norm(p - onehot, axis=1)
    if close(got, want):
        return right(f"{np.round(want, 4).tolist()}: a confident right answer scores near 0, a confident wrong one "
                     "near sqrt(2). Pruning keeps the high scores: the hard, informative examples.")
    if close(got, want ** 2):
        return not_yet("that is the squared norm (the per-sample Brier score); EL2N takes the square root.")
    if close(got, 1 - p[np.arange(3), y]):
        return not_yet("1 - p_y only looks at the true class; EL2N is the L2 norm of the whole error vector p - onehot(y).")
    return not_yet("error vector p - onehot(y), then its Euclidean norm per row (axis=1).")
