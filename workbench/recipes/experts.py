"""Expert trajectories for trajectory matching (MTT, DATM): networks trained on the real data,
their parameters kept after every epoch, saved as runs.

``train_experts(data, n_experts=8, epochs=20)`` trains ``n_experts`` fresh networks (the DD
ConvNet by default) with plain SGD and cross-entropy through ``wb.fit``, with a
``wb.training.Snapshots`` callback taking the parameters at the start and after every epoch.
With ``store`` (a folder or ``wb.runs.RunStore``; ``save=True``) each expert is saved as a run
(``name="expert"``, one ``group`` per call, snapshots included), so a later session reloads the
trajectories with ``load_experts(run_ids, store=...)`` instead of training again.

A trajectory is an (E + 1, P) tensor: the P parameters (flattened in ``named_parameters``
order; buffers excluded — the default network has none) after 0, 1, ..., E epochs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .._checks import check_int, check_number
from ..analyses.classification import predict
from ..methods.cross_entropy import CrossEntropy
from ..training import fit
from ..training.callbacks import Snapshots
from ._synthetic import default_net

__all__ = ["Experts", "train_experts", "load_experts", "flat_params"]


def flat_params(model: nn.Module, state: dict | None = None) -> torch.Tensor:
    """The model's parameters (or those named in a state dict) as one flat CPU vector (P,)."""
    names = [n for n, _ in model.named_parameters()]
    src = state if state is not None else dict(model.named_parameters())
    return torch.cat([src[n].detach().reshape(-1).float().cpu() for n in names])


@dataclass(frozen=True, eq=False)
class Experts:
    """``trajectories``: one (E + 1, P) tensor per expert; ``accuracy``: each expert's final
    test accuracy (NaN without a test set); ``run_ids``: the saved runs (empty if not saved);
    ``lr``: the experts' SGD learning rate; ``model_config``: how to rebuild the network."""

    trajectories: tuple[torch.Tensor, ...] = field(repr=False)
    accuracy: torch.Tensor
    run_ids: tuple[str, ...]
    lr: float
    model_name: str
    model_config: dict = field(repr=False)

    @property
    def epochs(self) -> int:
        return int(self.trajectories[0].shape[0]) - 1

    def __len__(self) -> int:
        return len(self.trajectories)

    def make_model(self, seed: int = 0) -> nn.Module:
        """A network of the experts' architecture (fresh initialisation with ``seed``)."""
        from .._config import build

        cfg = dict(self.model_config)
        if "seed" in cfg:
            cfg["seed"] = seed
        return build(self.model_name, cfg)

    def model(self, index: int = 0, epoch: int = -1) -> nn.Module:
        """Expert ``index`` as a network, with its parameters after ``epoch`` (−1: the last)."""
        net = self.make_model(0)
        torch.nn.utils.vector_to_parameters(self.trajectories[index][epoch].clone(), net.parameters())
        return net

    def __repr__(self) -> str:
        acc = self.accuracy
        shown = f", test accuracy {float(acc.mean()):.4f} (min {float(acc.min()):.4f})" if not acc.isnan().all() else ""
        return (f"Experts({len(self)} trajectories of {self.epochs} epochs, "
                f"{self.trajectories[0].shape[1]} parameters, lr {self.lr:g}{shown}"
                f"{', saved as runs' if self.run_ids else ''})")


def train_experts(data, *, n_experts: int = 8, epochs: int = 20, lr: float = 0.05, batch_size: int = 64,
                  momentum: float = 0.0, make_model=None, test=None, store=None, save: bool | None = None,
                  group: str | None = None, seed: int = 0) -> Experts:
    """Train ``n_experts`` networks on ``data`` (SGD with ``lr``/``momentum``, ``epochs``
    epochs), keeping their parameters after every epoch; save them as runs when ``store`` is
    given (or ``save=True``: the default store). ``make_model(seed)``: the network (default the
    DD ConvNet)."""
    n_experts = check_int(n_experts, "n_experts", min=1)
    epochs = check_int(epochs, "epochs", min=1)
    check_number(lr, "lr", min=0, min_open=True)
    make_model = make_model or (lambda s: default_net(data, s))
    save = store is not None if save is None else bool(save)
    per_epoch = max(1, len(data) // batch_size)
    group = group or f"experts-{seed}"
    trajs, accs, ids = [], [], []
    model = None
    for k in range(n_experts):
        model = make_model(seed * 1000 + k)
        snaps = Snapshots(every=per_epoch, params=True, method_state=False)
        hist = fit(model, CrossEntropy(), data, epochs=epochs, lr=lr, batch_size=batch_size, optimizer="sgd",
                   momentum=momentum, seed=seed * 1000 + k, callbacks=[snaps], progress=False)
        trajs.append(torch.stack([flat_params(model, p) for p in hist.snapshots.params]))
        accs.append(predict(model, test).accuracy if test is not None else float("nan"))
        if save:
            from .. import runs

            ids.append(runs.save(model, CrossEntropy(), hist, name="expert", group=group, data=data,
                                 metrics={"test_acc": accs[-1]} if test is not None else None, store=store))
    return Experts(tuple(trajs), torch.tensor(accs), tuple(ids), float(lr), type(model).__name__, dict(model.config))


def load_experts(run_ids, *, store=None) -> Experts:
    """Rebuild ``Experts`` from saved runs (``train_experts(..., store=...)``'s ``run_ids``)."""
    from .. import runs

    run_ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
    if not run_ids:
        raise ValueError("no run ids given")
    trajs, accs, lr, model = [], [], None, None
    for rid in run_ids:
        model, _, hist = runs.load(rid, store=store, snapshots=True)
        if hist.snapshots is None or not hist.snapshots.params:
            raise ValueError(f"run {rid} has no parameter snapshots; it was not saved by train_experts")
        trajs.append(torch.stack([flat_params(model, p) for p in hist.snapshots.params]))
        accs.append(float(runs.get(rid, store=store).metrics.get("test_acc", float("nan"))))
        lr = hist.config.get("lr", lr)
    return Experts(tuple(trajs), torch.tensor(accs), tuple(run_ids), float(lr), type(model).__name__, dict(model.config))
