"""The method contract: one training objective per file.

A method is an ``nn.Module`` with ``loss(model, batch) -> (loss, logs)``:

* ``batch`` is a tuple ``(x, y)`` of tensors already on the model's device (``y`` may be None
  for unlabelled data);
* ``loss`` is a scalar tensor to minimise; ``logs`` a dict of named scalars (floats or 0-d
  tensors; ``fit`` turns them into floats once per step) to record in the history.

A method may own parameters (a projection head, class centres): ``fit`` optimises them with the
model's. It may own buffers (prototypes, noise schedules): they move with ``.to(device)`` and
are saved by ``state_dict()``. State that changes during training outside the optimiser (an
EMA of prototypes) must only change while ``self.training`` is True, so evaluation never
alters it. Methods record their constructor arguments in ``self.config`` (see ``_config``).

Optional hooks:

* ``setup(model, data)``: called by ``fit`` before the optimizer is built, so a method can size
  its own modules from the model (e.g. a projection head on ``model.features``); it must be
  idempotent and record what it inferred in ``self.config`` so checkpoints can rebuild it;

* ``evaluate(model, data) -> dict[str, float]``: validation metrics (default: mean loss and
  logs over the data, plus accuracy for classifiers' logits when labels exist);
* ``loss_from_outputs(outputs, y) -> Tensor``: the loss as a function of ``model(x)`` alone, for
  analyses that evaluate many parameter vectors at once (loss landscapes, Hessians). Methods
  whose loss needs more than the model's output (augmented views, prototypes) leave it None.

Declared capabilities (what an analysis may assume, instead of testing the method's class):

* ``loss_form``: None, or a description of ``loss_from_outputs`` that analyses can exploit. A
  method whose ``loss_from_outputs`` is the mean softmax cross-entropy of logits against integer
  labels returns ``CrossEntropyOnLogits(label_smoothing)``; loss landscapes then evaluate it for
  many weight vectors at once through ``CrossEntropyOnLogits.batched`` (a class-first layout that
  is fast on CPUs), and Hessian products use the closed-form output Hessian ``diag p - p pᵀ``.
  Analyses check a declared form against ``loss_from_outputs`` once before relying on it.
  More generally, a method whose loss is the sample mean of a per-sample function of each
  sample's logits and label (focal, PolyLoss, Squentropy, Z-loss, LogitNorm...) returns a
  ``LossOnLogits``: ``form.per_sample(logits, y) -> (N,)`` gives the per-sample losses (data
  pruning scores, per-sample gradients) and ``form.batched`` evaluates a stack of logits at once.
  ``CrossEntropyOnLogits`` is one such form, with the closed forms above.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .._config import Configurable


class LossOnLogits:
    """A declared loss form: ``loss_from_outputs(logits, y) == per_sample(logits, y).mean()``,
    where ``per_sample`` maps ``(n, C)`` logits and their labels (``(n,)`` class indices, or
    ``(n, C)`` 0/1 targets for a multi-label loss) to ``(n,)`` losses, each row depending on its
    own logits and label only."""

    def per_sample(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def batched(self, logits: torch.Tensor, y: torch.Tensor, class_dim: int = -1) -> torch.Tensor:
        """The mean loss of each of a stack of logits: ``(..., n, C)`` (``class_dim=-1``) or
        ``(..., C, n)`` (``class_dim=-2``) -> ``(...)``, through one ``per_sample`` call on the
        flattened stack."""
        if class_dim not in (-1, -2):
            raise ValueError(f"class_dim must be -1 (..., n, C) or -2 (..., C, n), got {class_dim!r}")
        if class_dim == -2:
            logits = logits.transpose(-1, -2)
        lead, (n, c) = logits.shape[:-2], logits.shape[-2:]
        m = 1
        for d in lead:
            m *= int(d)
        yy = y.expand(m, *y.shape).reshape(m * n, *y.shape[1:])
        return self.per_sample(logits.reshape(m * n, c), yy).view(*lead, n).mean(-1)


@dataclass(frozen=True)
class LogitLoss(LossOnLogits):
    """The form of a loss given by a plain function ``fn(logits, y, reduction="none", **params)``
    (e.g. ``wb.methods.focal.focal_loss`` with ``params=(("gamma", 2.0),)``)."""

    name: str
    fn: Callable = field(repr=False)
    params: tuple = ()

    def per_sample(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.fn(logits, y, reduction="none", **dict(self.params))


@dataclass(frozen=True)
class CrossEntropyOnLogits(LossOnLogits):
    """Declared by a method whose ``loss_from_outputs(logits, y)`` is the sample mean of softmax
    cross-entropy with label smoothing ``s`` (``F.cross_entropy(logits, y, label_smoothing=s)``):
    ``(1 - s) (lse(z) - z_y) + s (lse(z) - mean_c z_c)`` per sample, labels in ``[0, C)``."""

    label_smoothing: float = 0.0

    def per_sample(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, label_smoothing=self.label_smoothing, reduction="none")

    def batched(self, logits: torch.Tensor, y: torch.Tensor, class_dim: int = -1, *, with_correct: bool = False):
        """The loss of a stack of logits over its samples: ``(..., n, C)`` (``class_dim=-1``) or
        ``(..., C, n)`` (``class_dim=-2``, the layout that is fast for few classes on a CPU,
        where the log-sum-exp reduces over a non-innermost axis) -> ``(...)``. With
        ``with_correct``, also the number of samples whose label's logit is the largest."""
        if class_dim not in (-1, -2):
            raise ValueError(f"class_dim must be -1 (..., n, C) or -2 (..., C, n), got {class_dim!r}")
        n = y.shape[0]
        mx = logits.amax(class_dim, keepdim=True)
        lse = torch.sub(logits, mx).exp_().sum(class_dim).log_().add_(mx.squeeze(class_dim))  # (..., n)
        lead = logits.shape[:-2]
        idx = y.view(*([1] * len(lead)), *((1, n) if class_dim == -2 else (n, 1))).expand(
            *lead, *((1, n) if class_dim == -2 else (n, 1)))
        picked = logits.gather(class_dim, idx).squeeze(class_dim)  # (..., n)
        nll = lse - picked
        s = self.label_smoothing
        loss = ((1 - s) * nll + s * (lse - logits.mean(class_dim))).mean(-1) if s > 0 else nll.mean(-1)
        if not with_correct:
            return loss
        # correct when the label's logit is the largest (an argmax would break exact ties by the
        # first index, and costs far more over a non-innermost axis)
        return loss, (picked >= mx.squeeze(class_dim)).sum(-1)


