"""Recipes: experiments that train several models, built on ``training`` and ``analyses``.

A recipe calls ``wb.fit`` (often more than once) and scores what it trained with analyses; the
layers below never import it. ``wb.recipes.self_distillation`` trains generations of a model
distilled into fresh copies of itself (Born-Again Networks).

    sd = wb.recipes.self_distillation(teacher, train, val=test, generations=3, steps=1000)
    wb.viz.generation_curve(sd)

Diffusion: ``generative_vs_discriminative`` (a diffusion model as a classifier beside a
size-matched MLP), ``curriculum_comparison`` (timestep curricula vs uniform sampling),
``guided_distillation`` (a scale-conditioned student vs its CFG teacher), ``student_table``
(consistency distillation, consistency training and DMD students vs their teacher).
"""

from .born_again import SelfDistillationResult, self_distillation
from .curriculum import CurriculumComparison, curriculum_comparison, loss_by_timestep
from .diffusion_classifier import (
    GenerativeVsDiscriminative,
    generative_vs_discriminative,
    matched_mlp,
)
from .fscil import FSCILResult, fscil_teen
from .gcd import CategoryDiscovery, discover_categories
from .guided_distillation import GuidedDistillationResult, guided_distillation
from .online_cl import OnlineCLResult, online_continual
from .protopnet import ProtoPNetTraining, linear_head_baseline, train_protopnet
from .students import StudentTable, student_table

__all__ = [
    "self_distillation", "SelfDistillationResult",
    "train_protopnet", "ProtoPNetTraining", "linear_head_baseline",
    "discover_categories", "CategoryDiscovery",
    "fscil_teen", "FSCILResult", "online_continual", "OnlineCLResult",
    "generative_vs_discriminative", "GenerativeVsDiscriminative", "matched_mlp",
    "curriculum_comparison", "CurriculumComparison", "loss_by_timestep",
    "guided_distillation", "GuidedDistillationResult", "student_table", "StudentTable",
]
