"""Sample quality and mode-interpolation hallucinations of a diffusion model's samples.

Hallucinations (Aithal, Maini, Lipton & Kolter 2024, "Understanding Hallucinations in Diffusion
Models through Mode Interpolation"): on data made of separated modes (``gaussian_grid``), a
smooth learned score interpolates between nearby modes and some samples land in the gaps.
Their metric: the variance over time of the predicted clean sample x̂0 over the final part of
the reverse process is high for such samples (their x̂0 keeps switching between modes) and low
for in-support ones.

* ``hallucination_flags``: labels each sample *in-support* (within ``in_support`` mode standard
  deviations of its nearest mode), *hallucination* (more than ``gap`` × the mode spacing from
  every mode: between modes, or outside the grid) or *between* (neither; left out of the
  removal figures). The paper's released code has no labelling; these definitions are ours.
* ``trajectory_variance``: per sample, the variance over frames (ddof = 0) of x̂0, averaged
  over coordinates, over the frames whose noise level σ_t = √(1 − ᾱ_t) is at most
  ``sigma_max``. The paper fixes a step count (the last 10 of 1000 steps); we define the window
  by noise level because a step count means a different noise range under every schedule
  (measured here: the window that separates best ends near σ ≈ spacing/8, which is the last
  ~20 steps of the standard linear schedule but the last ~5 of the paper's aggressive one).
  ``k_last=`` gives the paper's step-count window instead.
* ``hallucination_filter``: the threshold that keeps ``keep`` of the in-support samples, the
  share of hallucinations it removes, the AUROC, and the whole removed-vs-kept curve.

Sample quality against held-out data: ``energy_distance`` (Székely), ``mmd`` (Gaussian kernel,
unbiased, median-heuristic bandwidth), k-NN ``precision``/``recall`` (Kynkäänniemi et al. 2019:
a sample is precise if it falls inside some data point's k-NN ball, a data point is recalled
if it falls inside some sample's), and, for data with known modes, mode coverage. All in
``sample_quality``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import check_int, check_number, check_seed
from .diffusion import Trajectory

IN_SUPPORT, HALLUCINATION, BETWEEN = 0, 1, 2
FLAG_NAMES = ("in-support", "hallucination", "between")


def _points(x, what="samples") -> torch.Tensor:
    if isinstance(x, Trajectory):
        x = x.samples
    x = getattr(x, "x", x)  # a Dataset
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must be a tensor, a Dataset or a Trajectory, got {type(x).__name__}")
    x = x.detach().float().cpu()
    if x.ndim < 2:
        raise ValueError(f"{what} must have shape (N, ...), got {tuple(x.shape)}; for N scalars pass x[:, None]")
    if x.shape[0] == 0:
        raise ValueError(f"{what} is empty; pass at least one point")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(
            f"{what} contain NaN or inf values; a sampler that diverged (check the schedule or the "
            "denoiser) or broken data"
        )
    return x.reshape(x.shape[0], -1)


def _modes(data=None, centres=None, spacing=None, std=None):
    meta = getattr(data, "meta", None) or {}
    centres = meta.get("centres") if centres is None else centres
    if centres is None:
        raise ValueError(
            "need the modes' centres: pass data=wb.data.load('gaussian_grid', ...) (its meta holds them) "
            "or centres=(K, D) with spacing= and std="
        )
    centres = torch.as_tensor(centres, dtype=torch.float32)
    if centres.ndim != 2 or centres.shape[0] == 0 or not bool(torch.isfinite(centres).all()):
        raise ValueError(f"centres must be a finite (K, D) tensor of mode centres, got shape {tuple(centres.shape)}")
    spacing = meta.get("spacing") if spacing is None else spacing
    std = meta.get("std") if std is None else std
    if spacing is None:  # nearest-neighbour distance between centres
        if len(centres) < 2:
            raise ValueError("with a single mode there is no spacing to infer; pass spacing=")
        d = torch.cdist(centres, centres) + torch.eye(len(centres)) * 1e9
        spacing = float(d.min())
    if std is None:
        raise ValueError("need the per-mode standard deviation: pass std= (or data with meta['std'])")
    spacing = check_number(spacing, "spacing", min=0, min_open=True, hint="the distance between neighbouring modes")
    std = check_number(std, "std", min=0, min_open=True, hint="each mode's standard deviation")
    return centres, spacing, std


# --------------------------------------------------------------------------- hallucination flags
@dataclass(frozen=True, eq=False)
class HallucinationFlags:
    """``flag`` (N,) int64: 0 in-support, 1 hallucination, 2 between; ``nearest`` (N,) mode index;
    ``distance`` (N,) to the nearest mode; the thresholds used."""

    flag: torch.Tensor
    nearest: torch.Tensor
    distance: torch.Tensor
    in_support_radius: float
    gap_radius: float
    n_modes: int

    @property
    def hallucination(self) -> torch.Tensor:
        return self.flag == HALLUCINATION

    @property
    def in_support(self) -> torch.Tensor:
        return self.flag == IN_SUPPORT

    def fractions(self) -> dict[str, float]:
        n = max(1, len(self.flag))
        return {name: float((self.flag == i).sum()) / n for i, name in enumerate(FLAG_NAMES)}

    def __repr__(self) -> str:
        f = self.fractions()
        return (
            f"HallucinationFlags(n={len(self.flag)}, in-support {f['in-support']:.1%} (<{self.in_support_radius:.3g}), "
            f"hallucination {f['hallucination']:.2%} (>{self.gap_radius:.3g}), between {f['between']:.2%})"
        )


def hallucination_flags(
    samples,
    data=None,
    *,
    centres=None,
    spacing: float | None = None,
    std: float | None = None,
    in_support: float = 3.0,
    gap: float = 0.25,
) -> HallucinationFlags:
    """Label samples by their distance to the nearest mode (see the module docstring).

    ``data``: a data set whose ``meta`` holds ``centres``, ``spacing`` and ``std``
    (``gaussian_grid``, ``gaussians8``), or give them directly. ``in_support``: radius in mode
    standard deviations; ``gap``: radius in mode spacings.
    """
    in_support = check_number(in_support, "in_support", min=0, min_open=True, hint="a radius in mode standard deviations, e.g. 3")
    gap = check_number(gap, "gap", min=0, min_open=True, hint="a radius in mode spacings, e.g. 0.25")
    x = _points(samples)
    c, sp, sd = _modes(data, centres, spacing, std)
    if c.shape[1] != x.shape[1]:
        raise ValueError(f"samples have {x.shape[1]} coordinates but the mode centres have {c.shape[1]}")
    r_in, r_gap = in_support * sd, gap * sp
    if r_in >= r_gap:
        raise ValueError(
            f"the in-support radius ({in_support} std = {r_in:.3g}) must be below the gap radius "
            f"({gap} spacing = {r_gap:.3g}); lower in_support or raise gap"
        )
    d, nearest = torch.cdist(x, c).min(1)
    flag = torch.full((len(x),), BETWEEN, dtype=torch.long)
    flag[d <= r_in] = IN_SUPPORT
    flag[d > r_gap] = HALLUCINATION
    return HallucinationFlags(flag, nearest, d, r_in, r_gap, len(c))


@dataclass(frozen=True, eq=False)
class TrajectoryVariance:
    """``score`` (N,): variance over the window's frames of x̂0 (mean over coordinates);
    ``frames``: the frame indices used; ``timesteps``/``sigmas`` of those frames."""

    score: torch.Tensor
    frames: torch.Tensor
    timesteps: torch.Tensor
    sigmas: torch.Tensor
    sigma_max: float | None

    def __repr__(self) -> str:
        return (
            f"TrajectoryVariance(n={len(self.score)}, {len(self.frames)} frames, t {int(self.timesteps[0])}->"
            f"{int(self.timesteps[-1])}, sigma {float(self.sigmas[0]):.3g}->{float(self.sigmas[-1]):.3g})"
        )


def trajectory_variance(traj: Trajectory, sigma_max: float | None = None, *, k_last: int | None = None) -> TrajectoryVariance:
    """Per-sample variance of x̂0 over the frames with noise level ≤ ``sigma_max`` (or the last ``k_last`` steps).

    For the ``gaussian_grid`` data a good ``sigma_max`` is about an eighth of the mode spacing
    (``ds.meta["spacing"] / 8``). The trajectory must have been recorded densely enough that the
    window holds at least 2 frames (``record_every=1`` is safest).
    """
    if not isinstance(traj, Trajectory):
        raise TypeError(f"traj must be a Trajectory from sample_trajectory, got {type(traj).__name__}")
    if (sigma_max is None) == (k_last is None):
        raise ValueError("give exactly one of sigma_max= (noise-level window) or k_last= (last k steps)")
    model_frames = (traj.timesteps >= 0).nonzero().reshape(-1)  # frames with a real prediction
    if sigma_max is not None:
        check_number(sigma_max, "sigma_max", min=0, min_open=True, hint="a noise level, e.g. ds.meta['spacing'] / 8")
        sel = model_frames[traj.sigmas[model_frames] <= sigma_max]
    else:
        if not isinstance(k_last, int) or k_last < 2:
            raise ValueError(f"k_last must be an int >= 2, got {k_last!r}")
        sel = model_frames[traj.step_index[model_frames] >= traj.steps - k_last]
    if len(sel) < 2:
        raise ValueError(
            f"the window holds {len(sel)} recorded frame(s) (noise levels recorded: "
            f"{[round(float(s), 3) for s in traj.sigmas[model_frames][-5:]]}...); raise sigma_max/k_last "
            "or record more densely (record_every=1)"
        )
    x0 = traj.flat_x0_pred[sel].double()  # (W, N, D)
    score = x0.var(0, unbiased=False).mean(-1).float()
    return TrajectoryVariance(score, sel, traj.timesteps[sel], traj.sigmas[sel], sigma_max)


def _auroc(pos: torch.Tensor, neg: torch.Tensor) -> float:
    """P(score_pos > score_neg) + ½ P(tie), via ranks."""
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    allv = torch.cat([pos, neg]).double()
    order = allv.argsort()
    ranks = torch.empty_like(allv)
    ranks[order] = torch.arange(1, len(allv) + 1, dtype=torch.float64)
    # average ranks over ties
    uniq, inv, counts = torch.unique(allv, return_inverse=True, return_counts=True)
    if len(uniq) < len(allv):
        sums = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inv, ranks)
        ranks = (sums / counts)[inv]
    r_pos = ranks[: len(pos)].sum()
    return float((r_pos - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


@dataclass(frozen=True, eq=False)
class HallucinationFilter:
    """Removing samples whose trajectory variance exceeds ``threshold``.

    ``removed``: share of hallucinations removed; ``kept``: share of in-support samples kept
    (= ``keep`` by construction); ``auroc``: hallucination vs in-support; ``curve_kept``,
    ``curve_removed``: the same pair for every threshold (a ROC-like curve);
    ``removed_total``: share of all samples removed.
    """

    threshold: float
    keep: float
    kept: float
    removed: float
    removed_total: float
    auroc: float
    n_hallucination: int
    n_in_support: int
    curve_kept: torch.Tensor
    curve_removed: torch.Tensor
    scores: torch.Tensor
    flag: torch.Tensor

    def __repr__(self) -> str:
        return (
            f"HallucinationFilter(removes {self.removed:.1%} of {self.n_hallucination} hallucinations, keeps "
            f"{self.kept:.1%} of {self.n_in_support} in-support; AUROC {self.auroc:.3f}; threshold {self.threshold:.3g})"
        )


def hallucination_filter(scores, flags, *, keep: float = 0.96) -> HallucinationFilter:
    """Threshold ``scores`` (larger = more suspicious) at the ``keep`` quantile of the in-support samples.

    ``scores``: a ``TrajectoryVariance`` or an (N,) tensor; ``flags``: ``HallucinationFlags`` or
    an (N,) tensor of 0/1/2 labels.
    """
    s = torch.as_tensor(getattr(scores, "score", scores)).detach().cpu()
    f = torch.as_tensor(getattr(flags, "flag", flags)).detach().cpu()
    if s.ndim != 1 or f.ndim != 1 or s.shape != f.shape:
        raise ValueError(
            f"scores ({tuple(s.shape)}) and flags ({tuple(f.shape)}) must be (N,) and describe the same samples"
        )
    if not bool(torch.isfinite(s.double()).all()):
        raise ValueError("scores contain NaN or inf; check the trajectory they came from")
    if f.dtype.is_floating_point or f.dtype == torch.bool or not bool(((f >= 0) & (f <= 2)).all()):
        raise ValueError(
            "flags must be integer labels 0 (in-support), 1 (hallucination) or 2 (between), e.g. "
            "hallucination_flags(samples, data)"
        )
    s, f = s.float(), f.long()
    check_number(keep, "keep", min=0, max=1, min_open=True, hint="the share of in-support samples to keep, e.g. 0.96")
    ins, hal = s[f == IN_SUPPORT], s[f == HALLUCINATION]
    if len(ins) == 0:
        raise ValueError("no in-support samples among the flags; check the labelling radii")
    thr = float(torch.quantile(ins.double(), keep))
    kept = float((ins <= thr).float().mean())
    removed = float((hal > thr).float().mean()) if len(hal) else float("nan")
    grid = torch.quantile(ins.double(), torch.linspace(0, 1, 201, dtype=torch.float64))
    grid = torch.cat([grid, torch.tensor([float("inf")], dtype=torch.float64)]).unique()
    ck = (ins.double()[None, :] <= grid[:, None]).double().mean(1).float()
    cr = (hal.double()[None, :] > grid[:, None]).double().mean(1).float() if len(hal) else torch.full_like(ck, float("nan"))
    return HallucinationFilter(
        thr, keep, kept, removed, float((s > thr).float().mean()), _auroc(hal, ins), len(hal), len(ins),
        ck, cr, s, f,
    )


# --------------------------------------------------------------------------- sample quality
def _subsample(x: torch.Tensor, m: int | None, g: torch.Generator) -> torch.Tensor:
    if m is None or len(x) <= m:
        return x
    return x[torch.randperm(len(x), generator=g)[:m]]


def _sample_pair(x, y, max_points, seed, what):
    """Both point sets as float64, each subsampled to ``max_points`` with one seeded generator."""
    g = torch.Generator().manual_seed(check_seed(seed))
    a, b = _subsample(_points(x).double(), max_points, g), _subsample(_points(y, "reference").double(), max_points, g)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"x has {a.shape[1]} features but y has {b.shape[1]}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"{what} needs at least 2 points on each side")
    return a, b


def energy_distance(x, y, *, max_points: int | None = 4000, seed: int = 0) -> float:
    """Energy distance 2E‖X−Y‖ − E‖X−X'‖ − E‖Y−Y'‖ (within-set means exclude the diagonal)."""
    a, b = _sample_pair(x, y, max_points, seed, "energy distance")
    dxy = torch.cdist(a, b).mean()
    dxx = torch.cdist(a, a).sum() / (len(a) * (len(a) - 1))
    dyy = torch.cdist(b, b).sum() / (len(b) * (len(b) - 1))
    return float(2 * dxy - dxx - dyy)


def mmd(x, y, *, bandwidth: float | None = None, max_points: int | None = 4000, seed: int = 0) -> float:
    """Unbiased squared MMD with a Gaussian kernel exp(−‖a−b‖²/(2h²)); h = median pairwise distance by default."""
    a, b = _sample_pair(x, y, max_points, seed, "MMD")
    dab = torch.cdist(a, b)
    if bandwidth is None:
        bandwidth = float(dab.median())
        if not bandwidth > 0:
            raise ValueError("the median distance between the two sets is 0 (identical points); pass bandwidth=")
    check_number(bandwidth, "bandwidth", min=0, min_open=True, hint="the Gaussian kernel's width, or None for the median distance")
    k = lambda d: torch.exp(-(d**2) / (2 * bandwidth**2))  # noqa: E731
    kaa, kbb = k(torch.cdist(a, a)), k(torch.cdist(b, b))
    na, nb = len(a), len(b)
    saa = (kaa.sum() - kaa.diagonal().sum()) / (na * (na - 1))
    sbb = (kbb.sum() - kbb.diagonal().sum()) / (nb * (nb - 1))
    return float(saa + sbb - 2 * k(dab).mean())


def precision_recall(x, y, *, k: int = 3, max_points: int | None = 4000, seed: int = 0) -> tuple[float, float]:
    """k-NN precision (share of samples ``x`` inside the data's k-NN balls) and recall (share of data ``y`` inside the samples')."""
    check_int(k, "k", min=1, hint="the neighbour that sets each ball's radius, e.g. 3")
    g = torch.Generator().manual_seed(check_seed(seed))
    a, b = _subsample(_points(x), max_points, g), _subsample(_points(y, "reference"), max_points, g)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"x has {a.shape[1]} features but y has {b.shape[1]}")
    if len(a) <= k or len(b) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} points on each side")

    def radii(z):
        d = torch.cdist(z, z)
        return d.kthvalue(k + 1, dim=1).values  # the k-th neighbour, self excluded

    ra, rb = radii(a), radii(b)
    dab = torch.cdist(a, b)  # (Na, Nb)
    precision = float((dab <= rb[None, :]).any(1).float().mean())
    recall = float((dab <= ra[:, None]).any(0).float().mean())
    return precision, recall


@dataclass(frozen=True)
class SampleQuality:
    """Quality of ``n`` samples against a reference set (see the module docstring).

    Mode statistics are None for data without known modes: ``in_support`` and ``hallucination``
    shares (``hallucination_flags``' definitions), ``modes_covered`` (modes holding at least a
    quarter of their fair share ``n/K`` of in-support samples) of ``n_modes``, and ``mode_kl``,
    KL(mode histogram of in-support samples ‖ uniform).
    """

    n: int
    energy: float
    mmd: float
    precision: float
    recall: float
    in_support: float | None = None
    hallucination: float | None = None
    modes_covered: int | None = None
    n_modes: int | None = None
    mode_kl: float | None = None

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def __repr__(self) -> str:
        s = (f"SampleQuality(n={self.n}, energy={self.energy:.4f}, mmd={self.mmd:.4f}, "
             f"precision={self.precision:.3f}, recall={self.recall:.3f}")
        if self.n_modes is not None:
            s += (f", in-support={self.in_support:.1%}, hallucination={self.hallucination:.2%}, "
                  f"modes={self.modes_covered}/{self.n_modes}, mode KL={self.mode_kl:.3f}")
        return s + ")"


def sample_quality(samples, reference, *, modes=None, k: int = 3, max_points: int | None = 4000, seed: int = 0) -> SampleQuality:
    """Energy distance, MMD, k-NN precision/recall of ``samples`` to held-out ``reference`` data,
    plus mode statistics when ``modes`` (a data set with meta centres) or ``reference`` has them."""
    x = _points(samples)
    if not torch.isfinite(x).all():
        raise ValueError("samples contain NaN or inf; the sampler diverged (check the schedule or the denoiser)")
    e = energy_distance(x, reference, max_points=max_points, seed=seed)
    m = mmd(x, reference, max_points=max_points, seed=seed)
    p, r = precision_recall(x, reference, k=k, max_points=max_points, seed=seed)
    src = modes if modes is not None else reference
    meta = getattr(src, "meta", None) or {}
    if "centres" not in meta or "std" not in meta:
        return SampleQuality(len(x), e, m, p, r)
    fl = hallucination_flags(x, src)
    ins = fl.in_support
    K = fl.n_modes
    counts = torch.bincount(fl.nearest[ins], minlength=K).double()
    covered = int((counts >= 0.25 * len(x) / K).sum())
    q = counts / counts.sum().clamp(min=1)
    kl = float((q[q > 0] * (q[q > 0] * K).log()).sum())
    fr = fl.fractions()
    return SampleQuality(len(x), e, m, p, r, fr["in-support"], fr["hallucination"], covered, K, kl)
