"""A semi-supervised GMM whose components split and merge: the class count of GCD, estimated.

Zhao, Wen & Han, "Learning Semi-supervised Gaussian Mixture Models for Generalized Category
Discovery" (GPC, ICCV 2023); released code ``methods/contrastive_training/gmm_sm.py`` and
``project_utils/split_and_merge_ops.py`` (DTennant/GPC at e9716f4; the split/merge machinery is
DeepDPM's). On fixed features z (N, D) with labels y (−1 = unlabelled):

* **SS-k-means** (the hard-assignment EM of the mixture; GCD's semi-supervised k-means): one
  component per labelled class (*anchored*: its labelled points are always assigned to it, and
  every round it restarts at their mean) plus free components (carried over from the previous
  round, or k-means++ on the unlabelled points at the start); unlabelled points go to the
  nearest centroid, centroids are the means of their points, until the assignment stops
  changing;
* **NIW marginal likelihood** of a component's points X (n x D) around a centre μ, with the
  prior m0 = data mean, Ψ = 0.005·I, κ = 1e-4, ν = D + 1 (GPC's ``Priors``):
  κ* = κ + n, ν* = ν + n, Ψ* = Ψ + Σ (x − μ)(x − μ)ᵀ + κn/(κ + n)·(μ − m0)(μ − m0)ᵀ,
  log ML = −(nD/2) log π + log Γ_D(ν*/2) − log Γ_D(ν/2) + (ν/2) log|Ψ| − (ν*/2) log|Ψ*|
  + (D/2)(log κ − log κ*);
* **split**: a free component (anchored ones never split or merge) is cut by 2-means into X1, X2;
  log H_s = log α + lnΓ(n1) + log ML(X1) + lnΓ(n2) + log ML(X2) − lnΓ(n) − log ML(X), α = 1;
  split when log H_s > 0, unless n ≤ 5 or a part has ≤ 5 points;
* **merge**: each free component that did not split is paired with its nearest centroid among
  the other free components that did not split and (``merge_into_anchored``, default) the
  anchored ones; log H_m = −(the split ratio of the union into the pair); merge when
  log H_m > 0, greedily by decreasing log H_m, each component at most once; the merged centroid
  is the mean of the union, and an anchored component absorbing a free one keeps its class;
* after a pass, points are re-assigned to the nearest centroid (labelled points to their
  anchored component, through an explicit class -> component map).

``fit_ss_gmm`` alternates SS-k-means and split/merge passes, carrying K over, and **stops when a
pass changes nothing for** ``patience`` **consecutive rounds** (K has settled) or after
``max_rounds``; the estimated class count is K at the stop. Every state is kept (``frames``)
with persistent component ids and the split/merge events, for the animated view.

Differences from the release, where the notes found them: the release restarts SS-k-means from
the ground-truth K every epoch and never carries K over (so K cannot evolve as the paper's EM
story implies); here K is carried over. The release splits or merges any eligible component with
probability 0.1 regardless of H (``split_prob``); that coin is off by default (``coin=0``) so the
rule is deterministic and a stopping rule exists (with the coin, K wanders around the true
count: take the mode of ``k_history``). In the release an anchored component never merges; a
free component that captured part of an old class (seen here on the 8-Gaussian ring started at
K = 12: 9 components, one holding 30 points of an old class) could then never go away, so by
default anchored components may absorb free ones (``merge_into_anchored=False`` is the
release's rule; labelled points are never moved either way). The release takes the merged centroid as the unweighted
mean of the two; here the size-weighted mean. μ in log ML is the sample mean of the points.
Components with labelled points must number at least the labelled classes; K must start above
them, or nothing can split (a pitfall the notes found).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .._checks import check_int, check_number, check_seed

__all__ = ["NIWPrior", "niw_log_marginal", "log_split_ratio", "ss_kmeans", "GMMFrame", "SSGMMFit", "fit_ss_gmm"]


@dataclass(frozen=True)
class NIWPrior:
    """Normal-inverse-Wishart prior: mean ``m0`` (D,), scale ``psi`` (D, D), ``kappa``, ``nu``."""

    m0: torch.Tensor
    psi: torch.Tensor
    kappa: float = 1e-4
    nu: float = 3.0

    @classmethod
    def from_data(cls, z: torch.Tensor, *, psi_scale: float = 0.005, kappa: float = 1e-4, nu: float | None = None):
        """GPC's defaults: m0 = data mean, Ψ = 0.005·I, κ = 1e-4, ν = D + 1."""
        z = z.double()
        d = z.shape[1]
        return cls(z.mean(0), psi_scale * torch.eye(d, dtype=torch.float64), float(kappa),
                   float(d + 1 if nu is None else nu))


