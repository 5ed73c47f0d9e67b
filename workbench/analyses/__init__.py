"""Analyses: pure functions over (model, method, data) returning frozen results on the CPU.

Never imports plotly or ipywidgets, never changes the model (weights, buffers, mode).
"""

from . import calibration, conformal, data_scores
from .batchnorm import batchnorm_recalibrated
from .calibration import (
    CalibrationError,
    CalibrationSummary,
    TemperatureScaling,
    brier_score,
    calibration_summary,
    classwise_ece,
    fit_temperature,
    nll,
)
from .classification import Predictions, predict
from .conformal import SplitConformal, conformal_risk_control, evaluate_sets, split_conformal
from .continual import (
    FORGETTING_CONVENTIONS,
    AccuracyMatrices,
    ContinualMetrics,
    PrototypeDrift,
    accuracy_matrices,
    continual_metrics,
    prototype_drift,
)
from .curvature import (
    HessianEigs,
    HessianOperator,
    HessianTrace,
    PerClass,
    Sharpness,
    SpectralDensity,
    hessian_eigs,
    hessian_trace,
    hvp,
    sharpness,
    spectral_density,
)
from .data_scores import SampleScores, el2n, forgetting_events, grand
from .diffusion import ScoreField, Trajectory, matching_frames, sample_trajectory, score_field
from .diffusion_classifier import (
    ClassifierCurve,
    DiffusionClassification,
    classifier_curve,
    classifier_timesteps,
    diffusion_classify,
)
from .diffusion_features import DiffusionFeatures, ProbeGrid, diffusion_features, probe_grid
from .diffusion_gaussian import GaussianScoreModel, ScoreError, gaussian_score, score_error
from .diffusion_quality import (
    HallucinationFilter,
    HallucinationFlags,
    SampleQuality,
    TrajectoryVariance,
    energy_distance,
    hallucination_filter,
    hallucination_flags,
    mmd,
    precision_recall,
    sample_quality,
    trajectory_variance,
)
from .discrete_diffusion import DiscreteTrajectory, SequenceStats, sample_discrete, sequence_stats
from .distillation import (
    Agreement,
    DistillationTrajectory,
    TeacherStudentReport,
    agreement,
    agreement_from_logits,
    distillation_trajectory,
    reports_table,
    teacher_student_report,
)
from .ece import Calibration, calibration_of_logits, top_label_ece
from .embedding import (
    PROJECTIONS,
    AlignedProjections,
    Projection,
    aligned_projections,
    embed,
    procrustes_fit,
    project,
)
from .fewshot import (
    FewShotResult,
    fewshot_eval,
    fewshot_from_embeddings,
    prototype_classify,
    sample_episodes,
)
from .gcd import CONVENTIONS as GCD_CONVENTIONS
from .gcd import GCDAccuracy, cluster_accuracy, hungarian_match
from .gmm_film import GMMFilm, gmm_film
from .guidance import GuidanceSweep, GuidedFields, guidance_sweep, guided_fields
from .kernel_distillation import KernelSelfDistillation, kernel_self_distillation
from .landscape import (
    Interpolation,
    LossLine,
    LossSurface,
    PathDirections,
    TrainingPath,
    interpolate,
    loss_slice_1d,
    loss_slice_2d,
    normalize_directions,
    path_directions,
    project_path,
    random_directions,
)
from .minority import MinorityScores, minority_labels, minority_score
from .prototype_calibration import class_means, cosine_predict, teen_calibrate
from .prototype_fit import FittedPrototypes, fit_prototypes
from .prototype_parts import (
    PatchProjection,
    PrototypeExplanations,
    explain_predictions,
    project_prototypes,
)
from .prototypes import (
    PrototypeAssignments,
    PrototypeEvolution,
    PrototypeMaps,
    assignments_from,
    prototype_assignments,
    prototype_evolution,
    prototype_maps,
)
from .pseudo_labels import (
    PseudoLabelTrace,
    ThresholdCurve,
    pseudo_label_trace,
    threshold_tradeoff,
)
from .representation import (
    NeuralCollapse,
    RepresentationMetrics,
    alignment,
    knn_accuracy,
    knn_predict,
    linear_probe_accuracy,
    neural_collapse,
    representation_metrics,
    representation_table,
    silhouette,
    uniformity,
)
from .similarity import RelativeSimilarity, linear_cka, relative_representation, relative_similarity
from .ss_gmm import (
    GMMFrame,
    NIWPrior,
    SSGMMFit,
    fit_ss_gmm,
    log_split_ratio,
    niw_log_marginal,
    ss_kmeans,
)
from .subspace import (
    MoLRGDenoiser,
    SubspaceRecovery,
    jacobian_subspaces,
    molrg_denoiser,
    numerical_rank,
)
from .synthetic_map import SyntheticMap, synthetic_map

