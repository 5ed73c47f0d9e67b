"""Recipes (experiments that train models) and the layering around them."""

import ast
import math
import pathlib
import subprocess
import sys
import warnings

import pytest
import torch

import workbench as wb
from workbench.analyses import distillation as D

PKG = pathlib.Path(wb.__file__).resolve().parent


def _model(seed=0):
    return wb.models.MLP(2, (8,), 8, seed=seed)


def _split(n=96):
    return wb.data.load("gaussians8", n=n, seed=0).split(0.5, seed=0)


def test_self_distillation_generations_leave_the_teacher_alone():
    train, val = _split()
    teacher = _model(seed=0)
    teacher.eval()
    teacher.body[0].train()  # a mixed mode that must survive
    flags = [m.training for m in teacher.modules()]
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    res = wb.recipes.self_distillation(teacher, train, val=val, generations=2, steps=5, batch_size=16)
    assert res.generations == 2 and res.models[0] is teacher
    assert res.accuracy.shape == (3,) and math.isnan(float(res.agreement_previous[0]))
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, before[k])
    assert all(p.requires_grad for p in teacher.parameters())
    assert [m.training for m in teacher.modules()] == flags
    assert "2 generations" in repr(res)


def test_self_distillation_generation_one_is_a_plain_kd_fit():
    # the oracle: generation 1 by hand (fresh copy with seed + 1, KD from the teacher, fit seed + 1)
    train, val = _split()
    teacher = _model(seed=0)
    wb.fit(teacher, wb.methods.CrossEntropy(), train, steps=10, batch_size=16, lr=1e-2, progress=False)
    res = wb.recipes.self_distillation(teacher, train, val=val, generations=1, steps=6, seed=3,
                                       temperature=2.0, alpha=0.5, batch_size=16, lr=1e-2)
    hand = _model(seed=4)
    wb.fit(hand, wb.methods.KnowledgeDistillation(teacher, temperature=2.0, alpha=0.5), train, steps=6,
           seed=4, batch_size=16, lr=1e-2, progress=False)
    got = res.models[1].state_dict()
    assert all(torch.equal(v, got[k]) for k, v in hand.state_dict().items())
    pt, ph = wb.analyses.predict(teacher, val), wb.analyses.predict(hand, val)
    assert float(res.accuracy[0]) == pytest.approx(pt.accuracy)
    assert float(res.accuracy[1]) == pytest.approx(ph.accuracy)
    ref = wb.analyses.agreement_from_logits(pt.logits, ph.logits)
    assert float(res.agreement_previous[1]) == pytest.approx(ref.agreement)
    assert float(res.agreement_first[1]) == pytest.approx(ref.agreement)
    assert float(res.kl_previous[1]) == pytest.approx(ref.kl, rel=1e-5)
    assert res.temperature == 2.0 and res.alpha == 0.5


def test_self_distillation_bad_input():
    train, val = _split(n=40)
    teacher = _model()
    with pytest.raises(ValueError, match="generations"):
        wb.recipes.self_distillation(teacher, train, val=val, generations=0)
    with pytest.raises(ValueError, match="generations"):
        wb.recipes.self_distillation(teacher, train, val=val, generations=True)
    with pytest.raises(TypeError, match="seed"):
        wb.recipes.self_distillation(teacher, train, val=val, seed=0.5)
    with pytest.raises(ValueError, match="labelled"):
        wb.recipes.self_distillation(teacher, train, val=wb.data.Dataset(val.x))
    with pytest.raises(TypeError, match="config"):
        wb.recipes.self_distillation(torch.nn.Linear(2, 8), train, val=val)
    with pytest.raises(TypeError, match="nn.Module"):
        wb.recipes.self_distillation("teacher", train, val=val)


def test_old_names_forward_to_their_new_homes():
    with pytest.warns(FutureWarning, match=r"wb\.recipes\.self_distillation"):
        f = wb.analyses.self_distillation
    assert f is wb.recipes.self_distillation
    with pytest.warns(FutureWarning, match=r"wb\.recipes\.SelfDistillationResult"):
        assert D.SelfDistillationResult is wb.recipes.SelfDistillationResult
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # moved within analyses: no warning
        assert D.kernel_self_distillation is wb.analyses.kernel_self_distillation
        assert D.KernelSelfDistillation is wb.analyses.KernelSelfDistillation
        assert D.batchnorm_recalibrated is wb.analyses.batchnorm_recalibrated
        assert D.linear_cka is wb.analyses.linear_cka
        assert D.relative_representation is wb.analyses.relative_representation
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        wb.analyses.no_such_name  # noqa: B018
    assert "self_distillation" not in wb.analyses.__all__  # star-imports do not warn


def _imports(path: pathlib.Path) -> set[str]:
    """Absolute names of every module a file imports (relative imports resolved)."""
    package = ".".join(path.relative_to(PKG.parent).with_suffix("").parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[: len(base) - node.level + 1] if node.level else []
            mod = ".".join([*base, node.module] if node.module else base)
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


@pytest.mark.parametrize("layer, forbidden", [
    ("analyses", ("workbench.training", "workbench.recipes", "plotly", "ipywidgets")),
    ("training", ("workbench.recipes", "workbench.analyses")),
    ("methods", ("workbench.recipes",)),
])
def test_layers_below_recipes_never_import_it(layer, forbidden):
    bad = {f"{p.relative_to(PKG)}: {m}" for p in (PKG / layer).rglob("*.py") for m in _imports(p)
           if m.startswith(forbidden)}
    assert not bad, bad


def test_recipes_load_lazily():
    code = "import sys, workbench as wb; assert 'workbench.recipes' not in sys.modules; wb.recipes.self_distillation"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "recipes" in dir(wb)
