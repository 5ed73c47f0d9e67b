"""The course-site builder (workbench.course) and the static form of views (widgets._static)."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pytest

ipywidgets = pytest.importorskip("ipywidgets")

from workbench import course  # noqa: E402
from workbench.widgets import EmbeddingView  # noqa: E402
from workbench.widgets._static import KERNEL_NOTE, static_html, static_outputs  # noqa: E402


def test_static_html_of_a_view_has_its_figure_labels_and_control_values():
    rng = np.random.default_rng(0)
    view = EmbeddingView(snapshots=[rng.normal(size=(40, 2)) for _ in range(3)], labels=rng.integers(0, 3, 40),
                         snapshot_names=["a", "b", "c"])
    view.set_snapshot(1)
    out = static_html(view.widget)
    assert out.count("Plotly.newPlot") == 1 and "plotly.min.js" not in out  # plotly.js loaded once by the page
    assert "snapshot: <b>1</b>" in out  # the control's current value, as a caption
    assert "display:flex" in out and "row wrap" in out  # rows still wrap on a narrow page
    assert static_outputs([view.widget.model_id])[view.widget.model_id].startswith(KERNEL_NOTE)
    assert static_outputs(["no-such-model"]) == {}


def test_big_maps_become_images_not_megabytes_of_json(monkeypatch):
    import plotly.graph_objects as go

    from workbench.widgets import _static

    monkeypatch.setattr(go.Figure, "to_image", lambda self, **kw: b"\x89PNG fake")
    fig = go.FigureWidget(go.Figure(go.Scattergl(x=np.arange(50.0), y=np.arange(50.0))))
    assert "data:image/png;base64" in _static.static_html(fig, max_points=10)
    assert "Plotly.newPlot" in _static.static_html(fig, max_points=100)


def _tiny_notebook(folder):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Tiny tutorial\n\nYou will see a figure and a view."),
        nbformat.v4.new_code_cell("import plotly.graph_objects as go\ngo.Figure(go.Bar(y=[1, 3, 2]))"),
        nbformat.v4.new_code_cell(
            "import ipywidgets as w\nfrom workbench.widgets._figure import figure_widget\n"
            "fw = figure_widget(go.Figure(go.Scatter(y=[1, 2])), responsive=True)\n"
            "s = w.IntSlider(value=3, description='k')\nw.VBox([s, fw])"),
        nbformat.v4.new_code_cell("s.value = 7  # a later cell changes the view: the page shows 7"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "00_tiny.ipynb")


def test_build_site_executes_and_writes_self_contained_pages(tmp_path):
    src, out = tmp_path / "nbs", tmp_path / "site"
    src.mkdir()
    _tiny_notebook(src)
    pages = course.build_site(out, source=src, fast=True, log=lambda *_: None)
    assert [p["file"] for p in pages] == ["00_tiny.html"] and pages[0]["title"] == "Tiny tutorial"
    assert pages[0]["views_without_static_form"] == 0
    page = (out / "00_tiny.html").read_text()
    assert '<script src="plotly.min.js"></script>' in page and "require.min.js" not in page
    assert page.count("Plotly.newPlot") == 2  # the plain figure and the view's figure
    assert "k: <b>7</b>" in page  # the view as the LAST cell left it
    assert "application/vnd.jupyter.widget" not in page
    assert (out / "plotly.min.js").stat().st_size > 1_000_000
    assert '<a href="00_tiny.html">Tiny tutorial</a>' in (out / "index.html").read_text()
    assert json.loads((out / "pages.json").read_text())[0]["notebook"] == "00_tiny.ipynb"


def test_build_site_names_what_to_pass_when_nothing_matches(tmp_path):
    with pytest.raises(ValueError, match="--only"):
        course.build_site(tmp_path / "site", source=tmp_path, only=["99"])
