"""Self-checking exercises for the tutorials.

A tutorial poses an exercise in a markdown cell and the student checks their answer in a code cell::

    answer = "energy"                      # predict-then-run: which detector ...?
    wb.teach.check("02-near-ood", answer)  # ✓ Right: ... / ✗ Not yet: <a hint>

    def alignment(z1, z2): ...             # a small code task
    wb.teach.check("01-alignment", alignment)

``check`` never shows the student a traceback for a wrong answer: a wrong value gets a hint aimed at
the typical mistake, a function that raises gets the exception's message, an answer of the wrong kind
gets a sentence saying what kind was expected. The result is shown as a coloured box in Jupyter and
is truthy when the answer is right (so a teacher's grading script can ``assert`` it).

Exercises live one module a notebook (``workbench/teach/nb01.py`` for the ids ``"01-..."``), loaded
on first use; ``wb.teach.exercises()`` lists them. Solutions are in the notebooks, in collapsed cells.
"""

from ._core import Exercise, Result, check, exercise, exercises, hint, not_yet, right

__all__ = ["check", "hint", "exercises", "exercise", "Exercise", "Result", "right", "not_yet"]
