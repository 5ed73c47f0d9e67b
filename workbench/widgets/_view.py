"""``View``: the one shape every interactive view has (jupyter-scatter's ``Scatter`` + widget).

A view is a small class on ``View``. Its constructor is handed results computed by
``wb.analyses`` (or calls ONE public analysis function), builds its figures with the static
``wb.viz`` builders, and from then on only patches their traces in place, addressing them by the
roles ``viz`` names (``MapTrace.POINTS``, ``PanelTrace.PATH``...). What every view has:

* ``figures``: ``name -> FigureWidget``, registered with ``self._add_figure(name, fig)`` (made
  reliable by ``_figure.figure_widget``); ``figure`` is the main one (the first registered);
* ``controls``: ``name -> ipywidget`` (sliders, dropdowns, buttons...), registered with
  ``self._add_control(name, control)``;
* ``widget``: the root ipywidget laying them out (``self._set_root(*rows)``); put it into your
  own layouts, e.g. ``widgets.HBox([view.widget, other])``;
* ``_repr_mimebundle_``: a view displays itself (through ``_figure.bundle``, which re-sends every
  figure's state first, see that module);
* ``view.figure()``: a plain ``go.Figure`` copy of what the main figure shows, for export
  (``view.figures[name]()`` for another one): figure widgets are callable.

Layout: the root is a column of rows that wrap (CSS flex-wrap). Panels (``panel``) sit side by
side where there is room and stack below one another on a narrow page (two 480 px panels below
~1000 px); responsive figures (the default of ``_add_figure``) take their panel's width when drawn
and follow the window's size. Nothing is wider than the page it is given.
"""

from __future__ import annotations

from .._optional import require
from ._figure import FigureWidget, bundle, figure_widget

widgets = require("ipywidgets", "interactive views")

__all__ = ["View", "row", "column", "panel"]

#: a panel's default width before it grows (two panels side by side need ~2x this)
PANEL_BASIS = "480px"


def row(*children, wrap: bool = True, align: str = "center") -> widgets.HBox:
    """Children side by side, wrapping onto the next line when the page is too narrow."""
    return widgets.HBox([c for c in children if c is not None], layout=widgets.Layout(
        flex_flow="row wrap" if wrap else "row nowrap", align_items=align, width="100%"))


def column(*children) -> widgets.VBox:
    """Children below one another, as wide as the page allows."""
    return widgets.VBox([c for c in children if c is not None],
                        layout=widgets.Layout(width="100%", max_width="100%"))


def panel(*children, basis: str = PANEL_BASIS, grow: int = 1, min_width: str = "0") -> widgets.VBox:
    """A flexible panel for a row: starts ``basis`` wide, grows (``grow``) to share the row's
    free width, and shrinks to the page on a narrow screen."""
    return widgets.VBox([c for c in children if c is not None], layout=widgets.Layout(
        flex=f"{grow} 1 {basis}", min_width=min_width, max_width="100%"))


class View:
    """Base of every interactive view (see the module docstring)."""

    def __init__(self):
        self.figures: dict[str, FigureWidget] = {}
        self.controls: dict[str, widgets.Widget] = {}
        self.widget: widgets.Box | None = None

    # ------------------------------------------------------------------ building
    def _add_figure(self, name: str, fig, *, responsive: bool = True) -> FigureWidget:
        """Register the figure ``name`` (a static ``go.Figure`` from ``wb.viz``, turned into a
        reliable FigureWidget; ``responsive``: take the container's width)."""
        if name in self.figures:
            raise ValueError(f"{type(self).__name__} already has a figure named {name!r}")
        # a figure widget already (plotly's, or another library's map box that is callable like
        # one, e.g. widgets._scatter.ScatterFigure) is kept as it is
        done = isinstance(fig, FigureWidget) or (isinstance(fig, widgets.DOMWidget) and callable(fig))
        w = fig if done else figure_widget(fig, responsive=responsive)
        self.figures[name] = w
        return w

    def _add_control(self, name: str, control):
        """Register the control ``name`` (an ipywidget)."""
        self.controls[name] = control
        return control

    def _set_root(self, *rows) -> widgets.VBox:
        """Lay out ``rows`` (widgets, e.g. ``row(...)`` / ``panel(...)``) as the view's root."""
        self.widget = column(*rows)
        return self.widget

    # ------------------------------------------------------------------ the common surface
    @property
    def figure(self) -> FigureWidget:
        """The main figure widget; ``view.figure()`` returns a plain ``go.Figure`` copy of it."""
        if not self.figures:
            raise AttributeError(f"{type(self).__name__} has no figure yet")
        return next(iter(self.figures.values()))

    def _repr_mimebundle_(self, **kwargs):
        if self.widget is None:
            raise RuntimeError(f"{type(self).__name__} did not lay out its widget (call _set_root)")
        return bundle(self.widget, **kwargs)
