"""A map of a million points renders in real JupyterLab and a lasso drawn with the mouse reaches
``view.selected`` in the kernel.

``pytest -m browser tests/browser/test_big_map_browser.py``: a scratch notebook (in a temporary
folder served by its own JupyterLab) builds ``EmbeddingView`` on 1,000,000 synthetic points with
``backend="auto"`` (so jupyter-scatter draws it), then the test

* waits until the map's WebGL canvas shows points (pixels, not just a DOM node), with no widget
  error box and no uncaught JavaScript error, and saves a screenshot (``big-map-*.png`` in
  ``$WORKBENCH_SCREENSHOTS``);
* drags a lasso over part of the ring with Playwright's mouse (the map starts in lasso mode);
* checks in the kernel that ``view.selected`` is a sorted int64 array of exactly the points
  inside the lasso polygon jupyter-scatter reports (``lasso_selection_polygon``, data
  coordinates), up to points on its edge.
"""

from __future__ import annotations

import json
import time

import pytest

from . import lab, maps
from .conftest import screenshot_dir, skip_or_fail

pytestmark = pytest.mark.browser

N = 1_000_000
SETUP = """import numpy as np
from workbench.widgets import EmbeddingView
from tests.browser.maps import synthetic"""
CASE = f"""xy, lab = synthetic({N})
view = EmbeddingView(xy, lab, backend="auto", height=480, title="a million synthetic points")
view"""
# the kernel compares the selection with the points inside the lasso's polygon
CHECK = """from matplotlib.path import Path as _Path
_w = view.backend.scatter.widget
_poly = np.asarray(_w.lasso_selection_polygon, dtype=float)
_inside = np.flatnonzero(_Path(_poly).contains_points(xy.astype(float)))
_sel = view.selected
print(json.dumps(dict(n=int(len(_sel)), dtype=str(_sel.dtype), sorted=bool(np.all(np.diff(_sel) > 0)),
                      inside=int(len(_inside)), differ=int(len(np.setxor1d(_sel, _inside))),
                      trait=int(len(_w.selection)), vertices=int(len(_poly)))))"""


def test_million_point_map_renders_and_a_mouse_lasso_reaches_python(tmp_path, chromium):
    try:
        lab.check_browser_available()
    except lab.BrowserUnavailable as e:
        skip_or_fail(f"browser test needs a browser: {e}")
    pytest.importorskip("jscatter", reason="jupyter-scatter (the scale extra) is not installed")
    nb = tmp_path / "big_map.ipynb"
    nb.write_text(json.dumps(maps.scratch_notebook(SETUP)))
    shots = screenshot_dir()
    shots.mkdir(parents=True, exist_ok=True)
    errors = []
    with lab.LabServer(tmp_path) as server, lab.LabBrowser(server, timeout=300, browser=chromium) as br:
        ctx = br.browser.new_context(viewport={"width": 1280, "height": 1000}, device_scale_factor=1)
        page = ctx.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            maps.open_notebook(br, page, nb.name)
            maps.run_cell(br, page, nb.name, 0, SETUP)
            t0 = time.monotonic()
            maps.run_cell(br, page, nb.name, 1, CASE)
            assert maps.kernel_json(page, nb.name, "[view.backend.name, view.n_points]") == ["jscatter", N]
            took, box, share = maps.wait_drawn(page, nb.name, 1, timeout=180)
            drawn_after = time.monotonic() - t0
            page.screenshot(path=str(shots / "big-map-drawn.png"))
            state = page.evaluate(lab._JS_PAGE_STATE, nb.name)
            assert not state["error_boxes"] and not state["texts"] and not state["traceback"], state
            assert share > 0.01, f"the map looks empty ({share:.4f} of its pixels inked)"

            page.wait_for_timeout(500)
            maps.lasso(page, box, [(0.55, 0.2), (0.85, 0.2), (0.85, 0.8), (0.55, 0.8)])
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not maps.kernel_json(page, nb.name, "len(view.selected)"):
                time.sleep(0.3)
            page.wait_for_timeout(500)
            page.screenshot(path=str(shots / "big-map-lasso.png"))
            got = json.loads(maps.kernel_exec(page, nb.name, "import json\n" + CHECK).strip().splitlines()[-1])
        finally:
            ctx.close()
    print(f"1M map drawn {drawn_after:.1f} s after running its cell; lasso selected {got}")
    assert not errors, f"uncaught JavaScript errors: {errors[:3]}"
    assert got["n"] > 10_000, f"the lasso selected too little: {got}"
    assert got["dtype"] == "int64" and got["sorted"] and got["trait"] == got["n"]
    assert got["differ"] <= max(10, got["n"] // 10_000), f"selection != points inside the lasso: {got}"


def test_scratch_notebooks_are_valid():
    """The scratch notebook the test writes is a notebook Lab can open (no browser needed)."""
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.reads(json.dumps(maps.scratch_notebook(SETUP, CASE)), as_version=4)
    nbformat.validate(nb)
    assert [c.source for c in nb.cells] == [SETUP, CASE]
