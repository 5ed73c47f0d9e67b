"""Argument checks shared by the public entry points: one clear error per kind of bad input.

Each helper returns the value (as a plain Python ``int`` / ``float`` / ``bool``) or raises a
``TypeError`` (wrong kind of value: a string, a bool where a count belongs, a float where an
integer belongs) or a ``ValueError`` (right kind, outside the allowed range, NaN), naming the
argument, what it got and what to pass instead. Nothing is rounded, clipped or otherwise
corrected: a value that would need correcting is refused.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["check_int", "check_number", "check_seed", "check_bool", "check_choice", "check_device"]


def _range_text(low, high, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high}"
    return ""


def check_int(value, name: str, *, min: int | None = None, max: int | None = None, hint: str = "") -> int:
    """``value`` as an ``int`` in [min, max]; bools and floats (even 2.0) are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an int {_range_text(min, max, False, False)}".rstrip()
            + f", got {value!r} ({type(value).__name__}){'; ' + hint if hint else ''}"
        )
    value = int(value)
    if (min is not None and value < min) or (max is not None and value > max):
        raise ValueError(
            f"{name} must be an int {_range_text(min, max, False, False)}, got {value}"
            f"{'; ' + hint if hint else ''}"
        )
    return value


def check_number(
    value,
    name: str,
    *,
    min: float | None = None,
    max: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
    hint: str = "",
) -> float:
    """``value`` as a finite ``float`` within the given bounds (``*_open``: bound excluded)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a number {_range_text(min, max, min_open, max_open)}".rstrip()
            + f", got {value!r} ({type(value).__name__}){'; ' + hint if hint else ''}"
        )
    v = float(value)
    bad = not math.isfinite(v)
    if min is not None:
        bad = bad or (v <= min if min_open else v < min)
    if max is not None:
        bad = bad or (v >= max if max_open else v > max)
    if bad:
        raise ValueError(
            f"{name} must be a finite number {_range_text(min, max, min_open, max_open)}".rstrip()
            + f", got {value!r}{'; ' + hint if hint else ''}"
        )
    return v


def check_seed(seed, name: str = "seed", *, allow_none: bool = False) -> int | None:
    """A non-negative int seed (or None when ``allow_none``)."""
    if seed is None and allow_none:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"{name} must be a non-negative int{' or None' if allow_none else ''}, got {seed!r} "
            f"({type(seed).__name__})"
        )
    if seed < 0:
        raise ValueError(f"{name} must be a non-negative int, got {seed}")
    return int(seed)


def check_bool(value, name: str) -> bool:
    """A real ``bool`` (numpy bools accepted); strings such as "yes" or "False" are refused."""
    if isinstance(value, bool):
        return value
    if type(value).__name__ == "bool_":  # numpy.bool_
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")


def check_choice(value, name: str, valid):
    """``value`` if it is one of ``valid``, else a ValueError listing them."""
    try:
        ok = value in valid
    except TypeError:  # unhashable value tested against a set
        ok = False
    if not ok:
        shown = ", ".join(repr(v) for v in valid)
        raise ValueError(f"unknown {name} {value!r}; valid: {shown}")
    return value


def check_device(device, name: str = "device"):
    """``device`` as a ``torch.device``; an unknown device string raises a ValueError."""
    import torch

    if isinstance(device, torch.device):
        return device
    if not isinstance(device, (str, int)) or isinstance(device, bool):
        raise TypeError(f"{name} must be a torch.device or a string such as 'cpu' or 'cuda', got {device!r}")
    try:
        return torch.device(device)
    except (RuntimeError, ValueError) as err:
        raise ValueError(
            f"unknown {name} {device!r}; pass 'cpu', 'cuda', 'cuda:0', 'mps' or a torch.device ({err})"
        ) from None
