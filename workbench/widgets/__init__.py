"""Interactive views: plotly FigureWidgets + ipywidgets controls, built on ``workbench.viz``.

No math here: every view takes results from ``workbench.analyses`` and updates its traces in
place (``fig.batch_update()``), never recreating figures.
"""

__all__: list[str] = []
