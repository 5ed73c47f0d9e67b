"""ProtoPNet's three training stages and the push, and the linear-head baseline beside it.

Chen et al., "This Looks Like That" (NeurIPS 2019); official ``main.py`` / ``settings.py``:

1. **warm-up** (``warm_epochs``, official 5): only the add-on and the prototypes train (Adam,
   lr 3e-3, add-on weight decay 1e-3); the trunk and the last layer are frozen;
2. **joint** (``joint_epochs``): trunk (lr 1e-4 for a pretrained backbone; 1e-3 here because
   the trunk learns from scratch), add-on and prototypes train; the last layer stays frozen
   (in the official code it is in neither optimizer);
3. **push**: ``wb.analyses.project_prototypes`` finds every prototype's nearest training patch
   of its class and ``model.push_`` copies it in, so each prototype *is* a real patch;
4. **last layer** (``last_epochs``, official 20 passes): only W trains, on CE + 1e-4·L1 of the
   wrong-class connections: the convex step that recovers the accuracy lost at the push.

Official lr decay (StepLR(5, 0.1) from the first joint epoch) is not applied: the notes measured
that it stalls a from-scratch trunk at 0.76-0.86 on digits. The official last-layer lr 1e-4 is
tuned for ~2,250 steps per epoch; with ~20 steps per epoch on digits it barely moves W
(0.87-0.89 against 0.95-0.96 with 1e-2 in the notes), so ``lr_last`` defaults to 1e-2.
The official schedule pushes every 10 epochs from epoch 10; here there is one push at the end of
the joint stage (the notes' reproduction), ``pushes=`` more to interleave push + last layer.

``STProtoPNet`` (with ``wb.methods.STProtoPNetLoss``) and ``DeepCBC`` (``wb.methods.CBCLoss``)
train with the same stages (ST-ProtoPNet's official 5 warm epochs freeze the backbone and both
last layers, as here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .._checks import check_int, check_number, check_seed
from ..analyses.classification import predict
from ..analyses.prototype_parts import PatchProjection, project_prototypes
from ..training import fit

__all__ = ["train_protopnet", "ProtoPNetTraining", "linear_head_baseline", "default_loss"]


@dataclass(frozen=True, eq=False)
class ProtoPNetTraining:
    """What ``train_protopnet`` did: ``histories`` (stage name -> History), ``accuracy`` (on
    ``val``: ``"joint"`` before the push, ``"push"`` right after it, ``"last"`` after the
    last-layer stage), ``projection`` (the final ``PatchProjection``) and the ``model``
    (trained in place)."""

    model: nn.Module = field(repr=False)
    histories: dict[str, Any] = field(repr=False)
    accuracy: dict[str, float]
    projection: PatchProjection | None = field(repr=False)

    def __repr__(self) -> str:
        acc = ", ".join(f"{k} {v:.4f}" for k, v in self.accuracy.items())
        return f"ProtoPNetTraining({type(self.model).__name__}; val accuracy: {acc})"


def default_loss(model) -> nn.Module:
    """The objective that goes with the network: ProtoPNetLoss, STProtoPNetLoss or CBCLoss."""
    from .. import methods

    name = type(model).__name__
    table = {"ProtoPNet": methods.ProtoPNetLoss, "STProtoPNet": methods.STProtoPNetLoss,
             "DeepCBC": methods.CBCLoss}
    if name not in table:
        raise TypeError(f"train_protopnet trains {', '.join(table)}; got {name}")
    return table[name]()


def grouped_adam(model, lrs: dict[str, float], decay: dict[str, float]):
    """An optimizer factory for ``wb.fit``: Adam with one parameter group per model group
    (features, add_on, prototypes, last_layer), each with its own lr and weight decay. Only the
    parameters ``fit`` hands over (those requiring grad in the current stage) are used."""
    groups = model.parameter_groups()

    def factory(params, *, lr, weight_decay=None):  # fit's single lr is ignored: groups set theirs
        live = {id(p) for p in params}
        seen: set[int] = set()
        out = []
        for name, ps in groups.items():
            ps = [p for p in ps if id(p) in live]
            seen |= {id(p) for p in ps}
            if ps:
                out.append({"params": ps, "lr": lrs[name], "weight_decay": decay.get(name, 0.0)})
        rest = [p for p in params if id(p) not in seen]  # a method's own parameters, if any
        if rest:
            out.append({"params": rest, "lr": lr})
        return torch.optim.Adam(out)

    return factory


def _accuracy(model, data) -> float:
    return predict(model, data).accuracy


def train_protopnet(
    model: nn.Module,
    train,
    *,
    val=None,
    push_data=None,
    method: nn.Module | None = None,
    warm_epochs: int = 5,
    joint_epochs: int = 35,
    last_epochs: int = 20,
    pushes: int = 1,
    batch_size: int = 64,
    lr_features: float = 1e-3,
    lr_add_on: float = 3e-3,
    lr_prototypes: float = 3e-3,
    lr_last: float = 1e-2,
    weight_decay: float = 1e-3,
    seed: int = 0,
    **fit_options,
) -> ProtoPNetTraining:
    """Warm-up, joint, push, last layer (module docstring); ``model`` trains in place.

    ``push_data``: the un-augmented labelled set the prototypes are projected onto (default
    ``train``); ``val``: scores each stage (default ``train``). ``pushes`` > 1 splits the joint
    stage into that many parts, each followed by a push and a last-layer stage (the official
    schedule's repeated pushes). ``fit_options`` go to every ``wb.fit``.
    """
    for name, v in (("warm_epochs", warm_epochs), ("joint_epochs", joint_epochs), ("last_epochs", last_epochs)):
        check_int(v, name, min=0)
    check_int(pushes, "pushes", min=1)
    check_seed(seed)
    for name, v in (("lr_features", lr_features), ("lr_add_on", lr_add_on), ("lr_prototypes", lr_prototypes),
                    ("lr_last", lr_last)):
        check_number(v, name, min=0, min_open=True)
    check_number(weight_decay, "weight_decay", min=0)
    method = default_loss(model) if method is None else method
    val = train if val is None else val
    push_data = train if push_data is None else push_data
    fit_options.setdefault("progress", False)
    lrs = dict(features=lr_features, add_on=lr_add_on, prototypes=lr_prototypes, last_layer=lr_last)
    wds = dict(features=weight_decay, add_on=weight_decay)
    opt = grouped_adam(model, lrs, wds)
    hist: dict[str, Any] = {}
    acc: dict[str, float] = {}
    projection = None

    def run(stage: str, key: str, epochs: int, offset: int):
        if epochs == 0:
            return
        with model.stage(stage):
            hist[key] = fit(model, method, train, epochs=epochs, batch_size=batch_size, lr=1.0,
                            optimizer=opt, seed=seed + offset, **fit_options)

    run("warm", "warm", warm_epochs, 0)
    per = [joint_epochs // pushes + (1 if i < joint_epochs % pushes else 0) for i in range(pushes)]
    for i, ep in enumerate(per):
        tag = "" if pushes == 1 else f" {i + 1}"
        run("joint", f"joint{tag}", ep, 1 + 3 * i)
        acc[f"joint{tag}"] = _accuracy(model, val)
        projection = project_prototypes(model, push_data)
        model.push_(projection)
        acc[f"push{tag}"] = _accuracy(model, val)
        run("last", f"last{tag}", last_epochs, 2 + 3 * i)
        acc[f"last{tag}"] = _accuracy(model, val)
    return ProtoPNetTraining(model=model, histories=hist, accuracy=acc, projection=projection)


def linear_head_baseline(model: nn.Module, train, *, val=None, epochs: int = 40, batch_size: int = 64,
                         lr: float = 1e-3, seed: int = 0, **fit_options):
    """The same trunk with a linear head (``wb.models.LinearHeadNet`` built from ``model``'s
    trunk settings and ``seed``), trained with cross-entropy for ``epochs``. Returns
    ``(baseline_model, val_accuracy)``."""
    from .. import methods, models

    cfg = getattr(model, "config", None)
    if cfg is None or not {"in_shape", "n_classes", "width", "n_pools"} <= set(cfg):
        raise TypeError("linear_head_baseline builds the baseline from a workbench prototype-part network's config")
    base = models.LinearHeadNet(cfg["in_shape"], cfg["n_classes"], width=cfg["width"], n_pools=cfg["n_pools"],
                                seed=cfg.get("seed"))
    fit_options.setdefault("progress", False)
    fit(base, methods.CrossEntropy(), train, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, **fit_options)
    return base, _accuracy(base, train if val is None else val)
