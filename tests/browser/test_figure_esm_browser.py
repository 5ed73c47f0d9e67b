"""``widgets._figure``'s shared plotly module, in headless Chromium, with a slow stand-in for plotly.

anywidget gives a widget's ``initialize`` 2 s; past that the model is marked failed and every later
message from Python is dropped (the figure draws, but a slider never moves it: seen in the Voilà
app on a loaded machine, reproduced with 4x CPU throttling). The wrapper must return from
``initialize`` at once, and hand the messages that came while plotly's bundle loaded to plotly's
model once it exists. The stand-in module takes 300 ms to load and records what its model sees.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

_SLOW_PLOTLY = """
await new Promise((r) => setTimeout(r, 300));
export default () => ({
  initialize({ model }) {
    globalThis.__seen = [];
    model.on("change:_py2js_restyle", () => {
      const v = model.get("_py2js_restyle");
      if (v !== null) globalThis.__seen.push(v);
    });
  },
  render({ el }) { el.textContent = "drawn"; },
});
"""

_JS = """
async ([shared, slow]) => {
  const listeners = {};
  const attrs = { _wb_esm: slow, _py2js_restyle: null };
  const model = {
    get: (k) => attrs[k],
    on: (name, cb) => { (listeners[name] = listeners[name] || []).push(cb); },
    set(k, v) { attrs[k] = v; for (const cb of listeners["change:" + k] || []) cb(); },
  };
  const url = URL.createObjectURL(new Blob([shared], { type: "text/javascript" }));
  const widget = (await import(url)).default();
  const returned = widget.initialize({ model });
  const early = globalThis.__seen === undefined;  // plotly's model not made yet
  model.set("_py2js_restyle", { step: 1 });  // arrives while the bundle loads
  model.set("_py2js_restyle", null);
  const el = document.createElement("div");
  await widget.render({ model, el });
  model.set("_py2js_restyle", { step: 2 });
  model.set("_py2js_restyle", null);
  return { returned: returned === undefined ? "undefined" : String(returned), early,
           seen: globalThis.__seen, text: el.textContent };
}
"""


def test_initialize_returns_at_once_and_early_messages_reach_plotly(chromium):
    from workbench.widgets._figure import _SHARED_ESM

    page = chromium.new_page()
    try:
        page.set_content("<html><body></body></html>")
        out = page.evaluate(_JS, [_SHARED_ESM, _SLOW_PLOTLY])
    finally:
        page.close()
    assert out["returned"] == "undefined"  # no promise: anywidget's 2 s limit cannot trip
    assert out["early"] is True
    assert out["seen"] == [{"step": 1}, {"step": 2}]
    assert out["text"] == "drawn"
