"""Static figure builders: result -> plotly Figure, pure functions (needs plotly).

A builder named like an analysis (``score_field``, ``hallucination_filter``...) draws that
analysis's result.
"""

# data, training, classifiers
from .classification import confusion_matrix

# comparing runs
from .compare import (
    compare_curves,
    compare_embeddings,
    compare_landscapes,
    metrics_table,
    training_panels,
)
from .data import samples

# diffusion
from .diffusion import (
    hallucination_filter,
    image_frames,
    quality_table,
    samples_grid,
    score_error,
    score_field,
    trajectory,
    trajectory_pair,
)

# distillation
from .distillation import (
    agreement_by_class,
    generation_curve,
    kernel_self_distillation,
    probe_curve,
    teacher_student_maps,
)

# embeddings and prototypes
from .embedding import aligned_maps, embedding, png_bytes, scatter_map

# loss landscapes and curvature
from .landscape import (
    curvature_by_class,
    hessian_spectrum,
    interpolation_curve,
    landscape_contour,
    landscape_panels,
    landscape_surface,
    loss_lines,
)

# OOD detection
from .ood import detector_table, landing_bars, roc_figure, score_histograms
from .prototypes import (
    occupancy_bars,
    prototype_evolution,
    prototype_gallery,
    prototype_map,
    redundancy_heatmap,
)
from .training import loss_curves

__all__ = [
    "samples", "loss_curves", "confusion_matrix",
    "embedding", "scatter_map", "aligned_maps", "png_bytes",
    "prototype_map", "occupancy_bars", "redundancy_heatmap", "prototype_evolution", "prototype_gallery",
    "roc_figure", "score_histograms", "detector_table", "landing_bars",
    "trajectory", "trajectory_pair", "samples_grid", "score_field", "score_error",
    "hallucination_filter", "image_frames", "quality_table",
    "landscape_panels", "landscape_contour", "landscape_surface", "loss_lines",
    "interpolation_curve", "hessian_spectrum", "curvature_by_class",
    "teacher_student_maps", "agreement_by_class", "probe_curve", "generation_curve",
    "kernel_self_distillation",
    "training_panels", "compare_curves", "compare_embeddings", "compare_landscapes", "metrics_table",
]
