"""The shared frame of the two-pass optimizers (SAM/ASAM, AWP).

Both wrap a base optimizer whose parameter groups they share, need a closure that re-evaluates
the loss on the same batch, move the weights away from ``w`` for the second pass and must put
them back even if that pass raises. What differs is only the move (``_perturb``) and its undo
(``_restore``) and when the base step happens relative to the undo (``restore_before_step``:
SAM steps at ``w`` with the gradient from ``w + ε``; AWP steps at ``w + v`` and subtracts ``v``
afterwards, as its official code does).
"""

from __future__ import annotations

import torch

from .optim import make_optimizer


class TwoPassOptimizer(torch.optim.Optimizer):
    """Base of an optimizer that perturbs the weights, re-evaluates the closure, and steps.

    When ``step`` is called, the gradients at ``w`` must already be in ``.grad`` (``fit`` does
    that); ``closure()`` must zero the gradients, recompute the loss on the same batch,
    back-propagate and return the loss. Subclasses set ``name`` and ``restore_before_step`` and
    implement ``_perturb``/``_restore``.
    """

    needs_closure = True
    name = "two-pass"
    #: True: undo the move, then the base step (SAM); False: base step at the moved weights,
    #: then undo (AWP).
    restore_before_step = True

    def __init__(self, params, own_defaults: dict, *, lr: float, base="sgd",
                 weight_decay: float | None = None, **base_options):
        if isinstance(base, str) and base in ("sam", "awp"):
            raise ValueError(f"base={base!r} is not allowed; choose a plain optimizer such as 'sgd' or 'adam'")
        if not isinstance(base, str) and not callable(base):
            raise TypeError(f"base must be an optimizer name or factory, got {type(base).__name__}")
        super().__init__(params, own_defaults)
        self.base_optimizer = make_optimizer(base, self.param_groups, lr=lr, weight_decay=weight_decay,
                                             **base_options)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)
        self.base_name = base if isinstance(base, str) else getattr(base, "__name__", "custom")

    def _perturb(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _restore(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _plain_step(self) -> bool:
        """True when this step is a plain base-optimizer step (e.g. during a warm-up)."""
        return False

    def step(self, closure=None):
        if closure is None:
            raise ValueError(
                f"{self.name} needs a closure that re-evaluates the loss on the same batch: "
                f"opt.step(closure) after loss.backward(); wb.fit does this for optimizer={self.name.lower()!r}"
            )
        if self._plain_step():
            self.base_optimizer.step()
            return None
        self._perturb()
        try:
            with torch.enable_grad():
                loss = closure()
            if not self.restore_before_step:
                self.base_optimizer.step()
        finally:
            self._restore()  # the weights are back at w even if the closure raised
        if self.restore_before_step:
            self.base_optimizer.step()
        return loss

    def state_dict(self):
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict):
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups
