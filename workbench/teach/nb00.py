"""Exercises of notebook 00 (quick start: train a classifier and look inside it)."""

from __future__ import annotations

import numbers

import numpy as np

from ._core import _StudentError, call, close, exercise, not_yet, right


def _number(answer) -> float:
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
        raise _StudentError(f"answer with a number, got {answer!r}")
    return float(answer)


def _array(x, name: str) -> np.ndarray:
    if x is None:
        raise _StudentError(f"pass {name} too (see the exercise cell)")
    return np.asarray(getattr(x, "detach", lambda: x)())


@exercise(
    "00-feature-dim",
    question="z = wb.analyses.embed(model, test) gives one feature vector per test image. How many numbers "
             "are in each vector? (pass hidden=HIDDEN)",
    hints=("The features are what the last hidden layer outputs, just before the linear head.",),
    expects="a number",
)
def _feature_dim(answer, hidden=None):
    if hidden is None:
        raise _StudentError("pass the hidden widths too: wb.teach.check('00-feature-dim', answer, hidden=HIDDEN)")
    widths = [int(h) for h in (hidden if isinstance(hidden, (tuple, list)) else (hidden,))]
    v = _number(answer)
    if v == widths[-1]:
        return right(f"{widths[-1]}: the width of the last hidden layer. features(x) stops there; head(z) maps "
                     "those numbers to the 10 class scores.")
    if v == 64:
        return not_yet("64 is the number of pixels, the input. The features come out of the network's last hidden layer.")
    if v == 10:
        return not_yet("10 is the number of class scores, the head's output. The features are what the head reads.")
    if v == sum(widths):
        return not_yet("that adds up every hidden layer; the features are the output of the last one only.")
    return not_yet("look at HIDDEN in the parameters cell: which of those layers feeds the head?")


@exercise(
    "00-accuracy",
    question="Write accuracy(pred, y): the fraction of test images whose predicted class is the true one "
             "(pred and y are (N,) integer tensors).",
    hints=("Compare the two tensors element by element, then average the matches: (a == b) gives booleans; "
           "turn them into floats with .float() before .mean().",),
    expects="a function accuracy(pred, y) -> a number between 0 and 1",
)
def _accuracy(fn, pred=None):
    import torch

    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (200,), generator=g)
    p = torch.where(torch.rand(200, generator=g) < 0.7, y, (y + 1) % 10)  # 70 % right, by construction
    truth = float((p == y).float().mean())
    got = call(fn, p, y)
    try:
        v = float(got)
    except (TypeError, ValueError, RuntimeError):
        raise _StudentError(f"accuracy should return one number, got {type(got).__name__}") from None
    if close(v, truth):
        msg = f"on a made-up case with {truth:.1%} right, your function says {v:.1%}."
        if pred is not None:
            mine = float(call(fn, pred.pred, pred.y))
            msg += f" On the test set it gives {mine:.1%}; pred.accuracy says {pred.accuracy:.1%}."
        return right(msg)
    if close(v, truth * 100):
        return not_yet("that is a percentage; return the fraction (between 0 and 1).")
    if close(v, 1 - truth):
        return not_yet("that is the error rate, the share of mistakes; the accuracy counts the matches.")
    if close(v, truth * len(y)):
        return not_yet("that counts the right answers; divide by the number of images (or use .mean()).")
    return not_yet(f"on a made-up case with {truth:.1%} right your function returned {v!r}.")


@exercise(
    "00-confusion",
    question="Which mistake does the model make most often? Answer (true digit, predicted digit) of the "
             "largest off-diagonal cell of the confusion matrix (pass pred=pred).",
    hints=("Rows of the confusion matrix are the true digits, columns what the model predicted.",),
    expects="a pair (true digit, predicted digit)",
)
def _confusion(answer, pred=None):
    if pred is None:
        raise _StudentError("pass the predictions too: wb.teach.check('00-confusion', answer, pred=pred)")
    if isinstance(answer, str) or not hasattr(answer, "__len__") or len(answer) != 2:
        raise _StudentError(f"answer with a pair of two digits (true, predicted), e.g. (3, 8); got {answer!r}")
    t, p = (int(_number(a)) for a in answer)
    cm = _array(pred.confusion(), "pred").copy()
    np.fill_diagonal(cm, -1)
    top = cm.max()
    if top <= 0:
        return right("the model makes no mistake on this test set, so every pair is a fair answer.")
    best = {(int(i), int(j)) for i, j in zip(*np.nonzero(cm == top))}
    if (t, p) in best:
        return right(f"{int(top)} test images of the digit {t} were predicted as {p}. Look at a few of them: "
                     "are they ambiguous, or is the model wrong?")
    if t == p:
        return not_yet("that is a diagonal cell: the images predicted correctly. The mistakes are off the diagonal.")
    if (p, t) in best:
        return not_yet("that pair is the right one but the wrong way round: rows are the true digit, columns the "
                       "predicted one.")
    if not (0 <= t < cm.shape[0] and 0 <= p < cm.shape[1]):
        return not_yet(f"the digits run from 0 to {cm.shape[0] - 1}.")
    return not_yet(f"the cell (true {t}, predicted {p}) holds {max(int(cm[t, p]), 0)}; find the largest "
                   "number outside the diagonal.")
