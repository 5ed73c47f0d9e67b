"""Fixtures for the real-browser notebook test: one JupyterLab server and one Chromium per session.

Both are stopped at the end of the session, also when a test fails (fixture teardown). When
Debian's chromium or the ``playwright`` package is missing the tests skip, unless
``WORKBENCH_REQUIRE_BROWSER=1`` (CI sets it), in which case they fail.
"""

from __future__ import annotations

import os
import pathlib

import pytest

from . import lab

_REPORTS: list = []
_SHOT_DIR: list[pathlib.Path] = []


def screenshot_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("WORKBENCH_SCREENSHOTS", "browser-screenshots")).resolve()


def require_browser() -> bool:
    return os.environ.get("WORKBENCH_REQUIRE_BROWSER") == "1"


def skip_or_fail(reason: str):
    if require_browser():
        pytest.fail(f"{reason} (WORKBENCH_REQUIRE_BROWSER=1, so this is a failure)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def lab_server():
    try:
        lab.check_browser_available()
    except lab.BrowserUnavailable as e:
        skip_or_fail(f"browser test needs a browser: {e}")
    notebooks = lab.notebooks_to_check()
    server = lab.LabServer(lab.serving_root(notebooks) if notebooks else lab.REPO_ROOT)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium (a playwright Browser) for the whole session: playwright's sync API
    allows one instance per thread, so every browser test takes its pages from this one."""
    try:
        lab.check_browser_available()
    except lab.BrowserUnavailable as e:
        skip_or_fail(f"browser test needs a browser: {e}")
    pw, browser = lab.launch_chromium()
    try:
        yield browser
    finally:
        try:
            browser.close()
        finally:
            pw.stop()


@pytest.fixture(scope="session")
def lab_browser(lab_server, chromium):
    timeout = float(os.environ.get("WORKBENCH_BROWSER_TIMEOUT", "300"))
    browser = lab.LabBrowser(lab_server, timeout=timeout, browser=chromium)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="session")
def browser_screenshots() -> pathlib.Path:
    d = screenshot_dir()
    d.mkdir(parents=True, exist_ok=True)
    if not _SHOT_DIR:
        _SHOT_DIR.append(d)
    return d


@pytest.fixture
def browser_report():
    """Collects NotebookReports so the terminal summary can list them."""
    return _REPORTS.append


def pytest_terminal_summary(terminalreporter):
    if not _REPORTS and not _SHOT_DIR:
        return
    tr = terminalreporter
    tr.section("JupyterLab browser check")
    for rep in _REPORTS:
        tr.write_line(rep.summary())
    if _SHOT_DIR:
        tr.write_line(f"screenshots: {_SHOT_DIR[0]}  (<notebook>.png = whole notebook, "
                      "<notebook>-NN.png = one per screen, <notebook>-slider-before/after.png)")
