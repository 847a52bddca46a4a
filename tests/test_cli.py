"""The ``vkit`` command and ``python -m vkit`` are the same program."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import vkit


def test_version_from_the_console_script_and_from_python_m():
    script = shutil.which("vkit", path=str(Path(sys.executable).parent))
    assert script is not None, "the vkit console script is not installed next to this Python"
    for command in ([script, "--version"], [sys.executable, "-m", "vkit", "--version"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
        assert result.stdout.strip() == f"vkit {vkit.__version__}"
