"""Conformal prediction: split-conformal sets (LAC, APS) and conformal risk control."""

from .risk_control import RiskControl, conformal_risk_control
from .split import (
    SCORES,
    SetEvaluation,
    SplitConformal,
    class_scores,
    conformal_quantile,
    evaluate_sets,
    split_conformal,
)

__all__ = ["SCORES", "SetEvaluation", "SplitConformal", "class_scores", "conformal_quantile",
           "evaluate_sets", "split_conformal", "RiskControl", "conformal_risk_control"]
