"""Notebook display of runtime objects, registered from the layers above (widgets know the runtime,
never the other way round): ``display.register(Handle, render)`` where ``render(obj)`` returns a
Jupyter mimebundle. Without a registered renderer an object shows as its text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["register", "mimebundle"]

Renderer = Callable[[Any], dict[str, Any]]
_RENDERERS: dict[type, Renderer] = {}


def register(cls: type, render: Renderer) -> None:
    """Show instances of ``cls`` (and subclasses) in a notebook with ``render(obj) -> mimebundle``."""
    _RENDERERS[cls] = render


def mimebundle(obj: object, include: Any = None, exclude: Any = None) -> dict[str, Any]:
    """The registered rendering of ``obj``, or its text when nothing is registered for its type."""
    for cls in type(obj).__mro__:
        render = _RENDERERS.get(cls)
        if render is not None:
            return render(obj)
    return {"text/plain": repr(obj)}
