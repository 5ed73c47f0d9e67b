"""Static figure builders: result -> plotly Figure, pure functions (needs plotly)."""

from .classification import confusion_matrix
from .data import samples
from .embedding import embedding
from .training import loss_curves

__all__ = ["loss_curves", "confusion_matrix", "embedding", "samples"]

# issue 8: comparing runs
from .compare import (  # noqa: E402
    compare_curves,
    compare_embeddings,
    compare_landscapes,
    metrics_table,
    training_panels,
)

__all__ += ["training_panels", "compare_curves", "compare_embeddings", "compare_landscapes", "metrics_table"]

# issue 3: embeddings and prototypes
from .embedding import aligned_maps, png_bytes, scatter_map  # noqa: E402
from .prototypes import (  # noqa: E402
    occupancy_bars,
    prototype_evolution,
    prototype_gallery,
    prototype_map,
    redundancy_heatmap,
)

__all__ += [
    "scatter_map", "aligned_maps", "png_bytes", "prototype_map", "occupancy_bars",
    "redundancy_heatmap", "prototype_evolution", "prototype_gallery",
]

# issue 4: OOD detection
from .ood import detector_table, landing_bars, roc_figure, score_histograms  # noqa: E402

__all__ += ["roc_figure", "score_histograms", "detector_table", "landing_bars"]

# issue 7: distillation
from .distillation import (  # noqa: E402
    agreement_by_class,
    generation_curve,
    kernel_self_distillation,
    probe_curve,
    teacher_student_maps,
)

__all__ += ["teacher_student_maps", "agreement_by_class", "probe_curve", "generation_curve",
            "kernel_self_distillation"]

# issue 5: diffusion
from .diffusion import (  # noqa: E402
    hallucination_filter,
    image_frames,
    quality_table,
    samples_grid,
    score_error,
    score_field,
    trajectory,
    trajectory_pair,
)

__all__ += ["trajectory", "trajectory_pair", "samples_grid", "score_field", "score_error",
            "hallucination_filter", "image_frames", "quality_table"]

# issue 6: loss landscapes and curvature
from .landscape import (  # noqa: E402
    curvature_by_class,
    hessian_spectrum,
    interpolation_curve,
    landscape_contour,
    landscape_panels,
    landscape_surface,
    loss_lines,
)

__all__ += ["landscape_panels", "landscape_contour", "landscape_surface", "loss_lines",
            "interpolation_curve", "hessian_spectrum", "curvature_by_class"]
