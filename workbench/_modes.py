"""Train/eval mode switches that always put every submodule back as it was.

``module.train(was)`` restores only a uniform mode: a user's network whose BatchNorm layers are
frozen in eval mode inside a model in train mode (a common fine-tuning set-up) would come back
with every layer in train mode. These context managers record the flag of *every* submodule and
restore each one, also when the body raises. Everything in the workbench that switches a mode
goes through them.

    with eval_mode(model, method):
        z = model.features(x)          # dropout off, BatchNorm running statistics used

    with train_mode(model, method):    # fit's loop
        ...
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


def _modules(objs) -> list[nn.Module]:
    seen, out = set(), []
    for m in objs:
        if isinstance(m, nn.Module) and id(m) not in seen:
            seen.add(id(m))
            out.append(m)
    return out


def mode_flags(*modules) -> list[tuple[nn.Module, bool]]:
    """``(submodule, training)`` for every submodule of the given modules (non-modules skipped)."""
    return [(sub, sub.training) for m in _modules(modules) for sub in m.modules()]


def restore_flags(flags: list[tuple[nn.Module, bool]]) -> None:
    """Put every submodule recorded by ``mode_flags`` back in its recorded mode."""
    for sub, was in flags:
        sub.training = was


@contextlib.contextmanager
def set_mode(*modules, training: bool) -> Iterator[None]:
    """Switch ``modules`` (``.train(training)``, which a module may override, e.g. to keep a
    frozen teacher in eval mode) for the duration; afterwards every submodule gets back the mode
    it had. Arguments that are not ``nn.Module`` (None, plain callables) are ignored."""
    flags = mode_flags(*modules)
    try:
        for m in _modules(modules):
            m.train(training)
        yield
    finally:
        restore_flags(flags)


def eval_mode(*modules):
    """``with eval_mode(model, method): ...`` (see ``set_mode``)."""
    return set_mode(*modules, training=False)


def train_mode(*modules):
    """``with train_mode(model, method): ...`` (see ``set_mode``)."""
    return set_mode(*modules, training=True)
