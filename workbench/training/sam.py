"""Sharpness-Aware Minimization as an optimizer choice: ``fit(..., optimizer="sam", rho=0.05)``.

Paper: Foret, Kleiner, Mobahi, Neyshabur, "Sharpness-Aware Minimization for Efficiently
Improving Generalization" (ICLR 2021). SAM minimises ``max_{||ε|| <= ρ} L(w + ε)``. With a
first-order solution of the inner problem every step is two passes over the same batch:

1. at ``w``, gradient ``g`` (``fit`` has already computed it when ``step`` is called);
   ``ε = ρ g / ||g||`` with one global L2 norm over all parameters (``1e-12`` guards a zero
   gradient);
2. at ``w + ε``, gradient ``g_SAM`` (the closure recomputes loss and gradient there); restore
   ``w`` and let the base optimizer step with ``g_SAM``.

``adaptive=True`` is ASAM (Kwon et al. 2021): ``ε = ρ T² g / ||T g||`` with ``T = |w|``; its ρ is
typically ~10x larger (e.g. 0.5).

Choices, stated:

* **Base optimizer**: any registered name (``base="sgd"`` by default, i.e. SGD with momentum 0.9
  from the registry) with its own options (``momentum=``, ``nesterov=``, ``betas=``...). The
  learning rate and its schedule act on the base optimizer (the parameter groups are shared).
* **Weight decay is not part of the ascent direction**: it lives in the base optimizer, as in
  the widely used PyTorch port (davda54/sam). The official JAX code differs: its ascent uses
  the gradient of the loss *including* the L2 term.
* **BatchNorm**: ``fit`` keeps the buffers (running statistics) from the clean first pass and
  discards the second pass's updates, as the official code does (davda54's port updates
  them twice unless told otherwise).
* **Gradient clipping** in ``fit`` clips g before step 1 (ε only depends on its direction) and
  g_SAM in the closure.
* Cost: two forward/backward passes per step. Not implemented: m-sharpness over sub-batches,
  AMP, gradient accumulation (``fit`` has neither).
"""

from __future__ import annotations

import torch

from ._two_pass import TwoPassOptimizer
from .optim import register_optimizer


class SAM(TwoPassOptimizer):
    """Two-step SAM around a base optimizer; ``step(closure)`` is required (``needs_closure``).

    When ``step`` is called, the gradients at ``w`` must already be in ``.grad`` (``fit`` does
    that); ``closure()`` must zero the gradients, recompute the loss on the same batch,
    back-propagate and return the loss.
    """

    name = "SAM"
    restore_before_step = True  # back to w, then the base step with the gradient from w + ε

    def __init__(self, params, *, lr: float, rho: float = 0.05, adaptive: bool = False,
                 base: str = "sgd", weight_decay: float | None = None, **base_options):
        if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not rho > 0:
            raise ValueError(f"rho must be a positive number (the radius of the ascent step), got {rho!r}")
        super().__init__(params, dict(rho=float(rho), adaptive=bool(adaptive)), lr=lr, base=base,
                         weight_decay=weight_decay, **base_options)

    @torch.no_grad()
    def _grad_norm(self) -> torch.Tensor:
        norms = []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if group.get("adaptive", False):
                    g = p.abs() * g
                norms.append(g.norm(2))
        if not norms:
            return torch.zeros(())
        dev = norms[0].device
        return torch.stack([n.to(dev) for n in norms]).norm(2)

    @torch.no_grad()
    def _perturb(self) -> None:
        """w <- w + ε(w); remembers w."""
        gn = self._grad_norm()
        for group in self.param_groups:
            scale = group.get("rho", 0.05) / (gn + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                self.state[p]["sam_w"] = p.detach().clone()
                e = p.grad * scale.to(p.device)
                if group.get("adaptive", False):
                    e = e * p.pow(2)
                p.add_(e)

    @torch.no_grad()
    def _restore(self) -> None:
        """w <- the remembered w."""
        for group in self.param_groups:
            for p in group["params"]:
                w = self.state[p].pop("sam_w", None)
                if w is not None:
                    p.copy_(w)

    def first_step(self) -> None:
        """w <- w + ε(w) (the ascent step; ``step(closure)`` does both steps)."""
        self._perturb()

    def second_step(self) -> None:
        """w <- the remembered w, then the base optimizer's step with the gradient at w + ε."""
        self._restore()
        self.base_optimizer.step()

    def __repr__(self) -> str:
        g = self.param_groups[0]
        return f"SAM(rho={g.get('rho')}, adaptive={g.get('adaptive')}, base={self.base_name}, lr={g.get('lr')})"


@register_optimizer("sam")
def _sam(params, *, lr, weight_decay=None, rho: float = 0.05, base: str = "sgd", adaptive: bool = False,
         **base_options):
    """``optimizer="sam"``: SAM (``adaptive=True``: ASAM) around ``base`` (default SGD with
    momentum 0.9); extra keywords go to the base optimizer."""
    return SAM(params, lr=lr, rho=rho, adaptive=adaptive, base=base, weight_decay=weight_decay,
               **base_options)
