"""How long each notebook cell runs, and whether a long one shows progress.

    python bench/notebook_cells.py [--min-s 3] [notebooks/01_quickstart.ipynb ...]

Executes copies of the notebooks (default: every notebooks/*.ipynb) with nbclient in a temporary folder
beside data/, and prints one row per cell that ran at least ``--min-s`` seconds: its time, the first line
of its source, and what in its outputs shows progress (a widget view, a progress bar's text) or "NONE".
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
WIDGET = "application/vnd.jupyter.widget-view+json"


def _seconds(cell: nbformat.NotebookNode) -> float:
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not start or not end:
        return 0.0
    return (datetime.fromisoformat(end.replace("Z", "+00:00")) - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()


def _progress(cell: nbformat.NotebookNode) -> str:
    shown = []
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if WIDGET in data:
            shown.append("widget " + str(data.get("text/plain", "")).split("(")[0][:30])
        text = output.get("text", "")
        if "%|" in text or "it/s" in text or "s audio" in text:
            shown.append("text bar")
    return ", ".join(shown) or "NONE"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--min-s", type=float, default=3.0)
    args = parser.parse_args()
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))  # this vkit
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(ROOT / "notebooks", Path(tmp) / "notebooks")
        (Path(tmp) / "data").symlink_to(ROOT / "data")
        work = Path(tmp) / "notebooks"
        print(f"{'notebook':<26} {'cell':>4} {'s':>6}  {'progress shown':<34} source")
        for path in paths:
            notebook = nbformat.read(work / path.name, as_version=4)
            started = time.perf_counter()
            NotebookClient(notebook, timeout=600, kernel_name="python3", record_timing=True,
                           resources={"metadata": {"path": str(work)}}).execute()
            total = time.perf_counter() - started
            for index, cell in enumerate(notebook.cells):
                seconds = _seconds(cell) if cell.cell_type == "code" else 0.0
                if seconds >= args.min_s:
                    first = next((line for line in cell.source.splitlines() if line.strip()), "")[:60]
                    print(f"{path.stem:<26} {index:>4} {seconds:>6.1f}  {_progress(cell):<34} {first}")
            print(f"{path.stem:<26}  all {total:>6.1f}  (kernel start included)")


if __name__ == "__main__":
    main()
