import subprocess
import sys


def test_import_is_light():
    code = (
        "import sys, workbench as wb; heavy = [m for m in ('plotly', 'ipywidgets', 'umap', 'sklearn', "
        "'pandas', 'jupyterlab', 'anywidget') if m in sys.modules]; print(heavy); assert not heavy, heavy"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_lazy_subpackages_resolve():
    import workbench as wb

    assert wb.analyses.embed is not None and wb.viz.loss_curves is not None
