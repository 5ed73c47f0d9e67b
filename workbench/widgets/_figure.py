"""Plotly FigureWidgets that render reliably in JupyterLab, also on a busy machine.

Every view builds its figures with ``figure_widget(fig)`` and displays itself through
``bundle(widget)``. Four failure modes of plain ``go.FigureWidget`` (plotly 7.1 on anywidget
0.11, seen in headless Chromium on a loaded 2-core machine) are handled here:

1. **anywidget's 2-second limit.** anywidget gives a widget's ``initialize`` 2 s ("[anywidget]
   Failed to initialize model."); past that the model's runtime stays failed and every later
   message from Python is dropped: the figure still draws (its state came with the model), but
   patches never reach it (the Voila app's snapshot slider moved its readout and not its map on a
   loaded machine; 4x CPU throttling in Chromium reproduced it every time: plotly's model took
   8 s to initialise). plotly ships its ~5 MB bundle as each FigureWidget's module, so every
   figure made the browser parse it again. ``_SHARED_ESM`` evaluates the bundle once per page
   (kept on ``globalThis``) and gives each model its own instance of plotly's widget (the
   bundle's default export is a per-model factory); its ``initialize`` only starts loading the
   bundle and returns at once, keeping the ``_py2js_*`` messages that arrive before plotly's
   model exists and handing them to it afterwards (views wait for the bundle in ``render``).
2. **Data sent after the comm opened.** plotly's ``FigureWidget.__init__`` opens the widget's
   comm (inside ``anywidget.AnyWidget.__init__``) and only then sets ``_widget_data`` and
   ``_widget_layout``, as update messages; if those are dropped (1.) the figure draws empty.
   Here the comm opens after ``__init__`` has set the figure, so the data travels in the
   comm-open message itself.
3. **Changes made before display.** Updates made between construction and display (a view's
   constructor colouring its points, say) travel as transient restyle/relayout messages that a
   figure not yet drawn can miss. ``FigureWidget._repr_mimebundle_`` re-sends the full state for
   a figure displayed on its own, but not for one inside an ipywidgets container; ``bundle``
   does it for every FigureWidget in a view's widget tree.
4. **Width.** plotly's anywidget view draws as soon as it is rendered, before JupyterLab has
   attached and sized its element, so a figure without a fixed width was drawn at plotly's
   default 700 px whatever room it had, and never followed its container. A responsive figure
   (``figure_widget(fig, responsive=True)``: no ``layout.width``, plotly's ``responsive``
   config) is resized to its element once the element has a size and whenever it changes
   (a ``ResizeObserver`` in ``_SHARED_ESM`` calling plotly's own responsive handler).

The plotly import is also done with the garbage collector paused: its chain (plotly.io ->
nbformat -> jsonschema -> rfc3987_syntax) builds ~40 parser grammars, and in a kernel already
holding torch the collector's full passes made it take 36 s instead of ~1 s (measured here).
"""

from __future__ import annotations

import copy
import gc

import traitlets

from .._optional import require

go = require("plotly.graph_objects", "interactive views")


def _import_figure_widget():
    was = gc.isenabled()
    gc.disable()
    try:
        return go.FigureWidget
    finally:
        if was:
            gc.enable()


_PlotlyFigureWidget = _import_figure_widget()

