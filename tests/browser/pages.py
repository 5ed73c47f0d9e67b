"""Check a page outside JupyterLab (the Voilà app, a built course page) the way ``lab.py`` checks a
notebook: every plotly view drew, no widget error box, no uncaught JavaScript error, no Python
traceback, no view wider than its output area, and (for a live app) a slider moves a plot.

``VoilaServer`` serves one notebook with Voilà (code hidden) on 127.0.0.1, with the kernel
environment of the notebook tests (``lab.kernel_env``: ``WORKBENCH_FAST=1``, one thread) and
temporary Jupyter config/runtime folders. Voilà starts a new kernel for every request of ``/``, so
readiness is a TCP connect, never an HTTP request.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import socket
import sys
import time

from . import fit, lab

# lab.py's page scripts find the notebook panel with window.__wbFind; outside Lab there is none,
# and they then look at the whole document
_JS_NO_LAB = "() => { window.__wbFind = () => null; }"


@dataclasses.dataclass
class PageReport:
    """What was seen on one page; ``problems`` is empty when it passed."""

    url: str
    seconds: float = 0.0
    problems: list[str] = dataclasses.field(default_factory=list)
    plots: list[dict] = dataclasses.field(default_factory=list)
    views: int = 0
    slider: dict | None = None
    screenshots: list[str] = dataclasses.field(default_factory=list)
    console_errors: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        drawn = sum(p.get("drawn", False) for p in self.plots)
        sl = "" if self.slider is None else (
            f"; slider '{self.slider.get('label')}' {self.slider.get('before')} -> {self.slider.get('after')} "
            f"changed plots {self.slider.get('changed')}")
        lines = [f"{self.url}: {'OK' if self.ok else 'FAILED'} in {self.seconds:.1f} s; plots drawn "
                 f"{drawn}/{len(self.plots)}; view outputs {self.views}{sl}"]
        lines += [f"  problem: {p}" for p in self.problems]
        if self.console_errors and not self.ok:
            lines += [f"  browser console: {c}" for c in self.console_errors[:8]]
        return "\n".join(lines)


class VoilaServer(lab.ServerProcess):
    """``voila NOTEBOOK`` on 127.0.0.1 with a random port; use as a context manager."""

    name = "voila"

    def __init__(self, notebook: str | os.PathLike, *, fast: bool = True, start_timeout: float = 60.0):
        super().__init__(fast=fast, start_timeout=start_timeout)
        self.notebook = pathlib.Path(notebook).resolve()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> VoilaServer:
        self._spawn([sys.executable, "-m", "voila", str(self.notebook), "--no-browser",
                     "--Voila.ip=127.0.0.1", f"--Voila.port={self.port}", "--Voila.port_retries=0",
                     "--strip_sources=True", "--show_tracebacks=True"],
                    cwd=self.notebook.parent, env=lab.kernel_env(fast=self.fast), prefix="workbench-voila-")
        self._wait_ready(self._listens)
        return self

    def _listens(self) -> bool:
        with socket.socket() as s:
            s.settimeout(1)
            return s.connect_ex(("127.0.0.1", self.port)) == 0


def open_page(browser, url: str, rep: PageReport, timeout: float):
    """A fresh context at ``lab.VIEWPORT`` showing ``url`` (loaded: for Voilà, every cell ran)."""
    ctx = browser.new_context(viewport=dict(lab.VIEWPORT), device_scale_factor=1)
    page = ctx.new_page()
    page.on("pageerror", lambda e: rep.console_errors.append(f"pageerror: {e}"))
    page.on("console", lambda m: rep.console_errors.append(f"console.{m.type}: {m.text[:300]}")
            if m.type == "error" else None)
    page.goto(url, wait_until="load", timeout=timeout * 1000)
    page.evaluate(_JS_NO_LAB)
    return ctx, page


_JS_PENDING = """() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))
    .filter(o => o.classList.contains('lm-Panel') && !o.querySelector('.jupyter-widgets, .js-plotly-plot')
            && !(o.innerText || '').trim()).length"""

#: the element that scrolls the page (Voila's lab template scrolls an inner element, not the body)
_JS_SCROLLER = """() => {
  let best = document.scrollingElement;
  for (const el of document.querySelectorAll('body *')) {
    const oy = getComputedStyle(el).overflowY;
    if ((oy === 'auto' || oy === 'scroll') && el.scrollHeight > el.clientHeight + 2
        && el.scrollHeight > (best.scrollHeight > best.clientHeight + 2 ? best.scrollHeight : 0)) best = el;
  }
  window.__wbPageScroller = best;
  return [best.scrollHeight, best.clientHeight];
}"""


def check_views(page, rep: PageReport, *, settle: float = 120.0, quiet_s: float = 3.0, allow_console=()) -> None:
    """Wait until the page's views are rendered and its plots drawn and stable (nothing changed for
    ``quiet_s``), then record what is wrong. ``allow_console``: substrings of page errors that are known
    and harmless (say why where you pass them)."""
    deadline = time.monotonic() + settle
    # Voila renders a widget output only when it scrolls into view: scroll through the page first
    total, view = page.evaluate(_JS_SCROLLER)
    for y in range(0, total + view, max(200, view // 2)):
        page.evaluate("(y) => { window.__wbPageScroller.scrollTop = y; }", y)
        page.wait_for_timeout(400)
    page.evaluate("() => { window.__wbPageScroller.scrollTop = 0; }")
    last, since = None, time.monotonic()
    while True:
        st = page.evaluate(lab._JS_PAGE_STATE, None)
        plots = page.evaluate(lab._JS_PLOTS, [None, False])
        pending = page.evaluate(_JS_PENDING)
        key = (st["plots"], pending, tuple(p["drawn"] for p in plots))
        if key != last:
            last, since = key, time.monotonic()
        quiet = time.monotonic() - since
        settled = plots and all(p["drawn"] for p in plots) and not pending
        if (settled or st["error_boxes"] or st["texts"]) and quiet >= quiet_s:
            break
        if quiet >= 20 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    if pending:
        rep.problems.append(f"{pending} widget output(s) stayed empty")
    rep.plots = [{k: v for k, v in p.items() if k != "data_hash"} for p in plots]
    if st["texts"] or st["error_boxes"]:
        rep.problems.append(f"widget failed to render: {st['error_boxes']} error box(es), texts {st['texts']}")
    text = page.evaluate("() => document.body.innerText")
    if "Traceback (most recent call last)" in text or st["traceback"] or "There was an error when executing cell" in text:
        rep.problems.append("the page shows a Python error / traceback")
    if not plots:
        rep.problems.append("no plotly plot on the page")
    for p in plots:
        if not p["drawn"]:
            rep.problems.append(f"plot {p['index']} ({','.join(p['types']) or 'no traces'}) did not draw: "
                                f"size {p['width']}x{p['height']}, svg {p['svg']}, traces {p['traces']}")
    for e in rep.console_errors:
        if e.startswith("pageerror") and not any(a in e for a in allow_console):
            rep.problems.append(f"uncaught JavaScript error in the page: {e[len('pageerror: '):][:300]}")
    rep.views, found = fit.overflows(page)
    if found:
        rep.problems.append(f"views wider than their output area ({lab.VIEWPORT['width']}x"
                            f"{lab.VIEWPORT['height']} window): {fit.describe(found)}")


def screenshots(page, directory, stem: str, rep: PageReport, limit: int = 30) -> None:
    """One image per screen (``stem-01.png``, ...), scrolling whatever element scrolls the page."""
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob(f"{stem}-[0-9][0-9].png"):
        old.unlink()
    total, view = page.evaluate(_JS_SCROLLER)
    step = max(200, int(view * 0.9))
    for k in range(min(limit, 1 + max(0, (total - view + step - 1) // step))):
        page.evaluate("(y) => { window.__wbPageScroller.scrollTop = y; }", k * step)
        page.wait_for_timeout(250)
        shot = d / f"{stem}-{k + 1:02d}.png"
        page.screenshot(path=str(shot))
        rep.screenshots.append(str(shot))
    page.evaluate("() => { window.__wbPageScroller.scrollTop = 0; }")


def move_first_slider(page, rep: PageReport, timeout: float = 60.0) -> None:
    """Drag the first ipywidgets slider with the mouse; some plot's data and pixels must change."""
    sliders = page.locator(".widget-slider")
    if sliders.count() == 0:
        rep.problems.append("no slider on the page")
        return
    slider = sliders.first
    label = slider.locator(".widget-label").first
    readout = slider.locator(".widget-readout").first
    info = {"label": label.inner_text(timeout=2000).strip() if label.count() else "",
            "before": readout.inner_text(timeout=2000).strip() if readout.count() else None}
    rep.slider = info
    handle, track = slider.locator(".noUi-handle").first, slider.locator(".noUi-target").first
    handle.scroll_into_view_if_needed(timeout=10_000)
    page.wait_for_timeout(300)
    plots = page.locator(".js-plotly-plot")
    before = [p["data_hash"] for p in page.evaluate(lab._JS_PLOTS, [None, True])]
    page.mouse.move(2, 2)
    before_px = [plots.nth(i).screenshot(timeout=10_000, animations="disabled") for i in range(len(before))]
    handle.scroll_into_view_if_needed(timeout=10_000)
    hb, tb = handle.bounding_box(), track.bounding_box()
    hx, hy = hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2
    frac = (hx - tb["x"]) / tb["width"]
    page.mouse.move(hx, hy)
    page.mouse.down()
    page.mouse.move(tb["x"] + tb["width"] * (0.8 if frac < 0.5 else 0.2), hy, steps=12)
    page.mouse.up()
    info["after"] = readout.inner_text(timeout=2000).strip() if readout.count() else None
    if info["after"] == info["before"]:
        rep.problems.append(f"could not move the first slider ({info})")
        return
    deadline = time.monotonic() + timeout
    changed: list[int] = []
    while time.monotonic() < deadline and not changed:
        page.wait_for_timeout(700)
        after = [p["data_hash"] for p in page.evaluate(lab._JS_PLOTS, [None, True])]
        moved = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
        page.mouse.move(2, 2)
        changed = [i for i in moved
                   if plots.nth(i).screenshot(timeout=10_000, animations="disabled") != before_px[i]]
    info["changed"] = changed
    if not changed:
        rep.problems.append(f"moving the slider ('{info['label']}' {info['before']} -> {info['after']}) "
                            "changed no plot's data and pixels")
