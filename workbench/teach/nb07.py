"""Exercises of notebook 07 (bring your own model, data and embeddings)."""

from __future__ import annotations

import math
import numbers

from ._core import _StudentError, choice, exercise, not_yet, right


def _number(answer) -> float:
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
        raise _StudentError(f"answer with a number, got {answer!r}")
    return float(answer)


@exercise(
    "07-flatten",
    question="layer2 gives feature maps of shape (N, C, H, W). With pool='flatten', how many features does "
             "each image get? (pass shape=tuple(maps.shape))",
    hints=("'flatten' keeps every value of the map of one image: every channel at every position.",),
    expects="a number",
)
def _flatten(answer, shape=None):
    if shape is None or len(shape) != 4:
        raise _StudentError("pass the maps' shape too: wb.teach.check('07-flatten', answer, shape=tuple(maps.shape))")
    _, c, h, w = (int(s) for s in shape)
    v = _number(answer)
    if v == c * h * w:
        return right(f"{c} channels x {h} x {w} positions = {c * h * w}: every value of the map. pool='avg' keeps "
                     f"{c}, one mean per channel, the vector the network's own fc reads.")
    if v == c:
        return not_yet(f"{c} is one value per channel: that is pool='avg' (or 'max'). 'flatten' keeps every position too.")
    if v == h * w:
        return not_yet(f"{h * w} is the positions of one channel; the map has {c} channels.")
    if v == math.prod(int(s) for s in shape):
        return not_yet("that counts the whole batch; the question is per image (leave out N).")
    return not_yet("multiply the sizes of one image's map: channels, height and width.")


@exercise(
    "07-frozen-mode",
    question="net is in train mode but its stem BatchNorm was frozen in eval mode. After "
             "wb.analyses.embed(model, id_test), which mode is that BatchNorm in: 'train' or 'eval'?",
    hints=("embed switches every submodule to eval mode for the pass. What does it restore afterwards: the "
           "top module's flag only, or every submodule's?",),
    expects="'train' or 'eval'",
)
def _frozen_mode(answer):
    if choice(answer, ["train", "eval"]) == "eval":
        return right("the workbench records the flag of every submodule and puts each back, so a frozen "
                     "layer stays frozen. A plain model.train(was) would have switched it to train mode.")
    return not_yet("that is what a plain model.eval() ... model.train(True) would do: switch every submodule to "
                   "the top module's mode. The workbench restores each submodule's own flag.")


@exercise(
    "07-same-auroc",
    question="Mahalanobis' AUROC computed from the .npy files alone, compared with the one computed from the "
             "model: 'higher', 'lower' or 'same'?",
    hints=("What does a feature-space detector read from the model? Nothing but the features.",),
    expects="'higher', 'lower' or 'same'",
)
def _same_auroc(answer):
    if choice(answer, ["higher", "lower", "same"]) == "same":
        return right("the detector only ever sees the (N, d) features: the files hold the same numbers, so "
                     "the scores, and the AUROC, are identical. Only the logit detectors (MSP, Energy) need "
                     "more: the logits, which you could save too (Embeddings(z, logits=...)).")
    return not_yet("the files hold exactly the features the model produced; a feature-space detector reads "
                   "nothing else. Would anything change?")


@exercise(
    "07-class-index",
    question="The notebook wrote the class folders in the order 'square', 'circle', 'cross'. Which label "
             "number does from_files give to 'cross'?",
    hints=("from_files numbers class names so that the same names always give the same numbers, whatever "
           "order the folders were made or listed in.",),
    expects="a number",
)
def _class_index(answer):
    v = _number(answer)
    if v == 1:
        return right("the names are sorted: circle 0, cross 1, square 2 (data.classes). Sorting makes the "
                     "numbering stable across machines and file systems.")
    if v == 2:
        return not_yet("that is the order the folders were written in. The file system may list them in any "
                       "order, so from_files does not use it.")
    return not_yet("look at data.classes: how are the names ordered?")
