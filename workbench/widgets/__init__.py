"""Interactive views: plotly FigureWidgets + ipywidgets controls, built on ``workbench.viz``.

No math here: every view takes results from ``workbench.analyses`` and updates its traces in
place (``fig.batch_update()``), never recreating figures.
"""

__all__: list[str] = []

# issue 8: live training and comparing runs
from .compare import CompareView  # noqa: E402
from .live import LiveTraining  # noqa: E402

__all__ += ["LiveTraining", "CompareView"]

# issue 3: embeddings and prototypes
from .embedding import EmbeddingView  # noqa: E402
from .prototypes import PrototypeView  # noqa: E402

__all__ += ["EmbeddingView", "PrototypeView"]

# issue 7: distillation
from .distillation import DistillationView  # noqa: E402

__all__ += ["DistillationView"]

# issue 4: OOD detection
from .ood_lens import OODLens  # noqa: E402

__all__ += ["OODLens"]

# issue 5: diffusion
from .trajectory import TrajectoryView  # noqa: E402

__all__ += ["TrajectoryView"]

# issue 6: loss landscapes
from .landscape import LandscapeView  # noqa: E402

__all__ += ["LandscapeView"]
