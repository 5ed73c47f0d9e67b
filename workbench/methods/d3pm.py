"""D3PM: discrete denoising diffusion with uniform or absorbing (masking) transitions.

Paper: Austin, Johnson, Ho, Tarlow & van den Berg 2021, "Structured Denoising Diffusion Models
in Discrete State-Spaces" (official code google-research/d3pm, ``images/diffusion_categorical.py``).

Data are L tokens per sample, each one of K states (pixels of binarised digits: K = 2; a
categorical sequence: its vocabulary). Conventions of the official image code: the transition
matrices are row-stochastic, [Q_t]_ij = q(x_t = j | x_{t−1} = i), and the noisy states are
indexed t = 0..T−1, where index t is the state after t + 1 transitions (x_start is the data).

* **Uniform**: Q_t = (1 − β_t) I + β_t/K·11ᵀ; after t + 1 steps Q̄_t = ᾱ_t I + (1 − ᾱ_t)/K·11ᵀ
  with ᾱ_t = ∏(1 − β_s); the prior is uniform.
* **Absorbing**: an extra mask state m = K (so K + 1 states); Q_t = (1 − β_t) I + β_t·1e_mᵀ:
  a token stays with probability ∏(1 − β_s), else it is masked, and a mask stays a mask.
  The prior is all-mask.
* **Schedules**: ``"jsd"`` β_t = 1/(T − t) (absorbing: P(masked after j steps) = j/T, exactly 1
  at the end; the official default for absorbing); ``"cosine"`` ᾱ(s) = cos²((s + 0.008)/1.008·π/2),
  β_t = min(1 − ᾱ((t+1)/T)/ᾱ(t/T), 0.999) (the official choice for uniform); or explicit ``betas``.
  Q̄ is multiplied out in float64 and stored as float32 buffers (``q_onestep``, ``q_bar``).
* **Forward sample**: x_t ~ Cat(Q̄_t[x0]) (the official code: Gumbel-max on log(p + 1e-6);
  here inverse-CDF sampling of the probabilities, the same distribution).
* **Posterior**: q(x_{t−1} | x_t, x0) ∝ Q_t[:, x_t] ⊙ Q̄_{t−1}[x0] for t ≥ 1; at t = 0 it is x0.
* **x0-parametrisation**: the network gives logits of p̃(x0 | x_t) (the mask logit removed for
  absorbing); p(x_{t−1} | x_t) ∝ Q_t[:, x_t] ⊙ (p̃ Q̄_{t−1}) — one matmul — and p(x0 | x_0) = p̃.
* **Loss**: t ~ U{0..T−1}; L_t = KL(q(x_{t−1} | x_t, x0) ‖ p(x_{t−1} | x_t)) for t ≥ 1 and the
  decoder NLL −log p̃(x0 | x_0) at t = 0, averaged over tokens, in bits (÷ ln 2); plus the
  hybrid term λ·CE(x0, p̃(x0 | x_t)) (also in bits), λ = ``hybrid`` (official: 0.001 images,
  0.01 text mask diffusion, 0 text uniform). ``nll_bound`` adds every t and the prior KL: the
  negative ELBO in bits per token.

Differences from the official code: no discretised-logistic / Gaussian-like (ordinal)
transitions and no banded uniform matrices; inverse-CDF rather than Gumbel-max forward
samples (the same distribution); the mask is the extra state K for images too (the
official image code uses K//2 inside the pixel range).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._checks import check_choice, check_int, check_number
from .base import Method

TRANSITIONS = ("uniform", "absorbing")
SCHEDULES = ("jsd", "cosine")
EPS = 1e-6


def d3pm_betas(n_steps: int, schedule: str) -> torch.Tensor:
    """(T,) float64 β of the ``"jsd"`` or ``"cosine"`` schedule."""
    check_choice(schedule, "schedule", SCHEDULES)
    t = torch.arange(n_steps, dtype=torch.float64)
    if schedule == "jsd":
        return 1.0 / (n_steps - t)

    def abar(s):
        return torch.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

    return (1 - abar((t + 1) / n_steps) / abar(t / n_steps)).clamp(max=0.999)


def transition_matrices(betas: torch.Tensor, n_states: int, transition: str) -> torch.Tensor:
    """(T, K, K) float64 one-step matrices Q_t (K = n_states, or n_states + 1 with the mask last)."""
    check_choice(transition, "transition", TRANSITIONS)
    K = n_states + (transition == "absorbing")
    b = betas.double()[:, None, None]
    eye = torch.eye(K, dtype=torch.float64)
    if transition == "uniform":
        return (1 - b) * eye + b / K
    to_mask = torch.zeros(K, K, dtype=torch.float64)
    to_mask[:, -1] = 1.0
    return (1 - b) * eye + b * to_mask


def categorical_kl(logits_q: torch.Tensor, logits_p: torch.Tensor) -> torch.Tensor:
    """KL(softmax(q) ‖ softmax(p)) over the last axis, in nats."""
    lq, lp = F.log_softmax(logits_q, -1), F.log_softmax(logits_p, -1)
    return (lq.exp() * (lq - lp)).sum(-1)


class D3PM(Method):
    """Discrete diffusion over ``n_states`` data states (see the module docstring).

    Parameters
    ----------
    n_states: K, the number of data states (tokens take integer values 0..K−1; the data may be
        float tensors holding those integers, e.g. binarised images).
    n_steps: T. transition: ``"absorbing"`` (default) or ``"uniform"``.
    schedule: ``"jsd"`` (default for absorbing) or ``"cosine"`` (default for uniform); ``betas``
        gives the (T,) β explicitly instead.
    hybrid: λ of the auxiliary cross-entropy (0.001 as the official image code).

    The denoiser is ``model(x_t, t) -> (N, L, n_total)`` logits of x0 (``wb.models.TokenDenoiser
    (L, d3pm.n_total)``); ``n_total`` = K (+1 for the mask).
    """

    needs_labels = False

    def __init__(self, n_states: int, n_steps: int = 100, transition: str = "absorbing", *,
                 schedule: str | None = None, betas=None, hybrid: float = 0.001):
        super().__init__()
        self.n_states = check_int(n_states, "n_states", min=2, hint="the number of data states, e.g. 2 for binary pixels")
        self.transition = check_choice(transition, "transition", TRANSITIONS)
        if betas is not None:
            if schedule is not None:
                raise ValueError("give schedule= or betas=, not both")
            b = torch.as_tensor(betas, dtype=torch.float64).reshape(-1)
            if len(b) < 1 or bool(((b <= 0) | (b > 1)).any()):
                raise ValueError("betas must be a non-empty sequence of values in (0, 1]")
            self.schedule = "custom"
        else:
            self.schedule = check_choice(schedule or ("jsd" if transition == "absorbing" else "cosine"), "schedule", SCHEDULES)
            b = d3pm_betas(check_int(n_steps, "n_steps", min=1), self.schedule)
        self.n_steps = len(b)
        self.hybrid = check_number(hybrid, "hybrid", min=0, hint="the weight of the auxiliary cross-entropy, e.g. 0.001")
        Q = transition_matrices(b, self.n_states, transition)  # (T, K, K)
        Qbar = torch.empty_like(Q)
        acc = torch.eye(Q.shape[1], dtype=torch.float64)
        for t in range(len(b)):
            acc = acc @ Q[t]
            Qbar[t] = acc
        self.register_buffer("betas", b.float())
        self.register_buffer("q_onestep", Q.float())
        self.register_buffer("q_bar", Qbar.float())

    @property
    def n_total(self) -> int:
        """States a token can take while noisy (the mask included)."""
        return self.n_states + (self.transition == "absorbing")

    @property
    def mask(self) -> int | None:
        return self.n_states if self.transition == "absorbing" else None

    # -------------------------------------------------------------- forward process
    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Data as (N, L) int64 tokens, checked to lie in 0..K−1."""
        tok = x.reshape(x.shape[0], -1)
        if tok.dtype.is_floating_point:
            if not bool((tok == tok.round()).all()):
                raise ValueError("D3PM data must hold integer states (e.g. binarised pixels: (x > 0.5).float())")
            tok = tok.round().long()
        if bool(((tok < 0) | (tok >= self.n_states)).any()):
            raise ValueError(f"D3PM data must hold states 0..{self.n_states - 1}, got values up to {int(tok.max())}")
        return tok

    def q_probs(self, x0: torch.Tensor, t) -> torch.Tensor:
        """(N, L, K) marginals q(x_t | x0) = Q̄_t[x0] (``t`` int or (N,))."""
        t = torch.as_tensor(t, device=x0.device).expand(x0.shape[0])
        return self.q_bar[t[:, None], x0]

    def q_sample(self, x0: torch.Tensor, t, generator: torch.Generator | None = None) -> torch.Tensor:
        """x_t ~ q(x_t | x0), (N, L) int64 (inverse-CDF sampling of each token's categorical)."""
        cdf = self.q_probs(x0, t).cumsum(-1)  # (N, L, K)
        u = torch.rand(x0.shape + (1,), generator=generator, device=x0.device, dtype=cdf.dtype)
        return (u > cdf[..., :-1]).sum(-1)

    def q_posterior_logits(self, x0_probs: torch.Tensor, x_t: torch.Tensor, t, log_fact1=None) -> torch.Tensor:
        """(N, L, K) logits of q(x_{t−1} | x_t, x0) for x0 given as probabilities (one-hot for the
        true posterior, p̃ for the model's), at t ≥ 1 (int or (N,)); ``log_fact1``: the
        x0-independent term log Q_t[:, x_t] if already computed."""
        t = torch.as_tensor(t, device=x_t.device).expand(x_t.shape[0])
        if log_fact1 is None:
            log_fact1 = self._log_fact1(x_t, t)
        fact2 = torch.bmm(x0_probs, self.q_bar[t - 1].to(x0_probs.dtype))  # x0 Q̄_{t−1}
        return log_fact1 + torch.log(fact2 + EPS)

    def _log_fact1(self, x_t, t):
        """(N, L, K) log(Q_t[:, x_t] + ε): row j of Q_tᵀ is q(x_t = j | x_{t−1} = ·)."""
        K = self.q_onestep.shape[-1]
        rows = self.q_onestep[t].transpose(1, 2)  # (N, K, K)
        return torch.log(rows.gather(1, x_t[..., None].expand(*x_t.shape, K)) + EPS)

    def x0_logits(self, model_output: torch.Tensor) -> torch.Tensor:
        """The network's logits of p̃(x0 | x_t), the mask state removed (−inf) for absorbing."""
        if model_output.shape[-1] != self.n_total:
            raise ValueError(f"the denoiser gives {model_output.shape[-1]} logits per token; D3PM({self.transition}) "
                             f"needs {self.n_total} (wb.models.TokenDenoiser(L, {self.n_total}))")
        if self.mask is None:
            return model_output
        return model_output.masked_fill(
            torch.arange(self.n_total, device=model_output.device) == self.mask, float("-inf"))

    def p_logits(self, model_output: torch.Tensor, x_t: torch.Tensor, t: int) -> torch.Tensor:
        """(N, L, K) logits of p(x_{t−1} | x_t) (of x0 itself at t = 0)."""
        logits0 = self.x0_logits(model_output)
        if int(t) == 0:
            return logits0
        return self.q_posterior_logits(torch.softmax(logits0, -1), x_t, t)

    def prior_sample(self, shape, generator=None, device=None) -> torch.Tensor:
        """x_{T−1} from the prior: all-mask (absorbing) or uniform states."""
        if self.mask is not None:
            return torch.full(shape, self.mask, dtype=torch.long, device=device)
        return torch.randint(0, self.n_states, shape, generator=generator, device=device)

    # -------------------------------------------------------------- training
    def _losses(self, model, x0: torch.Tensor, t: torch.Tensor, x_t: torch.Tensor | None = None):
        """(N,) variational term and (N,) cross-entropy, both in bits per token, at timesteps ``t``
        (x_t drawn from q(x_t | x0) unless given)."""
        x_t = self.q_sample(x0, t) if x_t is None else x_t
        logits0 = self.x0_logits(model(x_t, t))
        nll0 = F.cross_entropy(logits0.transpose(1, 2), x0, reduction="none")  # (N, L) nats
        onehot = F.one_hot(x0, self.n_total).to(logits0.dtype)
        tt = t.clamp(min=1)
        f1 = self._log_fact1(x_t, tt)
        q_post = self.q_posterior_logits(onehot, x_t, tt, f1)
        p_post = self.q_posterior_logits(torch.softmax(logits0, -1), x_t, tt, f1)
        kl = categorical_kl(q_post, p_post)
        vb = torch.where((t == 0)[:, None], nll0, kl).mean(1) / math.log(2)
        return vb, nll0.mean(1) / math.log(2)

    def loss(self, model, batch):
        x0 = self.tokens(batch[0] if isinstance(batch, (tuple, list)) else batch)
        t = torch.randint(0, self.n_steps, (x0.shape[0],), device=x0.device)
        vb, ce = self._losses(model, x0, t)
        return (vb + self.hybrid * ce).mean(), {"vb_bits": vb.mean().detach(), "ce_bits": ce.mean().detach()}

    @torch.no_grad()
    def nll_bound(self, model, x: torch.Tensor) -> torch.Tensor:
        """(N,) negative ELBO in bits per token: Σ_t L_t (one noise draw per t) + the prior KL."""
        x0 = self.tokens(x)
        total = torch.zeros(x0.shape[0], device=x0.device)
        for t in range(self.n_steps):
            total += self._losses(model, x0, torch.full((x0.shape[0],), t, device=x0.device))[0]
        qT = self.q_probs(x0, self.n_steps - 1)  # (N, L, K)
        prior = torch.zeros(self.n_total, device=x0.device)
        if self.mask is not None:
            prior[self.mask] = 1.0
        else:
            prior[:] = 1.0 / self.n_states
        kl_prior = (qT * (torch.log(qT + EPS) - torch.log(prior + EPS))).sum(-1).mean(1) / math.log(2)
        return total + kl_prior

    def __repr__(self) -> str:
        return (f"D3PM({self.transition}, {self.n_states} states{' + mask' if self.mask is not None else ''}, "
                f"T={self.n_steps}, schedule={self.schedule!r}, hybrid={self.hybrid:g})")
