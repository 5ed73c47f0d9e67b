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
"""

from __future__ import annotations

import torch
from torch import nn

from .._config import Configurable


class Method(nn.Module, Configurable):
    """Base class for training objectives (see the module docstring for the contract)."""

    #: True when the loss needs labels (fit refuses unlabelled data for it)
    needs_labels: bool = True
    loss_from_outputs = None

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
        want_acc = data.y is not None and hasattr(model, "head")
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
