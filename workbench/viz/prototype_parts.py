"""Figures of prototype-part networks: "this looks like that, because ..." (static builders;
``widgets.ProtoPNetView`` patches them).

``explanation_mosaic(expl, i)``: one row per top-activated prototype of image i, four tiles:
the test image with the patch the prototype matched outlined, that patch enlarged, the
training image the prototype was projected onto with its patch outlined, that patch enlarged.
Each row is labelled "prototype j (class c): similarity s × weight w = contribution".
``contribution_waterfall(expl, i)``: the top prototypes' contributions to the class score, the
sum of all the others, and their total, which is the logit.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from ._common import base_layout, go, patch, to_numpy
from .embedding import image_array

__all__ = ["ExplainTrace", "explanation_mosaic", "explanation_patch", "contribution_waterfall",
           "contribution_patch", "row_labels"]

PAD = 1


class ExplainTrace(IntEnum):
    """Traces of ``explanation_mosaic``: the image mosaic, the outlines of the matched patches."""

    MOSAIC = 0
    BOXES = 1


#: ``contribution_waterfall`` has one Waterfall trace
WATERFALL = 0


def _crop_tile(img: np.ndarray, box, size) -> np.ndarray:
    """The box's pixels enlarged (nearest) to fill an image-sized tile, aspect kept."""
    r0, r1, c0, c1 = (int(v) for v in box)
    crop = img[r0:r1, c0:c1]
    h, w = size
    f = max(1, min(h // max(crop.shape[0], 1), w // max(crop.shape[1], 1)))
    big = np.repeat(np.repeat(crop, f, 0), f, 1)
    tile = np.zeros((h, w))  # background (white in the grey scale); NaN cannot travel to a widget
    tile[: big.shape[0], : big.shape[1]] = big
    return tile


def _rect(box, dx: float, dy: float) -> tuple[list, list]:
    r0, r1, c0, c1 = (float(v) for v in box)
    x = [c0 - 0.5, c1 - 0.5, c1 - 0.5, c0 - 0.5, c0 - 0.5, None]
    y = [r0 - 0.5, r0 - 0.5, r1 - 0.5, r1 - 0.5, r0 - 0.5, None]
    return [v + dx if v is not None else None for v in x], [v + dy if v is not None else None for v in y]


def row_labels(expl, i: int, k: int = 5, cls: int | None = None, *, class_names=None) -> list[str]:
    """"prototype j (class c): s × w = contribution" per top prototype (s = activation)."""
    b = expl.breakdown(i, k, cls=cls)
    name = (lambda c: class_names[c]) if class_names is not None else (lambda c: c)  # noqa: E731
    out = []
    for r, j in enumerate(b["ids"].tolist()):
        c = int(expl.prototype_class[j])
        s, con = float(b["activation"][r]), float(b["contribution"][r])
        w = "" if b["weight"] is None else f" × {float(b['weight'][r]):+.2f}"
        out.append(f"p{j} ({name(c)}): {s:.2f}{w} = {con:+.2f}")
    return out


def explanation_patch(expl, i: int, k: int = 5, cls: int | None = None) -> dict:
    """What image ``i`` (class ``cls``, default predicted) writes into ``explanation_mosaic``."""
    img = image_array(to_numpy(expl.images[i]))
    h, w = img.shape[:2]
    ids = expl.top(i, k).tolist()
    proj = expl.projection
    tiles, bx, by = [], [], []
    for r, j in enumerate(ids):
        tbox = to_numpy(expl.boxes[i, j])
        train = image_array(to_numpy(proj.images[j])) if proj is not None else np.zeros((h, w))
        pbox = to_numpy(proj.box[j]) if proj is not None else None
        tiles += [img, _crop_tile(img, tbox, (h, w)), train,
                  _crop_tile(train, pbox, (h, w)) if pbox is not None else np.zeros((h, w))]
        dy = r * (h + PAD)
        for col, box in ((0, tbox), (2, pbox)):
            if box is None:
                continue
            x, y = _rect(box, col * (w + PAD), dy)
            bx += x
            by += y
    rows = len(ids)
    mosaic = np.zeros((rows * (h + PAD) - PAD, 4 * (w + PAD) - PAD))
    for t, tile in enumerate(tiles):
        r, c = divmod(t, 4)
        mosaic[r * (h + PAD): r * (h + PAD) + h, c * (w + PAD): c * (w + PAD) + w] = tile
    return {ExplainTrace.MOSAIC: dict(z=mosaic), ExplainTrace.BOXES: dict(x=bx, y=by)}


def explanation_mosaic(expl, i: int = 0, k: int = 5, cls: int | None = None, *, class_names=None,
                       title: str | None = None, row_height: int = 90):
    """The "this looks like that" mosaic of image ``i`` (module docstring)."""
    h, w = image_array(to_numpy(expl.images[0])).shape[:2]
    fig = go.Figure()
    fig.add_trace(go.Heatmap(colorscale="Greys", showscale=False, hoverinfo="skip", zmin=0, zmax=1))
    fig.add_trace(go.Scatter(mode="lines", name="matched patch", line=dict(color="#E45756", width=2),
                             hoverinfo="skip", showlegend=False))
    patch(fig, explanation_patch(expl, i, k, cls))
    k_eff = min(k, expl.activations.shape[1])
    fig.update_xaxes(showgrid=False, zeroline=False, side="top", tickvals=[(w + PAD) * c + w / 2 - 0.5 for c in range(4)],
                     ticktext=["test image", "its patch", "training image", "prototype = that patch"],
                     tickfont=dict(size=10))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showgrid=False, zeroline=False,
                     tickvals=[r * (h + PAD) + h / 2 - 0.5 for r in range(k_eff)],
                     ticktext=row_labels(expl, i, k, cls, class_names=class_names), tickfont=dict(size=10))
    fig = base_layout(fig, title, height=60 + k_eff * row_height)
    fig.update_layout(margin=dict(l=190, r=10, t=60, b=10))
    return fig


def contribution_patch(expl, i: int, k: int = 5, cls: int | None = None) -> dict:
    b = expl.breakdown(i, k, cls=cls)
    names = [f"p{j}" for j in b["ids"].tolist()]
    n_rest = expl.activations.shape[1] - len(names)
    x = names + [f"{n_rest} others", f"{expl.output_name} (class {b['cls']})"]
    y = [float(v) for v in b["contribution"]] + [b["rest"], b["total"]]
    return {WATERFALL: dict(x=x, y=y, measure=["relative"] * (len(names) + 1) + ["total"],
                            text=[f"{v:+.2f}" for v in y])}


def contribution_waterfall(expl, i: int = 0, k: int = 5, cls: int | None = None, *,
                           title: str | None = "Contributions (similarity × weight) to the score", height: int = 360):
    """Top prototypes' contributions, the others' sum and the total (= the logit)."""
    fig = go.Figure(go.Waterfall(orientation="v", textposition="outside", connector=dict(line=dict(color="#999")),
                                 increasing=dict(marker=dict(color="#54A24B")),
                                 decreasing=dict(marker=dict(color="#E45756")),
                                 totals=dict(marker=dict(color="#4C78A8"))))
    patch(fig, contribution_patch(expl, i, k, cls))
    fig.update_xaxes(type="category")
    return base_layout(fig, title, height=height)
