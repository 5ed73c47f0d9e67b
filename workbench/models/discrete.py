"""A denoiser for discrete (categorical) diffusion: tokens in, per-token logits out."""

from __future__ import annotations

import torch
from torch import nn

from .._config import Configurable


class _Block(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc = nn.Linear(width, width)
        self.act = nn.GELU()

    def forward(self, h):
        return h + self.act(self.fc(self.norm(h)))


class TokenDenoiser(nn.Module, Configurable):
    """``model(x_t, t) -> (N, L, n_out)`` logits of the clean token at each of L positions.

    ``x_t``: (N, L) or (N, *shape) integer states in 0..n_states−1 (images are flattened);
    ``t``: the timestep. The one-hot tokens and a sinusoidal timestep embedding go through an
    MLP with ``n_layers`` pre-norm residual blocks; the output has ``n_out`` logits per position
    (default ``n_states``; a method with a mask state masks that logit itself).
    ``hidden_layers`` names the residual blocks.
    """

    def __init__(
        self,
        length: int,
        n_states: int,
        hidden: int = 256,
        n_layers: int = 3,
        *,
        n_out: int | None = None,
        time_dim: int = 64,
        seed: int | None = None,
    ):
        super().__init__()
        for name, v, lo in (("length", length, 1), ("n_states", n_states, 2), ("hidden", hidden, 1)):
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
        self.length, self.n_states = length, n_states
        self.n_out = n_states if n_out is None else int(n_out)
        self.time_dim = time_dim
        from . import _SeededInit

        with _SeededInit(seed):
            self.inp = nn.Sequential(nn.Linear(length * n_states + time_dim, hidden), nn.GELU())
            self.blocks = nn.Sequential(*[_Block(hidden) for _ in range(n_layers)])
            self.out = nn.Linear(hidden, length * self.n_out)
        self.hidden_layers = ("inp",) + tuple(f"blocks.{i}" for i in range(n_layers))

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        from . import _per_sample, sinusoidal_embedding

        if not isinstance(x, torch.Tensor):
            raise TypeError(f"TokenDenoiser expects a tensor of integer states, got {type(x).__name__}")
        n = x.shape[0]
        tok = x.reshape(n, -1)
        if tok.shape[1] != self.length:
            raise ValueError(f"TokenDenoiser was built for length={self.length} but got {tok.shape[1]} tokens per sample")
        if tok.dtype.is_floating_point:
            if not bool((tok == tok.round()).all()):
                raise TypeError("TokenDenoiser expects integer states (x_t.long()), got non-integer floats")
            tok = tok.long()
        if bool(((tok < 0) | (tok >= self.n_states)).any()):
            raise ValueError(f"states must lie in 0..{self.n_states - 1}")
        onehot = nn.functional.one_hot(tok, self.n_states).float().reshape(n, -1)
        temb = sinusoidal_embedding(_per_sample(t, n, x.device, "t"), self.time_dim)
        h = self.inp(torch.cat([onehot, temb], -1))
        return self.out(self.blocks(h)).reshape(n, self.length, self.n_out)

    def extra_repr(self) -> str:
        n = sum(p.numel() for p in self.parameters())
        return f"length={self.length}, n_states={self.n_states}, n_out={self.n_out}, params={n:,}"
