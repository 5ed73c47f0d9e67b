"""Plain ``nn.Module`` models. Classifiers expose ``features(x) -> z`` and ``head(z) -> logits``.

Every model records its constructor arguments in ``model.config`` (so checkpoints and runs
can rebuild it from JSON) and accepts ``seed=`` to make its initialisation reproducible
without touching the global RNG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .._config import Configurable

__all__ = [
    "Classifier", "MLP", "ConvNet", "DistillConvNet", "TimeMLP", "TimeClassifier", "TokenDenoiser", "sinusoidal_embedding",
    "guidance_embedding", "ACTIVATIONS",
    "wrap", "Wrapped", "WrappedClassifier",                                       # models you did not write
    "ProtoPNet", "STProtoPNet", "DeepCBC", "LinearHeadNet",                    # prototype-part networks
]

ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class _SeededInit:
    """Run a model's parameter initialisation under a private RNG when ``seed`` is given."""

    def __init__(self, seed: int | None):
        self.seed = seed
        self._ctx = None

    def __enter__(self):
        if self.seed is not None:
            self._ctx = torch.random.fork_rng(devices=[])
            self._ctx.__enter__()
            torch.manual_seed(self.seed)
        return self

    def __exit__(self, *exc):
        if self._ctx is not None:
            self._ctx.__exit__(*exc)
        return False


def _check_input(x, expected: int, cls: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{cls} expects a torch.Tensor, got {type(x).__name__}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"{cls} expects floating-point inputs, got {x.dtype}; pass x.float()")
    if x.ndim < 2:
        raise ValueError(f"{cls} expects a batch (N, ...), got shape {tuple(x.shape)}; add a batch axis")
    flat = x.reshape(x.shape[0], -1)
    if flat.shape[1] != expected:
        raise ValueError(
            f"{cls} was built for {expected} input features but got samples of shape "
            f"{tuple(x.shape[1:])} ({flat.shape[1]} features); build it with in_dim={flat.shape[1]}"
        )
    return flat


