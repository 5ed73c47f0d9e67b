"""Real-browser checks of the notebooks (JupyterLab in headless Chromium); see lab.py."""
