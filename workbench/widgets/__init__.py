"""Interactive views: plotly FigureWidgets + ipywidgets controls, built on ``workbench.viz``.

No math here: every view takes results from ``workbench.analyses`` and updates its traces in
place (``fig.batch_update()``), never recreating figures. Figures are made with
``_figure.figure_widget`` so they render reliably in JupyterLab (see that module).
"""

from .compare import CompareView
from .distillation import DistillationView
from .embedding import EmbeddingView
from .landscape import LandscapeView
from .live import LiveTraining
from .ood_lens import OODLens
from .prototypes import PrototypeView
from .trajectory import TrajectoryView

__all__ = [
    "EmbeddingView", "PrototypeView", "OODLens", "TrajectoryView", "LandscapeView",
    "DistillationView", "LiveTraining", "CompareView",
]
