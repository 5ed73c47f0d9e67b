"""Recipes: experiments that train several models, built on ``training`` and ``analyses``.

A recipe calls ``wb.fit`` (often more than once) and scores what it trained with analyses; the
layers below never import it. ``wb.recipes.self_distillation`` trains generations of a model
distilled into fresh copies of itself (Born-Again Networks).

    sd = wb.recipes.self_distillation(teacher, train, val=test, generations=3, steps=1000)
    wb.viz.generation_curve(sd)
"""

from .born_again import SelfDistillationResult, self_distillation
from .fscil import FSCILResult, fscil_teen
from .gcd import CategoryDiscovery, discover_categories
from .online_cl import OnlineCLResult, online_continual
from .protopnet import ProtoPNetTraining, linear_head_baseline, train_protopnet

__all__ = [
    "self_distillation", "SelfDistillationResult",
    "train_protopnet", "ProtoPNetTraining", "linear_head_baseline",
    "discover_categories", "CategoryDiscovery",
    "fscil_teen", "FSCILResult", "online_continual", "OnlineCLResult",
]
