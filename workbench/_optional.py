"""Optional imports that fail with the pip command to run."""

from __future__ import annotations

import importlib

_PIP = {
    "plotly": "plotly",
    "ipywidgets": "ipywidgets",
    "anywidget": "anywidget",
    "umap": "umap-learn",
    "sklearn": "scikit-learn",
    "pandas": "pandas",
    "scipy": "scipy",
    "tqdm": "tqdm",
    "PIL": "Pillow",
    "pyarrow": "pyarrow",
}


def require(module: str, purpose: str = ""):
    """Import ``module`` or raise ImportError naming the ``pip install`` that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:  # pragma: no cover - depends on the environment
        top = module.split(".")[0]
        pkg = _PIP.get(top, top)
        why = f" for {purpose}" if purpose else ""
        raise ImportError(
            f"{module!r} is needed{why} but is not installed; run: pip install {pkg}"
        ) from err
