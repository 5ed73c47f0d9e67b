"""Adversarial Weight Perturbation as an optimizer choice: ``fit(..., optimizer="awp", gamma=0.01)``.

Paper: Wu, Xia & Wang, "Adversarial Weight Perturbation Helps Robust Generalization" (NeurIPS
2020); official code ``csdongxian/AWP`` (``utils_awp.py``: ``AdvWeightPerturb``/``TradesAWP``,
``diff_in_weights``, ``add_into_weights``). AWP minimises the loss at the worst nearby weights,
min_w max_{v ∈ V(w)} L(w + v), where the allowed perturbation is **layer-wise and relative to
the layer's size**: ‖v_l‖ ≤ γ ‖w_l‖ for every weight tensor w_l. One step of gradient ascent
solves the inner problem; every training step is then two passes over the same batch:

1. at w, gradient g (``fit`` has computed it when ``step`` is called); for each weight tensor
   (a parameter with more than one dimension: linear and convolution weights, not biases or
   normalisation scales) v_l = γ · ‖w_l‖ · g_l / (‖g_l‖ + 1e-20); move to w + v;
2. at w + v, gradient g_AWP (the closure recomputes loss and gradient there); the base optimizer
   steps with it **at w + v**, and v is subtracted afterwards (the official order:
   ``perturb``, forward/backward, ``optimizer.step()``, ``restore``).

The adversarial loss is whatever the method's loss is on the batch: the official code pairs
AWP with adversarial training (the ascent loss is the cross-entropy of PGD examples, or TRADES'
loss); with ``wb.methods.VAT`` it is VAT's loss, with ``CrossEntropy`` the clean loss.

As in the official code: the ascent direction is the loss gradient only (its proxy optimizer
has no weight decay; weight decay lives in the base optimizer, and is applied at w + v, as in
the code); only multi-dimensional weights are perturbed; the normalisation epsilon is 1e-20;
γ = 0.01 is the default of ``AT_AWP/train_cifar10.py`` (``TRADES_AWP`` uses 0.005);
``awp_warmup`` (steps; the official ``--awp-warmup`` counts epochs, default 0 for AT, 10 for
TRADES) trains with the plain base optimizer first.

Differences, stated:

* The official code computes the ascent gradient on a **proxy** copy of the model (one SGD step
  on −loss, then the per-layer difference is rescaled, which equals g_l up to a positive factor);
  here the gradient is the one ``fit`` already computed at w, with the same direction and no copy.
* BatchNorm: the official ascent pass updates only the proxy's running statistics and the
  descent pass at w + v updates the model's; here ``fit`` keeps the statistics of the first
  pass (at w) and discards the closure's, as for SAM.
* The official code picks tensors whose ``state_dict`` name contains "weight" and has more than
  one dimension; an optimizer sees no names, so here every parameter with more than one
  dimension is perturbed (the same set for linear, convolutional and normalisation layers; it
  also includes, e.g., a ViT's position embeddings, which the official rule skips).
* Gradient clipping in ``fit`` clips g before step 1 (one global factor, so each v_l is
  unchanged) and g_AWP in the closure.
"""

from __future__ import annotations

import torch

from .._checks import check_int, check_number
from ._two_pass import TwoPassOptimizer
from .optim import register_optimizer

EPS = 1e-20


class AWP(TwoPassOptimizer):
    """Two-pass AWP around a base optimizer; ``step(closure)`` is required (``needs_closure``).

    When ``step`` is called, the gradients at ``w`` must already be in ``.grad`` (``fit`` does
    that); ``closure()`` must zero the gradients, recompute the loss on the same batch,
    back-propagate and return the loss.
    """

    name = "AWP"
    restore_before_step = False  # the base step happens at w + v; v is subtracted afterwards

    def __init__(self, params, *, lr: float, gamma: float = 0.01, awp_warmup: int = 0, base: str = "sgd",
                 weight_decay: float | None = None, **base_options):
        gamma = check_number(gamma, "gamma", min=0, min_open=True,
                             hint="the layer-wise relative size of the weight perturbation, e.g. 0.01 (AT-AWP) or 0.005 (TRADES-AWP)")
        awp_warmup = check_int(awp_warmup, "awp_warmup", min=0, hint="steps of plain training before AWP starts")
        super().__init__(params, dict(gamma=gamma), lr=lr, base=base, weight_decay=weight_decay, **base_options)
        self.awp_warmup, self.steps_done = awp_warmup, 0

    @torch.no_grad()
    def perturb(self) -> None:
        """w <- w + v(w), v_l = γ ‖w_l‖ g_l / (‖g_l‖ + 1e-20) for every multi-dimensional weight."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None or p.ndim <= 1:
                    continue
                v = p.grad * (group["gamma"] * p.norm() / (p.grad.norm() + EPS))
                self.state[p]["awp_v"] = v
                p.add_(v)

    @torch.no_grad()
    def restore(self) -> None:
        """w <- w − v for every perturbed weight (after the base step, as the official code)."""
        for group in self.param_groups:
            for p in group["params"]:
                v = self.state[p].pop("awp_v", None)
                if v is not None:
                    p.sub_(v)

    _perturb, _restore = perturb, restore

    def _plain_step(self) -> bool:
        self.steps_done += 1
        return self.steps_done <= self.awp_warmup

    def __repr__(self) -> str:
        g = self.param_groups[0]
        return f"AWP(gamma={g.get('gamma')}, base={self.base_name}, lr={g.get('lr')}, awp_warmup={self.awp_warmup})"


@register_optimizer("awp")
def _awp(params, *, lr, weight_decay=None, gamma: float = 0.01, awp_warmup: int = 0, base: str = "sgd",
         **base_options):
    """``optimizer="awp"``: AWP with layer-wise relative radius ``gamma`` around ``base``
    (default SGD with momentum 0.9); extra keywords go to the base optimizer."""
    return AWP(params, lr=lr, gamma=gamma, awp_warmup=awp_warmup, base=base, weight_decay=weight_decay,
               **base_options)
