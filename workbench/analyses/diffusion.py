"""Reverse-process trajectories and denoiser / score fields of a trained diffusion model.

``sample_trajectory(denoiser, ddpm, n, sampler=..., steps=..., seed=...)`` is the explicit
sampling loop (diffusers' "write your own pipeline" shape): draw x_T, then for each timestep
predict, step, record. Conditioning and guidance enter only the "predict": ``y=`` labels make a
class-conditional denoiser conditional, and ``guidance=`` a scale (classifier-free guidance) or a
guide (``wb.methods.ClassifierGuidance``, ``MinorityGuidance``, ``StudentScale``) replaces the
denoiser call by the guided prediction. It records x_t and the predicted clean sample x̂0 at every step (or every
``record_every``-th) into preallocated tensors, so recording costs a copy per step and nothing
more (``benchmarks/bench_trajectory.py`` measures it).

Frame convention of the returned ``Trajectory``: frame 0 is x_T (pure noise), frame F−1 the
samples; ``x0_pred[i]`` is the denoiser's x̂0 at ``x[i]`` (timestep ``timesteps[i]``), and for the
final frame (timestep −1, noise level 0) it is the samples themselves. Samples keep their shape:
``x`` is (F, N, D) for vectors and 2-D points, (F, N, C, H, W) for images (``traj.flat`` gives
(F, N, D) in every case).

``score_field(denoiser, ddpm, t, ...)`` evaluates the denoiser on a 2-D grid at one or more
timesteps, vectorised over grid points and timesteps: the score ∇log p_t(x) = −ε̂/√(1 − ᾱ_t) and
x̂0, for quiver plots (Wang & Vastola's comparison of learned and Gaussian scores uses them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .._device import model_device
from .._modes import eval_mode


def sample_shape_of(denoiser, shape=None) -> tuple[int, ...]:
    """One sample's shape: ``shape`` if given, else read from the denoiser (sample_shape, in_shape, dim)."""
    if shape is not None:
        return tuple(int(s) for s in (shape if hasattr(shape, "__iter__") else (shape,)))
    for attr in ("sample_shape", "in_shape"):
        s = getattr(denoiser, attr, None)
        if s is not None:
            return tuple(int(v) for v in s)
    d = getattr(denoiser, "dim", None)
    if isinstance(d, int):
        return (d,)
    raise ValueError(
        f"cannot tell the sample shape of a {type(denoiser).__name__}; pass shape=(D,) or shape=(C, H, W)"
    )


def _check_ddpm(ddpm):
    if not all(hasattr(ddpm, a) for a in ("timesteps", "step", "sigma", "n_steps")):
        raise TypeError(
            f"ddpm must be a wb.methods.DDPM (or a distilled-student method built on one), got "
            f"{type(ddpm).__name__}"
        )


@dataclass(frozen=True, eq=False)
class Trajectory:
    """A recorded reverse process (CPU tensors; see the module docstring for the frame convention).

    ``x``, ``x0_pred``: (F, N, *shape); ``timesteps``: (F,) int64 (−1 on the final frame);
    ``sigmas``: (F,) noise level √(1 − ᾱ_t) of each frame (0 on the final one); ``step_index``:
    (F,) how many reverse steps had been taken at each frame; ``samples`` = ``x[-1]``.
    """

    x: torch.Tensor
    x0_pred: torch.Tensor
    timesteps: torch.Tensor
    sigmas: torch.Tensor
    step_index: torch.Tensor
    sampler: str
    steps: int
    eta: float
    seed: int
    record_every: int | None
    spacing: str
    meta: dict = field(default_factory=dict, repr=False)

    @property
    def samples(self) -> torch.Tensor:
        return self.x[-1]

    @property
    def n_frames(self) -> int:
        return self.x.shape[0]

    @property
    def n(self) -> int:
        return self.x.shape[1]

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[2:])

    @property
    def flat(self) -> torch.Tensor:
        """``x`` as (F, N, D)."""
        return self.x.reshape(self.x.shape[0], self.x.shape[1], -1)

    @property
    def flat_x0_pred(self) -> torch.Tensor:
        return self.x0_pred.reshape(self.x0_pred.shape[0], self.x0_pred.shape[1], -1)

    def frame_at_sigma(self, sigma: float) -> int:
        """Index of the first frame whose noise level is at most ``sigma``."""
        idx = (self.sigmas <= sigma).nonzero()
        return int(idx.min()) if len(idx) else self.n_frames - 1

    def __repr__(self) -> str:
        mb = (self.x.numel() + self.x0_pred.numel()) * self.x.element_size() / 1e6
        eta = f", eta={self.eta:g}" if self.sampler == "ddim" else ""
        return (
            f"Trajectory({self.sampler}{eta}, {self.steps} steps, n={self.n}, shape={self.sample_shape}, "
            f"frames={self.n_frames} (every {self.record_every}), sigma {float(self.sigmas[0]):.3g}->0, "
            f"seed={self.seed}, {mb:.1f} MB)"
        )


