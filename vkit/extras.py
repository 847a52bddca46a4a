"""Optional dependencies: import a package of one of vkit's extras, or say which extra installs it.

``pip install vkit`` is what scripts and Dask workers need; notebooks (``notebook``: jupyterlab,
ipywidgets, anywidget), DataFrames and plots (``analysis``), sound cards (``devices``) and the offline
speech cascade (``cascade``) are extras. Every import of one of their packages goes through ``require``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from vkit.errors import MissingExtra, got

__all__ = ["require"]


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import ``module``, or raise ``MissingExtra`` (an ImportError) naming ``feature`` and the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(f"{feature} needs {module.split('.')[0]}, from vkit's {extra!r} extra: "
                           f"pip install 'vkit[{extra}]' {got(str(exc))}", extra=extra) from exc
