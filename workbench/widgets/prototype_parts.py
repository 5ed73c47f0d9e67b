"""``ProtoPNetView``: "this looks like that, because ..." for the test images of a prototype-part
network (``wb.models.ProtoPNet``, ``STProtoPNet``, ``DeepCBC``).

For the chosen image and class (default: the predicted one), one row per top-activated
prototype: the test image with the patch that prototype matched outlined, that patch enlarged,
the training image the prototype was projected onto with its patch outlined, and that patch
(which *is* the prototype after the push). Each row reads "prototype j (class c): similarity
× weight = contribution". Beside it, a waterfall of the contributions to the class score: the
top prototypes, the sum of all the others, and the total, which is the model's logit.

Everything comes from ``wb.analyses.explain_predictions`` (pass its ``PrototypeExplanations``,
made with ``projection=``); the controls only patch the traces ``wb.viz.prototype_parts`` built.
"""

from __future__ import annotations

import html

from .._optional import require
from ..viz._common import patch
from ..viz.prototype_parts import (
    contribution_patch,
    contribution_waterfall,
    explanation_mosaic,
    explanation_patch,
    row_labels,
)
from ._view import View, panel, row

widgets = require("ipywidgets", "interactive views")

__all__ = ["ProtoPNetView"]


class ProtoPNetView(View):
    """The reasoning of a prototype-part network, image by image (see the module docstring).

    Parameters
    ----------
    explanations: a ``PrototypeExplanations`` (``wb.analyses.explain_predictions(model, test,
        indices, projection=...)``).
    top: prototypes shown per image. class_names: names for the classes.
    """

    def __init__(self, explanations, *, top: int = 4, class_names=None, image: int = 0):
        super().__init__()
        if not all(hasattr(explanations, a) for a in ("contributions", "activations", "boxes", "breakdown")):
            raise TypeError("ProtoPNetView takes wb.analyses.explain_predictions(...)'s result, "
                            f"got {type(explanations).__name__}")
        self.expl, self.top, self.class_names = explanations, int(top), class_names
        self.image = range(explanations.n_images)[image]
        self.cls = None  # None = the predicted class
        self.mosaic = self._add_figure("explanation", explanation_mosaic(
            explanations, self.image, self.top, class_names=class_names))
        self.waterfall = self._add_figure("contributions", contribution_waterfall(explanations, self.image, self.top))
        n = explanations.n_images
        self.slider = self._add_control("image", widgets.IntSlider(
            value=self.image, min=0, max=n - 1, description="test image", continuous_update=False,
            layout=widgets.Layout(width="380px", max_width="100%")))
        self.slider.observe(lambda ch: self.set_image(ch["new"]), names="value")
        n_cls = explanations.outputs.shape[1]
        opts = [("predicted", -1)] + [(f"class {class_names[c] if class_names else c}", c) for c in range(n_cls)]
        self.class_select = self._add_control("class", widgets.Dropdown(
            options=opts, value=-1, description="explain", layout=widgets.Layout(width="220px")))
        self.class_select.observe(lambda ch: self.set_class(None if ch["new"] < 0 else ch["new"]), names="value")
        self.status = widgets.HTML(self._status())
        self._set_root(row(self.slider, self.class_select, self.status),
                       row(panel(self.mosaic, basis="520px"), panel(self.waterfall, basis="400px"), align="flex-start"))

    def _status(self) -> str:
        e, i = self.expl, self.image
        y = int(e.labels[i])
        b = e.breakdown(i, self.top, cls=self.cls)
        return (f"&nbsp;test row {int(e.indices[i])}: label {y if y >= 0 else '?'}, predicted {int(e.pred[i])}; "
                f"explaining class {b['cls']}: {html.escape(e.output_name)} {b['output']:.3f} "
                f"= Σ contributions {b['total']:.3f}")

    def _redraw(self):
        patch(self.mosaic, explanation_patch(self.expl, self.image, self.top, self.cls))
        with self.mosaic.batch_update():
            self.mosaic.layout.yaxis.ticktext = row_labels(self.expl, self.image, self.top, self.cls,
                                                           class_names=self.class_names)
        patch(self.waterfall, contribution_patch(self.expl, self.image, self.top, self.cls))
        self.status.value = self._status()

    def set_image(self, i: int):
        """Explain image ``i`` of the explanations."""
        n = self.expl.n_images
        if not -n <= i < n:
            raise IndexError(f"image {i} out of range (0..{n - 1})")
        self.image = range(n)[i]
        self._redraw()
        if self.slider.value != self.image:
            self.slider.value = self.image
        return self

    def set_class(self, cls: int | None):
        """Explain the score of class ``cls`` (None: the predicted class)."""
        n_cls = self.expl.outputs.shape[1]
        if cls is not None and not 0 <= int(cls) < n_cls:
            raise ValueError(f"class {cls} out of range (0..{n_cls - 1}) or None for the predicted one")
        self.cls = None if cls is None else int(cls)
        self._redraw()
        want = -1 if cls is None else int(cls)
        if self.class_select.value != want:
            self.class_select.value = want
        return self

    def __repr__(self) -> str:
        return (f"ProtoPNetView({self.expl.n_images} test images, top {self.top} prototypes, "
                f"showing image {self.image})")
