"""ODIN (Liang, Li & Srikant, "Enhancing The Reliability of Out-of-distribution Image Detection in
Neural Networks", ICLR 2018).

In words: (1) temperature scaling, p = softmax(f(x)/T) with a large T; (2) input
preprocessing: move x a small step ε against the gradient of the cross-entropy of its own
prediction ŷ, x̃ = x − ε·sign(∇_x CE(f(x)/T, ŷ)) / σ, which raises the softmax score of ID
inputs more than of OOD ones. OOD score = −max softmax(f(x̃)/T).

Implementation: f(x) = head(features(x)) (the same path as ``FeatureBank``), in eval mode, with
input gradients only (``torch.autograd.grad``: the parameters' ``.grad`` is not touched, the model
is not changed). The gradient of a sum of per-sample losses is per-sample in eval mode, so a
batch is processed at once (the official code needs batch size 1).

Differences from the official code: the sign is built as (grad ≥ 0 → +1, else −1), as in the
official code (a zero gradient counts as +1); ``std`` σ is the input normalisation's std —
a number or one value per channel (dimension 1 of x) — by which the step is divided (the official
code divides sample 0 only). Defaults T = 1000, ε = 0.0014 (official; the paper tunes both on OOD
data). ``predict_features(logits)`` cannot perturb inputs: it works only with ``epsilon=0``
(temperature scaling alone); with ε > 0 call ``predict(model, data)``. A ``FeatureBank``'s cached
features hold no inputs, so ``compare`` can use ODIN only with ε = 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int, check_number
from .._device import model_device
from .._modes import eval_mode
from ..data.embeddings import Embeddings
from .bank import FeatureBank, Features, as_dataset
from .logits import _LogitDetector

__all__ = ["ODIN"]


class ODIN(_LogitDetector):
    """OOD score = −max softmax(f(x̃)/T), x̃ = x − ε·sign(∇_x CE(f(x)/T, ŷ))/σ.

    Parameters
    ----------
    temperature: T (1000).
    epsilon: ε, the step in the units of the raw (un-normalised) input (0.0014).
    std: σ, a number or a per-channel sequence (1.0: inputs not normalised).
    batch_size: samples per forward/backward pass in ``predict``.
    """

    def __init__(self, *, temperature: float = 1000.0, epsilon: float = 0.0014, std=1.0, batch_size: int = 256):
        self.temperature = temperature
        self.epsilon = epsilon
        self.std = std
        self.batch_size = batch_size

    def _fit(self, z, y):
        super()._fit(z, y)
        check_number(self.epsilon, "epsilon", min=0)
        check_int(self.batch_size, "batch_size", min=1)
        self._sigma(1, 2)

    def _sigma(self, ndim: int, channels: int) -> torch.Tensor:
        s = torch.as_tensor(self.std, dtype=torch.float64).flatten()
        if not bool(torch.isfinite(s).all()) or bool((s <= 0).any()) or s.numel() not in (1, channels):
            raise ValueError(f"std must be a positive number or one positive value per input channel "
                             f"({channels}), got {self.std!r}")
        return s.reshape((1, -1) + (1,) * max(ndim - 2, 0)) if s.numel() > 1 else s.reshape(())

    def _score(self, z):
        if float(self.epsilon) != 0:
            raise ValueError("ODIN with epsilon > 0 perturbs the inputs, which logits alone cannot do: call "
                             "predict(model, data), or use ODIN(epsilon=0) for temperature scaling only")
        return -torch.softmax(z.double() / float(self.temperature), dim=1).amax(1)

    def predict(self, source, data=None) -> torch.Tensor:
        """OOD scores (N,) of ``data`` with input preprocessing through ``source`` (a model or a
        FeatureBank's model). Precomputed features or ``Embeddings`` (``predict(emb)``) hold no
        inputs: they are scored with ``epsilon=0`` only."""
        self._check_fitted()
        if data is None or float(self.epsilon) == 0 or isinstance(data, (Features, Embeddings)):
            return super().predict(source, data)
        model = source.model if isinstance(source, FeatureBank) else source
        if not isinstance(model, nn.Module):
            raise TypeError(f"the first argument must be a model (nn.Module) or a wb.ood.FeatureBank, got "
                            f"{type(source).__name__}")
        ds = as_dataset(data)
        t, eps = float(self.temperature), float(self.epsilon)
        out = []
        with eval_mode(model):
            for x, _ in ds.loader(check_int(self.batch_size, "batch_size", min=1), shuffle=False,
                                  device=model_device(model)):
                out.append(self._perturbed_msp(model, x, t, eps))
        return torch.cat(out)

    def _perturbed_msp(self, model, x, t, eps):
        x = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            logits = _logits(model, x)
            if self.n_features_in_ is not None and logits.shape[1] != self.n_features_in_:
                raise ValueError(f"ODIN was fitted on {self.n_features_in_} logits but the model gives "
                                 f"{logits.shape[1]}")
            loss = F.cross_entropy(logits / t, logits.argmax(1), reduction="sum")
            (grad,) = torch.autograd.grad(loss, x)
        sign = torch.where(grad >= 0, 1.0, -1.0)
        sigma = self._sigma(x.ndim, x.shape[1] if x.ndim > 1 else 1).to(x.device, x.dtype)
        with torch.no_grad():
            x_new = x.detach() - eps * sign / sigma
            s = -torch.softmax(_logits(model, x_new).double() / t, dim=1).amax(1)
        return s.float().cpu()


def _logits(model, x):
    h = model.features(x)
    return model.head(h.reshape(h.shape[0], -1))
