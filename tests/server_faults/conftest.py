"""The server fault suite reuses the Realtime tests' raw client."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "realtime"))
