"""The states of a splitting and merging mixture, placed on one aligned 2-D map per round.

``gmm_film(frames, features, labels)`` takes the frames of ``fit_ss_gmm`` (fixed features) or
of ``wb.recipes.discover_categories`` (the features change every round) and computes, for each
frame, where the points and the component centroids sit on a 2-D map, and the segments that
draw each split (parent -> its two children) and merge (both parents -> the merged component).
Rounds with new features get their own PCA map, aligned to the next one by Procrustes
(``aligned_projections``), so the film does not jump; the centroids are placed with the same
projection (``transform``). The view ``wb.widgets.GCDView`` only replays this result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .embedding import aligned_projections

__all__ = ["GMMFilm", "gmm_film"]


@dataclass(frozen=True, eq=False)
class GMMFilm:
    """Per frame f: ``coords[frame_round[f]]`` (N, 2) point positions, ``assignments[f]`` (N,),
    ``centroid_coords[f]`` (K_f, 2), ``ids[f]`` (K_f,) persistent component ids, ``anchors[f]``
    (K_f,) labelled class or −1, ``segments[f]`` (M, 4) x0, y0, x1, y1 of the split/merge lines,
    ``events[f]`` readable lines; ``k`` (F,), ``names`` (F,). ``labels`` (N,) the classes to
    colour by (true classes when known), ``labelled`` (N,) bool, ``accuracy`` (F,) v2 All per
    frame or NaN."""

    coords: torch.Tensor = field(repr=False)
    frame_round: torch.Tensor = field(repr=False)
    assignments: tuple = field(repr=False)
    centroid_coords: tuple = field(repr=False)
    ids: tuple = field(repr=False)
    anchors: tuple = field(repr=False)
    segments: tuple = field(repr=False)
    events: tuple = field(repr=False)
    k: torch.Tensor
    names: tuple = field(repr=False)
    labels: torch.Tensor = field(repr=False)
    labelled: torch.Tensor = field(repr=False)
    accuracy: torch.Tensor = field(repr=False)

    @property
    def n_frames(self) -> int:
        return len(self.names)

    def points(self, f: int) -> torch.Tensor:
        return self.coords[int(self.frame_round[f])]

    def __repr__(self) -> str:
        ks = " -> ".join(str(int(k)) for k in self.k)
        return f"GMMFilm({self.n_frames} frames of {self.coords.shape[1]} points; K by frame: {ks})"


def _event_text(e) -> str:
    if e[0] == "split":
        return f"component {e[1]} split into {e[2][0]} and {e[2][1]} (log H_s = {e[3]:+.1f})"
    return f"components {e[1][0]} and {e[1][1]} merged into {e[2]} (log H_m = {e[3]:+.1f})"


def gmm_film(frames, features, labels, *, labelled=None, accuracy=None, seed: int = 0) -> GMMFilm:
    """Place every frame on aligned 2-D maps (module docstring).

    ``frames``: ``GMMFrame``s (``fit.frames`` or ``discovery.frames``); ``features``: one (N, D)
    tensor for all frames, or one per round (``discovery.features``); ``labels`` (N,): the classes
    to colour points by; ``labelled`` (N,) bool: which samples carried labels; ``accuracy``: one
    number per round (e.g. ``[a.all for a in discovery.round_accuracy]``), shown per frame.
    """
    frames = tuple(frames)
    if not frames:
        raise ValueError("no frames to film")
    feats = [features] if isinstance(features, torch.Tensor) else list(features)
    rounds = sorted({fr.round for fr in frames})
    if len(feats) == 1 and len(rounds) > 1:
        feats = feats * len(rounds)
    if len(feats) != len(rounds):
        raise ValueError(f"got {len(feats)} feature sets for {len(rounds)} rounds; pass one per round or one in all")
    n = feats[0].shape[0]
    if any(fr.assignment.shape[0] != n for fr in frames):
        raise ValueError("every frame must assign the same N points as the features hold")
    same = all(f is feats[0] for f in feats)
    aligned = aligned_projections([feats[0]] if same else feats, "pca", reference="chain", seed=seed)
    r_index = {r: (0 if same else i) for i, r in enumerate(rounds)}
    cc, segs, texts = [], [], []
    prev_pos: dict[int, np.ndarray] = {}
    for fr in frames:
        ri = r_index[fr.round]
        pos = aligned.transform(ri, fr.centroids.float()).numpy()
        here = {int(i): pos[j] for j, i in enumerate(fr.ids.tolist())}
        s = []
        for e in fr.events:
            if e[0] == "split" and e[1] in prev_pos:
                s += [(*prev_pos[e[1]], *here[c]) for c in e[2] if c in here]
            elif e[0] == "merge" and e[2] in here:
                s += [(*prev_pos[p], *here[e[2]]) for p in e[1] if p in prev_pos]
        cc.append(torch.as_tensor(pos))
        segs.append(torch.tensor(s, dtype=torch.float32).reshape(-1, 4))
        texts.append(tuple(_event_text(e) for e in fr.events))
        prev_pos = here
    acc_r = {} if accuracy is None else dict(zip(rounds, [float(a) for a in accuracy]))
    lab = torch.as_tensor(labels).long().cpu()
    return GMMFilm(
        coords=aligned.coords, frame_round=torch.tensor([r_index[fr.round] for fr in frames]),
        assignments=tuple(fr.assignment for fr in frames), centroid_coords=tuple(cc),
        ids=tuple(fr.ids for fr in frames), anchors=tuple(fr.anchor_class for fr in frames),
        segments=tuple(segs), events=tuple(texts), k=torch.tensor([fr.k for fr in frames]),
        names=tuple(f"round {fr.round}: {fr.stage}" for fr in frames), labels=lab,
        labelled=torch.zeros(n, dtype=torch.bool) if labelled is None else torch.as_tensor(labelled).bool().cpu(),
        accuracy=torch.tensor([acc_r.get(fr.round, float("nan")) for fr in frames]),
    )
