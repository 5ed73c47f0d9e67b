"""The exercise machinery: right answers pass, wrong ones get hints, never a traceback."""

import pytest

import workbench as wb
from workbench.teach import _core


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setattr(_core, "_REGISTRY", {})
    monkeypatch.setattr(_core, "_LOADED", {"99"})
    # no notebook modules imported into the stand-in registry: Python would cache them, and their
    # exercises would be missing from the real registry afterwards
    monkeypatch.setattr(_core, "_load_all", lambda: None)

    @wb.teach.exercise("99-double", question="write double(x)", hints=("multiply by two",),
                       expects="a function")
    def _double(fn):
        if _core.close(_core.call(fn, 3.0), 6.0):
            return wb.teach.right("double works")
        if _core.close(_core.call(fn, 3.0), 9.0):
            return wb.teach.not_yet("that squares; double means x + x")
        return wb.teach.not_yet("double(3) should be 6")

    @wb.teach.exercise("99-pick", question="which?", expects="'a' or 'b'")
    def _pick(answer):
        return _core.choice(answer, ["a", "b"]) == "a"

    return _core._REGISTRY


def test_right_answer_passes(registry):
    r = wb.teach.check("99-double", lambda x: 2 * x)
    assert r and r.ok and "double works" in repr(r) and "✓" in r._repr_html_()


def test_typical_wrong_answer_gets_its_hint(registry):
    r = wb.teach.check("99-double", lambda x: x * x)
    assert not r and "squares" in r.message


def test_raising_function_is_reported_not_raised(registry):
    r = wb.teach.check("99-double", lambda x: 1 / 0)
    assert not r and "ZeroDivisionError" in r.message


def test_wrong_kind_and_missing_answer(registry):
    assert "expected a function" in wb.teach.check("99-double", 3).message
    assert "put your answer" in wb.teach.check("99-double", None).message
    assert "not one of the choices" in wb.teach.check("99-pick", "c").message
    assert wb.teach.check("99-pick", " A ").ok
    r = wb.teach.check("99-pick", "b")
    assert not r.ok and r.message  # falls back to the hint text


def test_unknown_id_lists_valid(registry):
    with pytest.raises(ValueError, match="99-double"):
        wb.teach.check("99-nope", 1)
    with pytest.raises(ValueError, match="notebook number"):
        wb.teach.exercise("bad", question="?")


def test_hint_levels(registry):
    assert wb.teach.hint("99-double") == "multiply by two"
    assert "No extra hint" in wb.teach.hint("99-pick")
