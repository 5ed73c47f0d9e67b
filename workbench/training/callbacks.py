"""Callbacks observe a fit; they never own the loop.

Hooks (all optional): ``on_fit_start(state)``, ``on_batch_start(state)`` (the step's batch is
drawn, nothing computed yet: ``state.batch`` is ``(x, y)`` and ``state.batch_index`` its indices
into the training data), ``on_step_end(state)``, ``on_eval(state, metrics)``,
``on_fit_end(state)``. ``state`` is the ``FitState`` of the running fit: the model, method,
optimizer, history, current step and total; a callback ends the fit after the current step by
setting ``state.stop = True`` (that is how a stop button works). A callback that runs the model
must leave it as it found it (modes, buffers) and must not draw from torch's global generator,
so that a fit with it gives the same weights as without it (``ForgettingEvents`` shows how).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .._device import model_device
from .._modes import eval_mode


@dataclass
class FitState:
    model: nn.Module
    method: nn.Module
    optimizer: Any
    history: Any
    total_steps: int
    step: int = 0
    stop: bool = False
    last: dict[str, float] = field(default_factory=dict)
    batch: Any = None                       # the current step's (x, y)
    batch_index: torch.Tensor | None = None  # its indices into the training data


class Callback:
    def on_fit_start(self, state: FitState) -> None: ...

    def on_batch_start(self, state: FitState) -> None: ...

    def on_step_end(self, state: FitState) -> None: ...

    def on_eval(self, state: FitState, metrics: dict[str, float]) -> None: ...

    def on_fit_end(self, state: FitState) -> None: ...


class ProgressBar(Callback):
    """A ``tqdm.auto`` bar (a notebook widget in Jupyter, text in a terminal) showing the loss."""

    def __init__(self, every: int = 10):
        self.every = every
        self.bar = None

    def on_fit_start(self, state):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=state.total_steps, desc="fit", unit="step", leave=True)

    def on_step_end(self, state):
        if self.bar is None:
            return
        self.bar.update(1)
        if state.step % self.every == 0 or state.step == state.total_steps:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in list(state.last.items())[:3]}, refresh=False)

    def on_eval(self, state, metrics):
        if self.bar is not None:
            self.bar.set_postfix({f"val_{k}": f"{v:.4g}" for k, v in list(metrics.items())[:3]}, refresh=False)

    def on_fit_end(self, state):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class StopAfter(Callback):
    """End the fit once ``step`` steps are done (or when ``predicate(state)`` is True)."""

    def __init__(self, step: int | None = None, predicate=None):
        self.step, self.predicate = step, predicate

    def on_step_end(self, state):
        if (self.step is not None and state.step >= self.step) or (
            self.predicate is not None and self.predicate(state)
        ):
            state.stop = True


@dataclass(frozen=True)
class SnapshotSeries:
    """Snapshots taken during a fit: all tensors detached, on CPU.

    ``steps[i]`` is when snapshot i was taken (0 = before training); ``params[i]`` the model's
    parameters and buffers (a dict like ``state_dict()``), ``embeddings[i]`` an (N, d) tensor of
    the probe data's features, ``method_states[i]`` the method's buffers (e.g. PALM's prototypes).
    Lists are empty for what was not recorded.
    """

    steps: tuple[int, ...]
    params: tuple[dict[str, torch.Tensor], ...]
    embeddings: tuple[torch.Tensor, ...]
    method_states: tuple[dict[str, torch.Tensor], ...]

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        what = [
            n for n, v in (("params", self.params), ("embeddings", self.embeddings),
                           ("method_states", self.method_states)) if v
        ]
        return f"SnapshotSeries({len(self.steps)} snapshots at steps {list(self.steps)[:6]}{'...' if len(self.steps) > 6 else ''}; {', '.join(what)})"


class Snapshots(Callback):
    """Keep parameters and/or embeddings every ``every`` steps (and before the first step).

    ``embed``: a Dataset whose features are recorded (``embed_fn(model, x)`` computes them;
    default ``model.features``); ``params`` and ``method_state`` choose what else is kept. The
    result lands in ``history.snapshots`` as a ``SnapshotSeries`` when the fit ends; the views
    animate over it.
    """

    def __init__(
        self,
        every: int = 100,
        *,
        params: bool = True,
        embed=None,
        embed_fn=None,
        method_state: bool = True,
        batch_size: int = 1024,
    ):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive int, got {every!r}")
        self.every, self.keep_params, self.embed_data = every, params, embed
        self.embed_fn, self.keep_method, self.batch_size = embed_fn, method_state, batch_size
        self._reset()

    def _reset(self):
        self.steps, self.params, self.embeddings, self.method_states = [], [], [], []

    @torch.no_grad()
    def _take(self, state: FitState):
        model, method = state.model, state.method
        self.steps.append(state.step)
        if self.keep_params:
            self.params.append({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
        if self.keep_method:
            self.method_states.append({k: v.detach().cpu().clone() for k, v in method.named_buffers()})
        if self.embed_data is not None:
            dev = model_device(model)
            fn = self.embed_fn or (lambda m, x: m.features(x))
            with eval_mode(model):
                outs = [
                    fn(model, x).detach().cpu()
                    for x, _ in self.embed_data.loader(self.batch_size, shuffle=False, device=dev)
                ]
            self.embeddings.append(torch.cat(outs))

    def on_fit_start(self, state):
        self._reset()
        self._take(state)

    def on_step_end(self, state):
        if state.step % self.every == 0:
            self._take(state)

    def on_fit_end(self, state):
        if self.steps[-1] != state.step:
            self._take(state)
        state.history.snapshots = self.result()

    def result(self) -> SnapshotSeries:
        return SnapshotSeries(
            tuple(self.steps), tuple(self.params), tuple(self.embeddings), tuple(self.method_states)
        )