class Classifier(nn.Module, Configurable):
    """Base class: ``forward(x) = head(features(x))``; ``feature_dim`` and ``n_classes`` are set."""

    feature_dim: int
    n_classes: int

    def features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def head(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class MLP(Classifier):
    """A fully connected classifier; images and signals are flattened.

    ``features(x)``: the last hidden layer's activations (N, hidden[-1]); ``head(z)``: the final
    linear layer. ``hidden=()`` gives a linear model whose features are the flattened input.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int] = (128, 128),
        out_dim: int = 10,
        *,
        activation: str = "relu",
        dropout: float = 0.0,
        norm: str | None = None,
        seed: int | None = None,
    ):
        super().__init__()
        if not isinstance(in_dim, int) or in_dim < 1:
            raise ValueError(f"in_dim must be a positive int, got {in_dim!r}")
        if not isinstance(out_dim, int) or out_dim < 1:
            raise ValueError(f"out_dim must be a positive int, got {out_dim!r}")
        hidden = tuple(int(h) for h in hidden)
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden sizes must be positive, got {hidden}")
        if norm not in (None, "batch", "layer"):
            raise ValueError(f"norm must be None, 'batch' or 'layer', got {norm!r}")
        self.in_dim, self.n_classes = in_dim, out_dim
        with _SeededInit(seed):
            layers: list[nn.Module] = []
            d = in_dim
            for h in hidden:
                layers.append(nn.Linear(d, h))
                if norm == "batch":
                    layers.append(nn.BatchNorm1d(h))
                elif norm == "layer":
                    layers.append(nn.LayerNorm(h))
                layers.append(_activation(activation))
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
                d = h
            self.body = nn.Sequential(*layers)
            self.fc = nn.Linear(d, out_dim)
        self.feature_dim = d

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(_check_input(x, self.in_dim, "MLP"))


class ConvNet(Classifier):
    """A small convolutional classifier for 8x8 images (N, C, H, W) or 1-D signals (N, C, L).

    ``in_shape`` is one sample's shape, e.g. ``(1, 8, 8)`` for digits or ``(1, 40)`` for
    mnist1d. Three 3x3 (or width-5 1-D) conv layers with ReLU, one 2x down-sampling, global
    average pooling, and a linear layer to ``feature_dim`` give ``features(x)``.
    """

    def __init__(
        self,
        in_shape: Sequence[int] = (1, 8, 8),
        n_classes: int = 10,
        *,
        width: int = 32,
        feature_dim: int = 64,
        norm: str | None = None,
        seed: int | None = None,
    ):
        super().__init__()
        in_shape = tuple(int(s) for s in in_shape)
        if len(in_shape) not in (2, 3):
            raise ValueError(
                f"in_shape must be (C, H, W) for images or (C, L) for signals, got {in_shape}"
            )
        if norm not in (None, "batch"):
            raise ValueError(f"norm must be None or 'batch', got {norm!r}")
        self.in_shape, self.n_classes, self.feature_dim = in_shape, n_classes, feature_dim
        two_d = len(in_shape) == 3
        Conv = nn.Conv2d if two_d else nn.Conv1d
        Norm = nn.BatchNorm2d if two_d else nn.BatchNorm1d
        Pool = nn.AdaptiveAvgPool2d if two_d else nn.AdaptiveAvgPool1d
        k = 3 if two_d else 5
        c = in_shape[0]

        def block(cin, cout, stride):
            mods = [Conv(cin, cout, k, stride=stride, padding=k // 2)]
            if norm == "batch":
                mods.append(Norm(cout))
            mods.append(nn.ReLU())
            return mods

        with _SeededInit(seed):
            self.body = nn.Sequential(
                *block(c, width, 1),
                *block(width, 2 * width, 2),
                *block(2 * width, 2 * width, 1),
                Pool(1),
                nn.Flatten(),
                nn.Linear(2 * width, feature_dim),
                nn.ReLU(),
            )
            self.fc = nn.Linear(feature_dim, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"ConvNet expects a torch.Tensor, got {type(x).__name__}")
        if not x.dtype.is_floating_point:
            raise TypeError(f"ConvNet expects floating-point inputs, got {x.dtype}; pass x.float()")
        if tuple(x.shape[1:]) != self.in_shape:
            if x.ndim == 2 and x.shape[1] == math.prod(self.in_shape):
                x = x.reshape(x.shape[0], *self.in_shape)
            else:
                raise ValueError(
                    f"ConvNet was built for samples of shape {self.in_shape} but got "
                    f"{tuple(x.shape[1:])}; build it with in_shape={tuple(x.shape[1:])}"
                )
        return self.body(x)


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Transformer-style sinusoidal embedding of (N,) values -> (N, dim)."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half
    )
    args = t.float()[:, None] * freqs[None, :]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class _ResBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.act = nn.GELU()

    def forward(self, h):
        return h + self.act(self.fc(h))


def guidance_embedding(w: torch.Tensor, dim: int) -> torch.Tensor:
    """LCM / diffusers-style embedding of a guidance scale: sinusoids of ``w · 1000`` with
    frequencies 10000^(−i/(dim/2 − 1)), i = 0..dim/2 − 1, as ``[sin..., cos...]`` -> (N, dim)."""
    half = dim // 2
    if half < 2:
        raise ValueError(f"the guidance embedding needs dim >= 4, got {dim}")
    freqs = torch.exp(-math.log(10_000.0) / (half - 1) * torch.arange(half, device=w.device, dtype=torch.float32))
    args = (w.float() * 1000.0)[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class _TimeInputs(nn.Module):
    """What every time-conditioned MLP here feeds its first layer: the sinusoidal timestep
    embedding, an optional label embedding (row ``n_classes`` = the null label), and the input
    (raw, or sinusoidally embedded per coordinate)."""

    def __init__(self, dim, time_dim, input_embedding, input_dim, input_scale, n_classes):
        super().__init__()
        self.dim, self.time_dim = dim, time_dim
        self.input_embedding, self.input_dim, self.input_scale = input_embedding, input_dim, input_scale
        self.n_classes = n_classes
        self.label_emb = nn.Embedding(n_classes + 1, time_dim) if n_classes else None
        self.out_features = (dim * input_dim if input_embedding else dim) + time_dim + (time_dim if n_classes else 0)

    def forward(self, x, t, y, who: str) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
            raise TypeError(f"{who} expects x_t as a floating-point tensor")
        n = x.shape[0]
        flat = x.reshape(n, -1)
        if flat.shape[1] != self.dim:
            raise ValueError(
                f"{who} was built for dim={self.dim} but got samples with {flat.shape[1]} values; "
                f"build it with dim={flat.shape[1]}"
            )
        parts = [sinusoidal_embedding(_per_sample(t, n, x.device, "t"), self.time_dim)]
        if self.label_emb is not None:
            y = torch.full((n,), self.n_classes, device=x.device, dtype=torch.long) if y is None else y
            y = _per_sample(y, n, x.device, "y")
            if y.dtype.is_floating_point or bool(((y < 0) | (y > self.n_classes)).any()):
                raise ValueError(
                    f"labels y must be integers in 0..{self.n_classes - 1} (or {self.n_classes}, the null label "
                    f"of classifier-free guidance), got values {y.unique()[:8].tolist()}"
                )
            parts.append(self.label_emb(y.long()))
        elif y is not None:
            raise TypeError(f"this {who} is unconditional; build it with n_classes=K to pass labels y")
        if self.input_embedding:
            e = sinusoidal_embedding((flat * self.input_scale).reshape(-1), self.input_dim)
            parts.append(e.reshape(n, -1))
        else:
            parts.append(flat)
        return torch.cat(parts, dim=-1)


def _per_sample(v, n: int, device, name: str) -> torch.Tensor:
    v = torch.as_tensor(v, device=device)
    if v.ndim == 0:
        v = v.expand(n)
    if v.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {tuple(v.shape)}")
    return v


class TimeMLP(nn.Module, Configurable):
    """A denoiser ``denoiser(x_t, t) -> same shape as x_t`` (ε, x0 or v, as the method says).

    ``t`` is the timestep (int or float, shape () or (N,)); it is embedded sinusoidally
    (``time_dim`` features). With ``input_embedding="sinusoidal"`` each input coordinate is
    also embedded with sinusoids (``input_scale`` sets the frequency, as tiny-diffusion does),
    which lets a small MLP resolve sharp 2-D modes; ``"auto"`` (default) does that for inputs
    of at most 4 values and feeds larger inputs (flattened images) in raw. Images are
    flattened and reshaped back.

    Conditioning (for guidance, ``wb.methods.ConditionalDDPM``): ``n_classes=K`` adds a learned
    label embedding with K + 1 rows; ``denoiser(x_t, t, y)`` takes labels 0..K−1, and
    ``y=None`` (or the label K, ``null_label``) is the unconditional "null" token of
    classifier-free guidance. ``guidance_input=True`` adds a guidance-scale input
    (``denoiser(x_t, t, y, scale=s)``, a guided-distillation student): ``guidance_embedding``
    of s, projected by a zero-initialised layer and added to the first hidden layer, so a
    student loaded with its teacher's weights starts as the teacher.

    ``hidden_layers``: the module names whose outputs are the hidden states
    (``wb.analyses.diffusion_features`` reads them).
    """

    def __init__(
        self,
        dim: int = 2,
        hidden: int = 128,
        n_layers: int = 3,
        *,
        time_dim: int = 64,
        input_embedding: str | None = "auto",
        input_dim: int = 64,
        input_scale: float = 25.0,
        n_classes: int | None = None,
        guidance_input: bool = False,
        seed: int | None = None,
    ):
        super().__init__()
        if input_embedding not in (None, "sinusoidal", "auto"):
            raise ValueError(
                f"input_embedding must be 'auto', 'sinusoidal' or None, got {input_embedding!r}"
            )
        if n_classes is not None and (not isinstance(n_classes, int) or isinstance(n_classes, bool) or n_classes < 1):
            raise ValueError(f"n_classes must be a positive int (the number of labels) or None, got {n_classes!r}")
        if input_embedding == "auto":
            input_embedding = "sinusoidal" if dim <= 4 else None
        self.dim, self.time_dim = dim, time_dim
        self.input_embedding, self.input_dim, self.input_scale = input_embedding, input_dim, input_scale
        self.n_classes, self.guidance_input = n_classes, bool(guidance_input)
        with _SeededInit(seed):
            self.embed = _TimeInputs(dim, time_dim, input_embedding, input_dim, input_scale, n_classes)
            self.inp = nn.Sequential(nn.Linear(self.embed.out_features, hidden), nn.GELU())
            self.blocks = nn.Sequential(*[_ResBlock(hidden) for _ in range(n_layers)])
            self.out = nn.Linear(hidden, dim)
            if self.guidance_input:
                self.scale_proj = nn.Linear(time_dim, hidden)
                nn.init.zeros_(self.scale_proj.weight)
                nn.init.zeros_(self.scale_proj.bias)
        self.hidden_layers = ("inp",) + tuple(f"blocks.{i}" for i in range(n_layers))

    @property
    def null_label(self) -> int | None:
        """The label of the unconditional (null) token, or None for an unconditional denoiser."""
        return self.n_classes

    def forward(self, x: torch.Tensor, t, y=None, *, scale=None) -> torch.Tensor:
        h = self.inp(self.embed(x, t, y, "TimeMLP"))
        if self.guidance_input:
            if scale is None:
                raise ValueError("this denoiser takes the guidance scale as input; call it as denoiser(x, t, y, scale=s)")
            h = h + self.scale_proj(guidance_embedding(_per_sample(scale, x.shape[0], x.device, "scale"), self.time_dim))
        elif scale is not None:
            raise TypeError("this denoiser has no guidance-scale input; build it with guidance_input=True")
        return self.out(self.blocks(h)).reshape(x.shape)


class TimeClassifier(nn.Module, Configurable):
    """A noise-aware classifier ``classifier(x_t, t) -> (N, n_classes)`` logits, for classifier
    guidance: the ``TimeMLP`` trunk (timestep and input embeddings, residual blocks) with a
    linear head. ``features(x_t, t)`` is the last hidden layer."""

    def __init__(
        self,
        dim: int = 2,
        n_classes: int = 2,
        hidden: int = 128,
        n_layers: int = 2,
        *,
        time_dim: int = 64,
        input_embedding: str | None = "auto",
        input_dim: int = 64,
        input_scale: float = 25.0,
        seed: int | None = None,
    ):
        super().__init__()
        if not isinstance(n_classes, int) or isinstance(n_classes, bool) or n_classes < 2:
            raise ValueError(f"n_classes must be an int >= 2, got {n_classes!r}")
        if input_embedding not in (None, "sinusoidal", "auto"):
            raise ValueError(
                f"input_embedding must be 'auto', 'sinusoidal' or None, got {input_embedding!r}"
            )
        if input_embedding == "auto":
            input_embedding = "sinusoidal" if dim <= 4 else None
        self.dim, self.n_classes, self.feature_dim = dim, n_classes, hidden
        with _SeededInit(seed):
            self.embed = _TimeInputs(dim, time_dim, input_embedding, input_dim, input_scale, None)
            self.inp = nn.Sequential(nn.Linear(self.embed.out_features, hidden), nn.GELU())
            self.blocks = nn.Sequential(*[_ResBlock(hidden) for _ in range(n_layers)])
            self.fc = nn.Linear(hidden, n_classes)

    def features(self, x: torch.Tensor, t) -> torch.Tensor:
        return self.blocks(self.inp(self.embed(x, t, None, "TimeClassifier")))

    def head(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc(z)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        return self.head(self.features(x, t))


# prototype-part networks (one file each; imported last: they build on Classifier above)
from .cbc import DeepCBC  # noqa: E402
from .conv_trunk import LinearHeadNet  # noqa: E402
from .discrete import TokenDenoiser  # noqa: E402
from .distill_convnet import DistillConvNet  # noqa: E402  (needs Classifier above)
from .protopnet import ProtoPNet  # noqa: E402
from .st_protopnet import STProtoPNet  # noqa: E402
from .wrap import Wrapped, WrappedClassifier, wrap  # noqa: E402  (models you did not write)
