"""Every notebook's views render for a user: JupyterLab in headless Chromium runs each notebook.

Run with ``pytest -m browser tests/browser`` (the marker is deselected by default). For each
``notebooks/*.ipynb`` (or each notebook in the folder ``$WORKBENCH_BROWSER_NOTEBOOKS``) it asserts: no cell error, no widget error box ("Click to show javascript
error." / "Error displaying widget"), every plotly view drew (non-empty SVG layer, WebGL canvas
for gl traces, at least one trace), and the first slider, dragged with the mouse, changes a plot.
Screenshots go to ``$WORKBENCH_SCREENSHOTS`` (default ``./browser-screenshots``).
See ``tests/browser/lab.py`` for how (and ``python -m tests.browser.lab NOTEBOOK --screenshot
out.png`` to look at one notebook).
"""

from __future__ import annotations

import pytest

from . import lab
from .conftest import require_browser

pytestmark = pytest.mark.browser

NOTEBOOKS = lab.notebooks_to_check()  # notebooks/*.ipynb, or $WORKBENCH_BROWSER_NOTEBOOKS/*.ipynb
PARAMS = [pytest.param(nb, id=nb.stem) for nb in NOTEBOOKS] or [pytest.param(None, id="no-notebooks")]


@pytest.mark.parametrize("notebook", PARAMS)
def test_notebook_views_render_in_jupyterlab(notebook, request, browser_screenshots, browser_report):
    if notebook is None:
        if require_browser():
            pytest.fail("no notebooks/*.ipynb to check", pytrace=False)
        pytest.skip("no notebooks/*.ipynb yet")
    browser = request.getfixturevalue("lab_browser")
    rep = browser.check_notebook(
        notebook, screenshot_dir=browser_screenshots,
        full_screenshot=browser_screenshots / f"{notebook.stem}.png")
    browser_report(rep)
    print(rep.summary())
    shots = "\n".join(f"  screenshot: {s}" for s in rep.screenshots)
    assert rep.ok, f"{rep.summary()}\n{shots}"
