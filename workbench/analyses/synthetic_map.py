"""Where a distilled data set's synthetic images sit among the real images, over distillation.

``synthetic_map(model, real, frames)`` embeds the real images with ``model`` (its features; a
trained expert, say), fits a 2-D map of them (PCA by default), and places the synthetic images of
every recorded distillation frame in that **same** map (the projection's ``transform``), so their
movement from their starting points (real images, or noise) towards — or away from — the real
classes can be followed. The images themselves travel with the result for the image grid of
``wb.widgets.SyntheticSetView``.

``frames`` is anything with ``frames`` (F, M, C, H, W), ``frame_steps`` (F,) and ``labels`` (M,)
(a ``SyntheticSet`` of ``wb.recipes``), or an (F, M, C, H, W) tensor with ``labels=`` and
``steps=``. The model is not changed (``embed`` puts it back in its mode).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .embedding import embed, project

__all__ = ["SyntheticMap", "synthetic_map"]


@dataclass(frozen=True, eq=False)
class SyntheticMap:
    """Real and synthetic images in one 2-D map of a model's features.

    ``real_coords`` (N, 2) and ``real_labels`` (N,); ``coords`` (F, M, 2) the synthetic images
    at each frame, ``images`` (F, M, C, H, W), ``labels`` (M,) their classes, ``steps`` (F,) the
    distillation iteration of each frame; ``method`` (e.g. "DM"), ``ipc`` images per class,
    ``projection`` the map's method, ``drift`` (F,) the mean distance of the synthetic points from
    their own class's real centroid in the map (how far they sit from their class).
    """

    real_coords: torch.Tensor
    real_labels: torch.Tensor
    coords: torch.Tensor
    images: torch.Tensor = field(repr=False)
    labels: torch.Tensor = field(repr=False)
    steps: torch.Tensor = field(repr=False)
    method: str = ""
    ipc: int = 0
    projection: str = "pca"
    drift: torch.Tensor = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.steps.shape[0])

    def __repr__(self) -> str:
        return (f"SyntheticMap({self.method}, {self.labels.shape[0]} synthetic images × {len(self)} frames "
                f"(iterations {int(self.steps[0])}…{int(self.steps[-1])}) among {self.real_coords.shape[0]} real, "
                f"{self.projection}; distance to own class centroid {float(self.drift[0]):.3f} → "
                f"{float(self.drift[-1]):.3f})")


def synthetic_map(model, real, frames, *, labels=None, steps=None, method: str | None = None,
                  projection: str = "pca", seed: int = 0) -> SyntheticMap:
    """Embed ``real`` (a labelled image Dataset) and every frame of ``frames`` with ``model``'s
    features and map them into one 2-D ``projection`` fitted on the real images."""
    if getattr(real, "y", None) is None:
        raise ValueError("real must be a labelled Dataset (the map colours real images by class)")
    if hasattr(frames, "frames"):
        src = frames
        if src.frames is None:
            raise ValueError(f"{type(src).__name__} recorded no frames; distil with record_every=...")
        frames, steps = src.frames, src.frame_steps if steps is None else steps
        labels = src.labels if labels is None else labels
        method = method or getattr(src, "method", "")
    frames = torch.as_tensor(frames).detach().cpu().float()
    if frames.ndim == 4:
        frames = frames[None]
    if frames.ndim != 5:
        raise ValueError(f"frames must be (F, M, C, H, W), got shape {tuple(frames.shape)}")
    f, m = frames.shape[:2]
    labels = torch.as_tensor(labels).long().cpu() if labels is not None else None
    if labels is None or labels.shape != (m,):
        raise ValueError(f"labels must give the class of each of the {m} synthetic images")
    steps = torch.arange(f) if steps is None else torch.as_tensor(steps).long()
    z_real = embed(model, real)
    proj = project(z_real, projection, seed=seed)
    coords = torch.stack([proj.transform(embed(model, frames[i])) for i in range(f)])  # (F, M, 2)
    y = real.y.cpu()
    cents = torch.stack([proj.coords[y == c].mean(0) for c in range(int(y.max()) + 1)])
    drift = (coords - cents[labels][None]).norm(dim=-1).mean(1)
    ipc = int(torch.bincount(labels).max())
    return SyntheticMap(proj.coords.float(), y, coords.float(), frames, labels, steps, method or "", ipc, projection,
                        drift.float())
