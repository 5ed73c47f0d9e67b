"""Driving big maps in real JupyterLab: draw, lasso with the mouse, read the kernel back.

Used by ``tests/browser/test_big_map_browser.py`` (the 1M-point map) and
``benchmarks/bench_views.py`` (build / draw / lasso timings), on top of ``lab.py``'s server and
browser. A scratch notebook (``scratch_notebook``) has a set-up cell and one cell that a driver
rewrites and runs for each case (``run_cell``), so one page and one kernel serve many maps and the
previous map is dropped when the cell's output is replaced.

* ``map_box``: where the map of the last output is drawn (jupyter-scatter's WebGL canvas, or
  plotly's plot area);
* ``ink``: the share of non-white pixels in a screenshot of a box (the map has drawn its points);
* ``lasso``: a closed polygon dragged with the mouse (jupyter-scatter starts in lasso mode;
  plotly maps are in lasso drag mode), points in box fractions;
* ``kernel_exec``: run code in the notebook's kernel and return what it printed;
* ``synthetic``: the points the maps show (the kernel imports it: the repo root is on its path).
"""

from __future__ import annotations

import io
import json
import time


def synthetic(n: int, k: int = 10, seed: int = 0):
    """``n`` 2-D points (float32) in ``k`` Gaussian blobs on a ring, and their labels 0..k-1."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lab = rng.integers(0, k, n)
    ang = 2 * np.pi * lab / k
    xy = rng.standard_normal((n, 2)).astype(np.float32) + 5 * np.stack([np.cos(ang), np.sin(ang)], 1)
    return xy.astype(np.float32), lab


_JS_SET_AND_RUN = """
async ([path, index, source]) => {
  const app = window.jupyterapp;
  const p = window.__wbFind(path);
  app.shell.activateById(p.id);
  const cell = p.content.widgets[index];
  cell.model.sharedModel.setSource(source);
  p.content.activeCellIndex = index;
  p.content.deselectAll();
  await app.commands.execute('notebook:run-cell');
  return true;
}
"""

_JS_CELL_ERROR = """
([path, index]) => {
  const p = window.__wbFind(path);
  const outs = p.content.widgets[index].model.toJSON().outputs || [];
  const e = outs.find(o => o.output_type === 'error');
  return e ? `${e.ename}: ${e.evalue}` : null;
}
"""

_JS_KERNEL_EXEC = """
async ([path, code]) => {
  const p = window.__wbFind(path);
  const k = p.sessionContext.session.kernel;
  let text = '';
  const f = k.requestExecute({code: code, silent: false, store_history: false});
  f.onIOPub = (msg) => {
    const t = msg.header.msg_type;
    if (t === 'stream') text += msg.content.text;
    if (t === 'error') text += 'ERROR ' + msg.content.ename + ': ' + msg.content.evalue;
  };
  await f.done;
  return text;
}
"""

# the drawing area of the last map in cell `index`: jupyter-scatter's largest canvas, or plotly's
# plot area (its drag layer)
_JS_MAP_BOX = """
([path, index]) => {
  const p = window.__wbFind(path);
  const cell = p.content.widgets[index].node;
  let best = null;
  for (const c of cell.querySelectorAll('.jp-OutputArea-output canvas')) {
    if (c.closest('.js-plotly-plot')) continue;
    const r = c.getBoundingClientRect();
    if (r.width > 100 && r.height > 100 && (!best || r.width * r.height > best.width * best.height)) best = r;
  }
  let kind = 'jscatter';
  if (!best) {
    const drag = cell.querySelector('.js-plotly-plot .nsewdrag');
    if (drag) { best = drag.getBoundingClientRect(); kind = 'plotly'; }
  }
  if (!best) return null;
  return {kind: kind, x: best.x, y: best.y, width: best.width, height: best.height};
}
"""


def scratch_notebook(setup: str, first_case: str = "") -> dict:
    """A notebook (JSON dict) with a set-up cell and one case cell, for ``run_cell``."""
    cell = lambda src: {"cell_type": "code", "execution_count": None, "id": f"c{len(src)}{abs(hash(src)) % 10**6}",  # noqa: E731
                        "metadata": {}, "outputs": [], "source": src}
    return {"cells": [cell(setup), cell(first_case)], "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5}


def open_notebook(browser, page, path: str, log=print):
    """Open ``path`` in ``page`` and wait until its kernel is connected and idle (lab.py's ``_run``
    without run-all): returns nothing, raises on a dialog or time-out."""
    from . import lab

    page.goto(f"{browser.server.url}/lab/tree/{path}?token={browser.server.token}",
              wait_until="domcontentloaded", timeout=60_000)
    page.wait_for_function("() => !!(window.jupyterapp && window.jupyterapp.shell)", timeout=60_000)
    page.evaluate(lab._JS_FIND)
    browser._wait(page, path, lambda s: s.get("panel") and s.get("ready") and s.get("conn") == "connected"
                  and s.get("status") == "idle", "the notebook's kernel to be connected and idle", timeout=120,
                  stable=0.5)
    page.evaluate("() => window.jupyterapp.shell.collapseLeft && window.jupyterapp.shell.collapseLeft()")
    log(f"{path}: kernel ready")


def wait_idle(browser, page, path: str, timeout: float = 300.0):
    browser._wait(page, path, lambda s: s.get("status") == "idle" and s.get("pending") == 0,
                  "the kernel to go idle", timeout=timeout, poll=0.1, stable=0.3)


def run_cell(browser, page, path: str, index: int, source: str, timeout: float = 300.0) -> float:
    """Replace cell ``index``'s source, run it, wait until the kernel is idle; seconds taken."""
    t0 = time.monotonic()
    page.evaluate(_JS_SET_AND_RUN, [path, index, source])
    wait_idle(browser, page, path, timeout)
    took = time.monotonic() - t0
    err = page.evaluate(_JS_CELL_ERROR, [path, index])
    if err:
        raise RuntimeError(f"cell {index} raised {err}")
    return took