@torch.no_grad()
def sample_trajectory(
    denoiser: nn.Module,
    ddpm,
    n: int = 512,
    *,
    sampler: str | None = None,
    steps: int | None = None,
    eta: float = 0.0,
    spacing: str = "trailing",
    seed: int = 0,
    record_every: int | None = 1,
    shape=None,
    x_T: torch.Tensor | None = None,
    clip: float | None = None,
    y=None,
    guidance=None,
) -> Trajectory:
    """Run the reverse process for ``n`` samples and record it.

    Parameters
    ----------
    denoiser: the trained ``model(x_t, t)`` (left untouched: eval mode during sampling, then
        restored). Runs on its own device; the result is moved to the CPU.
    ddpm: the ``wb.methods.DDPM`` it was trained with (or a distilled student's method).
    sampler: ``"ddpm"`` (ancestral) or ``"ddim"`` for a DDPM (default ``"ddpm"``); a student's
        method has its own (e.g. ``"consistency"``).
    steps: number of reverse steps (default: all ``ddpm.n_steps`` for DDPM; DDIM and DDPM
        both accept fewer, strided with ``spacing``).
    eta: DDIM noise scale (0 = deterministic).
    seed: seeds a private ``torch.Generator`` for x_T and all step noise.
    record_every: keep every k-th state (and always x_T and the samples); ``None`` keeps only x_T
        and the samples (no recording cost at all).
    shape: one sample's shape, if the denoiser does not tell (``TimeMLP`` does).
    x_T: start from these (N, *shape) states instead of drawing them.
    clip: clamp x̂0 to [−clip, clip] at each step (e.g. 1.0 for data in [−1, 1]).
    y: class labels (an int or one per sample) for a class-conditional denoiser
        (``wb.models.TimeMLP(n_classes=K)``); without ``guidance`` the plain conditional model.
    guidance: a number s = classifier-free guidance at scale s (``wb.methods.CFG(s)``: 0 the
        unconditional, 1 the conditional model), or a guide (``wb.methods.Guidance``).
    """
    if not isinstance(denoiser, nn.Module):
        raise TypeError(f"denoiser must be an nn.Module called as denoiser(x_t, t), got {type(denoiser).__name__}")
    _check_ddpm(ddpm)
    samplers = getattr(ddpm, "SAMPLERS_", ("ddpm", "ddim"))
    sampler = samplers[0] if sampler is None else sampler
    if sampler not in samplers:
        raise ValueError(f"unknown sampler {sampler!r} for {type(ddpm).__name__}; valid: {', '.join(samplers)}")
    if record_every is not None and (not isinstance(record_every, int) or record_every < 1):
        raise ValueError(f"record_every must be a positive int or None, got {record_every!r}")
    device = model_device(denoiser)
    shape = sample_shape_of(denoiser, shape)
    if x_T is not None:
        if tuple(x_T.shape[1:]) != shape:
            raise ValueError(f"x_T has samples of shape {tuple(x_T.shape[1:])}, the denoiser wants {shape}")
        n = x_T.shape[0]
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    ts = ddpm.timesteps(steps, spacing)  # (S,) descending
    S = len(ts)
    ts_list = ts.tolist()
    prevs = ts_list[1:] + [-1]
    if record_every is None:
        rec = [0, S]
    else:
        rec = sorted(set(range(0, S, record_every)) | {S})
    slot = {s: j for j, s in enumerate(rec)}

    predict = _predictor(denoiser, ddpm, y, guidance, n, device)
    g = torch.Generator(device=device).manual_seed(int(seed))
    if x_T is None:
        x = torch.randn((n, *shape), generator=g, device=device)
    else:
        x = x_T.to(device=device, dtype=torch.float32).clone()
    X = torch.empty((len(rec), n, *shape), device=device)  # (F, N, *shape)
    X0 = torch.empty_like(X)
    tvec = torch.empty((n,), dtype=torch.long, device=device)
    with eval_mode(denoiser, ddpm, guidance):
        for i, (t, t_prev) in enumerate(zip(ts_list, prevs)):
            out = predict(x, tvec.fill_(t))
            st = ddpm.step(out, t, x, t_prev=t_prev, sampler=sampler, eta=eta, generator=g, clip=clip)
            j = slot.get(i)
            if j is not None:
                X[j] = x
                X0[j] = st.x0
            x = st.prev
    X[-1] = x
    X0[-1] = x
    frames_t = torch.tensor([ts_list[s] if s < S else -1 for s in rec], dtype=torch.long)
    sig = ddpm.sigma(frames_t.to(ddpm_device(ddpm))).float().cpu()
    return Trajectory(
        x=X.cpu(), x0_pred=X0.cpu(), timesteps=frames_t, sigmas=sig,
        step_index=torch.tensor(rec, dtype=torch.long), sampler=sampler, steps=S, eta=float(eta),
        seed=int(seed), record_every=record_every, spacing=spacing,
        meta={"n_steps": int(ddpm.n_steps), "method": type(ddpm).__name__, "guidance": repr(guidance),
              "y": None if y is None else torch.as_tensor(y).cpu()},
    )


