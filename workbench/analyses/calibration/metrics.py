"""Calibration metrics of a classifier's probabilities: ECE (top-label and classwise), Brier, NLL.

* **ECE** (Naeini et al. 2015; Guo et al., "On Calibration of Modern Neural Networks", ICML 2017):
  confidence c_i = max_k p_ik, correctness a_i = 1[argmax_k p_ik = y_i]; the samples are binned by
  c_i and ECE = Σ_m (|B_m|/N)·|mean c − mean a| over non-empty bins. MCE is the largest bin gap,
  RMSCE the count-weighted root mean square gap. The binning (equal-width or equal-mass, see
  ``binning.py``) and the number of bins are part of the number and are kept in the result;
  ECE is biased upward for small N and changes with M.
* **Classwise ECE** (Kull et al., "Beyond temperature scaling", NeurIPS 2019): for every class k
  bin p_·k and compare with the frequency of y = k; cwECE = (1/C) Σ_k Σ_m (|B_km|/N)·gap_km.
* **Brier score** (Brier 1950): mean_i Σ_k (p_ik − 1[y_i = k])², in [0, 2] (not divided by C).
* **NLL**: mean −log p_{i, y_i} from the log-softmax of the logits (never the log of clipped
  probabilities), so it is exact for confident models.

Where choices differ between codes: Guo et al.'s ``_ECELoss`` (15 equal-width (lo, hi] bins) is
what ``ece(..., n_bins=15)`` reproduces; torchmetrics uses [lo, hi) and gives a different number
when confidences sit on an edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._inputs import as_labels, as_logits, as_probs
from .binning import Bins, bin_edges, bin_stats

__all__ = ["CalibrationError", "ece", "top_label_error", "classwise_ece", "brier_score", "nll", "CalibrationSummary",
           "calibration_summary"]


@dataclass(frozen=True, eq=False)
class CalibrationError:
    """A top-label calibration error with the bins it was computed on (the reliability diagram's
    data): ``ece``, ``mce``, ``rmsce``; ``bins`` (per-bin counts, mean confidence, accuracy,
    each sample's bin); ``binning`` and ``n_bins``; ``confidence`` (N,) and ``correct`` (N,)."""

    ece: float
    mce: float
    rmsce: float
    binning: str
    n_bins: int
    bins: Bins
    confidence: torch.Tensor
    correct: torch.Tensor

    @property
    def accuracy(self) -> float:
        return float(self.correct.double().mean())

    def __repr__(self) -> str:
        return (f"CalibrationError(ECE={self.ece:.4f}, MCE={self.mce:.4f}, RMSCE={self.rmsce:.4f}; "
                f"{self.n_bins} {self.binning} bins, (lo, hi]; n={self.confidence.numel()}, "
                f"accuracy={self.accuracy:.4f})")


def _top_label(probs, y):
    p = as_probs(probs)
    y = as_labels(y, p.shape[0], p.shape[1])
    conf, pred = p.max(1)
    return p, y, conf, pred == y


def ece(probs, y, *, n_bins: int = 15, binning: str = "equal-width") -> CalibrationError:
    """Top-label ECE (with MCE, RMSCE and the reliability-diagram bins) of ``probs`` (N, C)
    against labels ``y`` (N,). ``binning``: "equal-width" or "equal-mass"."""
    _, _, conf, ok = _top_label(probs, y)
    return top_label_error(conf, ok, n_bins=n_bins, binning=binning)


def top_label_error(confidence, correct, *, n_bins: int = 15, binning: str = "equal-width") -> CalibrationError:
    """ECE from confidences (N,) in [0, 1] and correctness (N,) (bool or 0/1)."""
    conf = torch.as_tensor(confidence).detach().cpu().double().flatten()
    ok = torch.as_tensor(correct).detach().cpu().flatten()
    if conf.shape != ok.shape or conf.numel() == 0:
        raise ValueError(f"confidence and correct must be non-empty and of one length, got {tuple(conf.shape)} "
                         f"and {tuple(ok.shape)}")
    if bool((conf < 0).any()) or bool((conf > 1).any()) or not bool(torch.isfinite(conf).all()):
        raise ValueError("confidences must lie in [0, 1]: pass max softmax probabilities")
    bins = bin_stats(conf, ok.double(), bin_edges(conf, n_bins, binning))
    return CalibrationError(bins.weighted_gaps("l1"), bins.weighted_gaps("max"), bins.weighted_gaps("l2"),
                            binning, int(n_bins), bins, conf, ok.bool())


def classwise_ece(probs, y, *, n_bins: int = 15, binning: str = "equal-width") -> float:
    """Classwise ECE (Kull et al. 2019): the mean over classes of the ECE of p_k against 1[y = k]."""
    p = as_probs(probs)
    y = as_labels(y, p.shape[0], p.shape[1])
    onehot = torch.nn.functional.one_hot(y, p.shape[1]).double()
    total = 0.0
    for k in range(p.shape[1]):  # C small bincounts; C is the number of classes, not samples
        total += bin_stats(p[:, k], onehot[:, k], bin_edges(p[:, k], n_bins, binning)).weighted_gaps("l1")
    return total / p.shape[1]


def brier_score(probs, y) -> float:
    """Mean over samples of Σ_k (p_k − 1[y = k])², in [0, 2] (multiclass, not divided by C)."""
    p = as_probs(probs)
    y = as_labels(y, p.shape[0], p.shape[1])
    onehot = torch.nn.functional.one_hot(y, p.shape[1]).double()
    return float((p - onehot).square().sum(1).mean())


def nll(logits, y) -> float:
    """Mean negative log-likelihood −log softmax(logits)_y (from the log-softmax, in float64)."""
    z = as_logits(logits)
    y = as_labels(y, z.shape[0], z.shape[1])
    return float(-z.log_softmax(1).gather(1, y[:, None]).mean())


@dataclass(frozen=True, eq=False)
class CalibrationSummary:
    """Accuracy, ECE (with its bins), classwise ECE, Brier and NLL of one set of logits."""

    accuracy: float
    ece: CalibrationError
    classwise_ece: float
    brier: float
    nll: float
    temperature: float = 1.0

    def as_dict(self) -> dict[str, float]:
        return {"accuracy": self.accuracy, "ece": self.ece.ece, "mce": self.ece.mce,
                "classwise_ece": self.classwise_ece, "brier": self.brier, "nll": self.nll,
                "temperature": self.temperature}

    def __repr__(self) -> str:
        t = f", T={self.temperature:.3f}" if self.temperature != 1.0 else ""
        return (f"CalibrationSummary(accuracy={self.accuracy:.4f}, ECE={self.ece.ece:.4f} "
                f"({self.ece.n_bins} {self.ece.binning}), cwECE={self.classwise_ece:.4f}, "
                f"Brier={self.brier:.4f}, NLL={self.nll:.4f}{t})")


def calibration_summary(logits, y, *, n_bins: int = 15, binning: str = "equal-width",
                        temperature: float = 1.0) -> CalibrationSummary:
    """Every calibration number of ``logits`` (N, C) / ``temperature`` against ``y`` (N,)."""
    from ..._checks import check_number

    t = check_number(temperature, "temperature", min=0, min_open=True)
    z = as_logits(logits) / t
    p = z.softmax(1)
    err = ece(p, y, n_bins=n_bins, binning=binning)
    return CalibrationSummary(err.accuracy, err, classwise_ece(p, y, n_bins=n_bins, binning=binning),
                              brier_score(p, y), nll(z, y), t)
