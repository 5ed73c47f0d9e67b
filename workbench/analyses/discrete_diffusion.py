"""Reverse trajectories of a discrete (D3PM) diffusion model: which tokens are decided when.

``sample_discrete(model, d3pm, n, shape=..., seed=...)`` is the explicit sampling loop: start
from the prior (all-mask for absorbing transitions, uniform states for uniform ones), then for
t = T−1..0 predict p(x_{t−1} | x_t) (``d3pm.p_logits``), draw from it (Gumbel-max; argmax on the
last step) and record. ``DiscreteTrajectory.decided_at`` gives, per token, the first frame from
which it never changes again — for absorbing diffusion the moment it was unmasked — the
"unmasking order" the view colours.

``sequence_stats`` scores categorical sequences against the Markov chain that made a
``sequences`` data set: the share of adjacent pairs the chain allows and the mean
log-likelihood per transition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .._checks import check_int, check_seed
from .._device import model_device
from .._modes import eval_mode


@dataclass(frozen=True, eq=False)
class DiscreteTrajectory:
    """A recorded discrete reverse process (CPU).

    ``states`` (F, N, L) int64: frame 0 the prior sample, frame F−1 the samples;
    ``x0_pred`` (F, N, L): the model's most likely clean token at each frame (the samples on
    the last); ``confidence`` (F, N, L): its probability; ``timesteps`` (F,) (−1 on the last);
    ``shape``: one sample's shape (e.g. (1, 8, 8)); ``mask``: the mask state or None;
    ``n_states``: data states.
    """

    states: torch.Tensor
    x0_pred: torch.Tensor
    confidence: torch.Tensor
    timesteps: torch.Tensor
    shape: tuple[int, ...]
    mask: int | None
    n_states: int
    transition: str
    seed: int

    @property
    def samples(self) -> torch.Tensor:
        return self.states[-1]

    @property
    def n_frames(self) -> int:
        return self.states.shape[0]

    @property
    def n(self) -> int:
        return self.states.shape[1]

    @property
    def decided_at(self) -> torch.Tensor:
        """(N, L) the first frame from which each token keeps its final value."""
        same = self.states == self.states[-1:]  # (F, N, L)
        # the last frame where it differed, + 1 (0 if it never differed)
        changed = (~same).flip(0).int().argmax(0)  # frames since the end at the last change
        ever = (~same).any(0)
        return torch.where(ever, self.n_frames - changed, torch.zeros_like(changed))

    def masked_share(self) -> torch.Tensor:
        """(F,) share of tokens still masked at each frame (zeros for uniform transitions)."""
        if self.mask is None:
            return torch.zeros(self.n_frames)
        return (self.states == self.mask).float().mean((1, 2))

    def __repr__(self) -> str:
        return (f"DiscreteTrajectory({self.transition}, n={self.n}, shape={self.shape}, frames={self.n_frames}, "
                f"{self.n_states} states{' + mask' if self.mask is not None else ''}, seed={self.seed})")


@torch.no_grad()
def sample_discrete(
    model: nn.Module,
    d3pm,
    n: int = 64,
    *,
    shape=None,
    seed: int = 0,
    record_every: int = 1,
) -> DiscreteTrajectory:
    """Sample ``n`` sequences (or images) from ``model`` with ``d3pm``'s reverse process and record it.

    ``shape``: one sample's shape (default (L,) from ``model.length``); the model sees (N, L)
    tokens. The model is left as it was (eval mode during sampling).
    """
    if not all(hasattr(d3pm, a) for a in ("p_logits", "prior_sample", "n_steps")):
        raise TypeError(f"d3pm must be a wb.methods.D3PM, got {type(d3pm).__name__}")
    check_int(n, "n", min=1)
    check_int(record_every, "record_every", min=1)
    check_seed(seed)
    L = getattr(model, "length", None)
    shape = tuple(shape) if shape is not None else ((L,) if L is not None else None)
    if shape is None:
        raise ValueError("pass shape= (one sample's shape): the model does not say its length")
    L = math.prod(shape)
    dev = model_device(model)
    g = torch.Generator(device=dev).manual_seed(seed)
    T = d3pm.n_steps
    rec = sorted(set(range(0, T, record_every)) | {T})
    slot = {s: j for j, s in enumerate(rec)}
    X = torch.empty((len(rec), n, L), dtype=torch.long)
    X0 = torch.empty_like(X)
    conf = torch.empty((len(rec), n, L))
    x = d3pm.prior_sample((n, L), generator=g, device=dev)
    with eval_mode(model, d3pm):
        for i, t in enumerate(range(T - 1, -1, -1)):
            out = model(x, torch.full((n,), t, device=dev))
            p0 = torch.softmax(d3pm.x0_logits(out), -1)
            logits = d3pm.p_logits(out, x, t)
            if i in slot:
                best = p0.max(-1)
                X[slot[i]], X0[slot[i]], conf[slot[i]] = x.cpu(), best.indices.cpu(), best.values.cpu()
            if t > 0:
                u = torch.rand(logits.shape, generator=g, device=dev).clamp(1e-20, 1.0)
                x = (logits - torch.log(-torch.log(u))).argmax(-1)  # Gumbel-max
            else:
                x = logits.argmax(-1)
    X[-1], X0[-1], conf[-1] = x.cpu(), x.cpu(), 1.0
    ts = torch.tensor([T - 1 - s if s < T else -1 for s in rec])
    return DiscreteTrajectory(X, X0, conf, ts, shape, d3pm.mask, d3pm.n_states, d3pm.transition, seed)


@dataclass(frozen=True)
class SequenceStats:
    """``allowed``: share of adjacent token pairs the chain allows; ``loglik``: mean log-likelihood
    per transition (nats; −inf if any is forbidden, so ``loglik_allowed`` averages the allowed ones)."""

    n: int
    allowed: float
    loglik_allowed: float
    data_loglik: float

    def __repr__(self) -> str:
        return (f"SequenceStats(n={self.n}, allowed transitions {self.allowed:.1%}, log-lik/transition "
                f"{self.loglik_allowed:.3f} (data {self.data_loglik:.3f}))")


def sequence_stats(samples, data) -> SequenceStats:
    """How well categorical ``samples`` (N, L) follow the Markov chain of a ``sequences`` data set."""
    meta = getattr(data, "meta", None) or {}
    if "transition" not in meta:
        raise ValueError("data must be wb.data.load('sequences', ...) (its meta holds the transition matrix)")
    P = meta["transition"].double()
    s = getattr(samples, "samples", samples)
    s = torch.as_tensor(s).reshape(len(s), -1).long().cpu()
    if bool(((s < 0) | (s >= len(P))).any()):
        raise ValueError(f"samples hold tokens outside 0..{len(P) - 1} (a mask left unmasked?)")

    def stats(z):
        p = P[z[:, :-1], z[:, 1:]]
        ok = p > 0
        return float(ok.double().mean()), float(p[ok].log().mean()) if ok.any() else float("nan")

    a, ll = stats(s)
    _, dll = stats(data.x.reshape(len(data.x), -1).long().cpu())
    return SequenceStats(len(s), a, ll, dll)
