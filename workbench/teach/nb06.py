"""Exercises of notebook 06 (comparing methods: runs, seed sweeps, side-by-side views, Ray)."""

from __future__ import annotations

import math
import numbers

from ._core import _StudentError, call, choice, close, exercise, not_yet, right


def _number(answer) -> float:
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
        raise _StudentError(f"answer with a number, got {answer!r}")
    return float(answer)


@exercise(
    "06-fair-metric",
    question="SupCon and PALM never train the classifier head. Which of the sweep's metrics compares them "
             "fairly with cross-entropy: 'val_acc', 'val_loss' or 'knn_acc'?",
    hints=("Which of the three reads only the features, and which need the head's logits or the method's own "
           "loss?",),
    expects="'val_acc', 'val_loss' or 'knn_acc'",
)
def _fair_metric(answer):
    got = choice(answer, ["val_acc", "val_loss", "knn_acc"])
    if got == "knn_acc":
        return right("a k-NN classifier on the features needs no head and no particular loss, so it scores every "
                     "method's representation the same way.")
    if got == "val_acc":
        return not_yet("val_acc reads the logits of model.fc, which SupCon and PALM leave at its random "
                       "initialisation: it measures the untrained head, not the features.")
    return not_yet("each method reports its own loss (cross-entropy, a contrastive loss, PALM's prototype "
                   "loss): their levels are not on one scale.")


@exercise(
    "06-std",
    question="Write spread(values): the standard deviation the sweep summary reports for a list of per-seed "
             "values (the ± in mean ± std).",
    hints=("With three seeds you estimate the spread of a whole population of seeds from a sample: divide the "
           "sum of squared deviations by n - 1 (numpy's ddof=1, statistics.stdev).",),
    expects="a function spread(values) -> float",
)
def _std(fn):
    import numpy as np

    for values in ([0.91, 0.93, 0.96], [0.5, 0.7, 0.2, 0.9, 0.4]):
        got = call(fn, list(values))
        want = float(np.std(values, ddof=1))
        if close(got, want, rtol=1e-6):
            continue
        if close(got, float(np.std(values)), rtol=1e-6):
            return not_yet("that is the population standard deviation (divide by n). The summary estimates the "
                           "spread of seeds from a sample of them and divides by n - 1 (ddof=1).")
        if close(got, float(np.var(values, ddof=1)), rtol=1e-6) or close(got, float(np.var(values)), rtol=1e-6):
            return not_yet("that is a variance; take its square root.")
        if close(got, want / math.sqrt(len(values)), rtol=1e-6):
            return not_yet("that is the standard error of the mean (std / sqrt(n)); the summary reports the std "
                           "itself.")
        return not_yet(f"for {values} the expected value is {want:.4g}.")
    return right("the sample standard deviation, as wb.runs.sweep's summary (ddof=1). With three seeds it is "
                 "itself uncertain: more seeds narrow it.")


@exercise(
    "06-resumed",
    question="The cross-entropy sweep ran with seeds 0, 1, 2 and is run again on Ray with seeds 0, 1, 2, 3, 4 "
             "(resume=True). How many runs are trained?",
    hints=("Every saved run carries an identity (name, seed, model, method, settings, data). Which of the five "
           "are already in the store?",),
    expects="a number",
)
def _resumed(answer, seeds=(0, 1, 2), extra_seeds=(3, 4)):
    v = _number(answer)
    new = len(set(extra_seeds) - set(seeds))
    total = len(set(seeds) | set(extra_seeds))
    if v == new:
        return right(f"only the {new} new seeds train; the {total - new} runs already in the store are found by "
                     "their identity and reused with their run ids (resumed=True in the table).")
    if v == total:
        return not_yet("resume=True looks each run up in the store first. Which of these runs exist already?")
    if v == len(set(seeds)):
        return not_yet("those are the runs that are already in the store: they are reused, not trained.")
    return not_yet("count the seeds that have no run in the store yet.")
