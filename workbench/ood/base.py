"""The detector contract shared by every OOD detector (scikit-learn's estimator rules,
pytorch-ood's split between model-level and feature-level calls).

* ``__init__`` only stores keyword hyperparameters (no validation of data, no learning).
* ``fit(source, data)`` / ``fit_features(z, y=None)`` validate, learn attributes whose names end
  in ``_`` (``n_features_in_`` always), and return ``self``.
* ``predict(source, data)`` / ``predict_features(z)`` return one score per sample, a CPU float32
  tensor of shape (N,). **Larger score = more OOD.**
* ``source`` is a model (features are computed for this call) or a ``FeatureBank`` (features are
  computed once per data set and cached). ``data`` is a ``wb.data.Dataset`` or an input tensor.
  Precomputed ``wb.data.Embeddings`` need no model: ``fit(emb)`` / ``predict(emb)`` (their
  labels serve class-conditional detectors, their ``logits`` the logit detectors), and
  ``fit_features(emb)`` takes the labels from them when ``y`` is not given.
* Calling ``predict*`` before ``fit*`` raises ``NotFittedError``; mismatched feature sizes,
  NaN/inf features, missing labels for class-conditional detectors and OOD labels (-1) in the
  fitting data raise ``ValueError`` saying what to pass instead.

The fitted state lives on the device of the features it was fitted on (a bank keeps features on
the CPU); ``predict_features`` refuses features on another device.

Large inputs are checked and scored in row blocks of about ``SCORE_BLOCK_BYTES`` (float64) each
(every detector's score of a row depends on that row alone), into one preallocated result, so
scoring millions of rows (memory-mapped features from a ``FeatureBank(memory=..)``) needs memory
for one block, not for a copy of the features.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch
from torch import nn

from .._stream import row_chunks, rows_for, shared_tensor
from ..data.embeddings import Embeddings
from .bank import SPACES, FeatureBank, Features, as_dataset

__all__ = ["Detector", "NotFittedError", "check_features", "check_labels", "score_rows"]

SCORE_BLOCK_BYTES = 32 * 2**20


def score_rows(z: torch.Tensor) -> int:
    """Rows per block when checking or scoring (N, d) features ``z``."""
    return rows_for(SCORE_BLOCK_BYTES, 8 * max(1, z.shape[1]), at_least=1024)


class NotFittedError(ValueError, AttributeError):
    """A detector was used before ``fit`` / ``fit_features``."""


def check_features(z, what: str = "z") -> torch.Tensor:
    """A 2-D floating tensor with finite values, or a clear error."""
    if isinstance(z, np.ndarray):
        if z.dtype == object:
            raise TypeError(f"{what} is a numpy array of Python objects; pass a numeric (N, d) array")
        z = shared_tensor(np.ascontiguousarray(z))
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"{what} must be an (N, d) torch tensor or numpy array, got {type(z).__name__}")
    if z.ndim == 1:
        raise ValueError(f"{what} has shape {tuple(z.shape)}; pass (N, d) features, e.g. z.reshape(-1, 1)")
    if z.ndim != 2:
        raise ValueError(
            f"{what} must be (N, d) features, got shape {tuple(z.shape)}; flatten each sample first "
            "(z.reshape(len(z), -1))"
        )
    if z.shape[0] == 0:
        raise ValueError(f"{what} is empty; pass at least one sample")
    if z.dtype == torch.bool or z.dtype.is_complex:
        raise TypeError(f"{what} holds {z.dtype} values; pass real-valued (N, d) features")
    if not z.dtype.is_floating_point:
        z = z.float()
    z = z.detach()
    rows = []
    for i, block in row_chunks(z, score_rows(z)):
        bad = ~torch.isfinite(block)
        if bool(bad.any()):
            rows = (bad.any(1).nonzero().flatten()[:5] + i).tolist()
            break
    if rows:
        raise ValueError(
            f"{what} contains NaN or inf values (first bad rows: {rows}); the model's features are "
            "broken (diverged training?) or the inputs contain NaN: clean them before scoring"
        )
    return z


def check_labels(y, n: int, detector: str) -> torch.Tensor:
    """int64 labels (n,) with no OOD (-1) entries, or a clear error."""
    if y is None:
        raise ValueError(
            f"{detector} is class-conditional and needs the class labels of the fitting data: pass "
            "fit_features(z, y) or fit(model, id_train) with a labelled data set"
        )
    if isinstance(y, np.ndarray):
        y = torch.from_numpy(np.ascontiguousarray(y))
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a (N,) tensor or numpy array of class indices, got {type(y).__name__}")
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"y must have shape ({n},) (one label per feature row), got {tuple(y.shape)}")
    if y.dtype == torch.bool or y.dtype.is_complex:
        raise TypeError(f"y must hold integer class indices 0..C-1, got {y.dtype}")
    if y.dtype.is_floating_point:
        if not bool(torch.isfinite(y).all()) or not bool(torch.equal(y, y.round())):
            raise TypeError("y holds non-integer values; pass integer class indices 0..C-1")
    y = y.to(torch.int64)
    if bool((y < 0).any()):
        raise ValueError(
            f"the fitting labels contain {int((y < 0).sum())} negative (OOD/unknown, -1) entries; fit "
            "detectors on in-distribution training data only (e.g. id_train from wb.data.ood_split)"
        )
    return y


class Detector:
    """Base class of OOD detectors (see the module docstring for the contract).

    Subclasses set ``space`` (default feature space: "backbone", "logits" or "embedding"; a
    ``space`` hyperparameter overrides it), ``needs_labels``, ``needs_fit_data``, and implement
    ``_fit(z, y)`` and ``_score(z) -> (N,)``; ``_score`` must score each row on its own, since
    large inputs are scored in row blocks.
    """

    space: str = "backbone"
    needs_labels: bool = False
    needs_fit_data: bool = True

    # ------------------------------------------------------------------ params (sklearn-style)
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self) -> dict:
        """The hyperparameters given to ``__init__``."""
        return {k: getattr(self, k) for k in self._param_names()}

    def set_params(self, **params):
        valid = self._param_names()
        for k, v in params.items():
            if k not in valid:
                raise ValueError(f"unknown parameter {k!r} for {type(self).__name__}; valid: {', '.join(valid)}")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        parts = []
        for k in self._param_names():
            v = getattr(self, k)
            default = sig.parameters[k].default
            if isinstance(v, (nn.Module, torch.Tensor)) or callable(v):
                if v is not None:
                    parts.append(f"{k}=<{type(v).__name__}>")
                continue
            if default is inspect.Parameter.empty or v != default:
                parts.append(f"{k}={v!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    @property
    def name(self) -> str:
        """A short label for tables: the class name plus the plain hyperparameters that differ
        from their defaults (objects such as a method or a tensor are left out)."""
        sig = inspect.signature(type(self).__init__)
        parts = []
        for k in self._param_names():
            v = getattr(self, k)
            if isinstance(v, (nn.Module, torch.Tensor)) or callable(v):
                continue
            default = sig.parameters[k].default
            if default is inspect.Parameter.empty or v != default:
                parts.append(f"{k}={v!r}")
        return type(self).__name__ + (f"({', '.join(parts)})" if parts else "")

    # ------------------------------------------------------------------ feature plumbing
    def _space(self) -> str:
        sp = self.__dict__.get("space", type(self).space)
        if sp not in SPACES:
            raise ValueError(f"unknown feature space {sp!r}; valid: {', '.join(SPACES)}")
        return sp

    def _bank(self, source) -> FeatureBank:
        if isinstance(source, FeatureBank):
            return source
        if isinstance(source, nn.Module):
            return FeatureBank(source, logits=self._space() == "logits" or None)
        raise TypeError(
            f"the first argument must be a model (nn.Module) or a wb.ood.FeatureBank, got "
            f"{type(source).__name__}; for precomputed features use fit_features / predict_features"
        )

    def _features_of(self, source, data) -> Features:
        if isinstance(data, Features):
            return data
        if isinstance(data, Embeddings):
            return Features.of(data)
        data = as_dataset(data)
        return self._bank(source).features(data)

    # ------------------------------------------------------------------ fitting
    def fit(self, source, data=None):
        """Fit on in-distribution training data ``data`` using ``source`` (a model or a
        FeatureBank) to compute the features, or precomputed ``Embeddings`` alone
        (``fit(emb)``). Returns self."""
        if data is None and isinstance(source, Embeddings):
            source, data = None, source
        if data is None:
            if self.needs_fit_data:
                raise ValueError(
                    f"{type(self).__name__} learns from in-distribution training data: pass "
                    f"fit(model_or_bank, id_train)"
                )
            return self.fit_features(None)
        feats = self._features_of(source, data)
        z = feats.get(self._space())
        y = feats.y
        if y is not None and bool((y < 0).any()):
            raise ValueError(
                f"the fitting data has {int((y < 0).sum())} of {len(y)} samples labelled -1 (OOD/unknown); "
                f"fit {type(self).__name__} on in-distribution training data only (e.g. id_train from "
                "wb.data.ood_split), or pass Dataset(x) without labels if the data is simply unlabelled"
            )
        return self.fit_features(z, y)

    def fit_features(self, z, y=None):
        """Fit on precomputed in-distribution features ``z`` (N, d) (and labels ``y`` (N,) for
        class-conditional detectors; taken from ``z.labels`` when ``z`` is ``Embeddings`` and
        the detector needs them). Returns self."""
        if y is None and self.needs_labels and isinstance(z, Embeddings):
            y = z.labels
        self._reset()
        self._space()  # an unknown space= fails here, not only when a bank is asked for it
        if z is None:
            if self.needs_fit_data:
                raise ValueError(f"{type(self).__name__}.fit_features needs the training features z (N, d)")
            self._fit(None, None)
            self.n_features_in_ = getattr(self, "n_features_in_", None)
            return self
        z = check_features(z, "z")
        if self.needs_labels:
            y = check_labels(y, z.shape[0], type(self).__name__)
        elif y is not None:
            y = check_labels(y, z.shape[0], type(self).__name__)
        if y is not None:
            y = y.to(z.device)
        self.n_features_in_ = int(z.shape[1])
        self.device_ = z.device
        self._fit(z, y)
        return self

    def _reset(self) -> None:
        for k in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, k)

    def _fit(self, z, y) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ scoring
    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "n_features_in_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            name = type(self).__name__
            raise NotFittedError(
                f"this {name} is not fitted yet; call {name}(...).fit(model_or_bank, id_train) or "
                ".fit_features(z, y) before predicting"
            )

    def predict(self, source, data=None) -> torch.Tensor:
        """OOD scores (N,) of ``data``, larger = more OOD; ``source`` a model or FeatureBank, or
        precomputed ``Embeddings`` alone (``predict(emb)``)."""
        if data is None and isinstance(source, Embeddings):
            source, data = None, source
        if data is None:
            raise TypeError("predict needs the data to score: predict(model_or_bank, data) or predict(embeddings)")
        self._check_fitted()
        feats = self._features_of(source, data)
        return self.predict_features(feats.get(self._space()))

    def predict_features(self, z) -> torch.Tensor:
        """OOD scores (N,) of precomputed features ``z`` (N, d), larger = more OOD."""
        self._check_fitted()
        z = check_features(z, "z")
        d = self.n_features_in_
        if d is not None and z.shape[1] != d:
            raise ValueError(
                f"{type(self).__name__} was fitted on {d}-dimensional features but got {z.shape[1]}; "
                f"score features from the same model and space ({self._space()!r}) it was fitted on"
            )
        dev = getattr(self, "device_", None)
        if dev is not None and z.device != dev:
            raise ValueError(f"{type(self).__name__} was fitted on {dev} but got features on {z.device}; move them")
        out = torch.empty(z.shape[0], dtype=torch.float32)
        with torch.no_grad():
            for i, block in row_chunks(z, score_rows(z)):
                out[i : i + block.shape[0]] = self._score(block).detach().float().cpu()
        return out

    def _score(self, z) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
