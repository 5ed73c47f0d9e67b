"""Maps of 10k / 100k / 1M points: build time and lasso round trip, plotly vs jupyter-scatter.

Two parts, each printing every run and the medians (rounds interleave the backends, so a busy
machine hurts both alike; the load average is printed with every run):

1. **Python** (always): ``EmbeddingView(xy, labels, backend=...)`` on synthetic 2-D features
   (10 Gaussian blobs on a ring). "build" is the constructor (the figure or widget state,
   serialised as the comm-open message carries it), "bundle" the display call
   (``_repr_mimebundle_``); ready = build + bundle. "selection" is a lasso's result arriving as
   the front end sends it (jupyter-scatter: the ``selection`` trait as a binary uint32 array;
   plotly: the ``plotly_selected`` event with a JSON list of point indices) until
   ``view.selected`` holds it, for 10% of the points (100k of 1M). Goals: 1M points ready in
   < 3 s; a 100k-point selection back in < 1 s.

2. **Browser** (``--browser``): real JupyterLab in headless Chromium (``tests/browser/lab.py``,
   Debian's chromium, software WebGL: no GPU) runs a cell building and showing each map; "cell"
   is the cell's run time (kernel: data, build, display), "drawn" the time from running the cell
   until the map's pixels show points; then a lasso is dragged with the mouse over the map and
   "lasso" is the time from mouse-up to the kernel's ``on_select`` callback (same clock), "page"
   the time from mouse-up until the page draws frames again (plotly restyles every point after a
   selection and the page does not respond meanwhile).

    OMP_NUM_THREADS=1 python benchmarks/bench_views.py [--sizes 10000 100000 1000000]
        [--backends plotly jscatter] [--repeats 3] [--browser] [--browser-repeats 2]
        [--browser-plotly-max 100000]

plotly above ``--browser-plotly-max`` points is not drawn in the browser (it does not finish in
useful time on this machine); the Python part times it at every size.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import workbench as wb  # noqa: E402
from tests.browser.maps import synthetic  # noqa: E402  (10 Gaussian blobs on a ring)
from workbench.widgets import EmbeddingView  # noqa: E402


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


# ----------------------------------------------------------------------------- 1. Python
def py_select(view, idx: np.ndarray) -> float:
    """Seconds from the front end's selection message to ``view.selected`` holding it."""
    t0 = time.perf_counter()
    if view.backend.name == "jscatter":
        w = view.backend.scatter.widget
        sel = idx.astype(np.uint32)
        # what the comm delivers: the binary buffer, deserialised by the trait's from_json
        w.set_state({"selection": {"view": memoryview(sel.tobytes()), "dtype": "uint32", "shape": [len(sel)]}})
    else:
        fig = view.figure
        fig._js2py_pointsCallback = {
            "event_type": "plotly_selected",
            "points": {"trace_indexes": [0] * len(idx), "point_indexes": idx.tolist(),
                       "xs": [0.0] * len(idx), "ys": [0.0] * len(idx)},
            "selector": {"type": "lasso", "selector_state": {"xs": [0, 1, 1], "ys": [0, 0, 1]}},
            "device_state": None,
        }
    dt = time.perf_counter() - t0
    assert len(view.selected) == len(np.unique(idx)), "the selection did not arrive"
    return dt


