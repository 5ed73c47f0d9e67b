"""Exercises of notebook 11 (semi-supervised students, the logit-distillation family, dataset
distillation)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._core import _StudentError, call, choice, close, exercise, not_yet, right


def _tensor(got, what="a tensor"):
    if not isinstance(got, torch.Tensor):
        raise _StudentError(f"return {what}, got {type(got).__name__}")
    return got


@exercise(
    "11-fixmatch-loss",
    question="Write unlabelled_loss(weak_logits, strong_logits, tau) -> scalar: FixMatch's L_u — the "
             "cross-entropy of the strong view against the weak view's argmax, only where the weak "
             "view's max softmax probability is at least tau.",
    hints=("Pseudo-labels and confidences come from softmax(weak_logits) (no gradient); the loss is "
           "computed on strong_logits.",
           "FixMatch divides by the number of unlabelled images, not by the number of confident ones."),
    expects="a function of two (B, C) logit tensors and a threshold",
)
def _fixmatch_loss(fn):
    weak = torch.tensor([[5.0, 0, 0], [1, 0.9, 0], [0, 0, 4]])
    strong = torch.tensor([[2.0, 1, 0], [0, 1, 0], [0, 3, 1]])
    got = _tensor(call(fn, weak, strong, 0.95), "a scalar tensor")
    if got.numel() != 1:
        return not_yet(f"return one number (the mean over the batch), got shape {tuple(got.shape)}")
    if close(got, 0.859151, rtol=1e-4):
        return right("0.859: the unconfident middle image counts as 0 in a mean over all three — so as the "
                     "model grows confident, L_u grows in weight by itself.")
    if close(got, 1.288726, rtol=1e-4):
        return not_yet("you averaged over the confident images only (÷2); FixMatch averages over all μB "
                       "unlabelled images, the masked ones counting 0.")
    if close(got, F.cross_entropy(strong, weak.argmax(1)), rtol=1e-4):
        return not_yet("every image counted: the middle one (max probability 0.44) is below τ and must be masked.")
    if close(got, F.cross_entropy(weak, weak.argmax(1)), rtol=1e-4):
        return not_yet("the loss is on the *strong* view's logits; the weak view only gives the pseudo-labels.")
    return not_yet("pseudo-label = argmax softmax(weak); mask = max softmax(weak) >= tau; "
                   "loss = mean(mask * CE(strong, pseudo-label)).")


@exercise(
    "11-taid-target",
    question="Write taid_target(z_s, z_t, t) -> (B, C) probabilities: TAID's intermediate target between "
             "the student's (detached) and the teacher's logits at time t.",
    hints=("TAID interpolates in logit space, then applies softmax once.",),
    expects="a function of two (B, C) logit tensors and t in [0, 1]",
)
def _taid_target(fn):
    zs, zt = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[3.0, 0.0, 0.0]])
    got = _tensor(call(fn, zs, zt, 0.4))
    want = torch.tensor([[0.796168, 0.131606, 0.072227]])
    if got.shape != want.shape:
        return not_yet(f"return a (B, C) tensor of probabilities, got shape {tuple(got.shape)}")
    if close(got, want, rtol=1e-4):
        return right("softmax(0.6·z_s + 0.4·z_t) = [0.796, 0.132, 0.072]: a distribution sharper than either "
                     "mixture of probabilities, and at t = 0 exactly the student's own prediction.")
    if close(got, 0.6 * zs.softmax(-1) + 0.4 * zt.softmax(-1), rtol=1e-4):
        return not_yet("that mixes the probabilities ([0.763, 0.165, 0.072]); TAID mixes the *logits* and "
                       "takes one softmax.")
    if close(got, (0.4 * zs + 0.6 * zt).softmax(-1), rtol=1e-4):
        return not_yet("the weights are swapped: at t = 0 the target is the student's own prediction, at t = 1 "
                       "the teacher's.")
    return not_yet("interpolate the logits, (1 − t)·z_s + t·z_t, then softmax over the classes.")


@exercise(
    "11-dm-loss",
    question="Write dm_loss(real, syn) -> scalar for lists of per-class embeddings (real[c]: (n_c, d), "
             "syn[c]: (m_c, d)): distribution matching's loss.",
    hints=("Per class: the mean embedding of the real batch and of the synthetic images.",
           "Squared Euclidean distance between the two means, summed over the classes."),
    expects="a function of two lists of (n, d) tensors",
)
def _dm_loss(fn):
    real = [torch.tensor([[1.0, 0.0], [3.0, 0.0]]), torch.tensor([[0.0, 2.0], [0.0, 4.0]])]
    syn = [torch.tensor([[1.5, 0.5]]), torch.tensor([[0.0, 2.0]])]
    got = _tensor(call(fn, real, syn), "a scalar tensor")
    if got.numel() != 1:
        return not_yet(f"return one number, got shape {tuple(got.shape)}")
    if close(got, 1.5):
        return right("0.5 + 1.0 = 1.5: matching only the means is a linear-kernel MMD — cheap, no network is "
                     "ever trained, and a new random network every iteration looks at the data differently.")
    if close(got, 0.75):
        return not_yet("you averaged over the classes; DM sums them.")
    if close(got, 0.5 ** 0.5 + 1.0):
        return not_yet("that is the distance itself; DM squares it.")
    return not_yet("for each class: ‖mean(real[c]) − mean(syn[c])‖², then add the classes up.")


@exercise(
    "11-threshold",
    question="Raise FixMatch's threshold τ from 0.8 to 0.99. What happens to the kept pseudo-labels' "
             "quantity and quality? Answer 'fewer, more accurate', 'more, less accurate' or 'no change'.",
    hints=("Move the threshold slider of the pseudo-label view and read the two curves.",),
    expects="'fewer, more accurate', 'more, less accurate' or 'no change'",
)
def _threshold(answer):
    options = ["fewer, more accurate", "more, less accurate", "no change"]
    if choice(answer, options) == options[0]:
        return right("a stricter τ keeps only the samples the model is surest of: fewer pseudo-labels, more of "
                     "them right — the trade-off the curve draws. Too strict and the unlabelled data teach nothing.")
    return not_yet("a higher threshold can only drop samples (the kept set shrinks); look at whether the ones "
                   "that survive are more often right.")
