"""Static figure builders: result -> plotly Figure, pure functions (needs plotly).

A builder named like an analysis (``score_field``, ``hallucination_filter``...) draws that
analysis's result. Builders whose figures the interactive views patch name those traces (small
``IntEnum``s such as ``MapTrace``, ``PanelTrace``, ``RocTrace``, exported here) and provide the
``*_patch`` / ``*_slots`` helpers that compute what a view writes into them, so a static figure
and a view's state after a change agree by construction. ``patch(fig, {role: props})`` applies
such updates.
"""

# data, training, classifiers
from ._common import patch
from .calibration import (
    HistogramTrace,
    ReliabilityTrace,
    confidence_histogram,
    reliability_curves,
    reliability_diagram,
)
from .classification import confusion_matrix

# comparing runs
from .compare import (
    TrainingTrace,
    compare_curves,
    compare_embeddings,
    compare_landscapes,
    metrics_table,
    training_panels,
)

# continual learning
from .continual import (
    DriftTrace,
    HeatTrace,
    accuracy_heatmap,
    drift_map,
    drift_patch,
    heatmap_patch,
    session_curves,
)
from .data import samples

# semi-supervised pseudo-labels and dataset distillation
from .dataset_distillation import (
    SynMapTrace,
    grid_patch,
    synthetic_grid,
    synthetic_map_figure,
    synthetic_patch,
)

# diffusion
from .diffusion import (
    hallucination_filter,
    image_frames,
    image_slots,
    panel_patch,
    quality_table,
    samples_grid,
    score_error,
    score_field,
    trajectory,
    trajectory_pair,
    trajectory_slots,
)
from .diffusion_readouts import (
    classifier_curve,
    curriculum_losses,
    probe_heatmap,
    subspace_recovery,
)
from .discrete import DiscreteTrace, discrete_frames, discrete_patch

# distillation
from .distillation import (
    MapsTrace,
    ProbeTrace,
    agreement_by_class,
    generation_curve,
    kernel_self_distillation,
    probe_curve,
    student_patch,
    teacher_student_maps,
)

# embeddings and prototypes
from .embedding import MapTrace, aligned_maps, embedding, map_color_patch, png_bytes, scatter_map

# category discovery
from .gcd import GMMFilmTrace, KCurveTrace, gmm_film_map, gmm_film_patch, k_curve, k_curve_patch
from .guidance import GuidedTrace, guidance_curves, guided_fields, guided_fields_patch, mode_shares

# loss landscapes and curvature
from .landscape import (
    PanelTrace,
    curvature_by_class,
    hessian_spectrum,
    interpolation_curve,
    landscape_contour,
    landscape_panels,
    landscape_surface,
    loss_lines,
    panel_trace,
)

# OOD detection
from .ood import (
    LandingTrace,
    RocTrace,
    detector_table,
    landing_bars,
    landing_patch,
    prototype_stars,
    roc_curve_patch,
    roc_figure,
    roc_index,
    score_histograms,
)
from .prototype_parts import (
    ExplainTrace,
    contribution_patch,
    contribution_waterfall,
    explanation_mosaic,
    explanation_patch,
)
from .prototypes import (
    ProtoMapTrace,
    occupancy_bars,
    occupancy_patch,
    prototype_evolution,
    prototype_gallery,
    prototype_map,
    prototype_map_patch,
    redundancy_heatmap,
)
from .pseudo_labels import (
    CurveTrace,
    PseudoMapTrace,
    curve_patch,
    pseudo_label_map,
    pseudo_label_patch,
    threshold_curve,
)
from .training import loss_curves

__all__ = [
    "samples", "loss_curves", "confusion_matrix",
    "reliability_diagram", "confidence_histogram", "reliability_curves", "ReliabilityTrace", "HistogramTrace",
    "embedding", "scatter_map", "aligned_maps", "png_bytes",
    "prototype_map", "occupancy_bars", "redundancy_heatmap", "prototype_evolution", "prototype_gallery",
    "roc_figure", "score_histograms", "detector_table", "landing_bars",
    "trajectory", "trajectory_pair", "samples_grid", "score_field", "score_error",
    "hallucination_filter", "image_frames", "quality_table",
    "guided_fields", "guidance_curves", "mode_shares", "classifier_curve", "probe_heatmap", "subspace_recovery",
    "curriculum_losses", "discrete_frames",
    "landscape_panels", "landscape_contour", "landscape_surface", "loss_lines",
    "interpolation_curve", "hessian_spectrum", "curvature_by_class",
    "teacher_student_maps", "agreement_by_class", "probe_curve", "generation_curve",
    "kernel_self_distillation", "pseudo_label_map", "threshold_curve", "synthetic_map_figure", "synthetic_grid",
    "training_panels", "compare_curves", "compare_embeddings", "compare_landscapes", "metrics_table",
    "prototype_stars",
    # trace roles that views patch, and what they write into them
    "patch", "MapTrace", "map_color_patch", "ProtoMapTrace", "prototype_map_patch", "occupancy_patch",
    "RocTrace", "roc_index", "roc_curve_patch", "LandingTrace", "landing_patch", "trajectory_slots",
    "panel_patch", "image_slots", "PanelTrace", "panel_trace", "MapsTrace", "ProbeTrace", "student_patch",
    "TrainingTrace",
    # prototype-part networks, category discovery
    "explanation_mosaic", "contribution_waterfall", "ExplainTrace", "explanation_patch", "contribution_patch",
    "gmm_film_map", "k_curve", "GMMFilmTrace", "KCurveTrace", "gmm_film_patch", "k_curve_patch",
    "drift_map", "accuracy_heatmap", "session_curves", "DriftTrace", "HeatTrace", "drift_patch", "heatmap_patch",
    "GuidedTrace", "guided_fields_patch", "DiscreteTrace", "discrete_patch",
    "PseudoMapTrace", "pseudo_label_patch", "CurveTrace", "curve_patch", "SynMapTrace",
    "synthetic_patch", "grid_patch",
]
