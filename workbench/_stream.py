"""Streaming helpers for data that does not fit in memory.

* ``parse_bytes("512MB")``: a memory budget as a number of bytes (ints, or strings with a
  unit: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)).
* ``RowWriter``: an (N, ...) float32 output filled chunk by chunk, allocated once (never a list
  of chunks concatenated at the end, which needs twice the memory), in RAM or as a memory-mapped
  ``.npy`` file (kept at a path you give, or a temporary file unlinked at once, so nothing is
  left on disk when the tensor is freed).
* ``row_chunks(x, rows)``: iterate over row blocks of a tensor; when the tensor is backed by a
  memory-mapped file made here, the pages already read are dropped from the process after each
  block (``madvise(MADV_DONTNEED)``; the kernel's page cache keeps them). Pages of a mapped file
  count in the resident set size (RSS) until then, so without this a pass over a 10 GB file
  would show 10 GB of RSS (reclaimable, but it looks like a leak and can trip memory limits).
* ``rss()``: the process's current and peak resident set size in MiB (Linux), and
  ``reset_peak_rss()``, for the benchmarks and the memory tests.
"""

from __future__ import annotations

import math
import mmap
import os
import re
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

__all__ = ["parse_bytes", "RowWriter", "row_chunks", "rows_for", "release", "rss", "reset_peak_rss",
           "memory_mapped", "shared_tensor"]

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(value, name: str = "memory") -> int:
    """``value`` (an int number of bytes, or a string such as ``"512MB"`` / ``"2 GiB"``) as bytes."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number of bytes or a string such as '512MB', got {value!r}")
    if isinstance(value, (int, np.integer)):
        n = int(value)
    elif isinstance(value, float) and math.isfinite(value):
        n = int(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-zA-Z]*)\s*", value)
        unit = m.group(2).lower() if m else None
        if m is None or unit not in _UNITS:
            raise ValueError(
                f"{name}={value!r} is not a size; pass bytes or a string such as '512MB', '2GB' or "
                f"'1.5GiB' (units: {', '.join(u for u in _UNITS if u)})"
            )
        n = int(float(m.group(1)) * _UNITS[unit])
    else:
        raise TypeError(f"{name} must be a number of bytes or a string such as '512MB', got {type(value).__name__}")
    if n <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return n


def rows_for(budget_bytes: int, row_bytes: int, *, at_least: int = 1) -> int:
    """How many rows of ``row_bytes`` fit in ``budget_bytes`` (at least ``at_least``)."""
    return max(at_least, int(budget_bytes // max(1, row_bytes)))


def shared_tensor(a) -> torch.Tensor:
    """A CPU tensor sharing memory with ``a`` (numpy array, also read-only or memory-mapped, or
    a tensor), without torch's warning about read-only arrays (nothing here writes to it)."""
    if isinstance(a, torch.Tensor):
        return a.detach()
    a = np.asarray(a)
    if not a.flags.writeable:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(a)
    return torch.from_numpy(a)


# ------------------------------------------------------------------------------- mapped tensors
# storage address -> the np.memmap behind a tensor made here (weak: dies with the array)
_MAPPED: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _register(t: torch.Tensor, mm: np.memmap) -> None:
    _MAPPED[t.untyped_storage().data_ptr()] = mm


def memory_mapped(t) -> bool:
    """Whether ``t`` is a tensor backed by a memory-mapped file made by this module."""
    return isinstance(t, torch.Tensor) and t.device.type == "cpu" and t.untyped_storage().data_ptr() in _MAPPED


