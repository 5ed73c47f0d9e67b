"""Drive a real JupyterLab in headless Chromium: open a notebook, run all cells, check the views.

Used by ``tests/browser/test_notebooks_browser.py`` (pytest marker ``browser``) and as a CLI for
looking at one notebook the way a user sees it::

    python -m tests.browser.lab notebooks/00_quickstart.ipynb --screenshot out.png

which writes ``out.png`` (the whole notebook, one tall image) plus ``out-01.png``, ``out-02.png``,
... (one per screen, easier to read) and prints what was checked.

How it works (what proved reliable on this stack, see shared/ENVIRONMENT.md "Browser"):

* JupyterLab runs on 127.0.0.1 with a random port and token, temporary config/runtime/checkpoint
  dirs (so no user settings, workspaces or news pop-ups leak in, and nothing is written next to
  the notebooks), ``expose_app_in_browser`` (the page then has ``window.jupyterapp``), autosave
  off (the executed notebook is never written back; the file is also compared before/after), and
  notebook windowing off (every cell is in the DOM, so every widget renders). Each notebook opens
  in a fresh browser context and a fresh Lab workspace.
* The kernel env is the one nbmake uses (conftest.py): ``WORKBENCH_FAST=1``,
  ``OMP_NUM_THREADS=1``, ``NUMBA_CACHE_DIR``; the repo root is put on ``PYTHONPATH``.
* Per notebook: a fresh browser context opens it, waits until its session kernel is connected and
  idle, executes ``notebook:run-all-cells`` through the app's command registry, waits for idle
  again and for the widgets to render, then checks:
  - no cell error (error outputs in the notebook model, error messages on the kernel's IOPub
    channel, "Traceback" in any output), every code cell executed;
  - no widget failure box ("Click to show javascript error." in ipywidgets 8, "Error displaying
    widget" in older versions), no widget view left empty, no uncaught JavaScript error in the page
    (a widget whose JS throws inside anywidget shows *nothing*, not a red box);
  - every plotly view drew: its SVG main layer has non-zero size, for WebGL traces a canvas with
    non-zero size exists (and no "WebGL is not supported" note), and plotly.js holds at least one
    trace it shows (an empty FigureWidget is a failure); a notebook with any widget or plotly
    output must show at least one plot;
  - the first ipywidgets slider, dragged with the mouse (keyboard as fallback), changes both the
    plotly data/layout and the pixels of a plot in its own cell (of any plot if its cell has none)
    within 30 s; notebooks without a slider skip this part, and it is skipped after other failures.
  Afterwards the notebook's kernel is shut down and the notebook file is checked to be unchanged.

Only Debian's ``/usr/bin/chromium`` is used (override with ``WORKBENCH_CHROMIUM``); never
``playwright install``.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import json
import os
import pathlib
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
#: the window every notebook is checked in (issue 19: views must fit a 1280x900 window)
VIEWPORT = {"width": 1280, "height": 900}
WIDGET_ERROR_TEXTS = ("Click to show javascript error", "Error displaying widget")


class BrowserUnavailable(RuntimeError):
    """Chromium or the playwright package is missing (the test skips, or fails under CI)."""



# Page errors of third-party front ends that are known and harmless, each with its reason. Every
# other uncaught error fails the check.
KNOWN_HARMLESS_PAGE_ERRORS = {
    # regl-scatterplot (jupyter-scatter's renderer) throws from its resize handler when Lumino
    # lays the notebook out again (the file browser opened and closed by the fit check) and the
    # canvas is momentarily 0 px; the map is drawn again at the next resize (the screenshots,
    # taken afterwards, show it), and the plot checks still require every plot to be drawn.
    "(regl) invalid renderbuffer size": "jupyter-scatter canvas resized to 0 px during a relayout",
}


def _known_harmless(error: str) -> bool:
    return any(k in error for k in KNOWN_HARMLESS_PAGE_ERRORS)

def chromium_path() -> str:
    return os.environ.get("WORKBENCH_CHROMIUM", DEFAULT_CHROMIUM)


def check_browser_available() -> None:
    """Raise BrowserUnavailable saying what is missing and how to install it."""
    import importlib.util

    missing = []
    exe = chromium_path()
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        missing.append(f"{exe} not found (install Debian's browser: apt-get install -y chromium, "
                       "or set WORKBENCH_CHROMIUM)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("python package 'playwright' not installed (pip install playwright; "
                       "do NOT run `playwright install`)")
    if missing:
        raise BrowserUnavailable("; ".join(missing))


def launch_chromium():
    """(playwright, browser): Debian's headless Chromium; stop both with ``browser.close()`` and
    ``playwright.stop()``."""
    check_browser_available()
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        return pw, pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
    except Exception:
        pw.stop()
        raise


def kernel_env(base: dict | None = None, fast: bool = True) -> dict:
    """The environment notebooks get under nbmake (conftest.py), for the server and its kernels."""
    env = dict(os.environ if base is None else base)
    if fast:
        env.setdefault("WORKBENCH_FAST", "1")
    else:
        env.pop("WORKBENCH_FAST", None)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("MKL_NUM_THREADS", "1")
    env.setdefault("NUMBA_CACHE_DIR", str(pathlib.Path.home() / ".cache" / "workbench-numba"))
    env.setdefault("MPLBACKEND", "Agg")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    # nothing from the user's own Jupyter setup
    for var in ("JUPYTER_PATH", "JUPYTER_CONFIG_PATH", "JUPYTERLAB_SETTINGS_DIR",
                "JUPYTERLAB_WORKSPACES_DIR"):
        env.pop(var, None)
    return env


def serving_root(notebooks) -> pathlib.Path:
    """The folder to serve: the repo root when every notebook is inside it, else their common parent."""
    nbs = [pathlib.Path(n).resolve() for n in notebooks]
    if all(REPO_ROOT in n.parents for n in nbs):
        return REPO_ROOT
    return pathlib.Path(os.path.commonpath([str(n.parent) for n in nbs]))


def notebooks_to_check() -> list[pathlib.Path]:
    """``notebooks/*.ipynb``, or the .ipynb files in ``$WORKBENCH_BROWSER_NOTEBOOKS`` (a folder) if set."""
    folder = os.environ.get("WORKBENCH_BROWSER_NOTEBOOKS")
    folder = pathlib.Path(folder).resolve() if folder else REPO_ROOT / "notebooks"
    return sorted(p for p in folder.glob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """Pids of all processes below ``pid`` (kernels run in their own sessions)."""
    children: dict[int, list[int]] = {}
    for d in pathlib.Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


class ServerProcess:
    """A local server in its own process group with a temp folder and a log; a context manager.

    Subclasses give ``start()`` (write config, ``_spawn`` the command, ``_wait_ready``) and may
    override ``_before_stop`` (e.g. shut kernels down through the server's API).
    """

    name = "server"

    def __init__(self, *, fast: bool = True, start_timeout: float = 90.0):
        self.fast = fast
        self.start_timeout = start_timeout
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None
        self.tmp: tempfile.TemporaryDirectory | None = None
        self.log_path: pathlib.Path | None = None
        self._log = None

    def _spawn(self, argv: list[str], *, cwd, env: dict, prefix: str) -> pathlib.Path:
        """Make the temp folder, start ``argv`` logging into it; returns the folder."""
        self.tmp = tempfile.TemporaryDirectory(prefix=prefix)
        base = pathlib.Path(self.tmp.name)
        env = dict(env)
        env.update(self._config(base))
        self.log_path = base / "server.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=str(cwd), env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        atexit.register(self.stop)  # belt and braces: the fixture/context manager stops it first
        return base

    def _config(self, base: pathlib.Path) -> dict:
        """Environment variables pointing the server at config in ``base``."""
        return {"JUPYTER_CONFIG_DIR": str(base / "config"), "JUPYTER_RUNTIME_DIR": str(base / "runtime")}

    def _wait_ready(self, ready) -> None:
        """Poll ``ready()`` until it is true; stop and raise with the log tail if the process dies
        or ``start_timeout`` passes."""
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                log, code = self.log_tail(), self.proc.returncode
                self.stop()
                raise RuntimeError(f"{self.name} exited with code {code}:\n{log}")
            if ready():
                return
            if time.monotonic() > deadline:
                log = self.log_tail()
                self.stop()
                raise RuntimeError(f"{self.name} did not answer on port {self.port} within "
                                   f"{self.start_timeout:.0f} s:\n{log}")
            time.sleep(0.3)

    def _before_stop(self) -> None:
        """Hook run while the server is still up, before it is terminated."""

    def stop(self) -> None:
        """Stop the server (its whole process group, then any child left over), remove temp dirs."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                self._before_stop()
            except Exception:
                pass
            below = _descendants(proc.pid)
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
            for pid in below:  # kernels live in their own sessions: stop any left over, by pid
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")
        except (OSError, AttributeError):
            return ""


class LabServer(ServerProcess):
    """A JupyterLab server on 127.0.0.1 with a random port and token; use as a context manager.

    ``root_dir`` is what Lab serves (notebook paths are given relative to it).
    """

    name = "JupyterLab"

    def __init__(self, root_dir: str | os.PathLike = REPO_ROOT, *, fast: bool = True,
                 start_timeout: float = 90.0, settings: dict | None = None):
        super().__init__(fast=fast, start_timeout=start_timeout)
        self.root_dir = pathlib.Path(root_dir).resolve()
        #: extra Lab user settings, {"@jupyterlab/<ext>:<plugin>": {...}}
        self.settings = dict(settings or {})
        self.token = secrets.token_hex(24)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle -------------------------------------------------------------------------------
    def _config(self, base: pathlib.Path) -> dict:
        config_dir, runtime_dir = base / "config", base / "runtime"
        settings = config_dir / "lab" / "user-settings" / "@jupyterlab"
        for sub, name, value in [
            ("docmanager-extension", "plugin", {"autosave": False, "confirmClosingDocument": False}),
            ("notebook-extension", "tracker", {"windowingMode": "none"}),
            ("apputils-extension", "notification",
             {"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True}),
        ] + [(k.split(":")[0].split("/", 1)[1], k.split(":")[1], v) for k, v in self.settings.items()]:
            (settings / sub).mkdir(parents=True, exist_ok=True)
            (settings / sub / f"{name}.jupyterlab-settings").write_text(json.dumps(value))
        (config_dir / "lab" / "workspaces").mkdir(parents=True, exist_ok=True)
        runtime_dir.mkdir(parents=True, exist_ok=True)
        (config_dir / "jupyter_server_config.json").write_text(json.dumps({
            "ServerApp": {
                "ip": "127.0.0.1", "port": self.port, "port_retries": 0,
                "open_browser": False, "root_dir": str(self.root_dir),
                "terminals_enabled": False, "allow_root": True,
            },
            "IdentityProvider": {"token": self.token},
            # Lab checkpoints a notebook when it opens it: keep those out of the repo
            "FileCheckpoints": {"checkpoint_dir": str(base / "checkpoints")},
            "LabApp": {
                "expose_app_in_browser": True,
                "user_settings_dir": str(config_dir / "lab" / "user-settings"),
                "workspaces_dir": str(config_dir / "lab" / "workspaces"),
                "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                "news_url": None,
            },
        }))
        return {"JUPYTER_CONFIG_DIR": str(config_dir), "JUPYTER_RUNTIME_DIR": str(runtime_dir)}

    def start(self) -> LabServer:
        self._spawn([sys.executable, "-m", "jupyterlab", "--no-browser"], cwd=self.root_dir,
                    env=kernel_env(fast=self.fast), prefix="workbench-lab-")
        self._wait_ready(self._answers)
        return self

    def _answers(self) -> bool:
        try:
            self.api("GET", "/api/status", timeout=2)
            return True
        except (urllib.error.URLError, ConnectionError, OSError):
            return False

    def _before_stop(self) -> None:
        self.shutdown_kernels(timeout=10)

    # -- helpers -----------------------------------------------------------------------------------
    def api(self, method: str, path: str, timeout: float = 10):
        req = urllib.request.Request(self.url + path, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self, timeout: float = 30) -> None:
        """Delete every session (shuts its kernel down) and any kernel left without one."""
        for s in self.api("GET", "/api/sessions") or []:
            self.api("DELETE", f"/api/sessions/{s['id']}", timeout=timeout)
        for k in self.api("GET", "/api/kernels") or []:
            self.api("DELETE", f"/api/kernels/{k['id']}", timeout=timeout)

    def lab_path(self, notebook: str | os.PathLike) -> str:
        p = pathlib.Path(notebook).resolve()
        try:
            return p.relative_to(self.root_dir).as_posix()
        except ValueError:
            raise ValueError(f"{p} is not under the served folder {self.root_dir}; "
                             "start LabServer(root_dir=...) at a folder that contains it") from None


@dataclasses.dataclass
class NotebookReport:
    """What was seen in one notebook; ``problems`` is empty when it passed."""

    path: str
    seconds: float = 0.0
    run_seconds: float = 0.0
    code_cells: int = 0
    executed_cells: int = 0
    has_views: bool = False
    #: (widget views found on the page, widget-view outputs in the notebook)
    widget_views: tuple = (0, 0)
    problems: list[str] = dataclasses.field(default_factory=list)
    plots: list[dict] = dataclasses.field(default_factory=list)
    slider: dict | None = None
    slider_checked: bool = False
    screenshots: list[str] = dataclasses.field(default_factory=list)
    console_errors: list[str] = dataclasses.field(default_factory=list)
    #: the no-overflow check: {how: {"column": px, "overflows": [...]}}
    fit: dict = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        drawn = sum(p.get("drawn", False) for p in self.plots)
        if not self.slider_checked:
            sl = "slider not tried (earlier problems)" if self.problems else "slider check off"
        elif self.slider is None:
            sl = "no slider"
        elif self.slider.get("changed"):
            sl = f"slider '{self.slider.get('label', '')}' {self.slider.get('before')} -> {self.slider.get('after')} changed {self.slider.get('changed_plots')}"
        else:
            sl = f"slider did not change any plot ({self.slider})"
        lines = [f"{self.path}: {'OK' if self.ok else 'FAILED'} in {self.seconds:.1f} s "
                 f"(run-all {self.run_seconds:.1f} s); cells executed {self.executed_cells}/"
                 f"{self.code_cells}; plots drawn {drawn}/{len(self.plots)}; widget views on the page "
                 f"{self.widget_views[0]} of {self.widget_views[1]}; {sl}"]
        if self.fit:
            lines.append("  fits: " + "; ".join(
                f"{how} (column {f['column']} px, {f['views']} views): {'yes' if not f['overflows'] else str(len(f['overflows'])) + ' overflow(s)'}"
                for how, f in self.fit.items()))
        lines += [f"  problem: {p}" for p in self.problems]
        if self.console_errors and not self.ok:
            lines += [f"  browser console: {c}" for c in self.console_errors[:10]]
        return "\n".join(lines)


# JavaScript run in the page. `find` locates the NotebookPanel showing `path`.
_JS_FIND = """
window.__wbFind = (path) => {
  const app = window.jupyterapp;
  if (!app || !app.shell) return null;
  for (const w of Array.from(app.shell.widgets('main'))) {
    if (w.context && w.context.path === path && w.sessionContext) return w;
  }
  return null;
};
window.__wbScroller = (path) => {
  const p = window.__wbFind(path);
  if (!p) return null;
  const cands = [p.content.node, ...p.content.node.querySelectorAll('*'), p.node];
  let best = null;
  for (const el of cands) {
    const oy = getComputedStyle(el).overflowY;
    if ((oy === 'auto' || oy === 'scroll') && el.scrollHeight > el.clientHeight + 2) {
      if (!best || el.scrollHeight > best.scrollHeight) best = el;
    }
  }
  return best || p.content.node;
};
"""

_JS_KERNEL_STATE = """
(path) => {
  if (!window.__wbFind) return {app: !!window.jupyterapp};
  const p = window.__wbFind(path);
  if (!p) return {app: !!window.jupyterapp, panel: false};
  const k = p.sessionContext.session && p.sessionContext.session.kernel;
  const prompts = Array.from(p.content.node.querySelectorAll('.jp-InputPrompt'))
      .filter(e => e.textContent.includes('*')).length;
  return {app: true, panel: true, ready: p.sessionContext.isReady,
          kernel: k ? k.name : null, conn: k ? k.connectionStatus : null,
          status: k ? k.status : null, pending: prompts,
          dialog: !!document.querySelector('.jp-Dialog'),
          run: window.__wbRun || null};
}
"""

_JS_START_RUN = """
(path) => {
  const app = window.jupyterapp;
  const p = window.__wbFind(path);
  app.shell.activateById(p.id);
  window.__wbErrors = [];
  const k = p.sessionContext.session.kernel;
  k.iopubMessage.connect((_, msg) => {
    const t = msg.header.msg_type, c = msg.content || {};
    if (t === 'error') {
      window.__wbErrors.push(`${c.ename}: ${c.evalue}`);
    } else if (t === 'stream' && c.name === 'stderr' && /Traceback \\(most recent call last\\)/.test(c.text || '')) {
      window.__wbErrors.push('traceback on stderr: ' + (c.text || '').slice(-300));
    }
  });
  window.__wbRun = {done: false, ok: null, err: null};
  app.commands.execute('notebook:run-all-cells').then(
    ok => { window.__wbRun = {done: true, ok: ok, err: null}; },
    e => { window.__wbRun = {done: true, ok: false, err: String(e)}; });
  return true;
}
"""

# Plot state: size of the SVG main layer, WebGL canvases, trace types, and (when asked) a hash of
# the plot's data + layout as plotly.js holds them.
_JS_PLOTS = """
([path, withHash]) => {
  const p = window.__wbFind(path);
  const root = p ? p.content.node : document;
  const hash = (s) => { let h = 0; for (let i = 0; i < s.length; i++) { h = (h * 31 + s.charCodeAt(i)) | 0; } return h; };
  const enc = (k, v) => (ArrayBuffer.isView(v) ? Array.from(v) : v);
  return Array.from(root.querySelectorAll('.js-plotly-plot')).map((gd, i) => {
    const r = gd.getBoundingClientRect();
    const svg = gd.querySelector('svg.main-svg');
    const sr = svg ? svg.getBoundingClientRect() : null;
    const types = (gd._fullData || []).map(t => t.type);
    const gl = types.some(t => /gl$|^(scattermap|scattermapbox|choroplethmap|densitymap|mesh3d|surface|scatter3d|cone|volume|isosurface|streamtube)/.test(t));
    const canvases = Array.from(gd.querySelectorAll('canvas')).map(c => {
      const cr = c.getBoundingClientRect();
      return {w: c.width, h: c.height, cw: Math.round(cr.width), ch: Math.round(cr.height)};
    });
    let dataHash = null;
    if (withHash) {
      try { dataHash = hash(JSON.stringify(gd.data || [], enc)) + ':' + hash(JSON.stringify(gd.layout || {}, enc)); } catch (e) { dataHash = 'err ' + e; }
    }
    const noWebgl = /WebGL is not supported|WebGL.*not available/i.test(gd.textContent || '');
    const svgOk = !!sr && sr.width > 0 && sr.height > 0;
    const glOk = !gl || canvases.some(c => c.w > 0 && c.h > 0 && c.cw > 0 && c.ch > 0);
    const nTraces = (gd.data || []).length;
    const nShown = (gd._fullData || []).filter(t => t.visible !== false).length;
    return {index: i, width: Math.round(r.width), height: Math.round(r.height),
            svg: sr ? [Math.round(sr.width), Math.round(sr.height)] : null,
            traces: nTraces, shown: nShown, types: types, gl: gl, canvases: canvases, no_webgl: noWebgl,
            drawn: svgOk && glOk && !noWebgl && r.width > 0 && r.height > 0 && nTraces > 0 && nShown > 0,
            data_hash: dataHash};
  });
}
"""

_JS_PAGE_STATE = """
(path) => {
  const p = window.__wbFind(path);
  const root = p ? p.content.node : document.body;
  const text = root.textContent || '';
  // a widget view's output area: JupyterLab 4.x gives it no data-mime-type attribute (other
  // renderers have one), it is the widget manager's lumino Panel; older versions set the mime type
  const views = Array.from(root.querySelectorAll('.jp-OutputArea-output')).filter(o =>
      o.getAttribute('data-mime-type') === 'application/vnd.jupyter.widget-view+json'
      || (o.getAttribute('data-mime-type') === null && o.classList.contains('lm-Panel')));
  // empty: nothing drawn in it (no text, no plot, no image, no control) or no height
  const emptyViews = views.filter(v => v.getBoundingClientRect().height < 2
      || !((v.textContent || '').trim() || v.querySelector('svg, canvas, img, input, select, button, .js-plotly-plot'))).length;
  const errorBoxes = root.querySelectorAll('.jupyter-widgets-error-widget').length;
  return {views: views.length, empty_views: emptyViews, error_boxes: errorBoxes,
          texts: WIDGET_ERROR_TEXTS.filter(t => text.includes(t)),
          plots: root.querySelectorAll('.js-plotly-plot').length,
          traceback: Array.from(root.querySelectorAll('.jp-OutputArea-output')).some(o => /Traceback \\(most recent call last\\)/.test(o.textContent || ''))};
}
""".replace("WIDGET_ERROR_TEXTS", json.dumps(list(WIDGET_ERROR_TEXTS)))

# height of the notebook's content (to the bottom of its last cell) and of its visible area
_JS_CONTENT_HEIGHT = """
(path) => {
  const s = window.__wbScroller(path);
  const cells = s.querySelectorAll('.jp-Cell');
  const last = cells.length ? cells[cells.length - 1].getBoundingClientRect().bottom : 0;
  const top = s.getBoundingClientRect().top;
  return [Math.min(s.scrollHeight, Math.ceil(last - top + s.scrollTop + 40)), s.clientHeight];
}
"""

_JS_MODEL = """
(path) => {
  const p = window.__wbFind(path);
  return p.context.model.toJSON();
}
"""


class LabBrowser:
    """Headless Chromium (Debian's) driven by playwright; one per session, one context per notebook."""

    def __init__(self, server: LabServer, *, timeout: float = 300.0, browser=None):
        """``browser``: a playwright Browser to use (the session's, see conftest's ``chromium``;
        one playwright per thread); by default one is launched here and closed by ``close``."""
        self.server = server
        self.timeout = timeout
        self._n_opened = 0
        self._pw = None
        if browser is not None:
            self.browser = browser
            return
        self._pw, self.browser = launch_chromium()

    def close(self) -> None:
        if self._pw is None:  # the browser belongs to the caller
            return
        try:
            self.browser.close()
        finally:
            self._pw.stop()

    def __enter__(self) -> LabBrowser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the run -----------------------------------------------------------------------------------
    def check_notebook(self, notebook: str | os.PathLike, *, screenshot_dir: str | os.PathLike | None = None,
                       full_screenshot: str | os.PathLike | None = None, shot_name: str | None = None,
                       move_slider: bool = True, log=None) -> NotebookReport:
        """Open ``notebook`` in Lab, run all cells, check its views; never raises for notebook faults.

        Per-screen screenshots go to ``screenshot_dir/<shot_name>-01.png``, ... (``shot_name``
        defaults to the notebook's stem); ``full_screenshot`` is one tall image of the whole notebook.
        """
        log = log or (lambda *_: None)
        nb_file = pathlib.Path(notebook).resolve()
        path = self.server.lab_path(nb_file)
        before_bytes = nb_file.read_bytes()
        rep = NotebookReport(path=path)
        t0 = time.monotonic()
        ctx = self.browser.new_context(viewport=dict(VIEWPORT), device_scale_factor=1)
        page = ctx.new_page()
        page.on("pageerror", lambda e: rep.console_errors.append(f"pageerror: {e}"))
        page.on("console", lambda m: rep.console_errors.append(f"console.{m.type}: {m.text[:300]}")
                if m.type == "error" else None)
        try:
            self._run(page, path, rep, log)
            if screenshot_dir is not None or full_screenshot is not None:
                self._screenshots(page, path, rep, screenshot_dir, full_screenshot,
                                  shot_name or nb_file.stem)
            if move_slider and not rep.problems:
                rep.slider_checked = True
                self._slider(page, path, rep, log, screenshot_dir, shot_name or nb_file.stem)
        except Exception as e:  # a hang or a page that never came up is a failure of this notebook
            rep.problems.append(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            try:
                if screenshot_dir is not None:
                    d = pathlib.Path(screenshot_dir)
                    d.mkdir(parents=True, exist_ok=True)
                    shot = d / f"{shot_name or nb_file.stem}-at-failure.png"
                    page.screenshot(path=str(shot))
                    rep.screenshots.append(str(shot))
            except Exception:
                pass
        finally:
            ctx.close()
            try:
                self.server.shutdown_kernels()
            except Exception as e:
                rep.problems.append(f"could not shut the kernel down: {e}")
            # autosave is off, so Lab should never write the executed notebook back; the file is
            # not restored here because someone may legitimately have edited it meanwhile
            if nb_file.read_bytes() != before_bytes:
                rep.problems.append("the notebook file changed on disk during the check "
                                    "(JupyterLab saved it, or it was edited meanwhile)")
        rep.seconds = time.monotonic() - t0
        return rep

    def _wait(self, page, path, pred, what: str, timeout: float, poll: float = 0.25, stable: float = 0.0):
        """Poll the page state until ``pred(state)`` holds (for ``stable`` s); raise TimeoutError."""
        deadline = time.monotonic() + timeout
        since = None
        state = None
        while True:
            state = page.evaluate(_JS_KERNEL_STATE, path)
            if state.get("dialog"):
                txt = page.locator(".jp-Dialog").first.inner_text(timeout=2000)[:200].replace("\n", " ")
                raise RuntimeError(f"JupyterLab showed a dialog while waiting for {what}: {txt!r}")
            if pred(state):
                since = since or time.monotonic()
                if time.monotonic() - since >= stable:
                    return state
            else:
                since = None
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:.0f} s for {what}; last state {state}")
            time.sleep(poll)

    def _run(self, page, path, rep: NotebookReport, log) -> None:
        self._n_opened += 1
        workspace = f"wb{self._n_opened}-{secrets.token_hex(3)}"
        page.goto(f"{self.server.url}/lab/workspaces/{workspace}/tree/{path}?token={self.server.token}",
                  wait_until="domcontentloaded", timeout=60_000)
        page.wait_for_function("() => !!(window.jupyterapp && window.jupyterapp.shell)", timeout=60_000)
        page.evaluate(_JS_FIND)
        log(f"{path}: page up, waiting for the kernel")
        self._wait(page, path, lambda s: s.get("panel") and s.get("ready") and s.get("conn") == "connected"
                   and s.get("status") == "idle", "the notebook's kernel to be connected and idle",
                   timeout=120, stable=0.5)
        page.evaluate("() => window.jupyterapp.shell.collapseLeft && window.jupyterapp.shell.collapseLeft()")
        t_run = time.monotonic()
        page.evaluate(_JS_START_RUN, path)
        log(f"{path}: running all cells")
        self._wait(page, path, lambda s: (s.get("run") or {}).get("done") and s.get("status") == "idle"
                   and s.get("pending") == 0, "run-all to finish and the kernel to go idle",
                   timeout=self.timeout, poll=0.5, stable=1.0)
        rep.run_seconds = time.monotonic() - t_run
        log(f"{path}: ran in {rep.run_seconds:.1f} s, waiting for views to render")

        # the notebook model (outputs included) as the kernel left it
        model = page.evaluate(_JS_MODEL, path)
        code = [c for c in model["cells"] if c["cell_type"] == "code" and "".join(c.get("source", "")).strip()]
        rep.code_cells = len(code)
        rep.executed_cells = sum(c.get("execution_count") is not None for c in code)
        mimes = set()
        for i, c in enumerate(model["cells"]):
            for o in c.get("outputs", []):
                mimes.update(o.get("data", {}))
                if o.get("output_type") == "error":
                    evalue = (o.get("evalue") or "").strip().splitlines()
                    rep.problems.append(f"cell {i} raised {o.get('ename')}: {evalue[0][:300] if evalue else ''}")
                elif o.get("output_type") == "stream" and "Traceback (most recent call last)" in "".join(o.get("text", "")):
                    rep.problems.append(f"cell {i} printed a traceback on {o.get('name')}")
        rep.has_views = bool(mimes & {"application/vnd.jupyter.widget-view+json", "application/vnd.plotly.v1+json"})
        model_views = sum("application/vnd.jupyter.widget-view+json" in o.get("data", {})
                          for c in model["cells"] for o in c.get("outputs", []))
        if rep.executed_cells < rep.code_cells and not any("raised" in p for p in rep.problems):
            rep.problems.append(f"only {rep.executed_cells} of {rep.code_cells} code cells executed")
        final = page.evaluate(_JS_KERNEL_STATE, path)
        if final.get("status") not in ("idle", "busy"):
            rep.problems.append(f"kernel status after the run: {final.get('status')}")

        # views: wait until every widget view has content and the plots are drawn and stable
        deadline = time.monotonic() + 90
        last, since = None, time.monotonic()
        while True:
            st = page.evaluate(_JS_PAGE_STATE, path)
            plots = page.evaluate(_JS_PLOTS, [path, False])
            key = (st["views"], st["empty_views"], st["plots"], tuple(p["drawn"] for p in plots))
            if key != last:
                last, since = key, time.monotonic()
            settled = st["empty_views"] == 0 and all(p["drawn"] for p in plots)
            quiet = time.monotonic() - since
            if (settled or st["error_boxes"] or st["texts"]) and quiet >= 1.5:
                break
            if quiet >= 15 or time.monotonic() > deadline:  # nothing changes any more: judge as is
                break
            time.sleep(0.3)
        rep.plots = [{k: v for k, v in p.items() if k != "data_hash"} for p in plots]
        for e in dict.fromkeys(page.evaluate("() => window.__wbErrors || []")):
            if not any(f"raised {e.split(':')[0]}" in p for p in rep.problems):
                rep.problems.append(f"kernel error message: {e[:300]}")
        for e in rep.console_errors:
            if e.startswith("pageerror") and not _known_harmless(e):
                rep.problems.append(f"uncaught JavaScript error in the page: {e[len('pageerror: '):][:300]}")
        if st["texts"] or st["error_boxes"]:
            rep.problems.append(f"widget failed to render: {st['error_boxes']} error box(es), "
                                f"texts {st['texts']}")
        if st["traceback"] and not any("raised" in p or "traceback" in p for p in rep.problems):
            rep.problems.append("an output shows a Python traceback")
        rep.widget_views = (st["views"], model_views)
        if st["empty_views"]:
            rep.problems.append(f"{st['empty_views']} of {st['views']} widget views stayed empty")
        if st["views"] < model_views and not (st["error_boxes"] or st["texts"]):
            rep.problems.append(f"the notebook has {model_views} widget outputs but only {st['views']} "
                                "widget views are on the page")
        if rep.has_views and not plots:
            rep.problems.append("the notebook has widget/plotly outputs but no plotly plot was drawn")
        for p in plots:
            if not p["drawn"]:
                rep.problems.append(
                    f"plot {p['index']} ({','.join(p['types']) or 'no traces'}) did not draw: "
                    + ("it has no traces (empty plot); " if not p["traces"] else "")
                    + ("plotly.js shows none of its traces (unknown trace type?); " if p["traces"] and not p["shown"] else "")
                    + f"size {p['width']}x{p['height']}, svg layer {p['svg']}, canvases {p['canvases']}"
                    + (", WebGL unavailable" if p["no_webgl"] else ""))
        self._check_fit(page, rep)

    def _check_fit(self, page, rep: NotebookReport) -> None:
        """No view wider than its output area (``fit.py``): in the window as it is (left
        sidebar collapsed) and with the file browser open, as a user has it (a narrower column)."""
        from . import fit

        page.mouse.move(2, 2)
        for how in ("sidebar collapsed", "file browser open"):
            if how == "file browser open":
                page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:activate')")
                page.wait_for_timeout(2000)  # the column narrows; plots follow (ResizeObserver)
            column = page.evaluate("() => Math.round(document.querySelector('.jp-Notebook').clientWidth)")
            n_views, found = fit.overflows(page, ".jp-Notebook")
            rep.fit[how] = {"column": column, "views": n_views, "overflows": found}
            if found:
                rep.problems.append(f"views wider than their output area ({how}, "
                                    f"{VIEWPORT['width']}x{VIEWPORT['height']} window, notebook column "
                                    f"{column} px): {fit.describe(found)}")
        page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
        page.wait_for_timeout(1500)

    def _screenshots(self, page, path, rep: NotebookReport, screenshot_dir, full_screenshot, stem) -> None:
        if screenshot_dir is not None:
            d = pathlib.Path(screenshot_dir)
            d.mkdir(parents=True, exist_ok=True)
            for pattern in ("-[0-9][0-9].png", "-slider-before.png", "-slider-after.png", "-at-failure.png"):
                for old in d.glob(stem + pattern):  # this notebook's images from an earlier run
                    old.unlink()
            page.evaluate("(path) => { window.__wbScroller(path).scrollTop = 0; }", path)
            total, view = page.evaluate(_JS_CONTENT_HEIGHT, path)
            step = max(200, int(view * 0.9))
            n = min(40, 1 + max(0, (total - view + step - 1) // step))
            for k in range(n):
                page.evaluate("([path, y]) => { window.__wbScroller(path).scrollTop = y; }", [path, k * step])
                page.wait_for_timeout(250)
                shot = d / f"{stem}-{k + 1:02d}.png"
                page.screenshot(path=str(shot))
                rep.screenshots.append(str(shot))
            page.evaluate("(path) => { window.__wbScroller(path).scrollTop = 0; }", path)
        if full_screenshot is not None:
            total, view = page.evaluate(_JS_CONTENT_HEIGHT, path)
            height = min(20000, VIEWPORT["height"] + max(0, total - view) + 20)
            page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
            page.wait_for_timeout(800)
            out = pathlib.Path(full_screenshot)
            out.parent.mkdir(parents=True, exist_ok=True)
            n_errors = len(rep.console_errors)
            page.screenshot(path=str(out))
            rep.screenshots.append(str(out))
            page.set_viewport_size(dict(VIEWPORT))
            page.wait_for_timeout(300)
            # a window taller than WebGL's largest renderbuffer (8192 px in headless Chromium) makes
            # jupyter-scatter's regl fail to size a window-sized buffer: an artefact of this tall
            # screenshot window, not of the notebook, so those errors are dropped
            rep.console_errors[n_errors:] = [e for e in rep.console_errors[n_errors:]
                                             if not (height > 8192 and "invalid renderbuffer size" in e)]

    def _plot_pixels(self, page, indices) -> dict[int, bytes]:
        """PNG of the plots ``indices`` (mouse parked on the menu bar, so no hover label or modebar)."""
        page.mouse.move(2, 2)
        out = {}
        plots = page.locator(".jp-Notebook .js-plotly-plot")
        for i in indices:
            try:
                out[i] = plots.nth(i).screenshot(timeout=10_000, animations="disabled")
            except Exception as e:
                out[i] = f"error {e}".encode()
        return out

    def _slider(self, page, path, rep: NotebookReport, log, screenshot_dir=None, stem="") -> None:
        sliders = page.locator(".jp-Notebook .widget-slider")
        if sliders.count() == 0:
            return
        slider = sliders.first
        info: dict = {"label": slider.locator(".widget-label").first.inner_text(timeout=2000).strip()
                      if slider.locator(".widget-label").count() else ""}
        rep.slider = info
        handle = slider.locator(".noUi-handle").first
        track = slider.locator(".noUi-target").first
        readout = slider.locator(".widget-readout").first
        handle.scroll_into_view_if_needed(timeout=10_000)
        page.wait_for_timeout(300)
        value = lambda: readout.inner_text(timeout=2000).strip() if readout.count() else None  # noqa: E731
        info["before"] = value()
        before_data = [p["data_hash"] for p in page.evaluate(_JS_PLOTS, [path, True])]
        # pixels are compared for the plots in the slider's own cell (all plots if it has none);
        # plotly's data/layout are compared for every plot
        near = slider.evaluate("""el => {
            const cell = el.closest('.jp-Cell');
            const all = Array.from(document.querySelectorAll('.jp-Notebook .js-plotly-plot'));
            return all.map((gd, i) => (cell && cell.contains(gd)) ? i : -1).filter(i => i >= 0);
        }""") or list(range(len(before_data)))
        info["compared_plots"] = near
        before_px = self._plot_pixels(page, near)
        handle.scroll_into_view_if_needed(timeout=10_000)
        hb, tb = handle.bounding_box(), track.bounding_box()
        vertical = tb["height"] > tb["width"]
        hx, hy = hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2
        if vertical:
            frac = (hy - tb["y"]) / tb["height"]
            tx, ty = hx, tb["y"] + tb["height"] * (0.2 if frac > 0.5 else 0.8)
        else:
            frac = (hx - tb["x"]) / tb["width"]
            tx, ty = tb["x"] + tb["width"] * (0.8 if frac < 0.5 else 0.2), hy
        page.mouse.move(hx, hy)
        page.mouse.down()
        page.mouse.move(tx, ty, steps=12)
        page.mouse.up()
        page.wait_for_timeout(300)
        info["after"] = value()
        info["how"] = "mouse drag"
        if info["after"] == info["before"]:  # fall back to the keyboard
            handle.focus()
            page.keyboard.press("End" if frac < 0.5 else "Home")
            page.wait_for_timeout(300)
            info["after"] = value()
            info["how"] = "keyboard"
        if info["after"] == info["before"]:
            rep.problems.append(f"could not move the first slider ({info})")
            return
        log(f"{path}: slider moved {info['before']} -> {info['after']}, waiting for the plots to change")
        deadline = time.monotonic() + 30
        changed: list[int] = []
        px_changed: list[int] = []
        data_changed: list[int] = []
        while time.monotonic() < deadline:
            st = page.evaluate(_JS_KERNEL_STATE, path)
            if st.get("status") == "idle":
                page.wait_for_timeout(500)
                after_px = self._plot_pixels(page, near)
                after_data = [p["data_hash"] for p in page.evaluate(_JS_PLOTS, [path, True])]
                px_changed = [i for i in near if before_px[i] != after_px.get(i)]
                data_changed = [i for i, (a, b) in enumerate(zip(before_data, after_data)) if a != b]
                changed = [i for i in px_changed if i in data_changed]
                if changed and page.evaluate(_JS_KERNEL_STATE, path).get("status") == "idle":
                    break
            page.wait_for_timeout(500)
        info["changed_plots"] = changed
        info["pixels_changed_plots"] = px_changed
        info["data_changed_plots"] = data_changed
        info["changed"] = bool(changed)
        if changed and screenshot_dir is not None:
            d = pathlib.Path(screenshot_dir)
            for tag, px in (("before", before_px), ("after", after_px)):
                shot = d / f"{stem}-slider-{tag}.png"
                shot.write_bytes(px[changed[0]])
                rep.screenshots.append(str(shot))
        seen = set(rep.problems)
        for e in dict.fromkeys(page.evaluate("() => window.__wbErrors || []")):
            msg = f"kernel error: {e[:300]}"
            if f"kernel error message: {e[:300]}" not in seen:
                rep.problems.append(msg + " (after moving the slider)")
        for e in rep.console_errors:
            msg = f"uncaught JavaScript error in the page: {e[len('pageerror: '):][:300]}"
            if e.startswith("pageerror") and msg not in seen and not _known_harmless(e):
                rep.problems.append(msg + " (after moving the slider)")
        if not changed:
            rep.problems.append(
                f"moving the first slider ('{info['label']}' {info['before']} -> {info['after']}) "
                f"changed no plot (pixels changed in plots {px_changed}, plotly data/layout in {data_changed})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.browser.lab", description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="+", help="notebook files (.ipynb)")
    ap.add_argument("--screenshot", metavar="OUT.png",
                    help="write the whole notebook to OUT.png and one image per screen to OUT-01.png, ... "
                         "(with several notebooks: OUT-<notebook>.png)")
    ap.add_argument("--screenshot-dir", metavar="DIR", help="write per-screen images to DIR instead")
    ap.add_argument("--full", action="store_true", help="run with the full training defaults (no WORKBENCH_FAST=1)")
    ap.add_argument("--no-slider", action="store_true", help="do not move the first slider")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds allowed for run-all per notebook")
    ap.add_argument("--width", type=int, default=VIEWPORT["width"],
                    help=f"browser window width in px (default {VIEWPORT['width']}; e.g. 1920 to look at a wide screen)")
    ap.add_argument("--root", help="folder JupyterLab serves (default: the repo root if the notebooks are in it, "
                                   "else their common parent)")
    args = ap.parse_args(argv)
    nbs = [pathlib.Path(n).resolve() for n in args.notebooks]
    VIEWPORT["width"] = args.width
    for n in nbs:
        if not n.is_file() or n.suffix != ".ipynb":
            ap.error(f"{n} is not an .ipynb file")
    root = pathlib.Path(args.root).resolve() if args.root else serving_root(nbs)
    try:
        check_browser_available()
    except BrowserUnavailable as e:
        print(f"browser unavailable: {e}", file=sys.stderr)
        return 2
    log = lambda m: print(f"[{time.strftime('%H:%M:%S')}] {m}", file=sys.stderr, flush=True)  # noqa: E731
    failed = 0
    t0 = time.monotonic()
    with LabServer(root, fast=not args.full) as server:
        log(f"JupyterLab up at {server.url} serving {root}")
        with LabBrowser(server, timeout=args.timeout) as br:
            for n in nbs:
                full = shots = name = None
                if args.screenshot:
                    full = pathlib.Path(args.screenshot)
                    if full.suffix != ".png":
                        full = full.with_name(full.name + ".png")
                    if len(nbs) > 1:
                        full = full.with_name(f"{full.stem}-{n.stem}.png")
                    shots, name = full.parent, full.stem
                if args.screenshot_dir:
                    shots, name = pathlib.Path(args.screenshot_dir), None
                rep = br.check_notebook(n, screenshot_dir=shots, full_screenshot=full, shot_name=name,
                                        move_slider=not args.no_slider, log=log)
                print(rep.summary())
                for s in rep.screenshots:
                    print(f"  screenshot: {s}")
                if rep.console_errors and rep.ok:
                    print(f"  ({len(rep.console_errors)} browser console errors; first: {rep.console_errors[0]})")
                failed += not rep.ok
    print(f"{len(nbs) - failed}/{len(nbs)} notebooks OK in {time.monotonic() - t0:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
