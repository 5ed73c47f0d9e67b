"""Interactive views: plotly FigureWidgets + ipywidgets controls, built on ``workbench.viz``.

Every view has one shape, ``View`` (see ``_view``): ``figures`` and ``figure`` (figure widgets;
``view.figure()`` a static ``go.Figure`` copy for export), ``controls``, ``widget`` (the root
ipywidget, laid out in rows that wrap to the page's width) and ``_repr_mimebundle_``. No math
here: a view is handed results computed by ``workbench.analyses`` / ``ood`` / ``runs`` (or calls
one public function of theirs) and patches the traces ``workbench.viz`` built and named, in place
(``fig.batch_update()``), never recreating figures. Figures are made with
``_figure.figure_widget`` so they render reliably in JupyterLab (see that module).
"""

from ._view import View
from .calibration import CalibrationView
from .compare import CompareView
from .continual import ContinualView
from .dataset_distillation import SyntheticSetView
from .discrete import DiscreteTrajectoryView
from .distillation import DistillationView
from .embedding import EmbeddingView
from .gcd import GCDView
from .guidance import GuidanceView
from .landscape import LandscapeView
from .linked import LinkedMaps
from .live import LiveTraining
from .ood_lens import OODLens
from .prototype_parts import ProtoPNetView
from .prototypes import PrototypeView
from .pseudo_labels import PseudoLabelView
from .trajectory import TrajectoryView

__all__ = [
    "View", "EmbeddingView", "PrototypeView", "OODLens", "TrajectoryView", "LandscapeView",
    "DistillationView", "LiveTraining", "CompareView", "LinkedMaps", "ProtoPNetView", "GCDView",
    "ContinualView", "GuidanceView", "DiscreteTrajectoryView", "PseudoLabelView",
    "SyntheticSetView", "CalibrationView",
]
