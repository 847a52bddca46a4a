"""Renamed keywords: the old spelling keeps working for one release, with a warning that names the new one."""

from __future__ import annotations

import warnings
from typing import TypeVar

__all__ = ["renamed_keyword"]

T = TypeVar("T")


def renamed_keyword(owner: str, old: str, new: str, old_value: T | None, new_value: T, *, stacklevel: int = 3) -> T:
    """``old_value`` if the caller still passed ``old=`` (with a DeprecationWarning), else ``new_value``."""
    if old_value is None:
        return new_value
    warnings.warn(f"{owner}({old}=) is deprecated and goes in the next release; use {new}= instead",
                  DeprecationWarning, stacklevel=stacklevel)
    return old_value
