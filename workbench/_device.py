"""Device helpers: the model's device is the truth; the library never moves a model by itself."""

from __future__ import annotations

import torch
from torch import nn


def pick_device() -> torch.device:
    """Return ``cuda`` when a GPU is available, else ``cpu``. Nothing is moved for you."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter (or buffer); CPU for a model with neither."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def check_same_device(model: nn.Module, tensor: torch.Tensor, what: str = "data") -> None:
    """Raise a ValueError when ``tensor`` lives on a device other than the model's.

    CPU tensors are accepted for a model on an accelerator only by callers that move batches
    themselves; this check is for the strict case.
    """
    dev = model_device(model)
    if tensor.device != dev:
        raise ValueError(
            f"the model is on {dev} but the {what} is on {tensor.device}; move one of them, "
            f"e.g. data.to({str(dev)!r}) or model.to({str(tensor.device)!r})"
        )


def same_device_type(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type:
        return False
    if a.type == "cuda":
        ia = a.index if a.index is not None else torch.cuda.current_device()
        ib = b.index if b.index is not None else torch.cuda.current_device()
        return ia == ib
    return True