def niw_log_marginal(x: torch.Tensor, prior: NIWPrior, mu: torch.Tensor | None = None) -> float:
    """log ML of the points ``x`` (n, D) around ``mu`` (default their mean) under ``prior``."""
    x = x.double()
    n, d = x.shape
    mu = x.mean(0) if mu is None else mu.double()
    diff = x - mu
    dm = (mu - prior.m0)[:, None]
    k_star, nu_star = prior.kappa + n, prior.nu + n
    psi_star = prior.psi + diff.T @ diff + (prior.kappa * n / k_star) * (dm @ dm.T)
    out = (-(n * d / 2) * np.log(np.pi)
           + torch.mvlgamma(torch.tensor(nu_star / 2, dtype=torch.float64), d)
           - torch.mvlgamma(torch.tensor(prior.nu / 2, dtype=torch.float64), d)
           + (prior.nu / 2) * torch.linalg.slogdet(prior.psi)[1]
           - (nu_star / 2) * torch.linalg.slogdet(psi_star)[1]
           + (d / 2) * (np.log(prior.kappa) - np.log(k_star)))
    return float(out)


def log_split_ratio(x1: torch.Tensor, x2: torch.Tensor, prior: NIWPrior, alpha: float = 1.0) -> float:
    """log H_s of splitting the union of ``x1`` and ``x2`` into the two (> 0: split); −log H_s
    is the merge ratio log H_m."""
    from math import lgamma, log

    n1, n2 = x1.shape[0], x2.shape[0]
    x = torch.cat([x1, x2])
    return (log(alpha) + lgamma(n1) + niw_log_marginal(x1, prior) + lgamma(n2) + niw_log_marginal(x2, prior)
            - lgamma(n1 + n2) - niw_log_marginal(x, prior))


# --------------------------------------------------------------------------- SS-k-means
def _kmeanspp(z: torch.Tensor, k: int, g: torch.Generator, taken: torch.Tensor | None = None) -> torch.Tensor:
    """k-means++ seeds among the rows of ``z``, continuing from centroids ``taken``."""
    cents = [] if taken is None else [c for c in taken]
    if not cents:
        cents.append(z[torch.randint(len(z), (1,), generator=g)].squeeze(0))
        k -= 1
    for _ in range(k):
        d2 = torch.cdist(z, torch.stack(cents)).min(1).values ** 2
        prob = d2 / d2.sum() if float(d2.sum()) > 0 else torch.full_like(d2, 1 / len(d2))
        cents.append(z[torch.multinomial(prob, 1, generator=g)].squeeze(0))
    out = torch.stack(cents)
    return out if taken is None else out[len(taken):]


ASSIGNMENTS = ("spherical", "kmeans")


def ss_kmeans(z: torch.Tensor, y: torch.Tensor, anchored: list[int], centroids: torch.Tensor,
              *, iters: int = 100, assignment: str = "kmeans") -> tuple[torch.Tensor, torch.Tensor]:
    """Semi-supervised hard EM from ``centroids`` (K, D); component i < len(anchored) owns the
    labelled points of class ``anchored[i]``. Returns (assignment (N,), centroids (K, D)).

    ``assignment="kmeans"``: nearest centroid (GCD's SS-k-means, GPC's release).
    ``"spherical"``: the most likely component of a Gaussian mixture with a spherical variance
    σ_k² and a weight π_k per component (classification EM): argmax_k log π_k − (D/2) log σ_k²
    − ‖x − μ_k‖² / (2σ_k²), σ_k² floored at a tenth of the pooled within-component variance."""
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"unknown assignment {assignment!r}; valid: {', '.join(ASSIGNMENTS)}")
    z = z.double()
    n, d = z.shape
    c = centroids.double().clone()
    k = len(c)
    lab = y >= 0
    forced = torch.full_like(y, -1)
    for i, cls in enumerate(anchored):
        forced[y == cls] = i
    var = torch.ones(k, dtype=torch.float64)
    logpi = torch.zeros(k, dtype=torch.float64)
    assign = None
    for it in range(iters):
        d2 = torch.cdist(z, c) ** 2  # (N, K)
        if assignment == "kmeans" or it == 0:
            new = d2.argmin(1)
        else:
            new = (logpi - 0.5 * d * torch.log(var) - d2 / (2 * var)).argmax(1)
        new = torch.where(lab, forced, new)
        if assign is not None and torch.equal(new, assign):
            break
        assign = new
        counts = torch.bincount(assign, minlength=k).double()
        sums = torch.zeros_like(c).index_add_(0, assign, z)
        keep = counts > 0  # an empty component keeps its centroid
        c[keep] = sums[keep] / counts[keep, None]
        if assignment == "spherical":
            sq = ((z - c[assign]) ** 2).sum(1)
            ss = torch.zeros(k, dtype=torch.float64).index_add_(0, assign, sq)
            pooled = float(ss.sum()) / (n * d)
            var = torch.where(keep, ss / (counts.clamp_min(1) * d), torch.full_like(ss, pooled))
            var = var.clamp_min(0.1 * pooled + 1e-12)
            logpi = torch.log((counts + 1.0) / (n + k))
    return assign, c


