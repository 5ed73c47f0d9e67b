"""The no-overflow check itself (``fit.py``) catches what it is meant to, on hand-made pages.

No server: the check is run on small static pages with JupyterLab's output/widget class names, so
it cannot silently pass by looking at nothing (it also reports how many view outputs it saw).
"""

from __future__ import annotations

import pytest

from . import fit, lab

pytestmark = pytest.mark.browser

PAGE = """<html><body style="margin:0">
<div class="jp-Notebook" style="width:900px">
  <div class="jp-OutputArea-output" style="width:800px; overflow-x:auto">{widget}</div>
  <div class="jp-OutputArea-output js-plotly-plot" style="width:800px">{plot}</div>
  <div class="jp-OutputArea-output" style="width:800px"><pre>a wide text output is not a view {text}</pre></div>
</div></body></html>"""

FITS = dict(
    widget='<div class="jupyter-widgets widget-box widget-hbox" style="display:flex; flex-wrap:wrap; overflow:auto">'
           '<div class="jupyter-widgets" style="width:480px; flex:1 1 480px"></div>'
           '<div class="jupyter-widgets" style="width:480px; flex:1 1 480px"></div></div>',
    plot='<div class="svg-container" style="width:800px; height:100px"></div>',
    text="x" * 400,
)
CASES = {
    # a row of two fixed panels that does not wrap: the box scrolls its own overflow
    "row that scrolls": dict(FITS, widget=(
        '<div class="jupyter-widgets widget-box widget-hbox" style="display:flex; overflow:auto">'
        '<div class="jupyter-widgets" style="flex:0 0 560px; height:10px"></div>'
        '<div class="jupyter-widgets" style="flex:0 0 480px; height:10px"></div></div>')),
    # a plot drawn at a fixed width wider than its output
    "fixed-width plot": dict(FITS, plot='<div class="svg-container" style="width:1100px; height:100px"></div>'),
    # a widget cut off by an ancestor with overflow hidden (scrollWidth alone would not show it)
    "clipped widget": dict(FITS, widget=(
        '<div style="overflow:hidden; width:800px"><div class="jupyter-widgets widget-slider" '
        'style="width:1000px; height:10px"></div></div>')),
}


@pytest.fixture(scope="module")
def page(chromium):
    ctx = chromium.new_context(viewport=dict(lab.VIEWPORT))
    try:
        yield ctx.new_page()
    finally:
        ctx.close()


def test_views_that_fit_pass(page):
    page.set_content(PAGE.format(**FITS))
    n, found = fit.overflows(page, ".jp-Notebook")
    assert n == 2, "the check must look at the widget output and the plot, not at the text output"
    assert found == [], fit.describe(found)


@pytest.mark.parametrize("case", list(CASES))
def test_views_that_overflow_are_caught(page, case):
    page.set_content(PAGE.format(**CASES[case]))
    n, found = fit.overflows(page, ".jp-Notebook")
    assert n == 2
    assert found, f"{case}: the check saw no overflow"
    assert all(f["content"] > f["room"] for f in found), fit.describe(found)