def python_part(sizes, backends, repeats):
    print(f"\n== Python: build, display bundle, selection round trip (medians of {repeats}) ==")
    res = {}
    for n in sizes:
        xy, lab = synthetic(n)
        idx = np.sort(np.random.default_rng(1).choice(n, n // 10, replace=False))
        for r in range(repeats):
            for be in backends:
                t0 = time.perf_counter()
                view = EmbeddingView(xy, lab, backend=be)
                t1 = time.perf_counter()
                view._repr_mimebundle_()
                t2 = time.perf_counter()
                sel = py_select(view, idx)
                res.setdefault((n, be), []).append((t1 - t0, t2 - t1, sel))
                print(f"  n={n:>9,} {be:<8} round {r}: build {t1 - t0:6.2f} s  bundle {t2 - t1:6.2f} s  "
                      f"selection of {len(idx):,}: {sel:6.3f} s   load {load()}", flush=True)
                del view
    print(f"\n{'points':>10} {'backend':<9} {'build s':>8} {'bundle s':>9} {'ready s':>8} {'select s':>9}")
    for (n, be), v in res.items():
        b, u, s = (statistics.median(x[k] for x in v) for k in range(3))
        print(f"{n:>10,} {be:<9} {b:8.2f} {u:9.2f} {b + u:8.2f} {s:9.3f}")
    for (n, be), v in res.items():
        if n == 1_000_000 and be == "jscatter":
            ready = statistics.median(x[0] + x[1] for x in v)
            sel = statistics.median(x[2] for x in v)
            print(f"goal 1M points ready in < 3 s (jscatter): {ready:.2f} s -> {'PASS' if ready < 3 else 'FAIL'}")
            print(f"goal 100k selection back in < 1 s (jscatter, Python side): {sel:.3f} s -> "
                  f"{'PASS' if sel < 1 else 'FAIL'}")
    return res


# ----------------------------------------------------------------------------- 2. browser
SETUP = """import time
import numpy as np
from workbench.widgets import EmbeddingView
from tests.browser.maps import synthetic
stamps = []"""
CASE = """N, BACKEND = {n}, {backend!r}
xy, lab = synthetic(N)
stamps.clear()
t0 = time.time()
view = EmbeddingView(xy, lab, backend=BACKEND, height=480)
view.on_select(lambda idx: stamps.append((time.time(), len(idx))))
build = time.time() - t0
view"""
# a lasso around the right-hand part of the ring (fractions of the drawing area)
POLYGON = [(0.55, 0.25), (0.8, 0.25), (0.8, 0.75), (0.55, 0.75)]


def browser_case(br, page, path, n, backend, log):
    from tests.browser import maps

    t0 = time.time()
    cell = maps.run_cell(br, page, path, 1, CASE.format(n=n, backend=backend), timeout=600)
    drawn, box, share = maps.wait_drawn(page, path, 1, timeout=300)
    drawn += cell
    build = maps.kernel_json(page, path, "build")
    page.wait_for_timeout(500)
    st = []
    for attempt in range(2):  # a drag that started before the map took events is tried once more
        up = maps.lasso(page, box, POLYGON)
        deadline = time.time() + 60
        while time.time() < deadline:
            st = maps.kernel_json(page, path, "stamps")
            if st:
                break
            time.sleep(0.2)
        if st:
            break
        log(f"  (no selection arrived within 60 s of the lasso; trying again, attempt {attempt + 2})")
    # the page again draws a frame (plotly restyles every point after a selection; until then the
    # page does not respond)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(1))))")
    frame = time.time() - up
    st = maps.kernel_json(page, path, "stamps") or st
    lasso = st[0][0] - up if st else float("nan")
    got = st[-1][1] if st else 0
    log(f"  n={n:>9,} {backend:<8}: cell {cell:6.2f} s (build {build:5.2f} s)  drawn {drawn:6.2f} s  "
        f"lasso {lasso:6.2f} s ({got:,} points)  page again drawing {frame:6.2f} s after mouse-up  "
        f"ink {share:.3f}   load {load()}   [{time.time() - t0:.0f} s]")
    return cell, build, drawn, lasso, got, frame


def browser_part(sizes, backends, repeats, plotly_max):
    from tests.browser import lab, maps

    lab.check_browser_available()
    print(f"\n== headless Chromium + JupyterLab: cell, drawn, lasso round trip (medians of {repeats}) ==")
    res = {}
    with tempfile.TemporaryDirectory(prefix="bench-views-") as d:
        nb = pathlib.Path(d) / "bench_views.ipynb"
        nb.write_text(json.dumps(maps.scratch_notebook(SETUP)))
        with lab.LabServer(d) as server, lab.LabBrowser(server, timeout=600) as br:
            ctx = br.browser.new_context(viewport={"width": 1280, "height": 1000}, device_scale_factor=1)
            page = ctx.new_page()
            maps.open_notebook(br, page, nb.name)
            maps.run_cell(br, page, nb.name, 0, SETUP)
            for be in backends:  # warm-up (first imports, plotly's first figure): not timed
                browser_case(br, page, nb.name, 5000, be, lambda m: print("  (warm-up)" + m))
            for _ in range(repeats):
                for n in sizes:
                    for be in backends:
                        if be == "plotly" and n > plotly_max:
                            continue
                        res.setdefault((n, be), []).append(browser_case(br, page, nb.name, n, be, print))
            ctx.close()
    print(f"\n{'points':>10} {'backend':<9} {'cell s':>7} {'build s':>8} {'drawn s':>8} {'lasso s':>8} "
          f"{'page s':>7} {'selected':>9}")
    for (n, be), v in sorted(res.items()):
        c, b, dr, la, fr = (statistics.median(x[k] for x in v) for k in (0, 1, 2, 3, 5))
        print(f"{n:>10,} {be:<9} {c:7.2f} {b:8.2f} {dr:8.2f} {la:8.2f} {fr:7.2f} "
              f"{int(statistics.median(x[4] for x in v)):>9,}")
    print("(cell: the cell's run in the kernel; drawn: running the cell -> points on screen; lasso: mouse-up -> "
          "the kernel's on_select; page: mouse-up -> the page draws frames again)")
    for n in sizes:
        if n > plotly_max and "plotly" in backends:
            print(f"{n:>10,} plotly    not drawn in the browser (above --browser-plotly-max)")
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--backends", nargs="+", default=["plotly", "jscatter"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--browser", action="store_true", help="also draw and lasso in headless Chromium")
    ap.add_argument("--browser-only", action="store_true", help="skip the Python part")
    ap.add_argument("--browser-repeats", type=int, default=2)
    ap.add_argument("--browser-plotly-max", type=int, default=100_000)
    args = ap.parse_args()
    import jscatter

    print(f"workbench {wb.__file__}; jupyter-scatter {jscatter.__version__}; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()}; auto threshold {wb.widgets._map.PLOTLY_MAX_POINTS:,} points")
    if not args.browser_only:
        python_part(args.sizes, args.backends, args.repeats)
    if args.browser or args.browser_only:
        browser_part(args.sizes, args.backends, args.browser_repeats, args.browser_plotly_max)
    print(f"\nload average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
