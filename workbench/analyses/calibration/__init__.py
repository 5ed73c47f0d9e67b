"""Calibration of a classifier's probabilities: ECE (equal-width and equal-mass bins, top-label
and classwise), MCE, Brier score, NLL, temperature scaling and the reliability-diagram bins.

All functions take logits or probabilities (tensors or numpy arrays) and labels, never a model:
compute logits once with ``wb.analyses.predict(model, data).logits``.
"""

from .binning import BINNINGS, Bins, bin_edges, bin_stats
from .metrics import (
    CalibrationError,
    CalibrationSummary,
    brier_score,
    calibration_summary,
    classwise_ece,
    ece,
    nll,
    top_label_error,
)
from .temperature import TemperatureScaling, fit_temperature

__all__ = ["BINNINGS", "Bins", "bin_edges", "bin_stats", "CalibrationError", "CalibrationSummary",
           "brier_score", "calibration_summary", "classwise_ece", "ece", "nll", "top_label_error",
           "TemperatureScaling", "fit_temperature"]