__all__ = [
    "embed", "project", "Projection", "PROJECTIONS", "predict", "Predictions",
    "aligned_projections", "AlignedProjections", "procrustes_fit", "fewshot_eval",
    "fewshot_from_embeddings", "sample_episodes", "prototype_classify", "FewShotResult",
    "prototype_assignments", "assignments_from", "prototype_evolution", "PrototypeAssignments",
    "PrototypeEvolution", "prototype_maps", "PrototypeMaps", "fit_prototypes", "FittedPrototypes", "alignment", "uniformity", "knn_accuracy", "knn_predict",
    "linear_probe_accuracy", "neural_collapse", "NeuralCollapse", "silhouette",
    "representation_metrics", "RepresentationMetrics", "representation_table", "agreement",
    "agreement_from_logits", "Agreement", "linear_cka", "relative_representation",
    "relative_similarity", "RelativeSimilarity", "teacher_student_report",
    "TeacherStudentReport", "reports_table", "distillation_trajectory",
    "DistillationTrajectory", "kernel_self_distillation", "KernelSelfDistillation", "batchnorm_recalibrated",
    "sample_trajectory", "Trajectory", "score_field", "ScoreField", "matching_frames",
    "gaussian_score", "GaussianScoreModel", "score_error", "ScoreError", "hallucination_flags",
    "HallucinationFlags", "trajectory_variance", "TrajectoryVariance", "hallucination_filter",
    "HallucinationFilter", "sample_quality", "SampleQuality", "energy_distance", "mmd",
    "precision_recall", "loss_slice_1d", "loss_slice_2d", "interpolate", "random_directions",
    "normalize_directions", "path_directions", "project_path", "LossLine", "LossSurface",
    "Interpolation", "PathDirections", "TrainingPath", "hvp", "hessian_eigs", "hessian_trace",
    "spectral_density", "sharpness", "HessianOperator", "HessianEigs", "HessianTrace",
    "SpectralDensity", "Sharpness", "PerClass",
    # calibration (wb.analyses.calibration.ece for the top-label ECE itself)
    "calibration", "calibration_summary", "CalibrationSummary", "CalibrationError", "classwise_ece",
    "brier_score", "nll", "fit_temperature", "TemperatureScaling",
    "data_scores", "el2n", "grand", "forgetting_events", "SampleScores",
    "conformal", "split_conformal", "SplitConformal", "evaluate_sets", "conformal_risk_control",
    "project_prototypes", "PatchProjection", "explain_predictions", "PrototypeExplanations",
    "cluster_accuracy", "hungarian_match", "GCDAccuracy", "GCD_CONVENTIONS",
    "continual_metrics", "ContinualMetrics", "accuracy_matrices", "AccuracyMatrices", "FORGETTING_CONVENTIONS",
    "prototype_drift", "PrototypeDrift", "teen_calibrate", "class_means", "cosine_predict",
    "gmm_film", "GMMFilm", "fit_ss_gmm", "SSGMMFit", "GMMFrame", "NIWPrior", "niw_log_marginal", "log_split_ratio", "ss_kmeans",
    # diffusion, second wave
    "guided_fields", "GuidedFields", "guidance_sweep", "GuidanceSweep", "minority_score", "minority_labels",
    "MinorityScores", "diffusion_classify", "DiffusionClassification", "classifier_curve", "ClassifierCurve",
    "classifier_timesteps", "diffusion_features", "DiffusionFeatures", "probe_grid", "ProbeGrid",
    "jacobian_subspaces", "SubspaceRecovery", "molrg_denoiser", "MoLRGDenoiser", "numerical_rank",
    "sample_discrete", "DiscreteTrajectory", "sequence_stats", "SequenceStats",
    "threshold_tradeoff", "ThresholdCurve", "pseudo_label_trace", "PseudoLabelTrace",
    "synthetic_map", "SyntheticMap", "top_label_ece", "calibration_of_logits", "Calibration",
]


def __getattr__(name: str):
    # self_distillation and SelfDistillationResult moved to wb.recipes (they train models);
    # imported only when asked for, with a FutureWarning, so analyses never imports training
    from .distillation import moved

    return moved(name, __name__)
