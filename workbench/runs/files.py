"""File helpers of the run store: durable writes, atomic commits, hashes.

A run is written into a staging folder, every file is flushed to disk (``fsync``) and hashed,
the folder is renamed into place in one atomic step, and the parent folder is flushed so the
rename itself survives a power cut. ``seal`` and ``commit`` are those two steps; the hashes
``seal`` returns go into the index, and ``verified`` checks a file against them on the way back.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

FORMAT = 1  # on-disk format of a run (run.json, the index rows, the safetensors headers)


class CorruptRunError(ValueError):
    """A run's files are missing or do not match what was saved."""


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, allow_nan=True))


def now() -> str:
    """The current UTC time, ISO 8601 with microseconds (sorts as text)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def seal(folder: Path) -> dict[str, str]:
    """Flush every file below ``folder`` (and the folders themselves) to disk; returns
    ``{relative posix path: SHA-256}`` of the files."""
    files = {}
    dirs = [folder]
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            fsync_file(p)
            files[p.relative_to(folder).as_posix()] = sha256(p)
        elif p.is_dir():
            dirs.append(p)
    for d in reversed(dirs):  # innermost first, the folder itself last
        fsync_dir(d)
    return files


def commit(staged: Path, final: Path) -> None:
    """Move a sealed folder into place: it appears whole or not at all."""
    os.rename(staged, final)
    fsync_dir(final.parent)


def remove_tree(folder: Path, trash: Path) -> None:
    """Remove ``folder``: first renamed to ``trash`` (one atomic step, so readers never see a
    half-deleted run), then deleted."""
    trash.parent.mkdir(parents=True, exist_ok=True)
    os.rename(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)


def remove_older(folder: Path, older_than: float, keep=frozenset()) -> list[Path]:
    """Remove the entries of ``folder`` not named in ``keep`` whose last change is at least
    ``older_than`` seconds old; returns the removed paths."""
    removed = []
    if not folder.exists():
        return removed
    t = time.time()
    for p in folder.iterdir():
        if p.name in keep:
            continue
        try:
            age = t - p.stat().st_mtime
        except FileNotFoundError:  # removed by someone else meanwhile
            continue
        if age >= older_than:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def verified(path: Path, rel: str, expected: str | None, label: str, run_id: str) -> Path:
    """``path`` if it exists and (when ``expected`` is given) its SHA-256 is ``expected``;
    otherwise a ``CorruptRunError`` naming the run (``label``) and the file ``rel``."""
    fix = f"Restore the file or remove the run with wb.runs.delete({run_id!r})"
    if not path.exists():
        folder = path.parent if rel.count("/") == 0 else path.parent.parent
        why = "its folder is gone" if not folder.exists() else f"{rel} is missing"
        raise CorruptRunError(f"{label}: {why} ({path}); the run cannot be loaded. {fix}")
    if expected is not None and sha256(path) != expected:
        raise CorruptRunError(
            f"{label}: {rel} is damaged (its SHA-256 differs from the one recorded at save "
            f"time) at {path}. {fix}"
        )
    return path
