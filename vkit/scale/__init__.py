"""Scale-out: one graph per (input, parameter set), on this process, a process pool or Dask."""

from __future__ import annotations

from vkit.scale.sweep import RunInput, SweepResult, batch, sweep

__all__ = ["sweep", "batch", "RunInput", "SweepResult"]
