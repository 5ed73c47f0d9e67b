"""Analyses: pure functions over (model, method, data) returning frozen results on the CPU.

Never imports plotly or ipywidgets, never changes the model (weights, buffers, mode).
"""

from .classification import Predictions, predict
from .embedding import PROJECTIONS, Projection, embed, project

__all__ = ["embed", "project", "Projection", "PROJECTIONS", "predict", "Predictions"]

# issue 3: representation metrics, aligned projections, prototypes, few-shot
from .embedding import AlignedProjections, aligned_projections, procrustes_fit  # noqa: E402
from .fewshot import (  # noqa: E402
    FewShotResult, fewshot_eval, fewshot_from_embeddings, prototype_classify, sample_episodes,
)
from .prototypes import (  # noqa: E402
    PrototypeAssignments, PrototypeEvolution, assignments_from, prototype_assignments,
    prototype_evolution,
)
from .representation import (  # noqa: E402
    NeuralCollapse, RepresentationMetrics, alignment, knn_accuracy, knn_predict,
    linear_probe_accuracy, neural_collapse, representation_metrics, representation_table,
    silhouette, uniformity,
)

__all__ += [
    "aligned_projections", "AlignedProjections", "procrustes_fit",
    "fewshot_eval", "fewshot_from_embeddings", "sample_episodes", "prototype_classify", "FewShotResult",
    "prototype_assignments", "assignments_from", "prototype_evolution", "PrototypeAssignments",
    "PrototypeEvolution",
    "alignment", "uniformity", "knn_accuracy", "knn_predict", "linear_probe_accuracy",
    "neural_collapse", "NeuralCollapse", "silhouette", "representation_metrics",
    "RepresentationMetrics", "representation_table",
]

# issue 7: teacher-student diagnostics
from .distillation import (  # noqa: E402
    Agreement, DistillationTrajectory, KernelSelfDistillation, RelativeSimilarity,
    SelfDistillationResult, TeacherStudentReport, agreement, agreement_from_logits,
    batchnorm_recalibrated,
    distillation_trajectory, kernel_self_distillation, linear_cka, relative_representation,
    relative_similarity, reports_table, self_distillation, teacher_student_report,
)

__all__ += [
    "agreement", "agreement_from_logits", "Agreement", "linear_cka", "relative_representation",
    "relative_similarity", "RelativeSimilarity", "teacher_student_report", "TeacherStudentReport",
    "reports_table", "distillation_trajectory", "DistillationTrajectory", "self_distillation",
    "SelfDistillationResult", "kernel_self_distillation", "KernelSelfDistillation",
    "batchnorm_recalibrated",
]

# issue 5: diffusion trajectories, scores, hallucinations, sample quality
from .diffusion import ScoreField, Trajectory, matching_frames, sample_trajectory, score_field  # noqa: E402
from .diffusion_gaussian import GaussianScoreModel, ScoreError, gaussian_score, score_error  # noqa: E402
from .diffusion_quality import (  # noqa: E402
    HallucinationFilter, HallucinationFlags, SampleQuality, TrajectoryVariance, energy_distance,
    hallucination_filter, hallucination_flags, mmd, precision_recall, sample_quality,
    trajectory_variance,
)

__all__ += [
    "sample_trajectory", "Trajectory", "score_field", "ScoreField", "matching_frames",
    "gaussian_score", "GaussianScoreModel", "score_error", "ScoreError",
    "hallucination_flags", "HallucinationFlags", "trajectory_variance", "TrajectoryVariance",
    "hallucination_filter", "HallucinationFilter", "sample_quality", "SampleQuality",
    "energy_distance", "mmd", "precision_recall",
]

# issue 6: loss landscapes and curvature
from .curvature import (  # noqa: E402
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
from .landscape import (  # noqa: E402
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

__all__ += [
    "loss_slice_1d", "loss_slice_2d", "interpolate", "random_directions", "normalize_directions",
    "path_directions", "project_path", "LossLine", "LossSurface", "Interpolation", "PathDirections",
    "TrainingPath", "hvp", "hessian_eigs", "hessian_trace", "spectral_density", "sharpness",
    "HessianOperator", "HessianEigs", "HessianTrace", "SpectralDensity", "Sharpness", "PerClass",
]
