"""Recipes: experiments that train several models, built on ``training`` and ``analyses``.

A recipe calls ``wb.fit`` (often more than once) and scores what it trained with analyses; the
layers below never import it. ``wb.recipes.self_distillation`` trains generations of a model
distilled into fresh copies of itself (Born-Again Networks); ``wb.recipes.prune_and_retrain`` retrains on data pruned by
per-example scores (EL2N, GraNd, forgetting events).

    sd = wb.recipes.self_distillation(teacher, train, val=test, generations=3, steps=1000)
    wb.viz.generation_curve(sd)
"""

from .born_again import SelfDistillationResult, self_distillation
from .data_pruning import PruningResult, prune_and_retrain

__all__ = ["self_distillation", "SelfDistillationResult", "prune_and_retrain", "PruningResult"]
