"""Every notebook runs top to bottom offline, in a real kernel; the kernel stays responsive during a run.

Where the browser test runs (Debian chromium present, e2e not deselected), its Run All in JupyterLab is
the one execution of each notebook in the suite and the nbclient run here is skipped; without a browser
nbclient executes them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import start_new_kernel
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of notebooks/ beside data/, so runs write their sessions into a temporary folder; the
    kernels import this tree's vkit."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    (tmp_path / "data").symlink_to(ROOT / "data")
    return tmp_path / "notebooks"


def _browser_runs_them(config: pytest.Config) -> bool:
    deselected = "not e2e" in (config.getoption("markexpr") or "")
    return Path("/usr/bin/chromium").exists() and not deselected


@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, workdir: Path, request: pytest.FixtureRequest):
    if _browser_runs_them(request.config):
        pytest.skip("executed by Run All in JupyterLab (tests/e2e/test_browser.py)")
    notebook = nbformat.read(workdir / path.name, as_version=4)
    NotebookClient(notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    text = "".join(str(o.get("data", {}).get("text/plain", "")) + o.get("text", "")
                   for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "Traceback" not in text and "sk-" not in text


@pytest.mark.timeout(120)
def test_the_kernel_answers_while_a_graph_runs(workdir: Path):
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(workdir))
    try:
        def run(code: str, timeout_s: float = 60) -> dict:
            reply = client.execute_interactive(code, timeout=timeout_s)
            assert reply["content"]["status"] == "ok", reply["content"]
            return reply

        run("import vkit, vkit.data\nfrom vkit import sources, filters, sinks\n"
            "h = (sources.File(vkit.data.sample_path(), pace='realtime') | filters.VAD('silero') | sinks.Null()).start()")
        run("x = sum(range(1000)); assert not h.done()")  # answered while the 14 s graph is still running
        run("s = h.wait(60); assert s.status == 'complete' and len(s.turns) == 3")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