# --------------------------------------------------------------------------- frames and the fit
@dataclass(frozen=True, eq=False)
class GMMFrame:
    """One state of the mixture: ``assignment`` (N,) component index, ``centroids`` (K, D),
    ``ids`` (K,) persistent component ids, ``anchor_class`` (K,) the labelled class a component
    is anchored to (−1 for free ones), ``events`` (split: ("split", parent id, (child ids),
    log H); merge: ("merge", (ids), new id, log H)), ``stage`` ("k-means" or "split/merge")
    and ``round``."""

    assignment: torch.Tensor = field(repr=False)
    centroids: torch.Tensor = field(repr=False)
    ids: torch.Tensor
    anchor_class: torch.Tensor = field(repr=False)
    events: tuple = ()
    stage: str = "k-means"
    round: int = 0

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    def __repr__(self) -> str:
        n_s = sum(e[0] == "split" for e in self.events)
        n_m = sum(e[0] == "merge" for e in self.events)
        return f"GMMFrame(round {self.round}, {self.stage}: K={self.k}, {n_s} splits, {n_m} merges)"


@dataclass(frozen=True, eq=False)
class SSGMMFit:
    """The frames of ``fit_ss_gmm`` and the estimate: ``n_components`` (K at the stop),
    ``k_history`` (K after each round's split/merge pass, starting with the initial K),
    ``stop_reason``; ``assignment`` / ``centroids`` of the last frame; ``labels`` (N,) the input
    labels (−1 = unlabelled); ``prior`` the NIW prior used."""

    frames: tuple[GMMFrame, ...] = field(repr=False)
    k_history: torch.Tensor
    n_components: int
    stop_reason: str
    labels: torch.Tensor = field(repr=False)
    prior: NIWPrior = field(repr=False)

    @property
    def assignment(self) -> torch.Tensor:
        return self.frames[-1].assignment

    @property
    def centroids(self) -> torch.Tensor:
        return self.frames[-1].centroids

    def predict(self, z: torch.Tensor) -> torch.Tensor:
        """Nearest final centroid of new points ``z`` (M, D)."""
        return torch.cdist(z.double(), self.centroids).argmin(1)

    def __repr__(self) -> str:
        ks = " -> ".join(str(int(k)) for k in self.k_history)
        return f"SSGMMFit(K = {self.n_components} ({self.stop_reason}); K by round: {ks})"


def _initial_centroids(z, y, anchored, k, g):
    lab = torch.stack([z[y == c].mean(0) for c in anchored]) if anchored else z[:0]
    free = _kmeanspp(z[y < 0], k - len(anchored), g, taken=lab if len(lab) else None) if k > len(anchored) else z[:0]
    return torch.cat([lab, free])


def _two_means(x: torch.Tensor, g: torch.Generator, iters: int = 30) -> torch.Tensor:
    c = _kmeanspp(x, 2, g)
    assign = torch.zeros(len(x), dtype=torch.long)
    for _ in range(iters):
        new = torch.cdist(x, c).argmin(1)
        if torch.equal(new, assign) and _ > 0:
            break
        assign = new
        for j in range(2):
            if bool((assign == j).any()):
                c[j] = x[assign == j].mean(0)
    return assign


