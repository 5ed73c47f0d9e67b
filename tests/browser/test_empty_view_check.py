"""The notebook check catches a widget view that draws nothing.

JupyterLab 4 gives a widget view's output area no ``data-mime-type`` attribute, so a check that
looks for that attribute finds no views and can never fail. Here a notebook shows an anywidget
whose ``render`` draws nothing next to an ordinary slider: the check must report exactly the
blank one and count both views.
"""

from __future__ import annotations

import json

import pytest

from . import lab

pytestmark = pytest.mark.browser

_BLANK = """import anywidget
class Blank(anywidget.AnyWidget):
    _esm = "export default { render({ model, el }) { } }"
Blank()"""
_SLIDER = """import ipywidgets as w
w.IntSlider(3, description="ok")"""


def _notebook(cells: list[str]) -> dict:
    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None,
                       "outputs": [], "source": src} for i, src in enumerate(cells)]}


def test_a_blank_widget_view_is_reported(tmp_path, chromium):
    path = tmp_path / "blank.ipynb"
    path.write_text(json.dumps(_notebook([_BLANK, _SLIDER])))
    with lab.LabServer(root_dir=tmp_path) as server:
        browser = lab.LabBrowser(server, timeout=180, browser=chromium)
        try:
            rep = browser.check_notebook(path)
        finally:
            browser.close()
    print(rep.summary())
    assert rep.executed_cells == 2, rep.summary()
    assert rep.widget_views == (2, 2), rep.summary()
    assert any("1 of 2 widget views stayed empty" in p for p in rep.problems), rep.summary()
    assert not rep.ok
