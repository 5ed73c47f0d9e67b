"""The published course site: ``python -m workbench.course build`` pages open from disk and draw.

The site is built once per session (``--fast``: ``WORKBENCH_FAST=1``, notebooks 00 and 01, or
``$WORKBENCH_SITE_NOTEBOOKS``, e.g. ``"00 01 02"``) into a temporary folder, then every page is
opened as a ``file://`` URL in headless Chromium (no server, no kernel, no network) and must show:
every plotly figure drawn (plotly.js from the site's own copy), at least as many plots as the
notebook's views and figures hold, no Python traceback, no uncaught JavaScript error, no view wider
than its output area at the 1280x900 window; the contents page links every page. Screenshots:
``$WORKBENCH_SCREENSHOTS/site-<page>-NN.png``.
"""

from __future__ import annotations

import os
import re

import pytest

from . import lab, pages

pytestmark = pytest.mark.browser

ONLY = os.environ.get("WORKBENCH_SITE_NOTEBOOKS", "00 01").split()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from workbench.course import build_site

    out = tmp_path_factory.mktemp("site")
    built = build_site(out, source=lab.REPO_ROOT / "notebooks", fast=True, only=ONLY)
    return out, built


def test_contents_page_links_every_page(site, chromium):
    out, built = site
    text = (out / "index.html").read_text()
    assert [p["file"] for p in built] == re.findall(r'<li><a href="([^"]+)"', text)
    assert all(p["views_without_static_form"] == 0 for p in built), built


@pytest.mark.parametrize("prefix", ONLY)
def test_built_page_draws_its_figures_from_disk(site, chromium, browser_screenshots, prefix):
    out, built = site
    page_info = next(p for p in built if p["notebook"].startswith(prefix))
    url = (out / page_info["file"]).as_uri()
    rep = pages.PageReport(url=url)
    ctx, page = pages.open_page(chromium, url, rep, timeout=60)
    try:
        n_figures = page.evaluate("() => document.querySelectorAll('.plotly-graph-div').length")
        pages.check_views(page, rep, settle=60)
        pages.screenshots(page, browser_screenshots, f"site-{page_info['file'][:-5]}", rep)
        if n_figures == 0 or len(rep.plots) < n_figures:
            rep.problems.append(f"{len(rep.plots)} plots drawn of {n_figures} figures in the page")
        if page.evaluate("() => typeof window.Plotly") != "object":
            rep.problems.append("plotly.js did not load from the site folder")
    finally:
        ctx.close()
    print(rep.summary())
    assert rep.ok, rep.summary()
