"""Prototype-part networks: where each prototype sits among real patches, and why an image got
its logit ("this looks like that, because ...").

For the networks of ``wb.models`` built on the prototype-part frame (``ProtoPNet``,
``STProtoPNet``, ``DeepCBC``; see ``models/_prototype_parts.py`` for what they offer):

* ``project_prototypes(model, data)``: ProtoPNet's projection ("push") search, as a pure
  analysis. For every prototype j of class c, among the latent patches of the images of
  ``data`` **labelled c** (class-specific, as the official ``push.py``), the one with the
  smallest distance (the branch's own distance: squared L2, or −projection for ST-ProtoPNet).
  The result holds that patch's latent vector, the image index, the map cell and its receptive
  box in the input. Nothing is changed here: ``model.push_(projection)`` copies the vectors
  into the prototypes (``wb.recipes.train_protopnet`` does both). The vectors are computed on
  each chosen image alone (a batch of one), so "the latent patch of image n" has one meaning.
  The official code gives a class without images a zero prototype; here that is an error.
* ``explain_predictions(model, data, indices, projection=...)``: for some test images, the
  prototype activations (similarities), the map cell each prototype matched (its nearest
  patch, with its receptive box), and the per-prototype contributions to every class score,
  which sum to the model's output exactly (``model.contributions``); with a projection, the
  training image and box each prototype was projected onto.

The model is run in eval mode and every submodule's mode is restored (``_modes.eval_mode``);
weights are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .._checks import check_int
from .._device import model_device
from .._modes import eval_mode

__all__ = ["PatchProjection", "project_prototypes", "PrototypeExplanations", "explain_predictions"]

_NEEDS = ("branches", "latents", "trunk_maps", "cell_boxes", "contributions", "prototype_class", "features")


def _check_model(model) -> None:
    missing = [a for a in _NEEDS if not hasattr(model, a)]
    if missing:
        raise TypeError(
            f"{type(model).__name__} is not a prototype-part network (missing {', '.join(missing)}); "
            "pass a wb.models.ProtoPNet, STProtoPNet or DeepCBC"
        )


def _check_data(data, what: str):
    if not hasattr(data, "x") or not hasattr(data, "loader"):
        raise TypeError(f"{what} must be a wb.data.Dataset, got {type(data).__name__}")
    if data.y is None:
        raise ValueError(f"{what} needs labels: the projection is class-specific")


@dataclass(frozen=True, eq=False)
class PatchProjection:
    """The nearest real training patch of every prototype (P = all branches' prototypes).

    ``vectors`` (P, D): the latent patches (what ``model.push_`` copies in); ``image_index``
    (P,): row of the push data; ``cell`` (P, 2): (row, col) in the latent map; ``box`` (P, 4):
    the cell's receptive box (row0, row1, col0, col1) in the input; ``distance`` (P,): the
    prototype's distance to that patch *before* the push; ``prototype_class`` (P,).
    ``images`` (P, C, H, W): the push images, for display.
    """

    vectors: torch.Tensor = field(repr=False)
    image_index: torch.Tensor
    cell: torch.Tensor = field(repr=False)
    box: torch.Tensor = field(repr=False)
    distance: torch.Tensor = field(repr=False)
    prototype_class: torch.Tensor = field(repr=False)
    images: torch.Tensor = field(repr=False)

    @property
    def n_unique(self) -> int:
        """How many distinct (image, cell) patches the prototypes landed on (duplicates count once)."""
        keys = torch.stack([self.image_index, self.cell[:, 0], self.cell[:, 1]], 1)
        return int(torch.unique(keys, dim=0).shape[0])

    def __repr__(self) -> str:
        p = self.vectors.shape[0]
        return (f"PatchProjection({p} prototypes onto {self.n_unique} distinct training patches; "
                f"distance before push: mean {float(self.distance.mean()):.4f}, max {float(self.distance.max()):.4f})")


@torch.no_grad()
def project_prototypes(model, data, *, batch_size: int = 256) -> PatchProjection:
    """The class-specific nearest training patch of every prototype (module docstring)."""
    _check_model(model)
    _check_data(data, "data")
    check_int(batch_size, "batch_size", min=1)
    device = model_device(model)
    pc = model.prototype_class.to(device)
    present = set(torch.unique(data.y).tolist())
    missing = sorted({int(c) for c in pc.tolist()} - present)
    if missing:
        raise ValueError(
            f"classes {missing} have no image in the push data, so their prototypes have no patch to "
            "land on; pass a push set holding every class (the training set)"
        )
    p_total = pc.numel()
    best = torch.full((p_total,), float("inf"), device=device, dtype=torch.float64)
    best_n = torch.zeros(p_total, dtype=torch.long, device=device)
    best_cell = torch.zeros(p_total, dtype=torch.long, device=device)
    with eval_mode(model):
        offset = 0
        for x, y in data.loader(batch_size, shuffle=False, device=device):
            d = model.distance_maps(x).flatten(2).double()  # (B, P, h·w)
            d = d.masked_fill(y[:, None, None] != pc[None, :, None], float("inf"))
            dmin, cell = d.min(dim=2)  # (B, P)
            bmin, bn = dmin.min(dim=0)  # (P,)
            better = bmin < best
            best = torch.where(better, bmin, best)
            best_n = torch.where(better, bn + offset, best_n)
            best_cell = torch.where(better, cell[bn, torch.arange(p_total, device=device)], best_cell)
            offset += x.shape[0]
        vectors = _patch_vectors(model, data, best_n, best_cell)
    w = model.map_size[1]
    cells = torch.stack([best_cell // w, best_cell % w], 1)
    boxes = model.cell_boxes[cells[:, 0], cells[:, 1]]
    return PatchProjection(
        vectors=vectors.cpu(), image_index=best_n.cpu(), cell=cells.cpu(), box=boxes.cpu(),
        distance=best.float().cpu(), prototype_class=pc.cpu(), images=data.x[best_n.to(data.device)].cpu(),
    )


def _patch_vectors(model, data, image_index: torch.Tensor, flat_cell: torch.Tensor) -> torch.Tensor:
    """(P, D): prototype j's chosen latent patch, computed on its image alone."""
    w = model.map_size[1]
    slices = model.branch_slices()
    out = []
    for j in range(image_index.numel()):
        b = next(i for i, sl in enumerate(slices) if sl.start <= j < sl.stop)
        x = data.x[int(image_index[j])][None].to(model_device(model))
        z = model.latents(x)[b]  # (1, D, h, w)
        c = int(flat_cell[j])
        out.append(z[0, :, c // w, c % w])
    return torch.stack(out)


@dataclass(frozen=True, eq=False)
class PrototypeExplanations:
    """Why M images got their scores, prototype by prototype.

    ``images`` (M, C, H, W), ``indices`` (M,) rows of the data, ``labels`` (M,) (−1 if none),
    ``outputs`` (M, C) the model's outputs (logits, or scores for DeepCBC), ``pred`` (M,);
    ``activations`` (M, P) prototype similarities; ``contributions`` (M, C, P), summing over P to
    ``outputs``; ``weights`` (C, P) the last layer when the head is linear (contribution =
    activation × weight), else None; ``cells`` (M, P, 2) and ``boxes`` (M, P, 4): the nearest
    patch of each prototype in each image and its receptive box; ``prototype_class`` (P,);
    ``projection``: the ``PatchProjection`` the prototypes were pushed onto (or None).
    """

    images: torch.Tensor = field(repr=False)
    indices: torch.Tensor
    labels: torch.Tensor = field(repr=False)
    outputs: torch.Tensor = field(repr=False)
    pred: torch.Tensor = field(repr=False)
    activations: torch.Tensor = field(repr=False)
    contributions: torch.Tensor = field(repr=False)
    weights: torch.Tensor | None = field(repr=False)
    cells: torch.Tensor = field(repr=False)
    boxes: torch.Tensor = field(repr=False)
    prototype_class: torch.Tensor = field(repr=False)
    projection: PatchProjection | None = field(repr=False, default=None)
    output_name: str = "logit"

    @property
    def n_images(self) -> int:
        return int(self.indices.numel())

    def top(self, i: int, k: int = 5, *, cls: int | None = None, by: str = "activation") -> torch.Tensor:
        """The ``k`` prototypes with the largest activation (or contribution to ``cls``, default
        the predicted class) for image ``i``, largest first."""
        c = int(self.pred[i]) if cls is None else int(cls)
        if by == "activation":
            score = self.activations[i]
        elif by == "contribution":
            score = self.contributions[i, c]
        else:
            raise ValueError(f"unknown by={by!r}; valid: 'activation', 'contribution'")
        return torch.argsort(score, descending=True, stable=True)[: min(k, score.numel())]

    def breakdown(self, i: int, k: int = 5, *, cls: int | None = None, by: str = "activation") -> dict:
        """For image ``i`` and class ``cls``: the top-k prototype ids, their activations, weights
        and contributions, the sum of all the other prototypes' contributions (``rest``) and
        the total, which equals ``outputs[i, cls]`` up to float rounding."""
        c = int(self.pred[i]) if cls is None else int(cls)
        ids = self.top(i, k, cls=c, by=by)
        contrib = self.contributions[i, c]
        rest = contrib.sum() - contrib[ids].sum()
        return dict(cls=c, ids=ids, activation=self.activations[i, ids],
                    weight=None if self.weights is None else self.weights[c, ids],
                    contribution=contrib[ids], rest=float(rest), total=float(contrib.sum()),
                    output=float(self.outputs[i, c]))

    def __repr__(self) -> str:
        acc = ""
        if bool((self.labels >= 0).any()):
            keep = self.labels >= 0
            acc = f", {int((self.pred[keep] == self.labels[keep]).sum())}/{int(keep.sum())} right"
        return (f"PrototypeExplanations({self.n_images} images, {self.activations.shape[1]} prototypes"
                f"{acc}; contributions sum to the {self.output_name}s)")


@torch.no_grad()
def explain_predictions(model, data, indices=None, *, projection: PatchProjection | None = None,
                        batch_size: int = 256) -> PrototypeExplanations:
    """Per-prototype evidence for the images ``data[indices]`` (all when None); module docstring."""
    _check_model(model)
    if not hasattr(data, "x"):
        raise TypeError(f"data must be a wb.data.Dataset, got {type(data).__name__}")
    n = len(data)
    if indices is None:
        idx = torch.arange(n)
    else:
        idx = torch.as_tensor(indices).long().reshape(-1).cpu()
        if idx.numel() == 0 or bool(((idx < 0) | (idx >= n)).any()):
            raise ValueError(f"indices must be rows of the data (0..{n - 1}), got {idx.tolist()[:8]}")
    if projection is not None and projection.vectors.shape[0] != model.n_prototypes:
        raise ValueError(f"the projection has {projection.vectors.shape[0]} prototypes but the model "
                         f"{model.n_prototypes}; pass the projection of this model")
    device = model_device(model)
    x_all = data.x[idx.to(data.device)]
    parts = {k: [] for k in ("out", "act", "con", "cell")}
    with eval_mode(model):
        for i in range(0, idx.numel(), batch_size):
            x = x_all[i:i + batch_size].to(device)
            dmaps = model.distance_maps(x).flatten(2)  # (B, P, h·w)
            parts["cell"].append(dmaps.argmin(dim=2))
            parts["act"].append(model.features(x))
            con = model.contributions(x)
            parts["con"].append(con)
            parts["out"].append(model(x))
    out, act, con, cell = (torch.cat(parts[k]).cpu() for k in ("out", "act", "con", "cell"))
    w = model.map_size[1]
    cells = torch.stack([cell // w, cell % w], dim=2)  # (M, P, 2)
    boxes = model.cell_boxes.cpu()[cells[..., 0], cells[..., 1]]
    weights = model.class_weights().detach().cpu() if hasattr(model, "class_weights") else None
    y = data.y[idx.to(data.device)].cpu() if data.y is not None else torch.full((idx.numel(),), -1)
    return PrototypeExplanations(
        images=x_all.cpu(), indices=idx, labels=y, outputs=out, pred=out.argmax(1), activations=act,
        contributions=con, weights=weights, cells=cells, boxes=boxes,
        prototype_class=model.prototype_class.cpu(), projection=projection,
        output_name="score" if getattr(model, "head_kind", None) else "logit",
    )
