"""Where the browser test's screenshots and cell times went, printed at the end of the run."""

from __future__ import annotations

import os
from pathlib import Path

ARTIFACTS = Path(os.environ.get("VKIT_TEST_ARTIFACTS", Path(__file__).resolve().parent / "artifacts"))


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001
    if ARTIFACTS.is_dir() and any(ARTIFACTS.glob("*.png")):
        terminalreporter.write_line(f"browser test artifacts (screenshots, cell_times.txt): {ARTIFACTS}")