def _split_merge(z, frame: GMMFrame, labelled: dict, prior, g, *, min_size, alpha, coin, into_anchored,
                 neighbours, next_id) -> tuple[GMMFrame, int]:
    """One split/merge pass over the free components of ``frame`` (module docstring)."""
    cents, ids, anchor = list(frame.centroids), frame.ids.tolist(), frame.anchor_class.tolist()
    a = frame.assignment
    events, split_done = [], set()
    new_c, new_ids, new_anchor = [], [], []
    for i in range(frame.k):
        x = z[a == i]
        if anchor[i] < 0 and x.shape[0] > min_size:
            part = _two_means(x, g)
            n1 = int((part == 0).sum())
            if min(n1, x.shape[0] - n1) > min_size:
                h = log_split_ratio(x[part == 0], x[part == 1], prior, alpha)
                if h > 0 or float(torch.rand((), generator=g)) < coin:
                    kids = (next_id, next_id + 1)
                    next_id += 2
                    events.append(("split", ids[i], kids, h))
                    split_done.add(i)
                    new_c += [x[part == 0].mean(0), x[part == 1].mean(0)]
                    new_ids += list(kids)
                    new_anchor += [-1, -1]
                    continue
        new_c.append(cents[i])
        new_ids.append(ids[i])
        new_anchor.append(anchor[i])
    # merges: each free component that did not split with its nearest eligible centroid
    free = [i for i in range(frame.k) if anchor[i] < 0 and i not in split_done and bool((a == i).any())]
    targets = free + ([i for i in range(frame.k) if anchor[i] >= 0] if into_anchored else [])
    cand = []
    for i in free:
        others = [j for j in targets if j != i]
        if not others:
            continue
        dist = torch.stack([torch.dist(frame.centroids[i], frame.centroids[j]) for j in others])
        near = [others[int(t)] for t in dist.argsort()[:neighbours]]
        h, j = max((-log_split_ratio(z[a == i], z[a == j], prior, alpha), j) for j in near)
        if h > 0 or float(torch.rand((), generator=g)) < coin:
            cand.append((h, min(i, j), max(i, j)))
    used: set[int] = set()
    for h, i, j in sorted(set(cand), reverse=True):
        if i in used or j in used:
            continue
        used |= {i, j}
        keep = next((k for k in (i, j) if anchor[k] >= 0), None)  # an anchored component absorbs
        new_id = ids[keep] if keep is not None else next_id
        events.append(("merge", (ids[i], ids[j]), new_id, h))
        x = torch.cat([z[a == i], z[a == j]])
        for old in (i, j):
            pos = new_ids.index(ids[old])
            del new_c[pos], new_ids[pos], new_anchor[pos]
        new_c.append(x.mean(0))
        new_ids.append(new_id)
        new_anchor.append(anchor[keep] if keep is not None else -1)
        if keep is None:
            next_id += 1
    c = torch.stack(new_c)
    anchor_t = torch.tensor(new_anchor)
    assign = torch.cdist(z, c).argmin(1)
    for k_idx, cls in enumerate(new_anchor):  # labelled points stay with their class's component
        if cls >= 0:
            assign[labelled[cls]] = k_idx
    out = GMMFrame(assign, c, torch.tensor(new_ids), anchor_t, tuple(events), "split/merge", frame.round)
    return out, next_id


