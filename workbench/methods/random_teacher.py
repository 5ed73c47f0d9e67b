"""Random-teacher distillation (Sarnthein, Bachmann, Anagnostidis & Hofmann, ICML 2023, "Random
Teachers are Good Teachers").

A teacher network is left at its random initialisation and frozen; a student of the same
architecture is trained, **without labels and without augmentation**, to reproduce the
teacher's outputs on the training inputs. Although the teacher knows nothing about the data,
the student's representation (the encoder output, ``model.features``) becomes better than the
teacher's under a linear probe: the paper's evidence that teacher-student dynamics alone do
feature learning.

The objective, in words (the paper's DINO-style setting, its appendix A and E):

* encoder g (``model.features``) → projection head h: an MLP (feature → ``hidden`` → ``hidden``
  → ``bottleneck``, GELU, weights trunc-normal σ = 0.02, biases 0), then the **L2 bottleneck**:
  the bottleneck vector is L2-normalised and multiplied by a weight-normalised linear map with
  unit-norm columns (no bias) to ``out_dim`` outputs, so every output is a cosine in [−1, 1];
* teacher distribution p_t = softmax((h_T(g_T(x)) − c) / τ_t), student log-distribution
  log p_s = log_softmax(h_S(g_S(x)) / τ_s); loss = batch mean of the cross-entropy
  −Σ_k p_t,k log p_s,k (= KL(p_t ‖ p_s) + the teacher's entropy, a constant); the logs report the
  KL as ``kl``;
* the paper's random-teacher column: τ_t = τ_s = 1, no centering (c = 0), teacher frozen (no
  EMA), no augmentation, Adam(W) with lr 1e-3. ``center_momentum`` switches DINO's centering
  on (c ← m·c + (1 − m)·batch mean of the teacher's outputs, while training), and
  ``teacher_temp``/``student_temp`` give DINO's sharpening (0.04 / 0.1) if you want them.
* **locality** (the paper's α): the student starts at θ_S = ((1 − α) θ_T + α θ̃) / δ with a
  fresh initialisation θ̃ and δ = √(α² + (1 − α)²) (``make_student`` builds such an encoder; the
  student head is built the same way from the teacher head). The paper uses α ≈ 1e-10 and finds
  α ≤ 0.6 all behave alike and α = 1 (independent student) learns slower.

Where this knowingly differs from the paper / its code (github.com/safelix/dinopl):

* Sizes: the paper's head is 512 → 2048 → 2048 → 256 → 2^16 on ResNet18/VGG11 encoders; the
  defaults here (→ 256 → 256 → 64 → 1024) fit a laptop CPU and the workbench's small models.
  (The paper reports the effect needs ``out_dim`` ≥ 2^8 but not 2^16.)
* Default locality α = 0.1 rather than 1e-10: in float32, α = 1e-10 leaves the student an
  exact copy of the teacher wherever the teacher's weight is not 0 (1 − 1e-10 rounds to 1), so
  the only asymmetry is in the zero-initialised biases; α = 0.1 is inside the range the paper
  found equivalent (α ≤ 0.6) and does not rely on rounding. Pass ``locality=1e-10`` to
  follow the paper literally.
* The teacher copy is frozen and kept in eval mode (as the paper: "BN in eval mode").

What we measured with this code (mnist1d, 3000 signals, MLP 40 → 256 → 256 encoder, 1500 steps,
Adam 1e-3, batch 128; linear probe = standardised logistic regression on the encoder output):

* with **batch norm** in the encoder (``norm="batch"``), over 6 seeds the student's probe
  accuracy was 0.614 on average against 0.577 for the teacher as initialised and 0.587 for the
  teacher with batch-norm statistics recomputed on the data (same weights; see
  ``wb.analyses.batchnorm_recalibrated``) — the student won on all 6 seeds, by 0.7 to 5.3
  points over the recalibrated teacher. A real but small effect: the paper reports 10-15
  points on CIFAR10 with ResNet18/VGG11 after 150 epochs.
* **without** normalisation the student did not move away from the teacher's probe accuracy
  within 2000 steps (0.583 vs 0.584 over 3 seeds); with a 1-D ConvNet with batch norm the
  student beat the teacher as initialised but not the recalibrated teacher (0.72 vs 0.77,
  2 seeds).
  Compare against ``batchnorm_recalibrated(teacher, data)``: a random teacher evaluated with
  its initial batch-norm statistics (mean 0, variance 1) is a weak baseline.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int, check_number, check_seed
from .base import Method
from .kd import freeze


class L2BottleneckHead(nn.Module):
    """DINO-style projection head: MLP → L2-normalise → weight-normalised linear (cosines out)."""

    def __init__(self, in_dim: int, hidden: int = 256, bottleneck: int = 64, out_dim: int = 1024,
                 n_layers: int = 3):
        super().__init__()
        for name, v in (("in_dim", in_dim), ("hidden", hidden), ("bottleneck", bottleneck),
                        ("out_dim", out_dim), ("n_layers", n_layers)):
            check_int(v, name, min=1)
        layers: list[nn.Module] = []
        d = in_dim
        for _ in range(n_layers - 1):
            layers += [nn.Linear(d, hidden), nn.GELU()]
            d = hidden
        layers.append(nn.Linear(d, bottleneck))
        self.mlp = nn.Sequential(*layers)
        self.last = nn.Linear(bottleneck, out_dim, bias=False)   # weight (out_dim, bottleneck)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.normalize(self.mlp(z), dim=-1)                      # (B, bottleneck), unit norm
        w = F.normalize(self.last.weight, dim=1)                  # unit-norm rows = V's columns
        return h @ w.T                                            # (B, out_dim) cosines


def interpolate_init(teacher: nn.Module, fresh: nn.Module, locality: float) -> nn.Module:
    """A copy of ``teacher`` with parameters ((1 − α)·θ_T + α·θ_fresh) / √(α² + (1 − α)²).

    ``fresh`` must have the same architecture (a fresh initialisation); buffers come from the
    teacher. ``locality`` α = 0 gives the teacher itself, 1 the fresh network.
    """
    a = _check_locality(locality)
    for name, net in (("teacher", teacher), ("fresh", fresh)):
        if not isinstance(net, nn.Module):
            raise TypeError(f"{name} must be an nn.Module, got {type(net).__name__}")
    delta = math.sqrt(a * a + (1 - a) * (1 - a))
    out = copy.deepcopy(teacher)
    pt, pf = dict(teacher.named_parameters()), dict(fresh.named_parameters())
    if pt.keys() != pf.keys() or any(pt[k].shape != pf[k].shape for k in pt):
        raise ValueError("the fresh network must have exactly the teacher's architecture")
    with torch.no_grad():
        for name, p in out.named_parameters():
            p.copy_(((1 - a) * pt[name] + a * pf[name].to(p.device)) / delta)
            p.requires_grad_(True)
            p.grad = None
    return out.train(teacher.training)


def _check_locality(locality):
    if isinstance(locality, bool) or not isinstance(locality, (int, float)) or not 0.0 <= locality <= 1.0:
        raise ValueError(f"locality (the paper's α) must be in [0, 1], got {locality!r}")
    return float(locality)


class RandomTeacherDistillation(Method):
    """Distil a frozen, randomly initialised ``teacher`` into the student, without labels.

    ``teacher``: a workbench model at random initialisation (e.g. ``wb.models.MLP(..., seed=1)``
    never trained); it is deep-copied and frozen (``method.teacher``). The student is the model
    you pass to ``fit``: build it with ``method.make_student(seed=...)`` to start it near the
    teacher (locality α), or pass any model whose ``features`` have the teacher's size.
    Heads: ``hidden``, ``bottleneck``, ``out_dim`` size the L2-bottleneck projection heads
    (one frozen for the teacher, one trained for the student, both owned by the method);
    ``teacher_temp`` / ``student_temp``: softmax temperatures (1, 1 in the paper's random-teacher
    runs); ``center_momentum``: None (paper) or DINO's 0.9 for centering; ``locality``: α for the
    student head (and the default for ``make_student``); ``seed``: the heads' initialisation.
    Logs ``kl`` (KL(teacher ‖ student), batch mean) and ``agree`` (argmax agreement of the
    ``out_dim``-way outputs). ``needs_labels`` is False.
    """

    needs_labels = False

    def __init__(
        self,
        teacher: nn.Module,
        *,
        out_dim: int = 1024,
        hidden: int = 256,
        bottleneck: int = 64,
        teacher_temp: float = 1.0,
        student_temp: float = 1.0,
        center_momentum: float | None = None,
        locality: float = 0.1,
        seed: int = 0,
    ):
        super().__init__()
        if not isinstance(teacher, nn.Module) or not hasattr(teacher, "features"):
            raise TypeError(
                f"teacher must be a workbench model with features(x) (e.g. wb.models.MLP at random "
                f"init), got {type(teacher).__name__}"
            )
        if not hasattr(teacher, "config"):
            raise TypeError(
                f"teacher {type(teacher).__name__} does not record its config, so checkpoints could "
                "not rebuild it; use a workbench model (wb.models.MLP, ConvNet, ...)"
            )
        feature_dim = getattr(teacher, "feature_dim", None)
        if not isinstance(feature_dim, int):
            raise TypeError(f"teacher {type(teacher).__name__} has no integer feature_dim")
        for name, v in (("out_dim", out_dim), ("hidden", hidden), ("bottleneck", bottleneck)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        for name, v in (("teacher_temp", teacher_temp), ("student_temp", student_temp)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        if center_momentum is not None:
            check_number(center_momentum, "center_momentum", min=0, max=1, max_open=True,
                         hint="or None for no centering")
        check_seed(seed)
        if center_momentum is not None and not (0.0 <= center_momentum < 1.0):
            raise ValueError(f"center_momentum must be None (no centering) or in [0, 1), got {center_momentum!r}")
        self.locality = _check_locality(locality)
        self.teacher_temp, self.student_temp = float(teacher_temp), float(student_temp)
        self.center_momentum = None if center_momentum is None else float(center_momentum)
        self.seed = int(seed)
        self.feature_dim = feature_dim

        from ..models import _SeededInit

        self.teacher = freeze(copy.deepcopy(teacher))
        with _SeededInit(self.seed):
            t_head = L2BottleneckHead(feature_dim, hidden, bottleneck, out_dim)
        with _SeededInit(self.seed + 1):
            fresh_head = L2BottleneckHead(feature_dim, hidden, bottleneck, out_dim)
        self.student_head = interpolate_init(t_head, fresh_head, self.locality)
        self.teacher_head = freeze(t_head)
        self.register_buffer("center", torch.zeros(out_dim))

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()
        self.teacher_head.eval()
        return self

    def make_student(self, *, seed: int, locality: float | None = None) -> nn.Module:
        """A new encoder of the teacher's architecture, initialised at locality α from it.

        θ_S = ((1 − α)·θ_T + α·θ̃)/δ with θ̃ a fresh initialisation (the teacher's config with
        ``seed``, which must differ from the teacher's); ``locality=None`` uses the method's.
        ``locality=1`` is an independent student. The student is on the teacher copy's device;
        its ``config`` is the fresh network's (a checkpoint restores its actual weights).
        """
        from .._config import build

        a = self.locality if locality is None else _check_locality(locality)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int (the fresh initialisation θ̃), got {seed!r}")
        cfg = dict(self.teacher.config)
        if "seed" not in cfg:
            raise TypeError(f"{type(self.teacher).__name__} takes no seed=, so make_student cannot draw θ̃")
        if cfg["seed"] == seed:
            raise ValueError(
                f"seed={seed} is the teacher's own seed, so θ̃ would be the teacher itself; pass another seed"
            )
        cfg["seed"] = seed
        fresh = build(type(self.teacher).__name__, cfg).to(next(self.teacher.parameters()).device)
        student = interpolate_init(self.teacher, fresh, a)
        object.__setattr__(student, "config", fresh.config)
        return student.train()

    def teacher_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen teacher's ``out_dim`` outputs (cosines) for inputs ``x``."""
        with torch.no_grad():
            return self.teacher_head(self.teacher.features(x))

    def student_outputs(self, model, x: torch.Tensor) -> torch.Tensor:
        return self.student_head(model.features(x))

    def loss(self, model, batch):
        x = batch[0]
        z = model.features(x)
        if z.ndim != 2 or z.shape[1] != self.feature_dim:
            raise ValueError(
                f"the student's features have shape {tuple(z.shape)} but the teacher's are "
                f"(N, {self.feature_dim}); use a student of the teacher's architecture "
                "(method.make_student())"
            )
        s = self.student_head(z)
        t = self.teacher_outputs(x)
        log_p_t = F.log_softmax((t - self.center) / self.teacher_temp, dim=-1)
        p_t = log_p_t.exp()
        log_p_s = F.log_softmax(s / self.student_temp, dim=-1)
        loss = -(p_t * log_p_s).sum(-1).mean()
        kl = (p_t * (log_p_t - log_p_s.detach())).sum(-1).mean()
        if self.training and self.center_momentum is not None:
            with torch.no_grad():
                m = self.center_momentum
                self.center.mul_(m).add_(t.mean(0), alpha=1 - m)
        agree = (s.detach().argmax(1) == t.argmax(1)).float().mean()
        return loss, {"kl": kl, "agree": agree}

    def evaluate(self, model, data, batch_size: int = 1024) -> dict[str, float]:
        """Mean loss, ``kl`` and ``agree`` over ``data`` (no ``acc``: the student's classifier
        head is never trained here; measure the features with a linear probe instead)."""
        out = super().evaluate(model, data, batch_size)
        out.pop("acc", None)
        return out