def _predictor(denoiser, ddpm, y, guidance, n, device):
    """The loop's "predict": the denoiser, conditional on ``y``, or a guide (see ``sample_trajectory``)."""
    from ..methods._guidance import Guidance, labels_for
    from ..methods.cfg import CFG

    if guidance is not None and not isinstance(guidance, Guidance):
        if isinstance(guidance, bool) or not isinstance(guidance, (int, float)):
            raise TypeError(f"guidance must be a scale (a number) or a wb.methods guide, got {type(guidance).__name__}")
        guidance = CFG(float(guidance))
    yv = None if y is None else labels_for(y, n, device)
    if guidance is not None:
        return lambda x, t: guidance(denoiser, ddpm, x, t, yv)
    if yv is not None:
        return lambda x, t: denoiser(x, t, yv)
    return denoiser


def ddpm_device(ddpm) -> torch.device:
    if isinstance(ddpm, nn.Module):
        return model_device(ddpm)
    return torch.device("cpu")


# --------------------------------------------------------------------------- fields on a grid
@dataclass(frozen=True, eq=False)
class ScoreField:
    """A denoiser evaluated on a G×G grid at K timesteps (CPU tensors).

    ``grid_x``, ``grid_y``: (G,) coordinates; ``points``: (G*G, 2) in row-major order (y slow,
    x fast); ``score``: (K, G*G, 2) = −ε̂/√(1 − ᾱ_t); ``x0_pred``: (K, G*G, 2);
    ``timesteps``/``sigmas``: (K,). ``name`` labels the denoiser (learned, gaussian, ...).
    """

    grid_x: torch.Tensor
    grid_y: torch.Tensor
    points: torch.Tensor
    score: torch.Tensor
    x0_pred: torch.Tensor
    timesteps: torch.Tensor
    sigmas: torch.Tensor
    name: str = "learned"

    def at(self, t: int) -> int:
        """Index of the field whose timestep is closest to ``t``."""
        return int((self.timesteps - int(t)).abs().argmin())

    def __repr__(self) -> str:
        return (
            f"ScoreField({self.name!r}, grid {len(self.grid_x)}x{len(self.grid_y)}, "
            f"{len(self.timesteps)} timesteps {self.timesteps.tolist()[:6]}{'...' if len(self.timesteps) > 6 else ''})"
        )