def fit_ss_gmm(
    z,
    y,
    *,
    k_init: int,
    max_rounds: int = 20,
    patience: int = 1,
    min_size: int = 5,
    alpha: float = 1.0,
    coin: float = 0.0,
    merge_into_anchored: bool = True,
    merge_neighbours: int = 1,
    assignment: str = "kmeans",
    prior: NIWPrior | None = None,
    seed: int = 0,
    start: SSGMMFit | None = None,
    round_offset: int = 0,
) -> SSGMMFit:
    """Alternate SS-k-means and split/merge passes on fixed features (module docstring).

    ``z`` (N, D) features (L2-normalise or PCA them first as you like), ``y`` (N,) labels with
    −1 for unlabelled samples; ``k_init`` the starting K (> the number of labelled classes);
    ``patience``: stop after that many consecutive passes without a split or merge; ``coin``:
    GPC's probability of splitting / merging regardless of H (0.1 in the release; 0 here);
    ``merge_into_anchored``: let an anchored component absorb a free one (False = the release);
    ``merge_neighbours``: how many nearest centroids a free component may merge with (the best
    log H_m wins; 1 = the release's nearest one); ``assignment``: the E step, ``"kmeans"`` (the
    release) or ``"spherical"`` (see ``ss_kmeans``);
    ``start``: continue from a previous fit of the same samples: its last components are kept
    (ids and anchors) and their centroids recomputed as the means of their members in ``z``, so
    the features may have changed (the EM loop of ``wb.recipes.discover_categories`` carries K
    over between representation rounds this way). ``round_offset`` numbers the frames' rounds
    from there.
    """
    z = torch.as_tensor(z).detach().cpu().double()
    y = torch.as_tensor(y).detach().cpu().long()
    if z.ndim != 2 or y.shape != (z.shape[0],):
        raise ValueError(f"z must be (N, D) and y (N,), got {tuple(z.shape)} and {tuple(y.shape)}")
    anchored = sorted(int(c) for c in torch.unique(y[y >= 0]))
    check_int(k_init, "k_init", min=len(anchored) + 1,
              hint=f"K must start above the {len(anchored)} labelled classes, or no component is free to split")
    check_int(max_rounds, "max_rounds", min=1)
    check_int(patience, "patience", min=1)
    check_int(min_size, "min_size", min=1)
    check_number(alpha, "alpha", min=0, min_open=True)
    check_number(coin, "coin", min=0, max=1)
    check_int(merge_neighbours, "merge_neighbours", min=1)
    check_seed(seed)
    if int((y < 0).sum()) <= k_init - len(anchored):
        raise ValueError("too few unlabelled samples for the free components; lower k_init")
    prior = NIWPrior.from_data(z) if prior is None else prior
    g = torch.Generator().manual_seed(seed)
    labelled = {c: (y == c).nonzero().flatten() for c in anchored}
    if start is not None:  # carry the components over: their centroids are recomputed on these z
        last = start.frames[-1]
        if last.assignment.shape != (z.shape[0],):
            raise ValueError("start must be a fit of the same samples (one assignment per row of z)")
        used = torch.bincount(last.assignment, minlength=last.k) > 0
        cents = torch.stack([z[last.assignment == i].mean(0) for i in range(last.k) if used[i]])
        ids, anchor = last.ids[used].clone(), last.anchor_class[used].clone()
        next_id = int(last.ids.max()) + 1
    else:
        cents = _initial_centroids(z, y, anchored, k_init, g)
        ids = torch.arange(k_init)
        anchor = torch.tensor(anchored + [-1] * (k_init - len(anchored)))
        next_id = k_init
    frames, ks, quiet, reason = [], [cents.shape[0]], 0, f"max_rounds={max_rounds} reached"
    for r in range(max_rounds):
        # anchored components first, in class order (ss_kmeans forces labelled points by index)
        order = torch.cat([(anchor == c).nonzero().flatten() for c in anchored] + [(anchor < 0).nonzero().flatten()])
        cents, ids, anchor = cents[order].clone(), ids[order], anchor[order]
        for i, c in enumerate(anchored):  # anchored components restart at their labelled mean (GCD)
            cents[i] = z[labelled[c]].mean(0)
        assign, cents = ss_kmeans(z, y, anchored, cents, assignment=assignment)
        km = GMMFrame(assign, cents, ids.clone(), anchor.clone(), (), "k-means", r + round_offset)
        frames.append(km)
        sm, next_id = _split_merge(z, km, labelled, prior, g, min_size=min_size, alpha=alpha, coin=coin,
                                   into_anchored=merge_into_anchored, neighbours=merge_neighbours,
                                   next_id=next_id)
        frames.append(sm)
        cents, ids, anchor = sm.centroids, sm.ids, sm.anchor_class
        ks.append(sm.k)
        quiet = quiet + 1 if not sm.events else 0
        if quiet >= patience:
            reason = f"no split or merge for {patience} round(s)"
            break
    k_hist = torch.tensor(ks)
    if coin > 0:  # with the coin K keeps wandering: report the mode over the rounds
        vals, counts = torch.unique(k_hist[1:], return_counts=True)
        k_est = int(vals[counts.argmax()])
    else:
        k_est = int(frames[-1].k)
    return SSGMMFit(tuple(frames), k_hist, k_est, reason, y, prior)
