"""Views that fit: no view's content is wider than the output area JupyterLab gives it.

``overflows(page, root_selector)`` looks at every output that shows a widget or a plotly figure
(``.jp-OutputArea-output`` with the widget-view or plotly mime type; in Voilà and in built pages
the corresponding output nodes) and reports each element that is wider than its room:

* the output area itself, every ipywidgets box (``.widget-box``: HBox/VBox/GridBox, which scroll
  their own overflow, so an over-wide row hides inside them), every Output widget and every plotly
  plot (``.js-plotly-plot``), when its ``scrollWidth`` exceeds its ``clientWidth`` (content wider
  than the element: a horizontal scroll bar, or content clipped);
* every widget and plot whose right edge lies right of its output area's right edge (content
  cut off by an ``overflow: hidden`` ancestor does not raise ``scrollWidth``).

Labels that shorten themselves with an ellipsis are not counted (that is a layout choice, not
content behind a scroll bar). A 1-px tolerance absorbs sub-pixel rounding. The result is a list of
``{"output": i, "what": ..., "content": px, "room": px}`` (empty when everything fits).
"""

from __future__ import annotations

#: output nodes (JupyterLab, Voila and nbconvert's HTML share the class); only those that hold a
#: widget or ARE a plotly plot (JupyterLab renders a plotly output as the plot element itself) count.
#: (The widget outputs carry no ``data-mime-type`` attribute in Lab 4.6, so it cannot select them.)
OUTPUT_SELECTOR = ".jp-OutputArea-output"

_JS_OVERFLOWS = """
([rootSel, outSel]) => {
  const root = rootSel ? document.querySelector(rootSel) : document.body;
  if (!root) return [{output: -1, what: 'no root ' + rootSel, content: 0, room: 0}];
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) return false;
    const st = getComputedStyle(el);
    return st.display !== 'none' && st.visibility !== 'hidden';
  };
  const describe = (el) => {
    let s = el.tagName.toLowerCase();
    const cls = Array.from(el.classList).filter(c => /^(widget-|js-plotly|jp-OutputArea-output|jupyter-widgets)/.test(c));
    if (cls.length) s += '.' + cls.slice(0, 3).join('.');
    const gd = el.classList.contains('js-plotly-plot') ? el : el.closest('.js-plotly-plot');
    const title = gd && gd.layout && gd.layout.title ? (gd.layout.title.text || gd.layout.title) : '';
    if (title && typeof title === 'string') s += ` (plot "${title.slice(0, 60)}")`;
    const label = el.querySelector && el.querySelector('.widget-label');
    if (!gd && label && label.textContent.trim()) s += ` (first label "${label.textContent.trim().slice(0, 40)}")`;
    return s;
  };
  const found = [];
  const outs = Array.from(root.querySelectorAll(outSel)).filter(o =>
      o.matches('.js-plotly-plot') || o.querySelector('.jupyter-widgets, .js-plotly-plot, .widget-box'));
  outs.forEach((out, i) => {
    if (!visible(out)) return;
    const outRect = out.getBoundingClientRect();
    const boxes = [out, ...out.querySelectorAll('.widget-box, .widget-output, .js-plotly-plot')];
    for (const el of boxes) {
      if (!visible(el)) continue;
      if (el.scrollWidth > el.clientWidth + 1) {
        found.push({output: i, what: describe(el), content: el.scrollWidth, room: el.clientWidth,
                    kind: 'scrolls'});
      }
    }
    for (const el of out.querySelectorAll('.jupyter-widgets, .js-plotly-plot')) {
      if (!visible(el)) continue;
      const r = el.getBoundingClientRect();
      if (r.right > outRect.right + 1) {
        found.push({output: i, what: describe(el), content: Math.round(r.right - outRect.left),
                    room: Math.round(outRect.width), kind: 'past the output area'});
      }
    }
  });
  return {outputs: outs.length, found: found};
}
"""


def overflows(page, root_selector: str | None = None) -> tuple[int, list[dict]]:
    """(number of view outputs looked at, every element of a view in ``page`` (under
    ``root_selector``) that is wider than its room)."""
    r = page.evaluate(_JS_OVERFLOWS, [root_selector, OUTPUT_SELECTOR])
    return r["outputs"], r["found"]


def describe(found: list[dict], limit: int = 6) -> str:
    """One line per overflow (the widest first), for a test failure message."""
    worst = sorted(found, key=lambda f: f["room"] - f["content"])[:limit]
    lines = [f"output {f['output']}: {f['what']} {f.get('kind', '')}: content {f['content']} px "
             f"in {f['room']} px" for f in worst]
    if len(found) > limit:
        lines.append(f"... and {len(found) - limit} more")
    return "; ".join(lines)