class Method(nn.Module, Configurable):
    """Base class for training objectives (see the module docstring for the contract)."""

    #: True when the loss needs labels (fit refuses unlabelled data for it)
    needs_labels: bool = True
    loss_from_outputs = None
    #: a declared form of ``loss_from_outputs`` that analyses may exploit (see the module docstring)
    loss_form: LossOnLogits | None = None

    def loss(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict]:  # pragma: no cover
        raise NotImplementedError

    def forward(self, model: nn.Module, batch):
        return self.loss(model, batch)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data, batch_size: int = 1024) -> dict[str, float]:
        """Sample-weighted mean of the loss and logs over ``data`` (model and method in eval mode
        are the caller's business: ``fit`` switches both and restores them)."""
        from .._device import model_device

        device = model_device(model)
        totals: dict[str, torch.Tensor] = {}
        correct = torch.zeros((), device=device)
        n = 0
        # accuracy from the classifier's logits, unless the method already logs it
        # (a multi-label set's (N, C) targets have no top-1 accuracy: such methods override this)
        want_acc = data.y is not None and data.y.ndim == 1 and hasattr(model, "head")
        for x, y in data.loader(batch_size, shuffle=False, device=device):
            loss, logs = self.loss(model, (x, y))
            b = x.shape[0]
            for k, v in {"loss": loss, **logs}.items():
                v = torch.as_tensor(v, device=device, dtype=torch.float32)
                totals[k] = totals.get(k, torch.zeros((), device=device)) + v * b
            if want_acc and "acc" not in logs:
                logits = model(x)
                if logits.ndim == 2:
                    correct += (logits.argmax(1) == y).sum()
                else:
                    want_acc = False
            n += b
        out = {k: float(v) / n for k, v in totals.items()}
        if want_acc and "acc" not in out:
            out["acc"] = float(correct) / n
        return out

    def extra_repr(self) -> str:
        cfg = getattr(self, "config", {})
        return ", ".join(f"{k}={v!r}" for k, v in cfg.items() if not isinstance(v, nn.Module))
