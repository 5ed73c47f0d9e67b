"""Build the tutorials into a static course site: ``python -m workbench.course build site/``.

Each ``notebooks/NN_*.ipynb`` is executed top to bottom (nbclient, in a fresh kernel whose working
folder is the notebook's), then written as one HTML page (nbconvert's ``lab`` template) next to a
contents page ``index.html``. The site needs no kernel and no network:

* plain plotly figures stay interactive (plotly.js is copied once into the site as
  ``plotly.min.js``; every figure is a ``<div>`` drawn by it, sized to the page);
* every interactive view (any ipywidget output) is written, after the notebook's LAST cell ran,
  from the live widget in the kernel (``workbench.widgets._static``): its plotly figures as
  interactive plots, maps above 20 000 points as PNG images, its HTML/labels/images as they are,
  and its controls as captions of their current values (a slider needs a kernel: the page says
  to open the notebook in JupyterLab or the Voila app to move it);
* pages link to the contents and to the previous / next tutorial.

Why not nbconvert's embedded widget state: rendering it needs ``@jupyter-widgets/html-manager``
and each widget's JavaScript (plotly's anywidget bundle) fetched from a CDN at view time, so a page
opened offline, or from disk, draws nothing.

``--fast`` runs the notebooks with ``WORKBENCH_FAST=1`` (the test-sized run, as CI does);
``--only 00 01`` builds a subset. The contents page lists the tutorials with their "you will"
lines. Executing needs the notebooks' own dependencies; building needs ``nbclient`` and
``nbconvert`` (installed with JupyterLab).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import pathlib
import re
import shutil
import sys
import time

__all__ = ["build_site", "main"]

MARK = "<<workbench-static-views>>"
_STATIC_CELL = """import json as _wb_json
from workbench.widgets._static import static_outputs as _wb_static
print({mark!r} + _wb_json.dumps(_wb_static({ids!r})))"""
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
PLOTLY_MIME = "application/vnd.plotly.v1+json"

_CSS = """<style>
.wb-nav { font: 14px sans-serif; padding: 8px 16px; border-bottom: 1px solid #ddd; display: flex;
          gap: 18px; position: sticky; top: 0; background: #fff; z-index: 10; }
.wb-nav a { text-decoration: none; }
.jp-OutputArea-output { overflow-x: auto; }
</style>
<script>
// plotly's "responsive" follows window resizes only: fit every plot to its (flex) panel once laid out
window.addEventListener("load", () => {
  if (window.Plotly) document.querySelectorAll(".js-plotly-plot").forEach((gd) => Plotly.Plots.resize(gd));
});
</script>"""


def _notebooks(source: pathlib.Path, only) -> list[pathlib.Path]:
    nbs = sorted(p for p in source.glob("[0-9][0-9]_*.ipynb"))
    if only:
        nbs = [p for p in nbs if any(p.name.startswith(o) for o in only)]
    if not nbs:
        raise ValueError(f"no notebooks NN_*.ipynb in {source}" + (f" matching {list(only)}" if only else "")
                         + "; pass --source FOLDER (default: notebooks) or other --only prefixes")
    return nbs


def _execute(nb, folder: pathlib.Path, timeout: int):
    """Run every cell, then (same kernel) write every displayed widget as static HTML."""
    import nbformat
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}})
    client.execute(cleanup_kc=False)
    try:
        ids = [o["data"][WIDGET_MIME]["model_id"] for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", []) if WIDGET_MIME in o.get("data", {})]
        static = {}
        if ids:
            cell = nbformat.v4.new_code_cell(_STATIC_CELL.format(mark=MARK, ids=ids))
            nb.cells.append(cell)
            client.execute_cell(cell, len(nb.cells) - 1)
            nb.cells.pop()
            text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
            if MARK not in text:
                raise RuntimeError(f"static export of the views failed: {text[-500:]} {cell.outputs[-1:]}")
            static = json.loads(text.split(MARK, 1)[1])
    finally:
        client._cleanup_kernel()
    return static


def _plotly_html(spec: dict) -> str:
    import plotly.graph_objects as go

    fig = go.Figure(spec)
    fig.update_layout(width=None, autosize=True)
    return fig.to_html(include_plotlyjs=False, full_html=False, default_width="100%",
                       config={"responsive": True, "displaylogo": False})


def _make_static(nb, static: dict) -> int:
    """Outputs become what a page without a kernel can show; returns how many views had no static form."""
    missing = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            data = out.get("data")
            if not data:
                continue
            if WIDGET_MIME in data:
                mid = data[WIDGET_MIME]["model_id"]
                missing += mid not in static
                out["data"] = {"text/html": static.get(mid, "<i>(an interactive view: run the notebook to see it)</i>")}
            elif PLOTLY_MIME in data:
                out["data"] = {"text/html": _plotly_html(data[PLOTLY_MIME])}
        cell.metadata.pop("widgets", None)
    nb.metadata.pop("widgets", None)
    return missing


def _title_and_goals(nb, fallback: str) -> tuple[str, str]:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            lines = cell.source.strip().splitlines()
            if lines and lines[0].startswith("# "):
                body = " ".join(ln.strip() for ln in lines[1:] if ln.strip())
                return lines[0][2:].strip(), re.sub(r"\s+", " ", body)[:400]
    return fallback, ""


def _page(exporter, nb, title: str, nav: str) -> str:
    body, _ = exporter.from_notebook_node(nb)
    # no require.js (plotly.min.js would then register as an AMD module instead of window.Plotly)
    body = re.sub(r'<script src="[^"]*require(\.min)?\.js"></script>', "", body)
    body = body.replace("</head>", f'<script src="plotly.min.js"></script>{_CSS}</head>', 1)
    body = re.sub(r"<title>.*?</title>", f"<title>{html.escape(title)}</title>", body, count=1)
    return re.sub(r"(<body[^>]*>)", r"\1" + nav.replace("\\", "\\\\"), body, count=1)


def build_site(out, *, source="notebooks", fast: bool = False, only=(), timeout: int = 900, log=print) -> list[dict]:
    """Execute the tutorials in ``source`` and write the site into ``out``; returns one record per page."""
    import nbformat
    import plotly
    from nbconvert import HTMLExporter

    source, out = pathlib.Path(source).resolve(), pathlib.Path(out).resolve()
    nbs = _notebooks(source, only)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(pathlib.Path(plotly.__file__).parent / "package_data" / "plotly.min.js", out / "plotly.min.js")
    if fast:  # as the test suite runs them: small sizes, one thread (conftest.py)
        os.environ["WORKBENCH_FAST"] = "1"
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        os.environ.setdefault("MKL_NUM_THREADS", "1")
    else:
        os.environ.pop("WORKBENCH_FAST", None)
    exporter = HTMLExporter(template_name="lab", embed_images=True)
    pages = []
    executed = []
    for path in nbs:
        t0 = time.monotonic()
        nb = nbformat.read(path, as_version=4)
        static = _execute(nb, path.parent, timeout)
        missing = _make_static(nb, static)
        title, goals = _title_and_goals(nb, path.stem)
        executed.append((path, nb, title, goals, missing, time.monotonic() - t0))
        log(f"{path.name}: executed in {time.monotonic() - t0:.1f} s, {len(static)} views made static"
            + (f", {missing} without a static form" if missing else ""))
    for i, (path, nb, title, goals, missing, secs) in enumerate(executed):
        links = ['<a href="index.html">Contents</a>']
        if i > 0:
            links.append(f'<a href="{executed[i - 1][0].stem}.html">&larr; {html.escape(executed[i - 1][2])}</a>')
        if i + 1 < len(executed):
            links.append(f'<a href="{executed[i + 1][0].stem}.html">{html.escape(executed[i + 1][2])} &rarr;</a>')
        nav = f'<nav class="wb-nav">{"".join(links)}</nav>'
        (out / f"{path.stem}.html").write_text(_page(exporter, nb, title, nav), encoding="utf-8")
        pages.append({"file": f"{path.stem}.html", "notebook": path.name, "title": title, "goals": goals,
                      "seconds": round(secs, 1), "views_without_static_form": missing})
    _write_index(out, pages, fast)
    return pages


def _write_index(out: pathlib.Path, pages: list[dict], fast: bool) -> None:
    items = "".join(
        f'<li><a href="{p["file"]}">{html.escape(p["title"])}</a>'
        f'<div class="goals">{html.escape(p["goals"])}</div></li>' for p in pages)
    note = " (built with WORKBENCH_FAST=1: small, quick runs)" if fast else ""
    (out / "index.html").write_text(f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>workbench: the tutorials</title>
<style>body {{ font: 15px/1.5 sans-serif; max-width: 900px; margin: 2em auto; padding: 0 1em; }}
li {{ margin: 0 0 1em 0; }} .goals {{ color: #555; font-size: 13px; }}</style></head>
<body><h1>workbench: the tutorials</h1>
<p>Each page is a tutorial notebook, executed{note}. The plots zoom and hover; the sliders and
buttons of the interactive views need a kernel: open the notebook in JupyterLab, or run it as an app
with <code>voila notebooks/NN_name.ipynb</code>.</p>
<ol>{items}</ol></body></html>
""", encoding="utf-8")
    (out / "pages.json").write_text(json.dumps(pages, indent=1), encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m workbench.course", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="execute the tutorials and write the static site")
    b.add_argument("out", help="folder to write the site into (e.g. site/)")
    b.add_argument("--source", default="notebooks", help="folder with the NN_*.ipynb tutorials (default: notebooks)")
    b.add_argument("--fast", action="store_true", help="run with WORKBENCH_FAST=1 (the test-sized run)")
    b.add_argument("--only", nargs="*", default=(), metavar="NN", help="only these notebooks (name prefixes, e.g. 00 01)")
    b.add_argument("--timeout", type=int, default=900, help="seconds allowed per cell (default 900)")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    try:
        pages = build_site(args.out, source=args.source, fast=args.fast, only=args.only, timeout=args.timeout)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(pages)} pages + index.html to {pathlib.Path(args.out).resolve()} "
          f"in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
