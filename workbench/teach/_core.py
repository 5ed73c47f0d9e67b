"""The exercise registry and ``check`` (see the package docstring)."""

from __future__ import annotations

import html
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Result:
    """The verdict on one answer: ``ok`` and a message for the student. Truthy when right."""

    exercise: str
    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        mark = "✓ Right" if self.ok else "✗ Not yet"
        return f"{mark} ({self.exercise}): {self.message}"

    def _repr_html_(self) -> str:
        colour, bg = ("#1a7f37", "#e6f4ea") if self.ok else ("#9a6700", "#fff8e1")
        mark = "✓ Right" if self.ok else "✗ Not yet"
        return (
            f'<div style="border-left:4px solid {colour};background:{bg};padding:6px 10px;'
            f'font-family:sans-serif"><b style="color:{colour}">{mark}</b> '
            f'<span style="color:#555">({html.escape(self.exercise)})</span><br>'
            f"{html.escape(self.message)}</div>"
        )


def right(message: str = "that's it.") -> tuple[bool, str]:
    """What a checker returns for a right answer."""
    return True, message


def not_yet(hint: str) -> tuple[bool, str]:
    """What a checker returns for a wrong answer: a hint aimed at the mistake, not the solution."""
    return False, hint


@dataclass(frozen=True)
class Exercise:
    """One exercise: ``checker(answer, **context) -> (ok, message)``; ``hints`` in order of help."""

    id: str
    question: str
    checker: Callable = field(repr=False)
    hints: tuple[str, ...] = ()
    expects: str = "an answer"

    def __repr__(self) -> str:
        return f"Exercise({self.id!r}: {self.question})"


_REGISTRY: dict[str, Exercise] = {}
_LOADED: set[str] = set()


def exercise(id: str, *, question: str, hints=(), expects: str = "an answer"):
    """Decorator registering ``checker(answer, **context) -> (ok, message)`` under ``id``."""
    if not id[:2].isdigit() or id[2:3] != "-":
        raise ValueError(f"exercise ids start with the notebook number, e.g. '01-alignment'; got {id!r}")

    def register(checker):
        if id in _REGISTRY:
            raise ValueError(f"exercise {id!r} is registered twice")
        _REGISTRY[id] = Exercise(id, question, checker, tuple(hints), expects)
        return checker

    return register


def _load(prefix: str) -> None:
    if prefix in _LOADED:
        return
    _LOADED.add(prefix)
    try:
        importlib.import_module(f"{__package__}.nb{prefix}")
    except ModuleNotFoundError as e:
        if e.name != f"{__package__}.nb{prefix}":
            raise


def _load_all() -> None:
    from . import __path__ as pkg_path

    for info in pkgutil.iter_modules(pkg_path):
        if info.name.startswith("nb") and info.name[2:].isdigit():
            _load(info.name[2:])


def _get(id: str) -> Exercise:
    if not isinstance(id, str):
        raise TypeError(f"the exercise id must be a string like '01-alignment', got {type(id).__name__}")
    _load(id[:2])
    if id not in _REGISTRY:
        _load_all()
        valid = sorted(k for k in _REGISTRY if k[:2] == id[:2]) or sorted(_REGISTRY)
        raise ValueError(f"no exercise {id!r}; exercises of this notebook: {valid}")
    return _REGISTRY[id]


def exercises(notebook: str | None = None) -> list[Exercise]:
    """Every registered exercise, or those of one notebook (``"01"``)."""
    _load_all()
    return [e for k, e in sorted(_REGISTRY.items()) if notebook is None or k[:2] == notebook]


def hint(id: str, level: int = 0) -> str:
    """The ``level``-th hint of exercise ``id`` (0 = the gentlest)."""
    ex = _get(id)
    if not ex.hints:
        return "No extra hint for this one: re-read the cell above the exercise."
    return ex.hints[min(max(int(level), 0), len(ex.hints) - 1)]


def check(id: str, answer=None, /, **context) -> Result:
    """Check ``answer`` to exercise ``id``; ``context`` passes what the checker needs (e.g. ``z=``).

    Never raises for a wrong answer or a student's function that fails: the verdict says what went
    wrong. Raises ValueError only for an unknown exercise id.
    """
    ex = _get(id)
    if answer is None:
        return Result(id, False, f"put your answer in the cell first (expected {ex.expects}).")
    try:
        out = ex.checker(answer, **context)
    except _StudentError as e:
        return Result(id, False, str(e))
    except (TypeError, ValueError, AttributeError, IndexError, KeyError) as e:
        return Result(id, False, f"I could not check this answer (expected {ex.expects}): "
                                 f"{type(e).__name__}: {e}")
    ok, message = out if isinstance(out, tuple) else (bool(out), "that's it." if out else hint(id))
    return Result(id, bool(ok), str(message))


class _StudentError(Exception):
    """Raised by ``call`` when the student's function fails; turned into a verdict by ``check``."""


def call(fn, *args, **kwargs):
    """Call a student's function; an exception becomes a friendly verdict, not a traceback."""
    if not callable(fn):
        raise _StudentError(f"expected a function, got {type(fn).__name__}; define it with def ...")
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # the student's code: report, never propagate
        raise _StudentError(f"your function raised {type(e).__name__}: {e}") from None


def close(value, expected, *, rtol: float = 1e-3, atol: float = 1e-6) -> bool:
    """``value`` (number, array or tensor) equals ``expected`` within tolerances."""
    import numpy as np

    try:
        v = np.asarray(getattr(value, "detach", lambda: value)(), dtype=float)
    except (TypeError, ValueError):
        raise _StudentError(f"expected a number or an array, got {type(value).__name__}") from None
    e = np.asarray(getattr(expected, "detach", lambda: expected)(), dtype=float)
    if v.shape != e.shape:
        raise _StudentError(f"expected shape {e.shape}, got {v.shape}")
    return bool(np.allclose(v, e, rtol=rtol, atol=atol))


def choice(answer, options) -> str:
    """Normalise a multiple-choice answer (case and spaces ignored); unknown choices get the list."""
    if not isinstance(answer, str):
        raise _StudentError(f"answer with one of {list(options)} (a string), got {type(answer).__name__}")
    norm = {o.lower().replace(" ", "").replace("-", "").replace("_", ""): o for o in options}
    key = answer.lower().replace(" ", "").replace("-", "").replace("_", "")
    if key not in norm:
        raise _StudentError(f"{answer!r} is not one of the choices: {list(options)}")
    return norm[key]