@torch.no_grad()
def field_timesteps(t, ddpm) -> torch.Tensor:
    """The timesteps (K,) a field is drawn at: ``t`` an int, a list of ints, or a ``Trajectory``
    (its frames' timesteps, the final frame excluded); each must lie in 0..n_steps − 1."""
    if isinstance(t, Trajectory):
        t = [int(v) for v in t.timesteps.tolist() if v >= 0]
    ts = torch.as_tensor(t if hasattr(t, "__iter__") else [t], dtype=torch.long).reshape(-1)
    if len(ts) == 0 or (ts < 0).any() or (ts >= ddpm.n_steps).any():
        raise ValueError(f"timesteps must lie in 0..{ddpm.n_steps - 1}, got {ts.tolist()}")
    return ts


def plane_grid(lim, resolution: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A ``resolution`` x ``resolution`` grid of the plane: ``lim`` a number (the square
    [−lim, lim]²) or a box (x0, x1, y0, y1). Returns the x and y axes (G,) and the points
    (G*G, 2), row-major in y."""
    if isinstance(lim, (int, float)):
        box = (-float(lim), float(lim), -float(lim), float(lim))
    else:
        box = tuple(float(v) for v in lim)
        if len(box) != 4:
            raise ValueError("lim must be a number or (x0, x1, y0, y1)")
    gx, gy = torch.linspace(box[0], box[1], resolution), torch.linspace(box[2], box[3], resolution)
    yy, xx = torch.meshgrid(gy, gx, indexing="ij")
    return gx, gy, torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)  # (G*G, 2)


def score_field(
    denoiser: nn.Module,
    ddpm,
    t,
    *,
    lim: float | tuple[float, float, float, float] = 2.0,
    resolution: int = 21,
    name: str = "learned",
    chunk: int = 65536,
) -> ScoreField:
    """Score and x̂0 of ``denoiser`` on a ``resolution``² grid over ``lim`` at timestep(s) ``t``.

    ``t``: an int, a list of ints, or a ``Trajectory`` (its frames' timesteps, the final frame
    excluded). ``lim``: half-width of a square centred on 0, or (x0, x1, y0, y1). Vectorised over
    grid points and timesteps in chunks of ``chunk`` evaluations. 2-D denoisers only.
    """
    _check_ddpm(ddpm)
    ts = field_timesteps(t, ddpm)
    if not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"resolution must be an int >= 2, got {resolution!r}")
    shape = sample_shape_of(denoiser)
    if shape != (2,):
        raise ValueError(f"score_field draws 2-D fields; this denoiser works on samples of shape {shape}")
    gx, gy, pts = plane_grid(lim, resolution)
    device = model_device(denoiser)
    K, P = len(ts), len(pts)
    allx = pts.to(device).repeat(K, 1)  # (K*P, 2)
    allt = ts.to(device).repeat_interleave(P)  # (K*P,)
    eps_out, x0_out = [], []
    with eval_mode(denoiser, ddpm):
        for i in range(0, K * P, chunk):
            xb, tb = allx[i : i + chunk], allt[i : i + chunk]
            x0, eps = ddpm.predict_x0_eps(denoiser(xb, tb), xb, tb)
            eps_out.append(eps)
            x0_out.append(x0)
    eps = torch.cat(eps_out).reshape(K, P, 2)
    x0 = torch.cat(x0_out).reshape(K, P, 2)
    sig = ddpm.sigma(ts.to(ddpm_device(ddpm))).to(eps.device).float()
    score = -eps / sig[:, None, None]
    return ScoreField(gx, gy, pts, score.float().cpu(), x0.float().cpu(), ts, sig.cpu(), name)


def matching_frames(traj: Trajectory, other: Trajectory) -> torch.Tensor:
    """For every frame of ``traj``, the first frame of ``other`` whose noise level is at most this
    frame's: where a sampler with other steps (a few-step student) stands at the same noise level."""
    s_other = other.sigmas
    out = [int((s_other <= s + 1e-6).nonzero().min()) if (s_other <= s + 1e-6).any() else other.n_frames - 1
           for s in traj.sigmas.tolist()]
    return torch.tensor(out, dtype=torch.long)
