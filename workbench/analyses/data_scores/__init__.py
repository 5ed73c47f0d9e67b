"""Training-dynamics scores per example: EL2N and GraNd ("Deep Learning on a Data Diet") and
forgetting events; ``SampleScores.keep(fraction)`` gives a pruned subset (retraining on it is
``wb.recipes.prune_and_retrain``)."""

from ._result import SampleScores
from .el2n import el2n
from .forgetting import forgetting_events
from .grand import grand

__all__ = ["SampleScores", "el2n", "grand", "forgetting_events"]
