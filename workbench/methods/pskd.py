"""Progressive self-knowledge distillation (PS-KD; Kim, Ji, Yoon & Hwang, ICCV 2021,
"Self-Knowledge Distillation with Progressive Refinement of Targets").

The model is its own teacher: at epoch t its training targets are a mixture of the one-hot
label and the model's own predictions from the previous epoch, with a weight that grows
linearly over training,

    α_t = α_T · t / T,        target_t(x) = (1 − α_t) · onehot(y) + α_t · p_{t−1}(x),
    L = − Σ_c target_t(x)_c · log softmax(model(x))_c   (batch mean),

where T is the number of epochs and p_{t−1}(x) = softmax(model_{t−1}(x)) (temperature 1). At
t = 0 the targets are the plain labels. As the model gets better its own (softened) predictions
carry more weight: hard, probably mislabelled or ambiguous samples get softer targets.

Where this knowingly differs from the paper's official code:

* The official code stores, for every training sample, the softmax output the model produced
  when it saw that sample during the previous epoch (in train mode), indexed by sample id.
  ``fit``'s batches carry no sample ids, so here p_{t−1} comes from a **frozen copy of the model
  taken at the end of the previous epoch**, evaluated (in eval mode, without gradient) on the
  current batch. It is the "model at epoch t − 1" of the paper's text, evaluated a little
  later than the official code does, and it costs one extra forward pass per step.
* An "epoch" is ``epoch_steps`` optimisation steps as the method counts them (``fit`` with
  ``epochs=E, batch_size=B`` runs ``len(data) // B`` steps per epoch: pass that number). The step
  counter is a buffer (saved in checkpoints); the frozen copy is not (it is transient training
  state, like the optimiser's): after loading a checkpoint the first training step takes a
  new copy. Only the method's own steps in train mode advance the counter; evaluation does not.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from .base import Method
from .cross_entropy import check_labels
from .kd import freeze


class PSKD(Method):
    """Progressive self-knowledge distillation: targets ``(1 − α_t)·y + α_t·p_{t−1}``.

    ``epochs``: T, the number of epochs over which α grows linearly from 0 to ``alpha_T``
    (it stays at ``alpha_T`` afterwards); ``epoch_steps``: optimisation steps per epoch
    (``len(train) // batch_size`` for ``fit``); ``alpha_T``: the final weight of the model's own
    predictions (0.8 in the paper). Logs ``ce`` (against the hard labels), ``alpha`` (α_t) and
    ``acc``.
    """

    def __init__(self, epochs: int, epoch_steps: int, alpha_T: float = 0.8):
        super().__init__()
        for name, v in (("epochs", epochs), ("epoch_steps", epoch_steps)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(
                    f"{name} must be a positive int, got {v!r}; for fit(..., epochs=E, batch_size=B) "
                    "pass epochs=E and epoch_steps=len(train) // B"
                )
        if isinstance(alpha_T, bool) or not isinstance(alpha_T, (int, float)) or not 0.0 <= alpha_T <= 1.0:
            raise ValueError(f"alpha_T must be in [0, 1], got {alpha_T!r}")
        self.epochs, self.epoch_steps, self.alpha_T = epochs, epoch_steps, float(alpha_T)
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))
        object.__setattr__(self, "_previous", None)   # frozen copy, not a registered submodule
        object.__setattr__(self, "_previous_epoch", -1)

    @property
    def epoch(self) -> int:
        """The epoch the next training step belongs to (0-based)."""
        return int(self.step) // self.epoch_steps

    def alpha_at(self, epoch: int) -> float:
        """α_t = α_T · t / T, capped at α_T."""
        return self.alpha_T * min(epoch, self.epochs) / self.epochs

    def _refresh(self, model, epoch: int):
        # a frozen copy of the model as it is at the start of `epoch` (= end of epoch - 1)
        object.__setattr__(self, "_previous", freeze(copy.deepcopy(model)))
        object.__setattr__(self, "_previous_epoch", epoch)

    def loss(self, model, batch):
        x, y = batch
        logits = model(x)
        check_labels(y, logits.shape[-1], "PSKD")
        epoch = self.epoch
        if self.training and epoch > 0 and self._previous_epoch != epoch:
            self._refresh(model, epoch)
        alpha = self.alpha_at(epoch) if self._previous is not None else 0.0
        onehot = F.one_hot(y, logits.shape[-1]).to(logits.dtype)
        if alpha > 0.0:
            with torch.no_grad():
                p_prev = self._previous(x).softmax(-1)
            target = (1.0 - alpha) * onehot + alpha * p_prev
        else:
            target = onehot
        log_p = F.log_softmax(logits, dim=-1)
        loss = -(target * log_p).sum(-1).mean()
        if self.training:
            self.step += 1
        ce = -(onehot * log_p.detach()).sum(-1).mean()
        acc = (logits.detach().argmax(1) == y).float().mean()
        return loss, {"ce": ce, "alpha": alpha, "acc": acc}
