"""Tensors a method creates after construction (a replay buffer sized by the data, prototypes set
by a clustering) and that a checkpoint must still restore.

A method lists them in ``_lazy_buffers`` / ``_lazy_parameters``; when a state dict holds one that
the freshly rebuilt method has not created yet, an empty tensor of the saved shape is registered
first, then the normal loading copies the values in. ``_after_lazy_load`` lets the method rebuild
plain Python state derived from them.
"""

from __future__ import annotations

import torch
from torch import nn


class LazyStateMixin:
    _lazy_buffers: tuple[str, ...] = ()
    _lazy_parameters: tuple[str, ...] = ()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in self._lazy_buffers:
            key = prefix + name
            if key in state_dict and getattr(self, name, None) is None:
                saved = state_dict[key]
                self.register_buffer(name, torch.empty_like(saved))
        for name in self._lazy_parameters:
            key = prefix + name
            if key in state_dict and getattr(self, name, None) is None:
                setattr(self, name, nn.Parameter(torch.empty_like(state_dict[key])))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._after_lazy_load()

    def _after_lazy_load(self):
        pass