def release(t) -> None:
    """Drop the pages of ``t``'s mapped file from this process (no-op for other tensors).

    Nothing is lost: dropping a page of a shared file mapping keeps its (possibly unwritten)
    contents in the kernel's page cache, and the next read maps it again from there (or the disk).
    """
    if not isinstance(t, torch.Tensor) or t.device.type != "cpu":
        return
    mm = _MAPPED.get(t.untyped_storage().data_ptr())
    if mm is None:
        return
    raw = getattr(mm, "_mmap", None)
    if raw is None or raw.closed:
        return
    if hasattr(raw, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        raw.madvise(mmap.MADV_DONTNEED)


def row_chunks(x: torch.Tensor, rows: int) -> Iterator[tuple[int, torch.Tensor]]:
    """``(start, x[start:start + rows])`` blocks; mapped pages are released after each block."""
    n = x.shape[0]
    mapped = memory_mapped(x)
    for i in range(0, n, rows):
        yield i, x[i : i + rows]
        if mapped:
            release(x)


# ------------------------------------------------------------------------------- outputs
_RELEASE_EVERY = 8 * 2**20  # bytes written between two releases of a mapped output


def _open_memmap(path: Path, shape: tuple[int, ...], temporary: bool) -> tuple[torch.Tensor, np.memmap]:
    from numpy.lib.format import open_memmap

    mm = open_memmap(str(path), mode="w+", dtype=np.float32, shape=shape)
    if temporary:
        os.unlink(path)  # the mapping stays valid; the space is freed when the array dies
    t = torch.from_numpy(mm)
    _register(t, mm)
    return t, mm


class RowWriter:
    """An (N, ...) float32 output filled in row blocks.

    ``file``: a ``.npy`` path to write a memory-mapped array to (kept), or None. ``memory``:
    bytes; an output larger than this goes to a temporary memory-mapped file (unlinked at once)
    when no ``file`` is given (0: always); None keeps it in RAM. ``folder``: where temporary files go
    (default: the system's temporary folder).
    """

    def __init__(self, n: int, *, file=None, memory: int | None = None, folder=None):
        self.n = int(n)
        self.file = None if file is None else Path(file)
        self.memory = memory
        self.folder = folder
        self.out: torch.Tensor | None = None
        self.on_disk = False
        self._unreleased = 0

    def _allocate(self, row_shape: tuple[int, ...]) -> None:
        shape = (self.n, *row_shape)
        nbytes = 4 * math.prod(shape)
        if self.file is not None:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            self.out, _ = _open_memmap(self.file, shape, temporary=False)
            self.on_disk = True
        elif self.memory is not None and nbytes > self.memory:
            fd, name = tempfile.mkstemp(suffix=".npy", prefix="workbench-", dir=self.folder)
            os.close(fd)
            self.out, _ = _open_memmap(Path(name), shape, temporary=True)
            self.on_disk = True
        else:
            self.out = torch.empty(shape, dtype=torch.float32)

    def write(self, start: int, block: torch.Tensor) -> None:
        """Put ``block`` (rows ``start:start+len(block)``) in the output."""
        block = block.detach()
        if self.out is None:
            self._allocate(tuple(block.shape[1:]))
        elif tuple(block.shape[1:]) != tuple(self.out.shape[1:]):
            raise ValueError(
                f"rows {start}.. have shape {tuple(block.shape[1:])} but earlier rows had "
                f"{tuple(self.out.shape[1:])}; the function must return the same shape for every batch"
            )
        self.out[start : start + block.shape[0]] = block.to(device="cpu", dtype=torch.float32)
        if self.on_disk:
            self._unreleased += 4 * block.numel()
            if self._unreleased > _RELEASE_EVERY:
                release(self.out)
                self._unreleased = 0

    def result(self) -> torch.Tensor:
        if self.out is None:
            raise ValueError("nothing was written")
        if self.on_disk:
            release(self.out)
        return self.out


# ------------------------------------------------------------------------------- measuring
def rss() -> dict[str, float]:
    """Current and peak resident set size of this process in MiB: ``rss``, ``peak``, ``anon``
    (private memory), ``file`` (mapped file pages). Empty off Linux."""
    keys = {"VmRSS": "rss", "VmHWM": "peak", "RssAnon": "anon", "RssFile": "file"}
    out: dict[str, float] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in keys:
                    out[keys[k]] = int(v.split()[0]) / 1024
    except OSError:
        return {}
    return out


def reset_peak_rss() -> bool:
    """Reset the peak RSS counter (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