def kernel_exec(page, path: str, code: str) -> str:
    """Run ``code`` in the notebook's kernel (not in a cell); return its printed output."""
    out = page.evaluate(_JS_KERNEL_EXEC, [path, code])
    if "ERROR " in out:
        raise RuntimeError(f"kernel code failed: {out.strip()[-500:]}")
    return out


def kernel_json(page, path: str, expr: str):
    """The value of the Python expression ``expr`` in the kernel, through JSON."""
    return json.loads(kernel_exec(page, path, f"import json as _j; print(_j.dumps({expr}))").strip().splitlines()[-1])


def map_box(page, path: str, index: int) -> dict | None:
    return page.evaluate(_JS_MAP_BOX, [path, index])


def ink(page, box: dict) -> float:
    """Share of clearly non-white pixels in the screenshot of ``box`` (0 = blank)."""
    import numpy as np
    from PIL import Image

    png = page.screenshot(clip={k: box[k] for k in ("x", "y", "width", "height")}, animations="disabled")
    a = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.uint8)
    return float(np.mean(a < 235))


def wait_drawn(page, path: str, index: int, timeout: float = 120.0, min_ink: float = 0.01, poll: float = 0.2):
    """Wait until the map of cell ``index`` shows points; returns (seconds, box, ink)."""
    t0 = time.monotonic()
    while True:
        box = map_box(page, path, index)
        if box is not None:
            share = ink(page, box)
            if share >= min_ink:
                return time.monotonic() - t0, box, share
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"the map in cell {index} did not draw within {timeout:.0f} s (box {box})")
        time.sleep(poll)


def lasso(page, box: dict, polygon, steps: int = 6) -> float:
    """Drag the ``polygon`` [(fx, fy), ...] (fractions of ``box``; the lasso closes it) with the mouse;
    returns ``time.time()`` at mouse-up (to compare with the kernel's clock: same machine)."""
    pts = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in polygon]
    page.mouse.move(*pts[0])
    page.mouse.down()
    for p in pts[1:]:
        page.mouse.move(*p, steps=steps)
    # close the polygon, but stop short of the start: a mouse-up where the button went down counts
    # as a click (which selects the point under it), as it would for a person
    (x0, y0), (x1, y1) = pts[0], pts[-1]
    page.mouse.move(x0 + 0.1 * (x1 - x0), y0 + 0.1 * (y1 - y0), steps=steps)
    page.mouse.up()
    return time.time()
