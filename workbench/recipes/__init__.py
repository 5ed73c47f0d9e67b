"""Recipes: experiments that train several models, built on ``training`` and ``analyses``.

A recipe calls ``wb.fit`` (often more than once) and scores what it trained with analyses; the
layers below never import it.

* self-distillation: ``self_distillation`` (Born-Again Networks generations);
* semi-supervised distillation: ``semi_supervised`` (a FixMatch / mean-teacher fit that records
  its pseudo-labels), ``few_labels``, ``simclr_v2`` (pre-train → fine-tune → distil),
  ``weight_aware_distillation`` / ``teacher_pseudo_labels`` (WAD under class mismatch);
* dataset distillation: ``distribution_matching`` (DM), ``train_experts`` / ``load_experts``
  (expert trajectories saved as runs) and ``trajectory_matching`` (MTT, DATM),
  ``train_committee`` / ``committee_voting`` (CV-DD), ``random_real_subset`` (the baseline) and
  ``evaluate_synthetic`` (train fresh networks on a distilled set: accuracy and ECE);
* data pruning: ``prune_and_retrain`` (retrain on the examples kept by EL2N, GraNd or forgetting
  events, against random pruning).

    sd = wb.recipes.self_distillation(teacher, train, val=test, generations=3, steps=1000)
    wb.viz.generation_curve(sd)

Diffusion: ``generative_vs_discriminative`` (a diffusion model as a classifier beside a
size-matched MLP), ``curriculum_comparison`` (timestep curricula vs uniform sampling),
``guided_distillation`` (a scale-conditioned student vs its CFG teacher), ``student_table``
(consistency distillation, consistency training and DMD students vs their teacher).
"""

from ._synthetic import (
    SyntheticEval,
    SyntheticSet,
    evaluate_synthetic,
    random_real_subset,
    train_on_synthetic,
)
from .born_again import SelfDistillationResult, self_distillation
from .curriculum import CurriculumComparison, curriculum_comparison, loss_by_timestep
from .data_pruning import PruningResult, prune_and_retrain
from .diffusion_classifier import (
    GenerativeVsDiscriminative,
    generative_vs_discriminative,
    matched_mlp,
)
from .distill_cvdd import Committee, committee_voting, train_committee
from .distill_dm import distribution_matching
from .distill_mtt import trajectory_matching
from .experts import Experts, load_experts, train_experts
from .fscil import FSCILResult, fscil_teen
from .gcd import CategoryDiscovery, discover_categories
from .guided_distillation import GuidedDistillationResult, guided_distillation
from .online_cl import OnlineCLResult, online_continual
from .protopnet import ProtoPNetTraining, linear_head_baseline, train_protopnet
from .semi_supervised import SemiSupervisedResult, few_labels, semi_supervised
from .simclr_v2 import SimCLRv2Result, simclr_v2
from .students import StudentTable, student_table
from .wad import TeacherPseudoLabels, WADResult, teacher_pseudo_labels, weight_aware_distillation

__all__ = [
    "self_distillation", "SelfDistillationResult", "prune_and_retrain", "PruningResult",
    "train_protopnet", "ProtoPNetTraining", "linear_head_baseline",
    "discover_categories", "CategoryDiscovery",
    "fscil_teen", "FSCILResult", "online_continual", "OnlineCLResult",
    "generative_vs_discriminative", "GenerativeVsDiscriminative", "matched_mlp",
    "curriculum_comparison", "CurriculumComparison", "loss_by_timestep",
    "guided_distillation", "GuidedDistillationResult", "student_table", "StudentTable",
    "semi_supervised", "SemiSupervisedResult", "few_labels", "simclr_v2", "SimCLRv2Result",
    "weight_aware_distillation", "teacher_pseudo_labels", "WADResult", "TeacherPseudoLabels",
    "distribution_matching", "trajectory_matching", "train_experts", "load_experts", "Experts",
    "committee_voting", "train_committee", "Committee", "SyntheticSet", "SyntheticEval",
    "evaluate_synthetic", "random_real_subset", "train_on_synthetic",
]