_SHARED_ESM = """
const KEY = "__workbench_plotly_widget_module__";
function load(model) {
  if (!globalThis[KEY]) {
    const url = URL.createObjectURL(new Blob([model.get("_wb_esm")], { type: "text/javascript" }));
    globalThis[KEY] = import(url)
      .catch((err) => { delete globalThis[KEY]; throw err; })  // let a later figure retry
      .finally(() => URL.revokeObjectURL(url));
  }
  return globalThis[KEY];
}
const PY2JS = ["_py2js_addTraces", "_py2js_deleteTraces", "_py2js_moveTraces", "_py2js_restyle",
  "_py2js_relayout", "_py2js_update", "_py2js_animate", "_py2js_removeLayoutProps",
  "_py2js_removeTraceProps"];
export default () => {
  let ready = null;
  let inner = null;
  function setup(ctx) {
    if (!ready) {
      ready = load(ctx.model).then(async (mod) => {
        inner = mod.default();
        if (inner.initialize) await inner.initialize(ctx);
      }).catch((err) => { ready = null; throw err; });  // let a later render retry
    }
    return ready;
  }
  return {
    // returns at once (anywidget's 2 s limit, see the module docstring, 1.)
    initialize(ctx) {
      const model = ctx.model;
      const early = [];  // [key, value] that came before plotly's model existed
      let live = false;
      for (const key of PY2JS) {
        model.on("change:" + key, () => {
          const value = model.get(key);
          if (!live && value !== null && value !== undefined) early.push([key, value]);
        });
      }
      const replaying = new Map();
      const listeners = [];
      const proxy = new Proxy(model, {
        get(target, prop) {
          if (prop === "get") return (key) => (replaying.has(key) ? replaying.get(key) : target.get(key));
          if (prop === "on") {
            return (name, callback, context) => {
              listeners.push([name, callback]);
              return target.on(name, callback, context);
            };
          }
          const value = Reflect.get(target, prop, target);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
      setup({ ...ctx, model: proxy }).then(() => {
        for (const [key, value] of early) {
          replaying.set(key, value);
          for (const [name, callback] of listeners) if (name === "change:" + key) callback();
          replaying.delete(key);
        }
        early.length = 0;
        live = true;
      }).catch((err) => {
        early.length = 0;
        live = true;
        console.error("[workbench] plotly's widget failed to load:", err);
      });
    },
    async render(ctx) {
      await setup(ctx);
      const cleanup = inner.render(ctx);
      const stop = fitToContainer(ctx.el);
      return () => {
        stop();
        if (typeof cleanup === "function") cleanup();
      };
    },
  };
};
// A responsive figure (config.responsive) takes its container's width: plotly sets
// el._responsiveChartHandler (resize to the container, skipped while hidden) but calls it only on
// window resizes; call it when the element gets its size (after it is attached) and whenever the
// container changes width, and once more after the first draw.
function fitToContainer(el) {
  let pending = false;
  const fit = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      if (el._responsiveChartHandler && el.clientWidth > 0) el._responsiveChartHandler();
    });
  };
  const drawn = (event) => { if (event.detail && event.detail.element === el) fit(); };
  document.addEventListener("plotlywidget-after-render", drawn);
  const observer = typeof ResizeObserver === "function" ? new ResizeObserver(fit) : null;
  if (observer) observer.observe(el);
  return () => {
    document.removeEventListener("plotlywidget-after-render", drawn);
    if (observer) observer.disconnect();
  };
}
"""


class FigureWidget(_PlotlyFigureWidget):
    """``go.FigureWidget`` with plotly's JavaScript shared per page and the figure sent with
    the comm-open message (see the module docstring).

    Calling it returns a plain ``go.Figure`` copy of its current state (no widget: for
    ``write_html`` / ``write_image``), so a view's ``view.figure()`` exports what it shows.
    """

    _esm = _SHARED_ESM
    _wb_esm = traitlets.Unicode(str(_PlotlyFigureWidget._esm)).tag(sync=True)

    def __init__(self, *args, config: dict | None = None, **kwargs):
        self._wb_defer_open = True
        super().__init__(*args, **kwargs)
        if config:
            self._config = {**(self._config or {}), **config}
        self._wb_defer_open = False
        self.open()

    def open(self):
        if getattr(self, "_wb_defer_open", False):
            return
        super().open()

    def __call__(self) -> go.Figure:
        return go.Figure(self)  # a copy: changing it leaves the widget alone

    @traitlets.observe("_js2py_pointsCallback")
    def _handler_js2py_pointsCallback(self, change):
        # plotly dispatches a box/lasso selection (and a deselect) to EVERY trace, each setting its
        # selectedpoints: one restyle message per trace, each a full WebGL redraw in the browser
        # (a view with 22 traces and 10 000 points kept a headless page busy for ~20 s after its
        # first lasso); batched, they are one message and one redraw
        with self.batch_update():
            super()._handler_js2py_pointsCallback(change)


def figure_widget(fig=None, *, responsive: bool = False) -> FigureWidget:
    """A reliable ``FigureWidget`` of the static figure ``fig``.

    ``responsive``: leave the width to the page (plotly's ``autosize``): the figure takes its
    container's width when drawn and follows the window's size (plotly's ``responsive``
    config), instead of a fixed ``layout.width``."""
    if not responsive:
        return FigureWidget(fig)
    fig = go.Figure(fig)
    fig.update_layout(width=None, autosize=True)
    return FigureWidget(fig, config={"responsive": True})


def _figures_in(widget):
    if isinstance(widget, _PlotlyFigureWidget):
        yield widget
    for child in getattr(widget, "children", ()) or ():
        yield from _figures_in(child)


def sync_figures(widget) -> None:
    """Re-send the full state of every FigureWidget inside ``widget`` (what plotly does itself
    for a figure displayed on its own)."""
    for fig in _figures_in(widget):
        fig._widget_layout = copy.deepcopy(fig._layout_obj._props)
        fig._widget_data = copy.deepcopy(fig._data)


def bundle(widget, **kwargs):
    """The display bundle of a view's root widget, with its figures' state re-sent first."""
    sync_figures(widget)
    return widget._repr_mimebundle_(**kwargs)
