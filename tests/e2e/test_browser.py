"""JupyterLab in Debian's chromium, driven by Playwright: the quickstart plays audio, shows every turn and
the live VAD trace."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("VKIT_TEST_ARTIFACTS", Path(__file__).resolve().parent / "artifacts"))
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium (apt-get install chromium)")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path: Path):
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    (tmp_path / "data").symlink_to(ROOT / "data")
    settings = tmp_path / "settings"
    settings.mkdir()
    (settings / "overrides.json").write_text(json.dumps({  # no news toast over the outputs
        "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}))
    port = _free_port()
    log = open(tmp_path / "jupyterlab.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.root_dir={tmp_path}", "--IdentityProvider.token=", "--ServerApp.password=",
         f"--LabApp.app_settings_dir={settings}", "--LabApp.extension_manager=readonly",
         "--LabApp.expose_app_in_browser=True"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "JUPYTER_PLATFORM_DIRS": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api", timeout=1)
            break
        except OSError:
            time.sleep(0.3)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(20)
        log.close()


NOTEBOOK_OPEN = "() => !!(window.jupyterapp && window.jupyterapp.shell.currentWidget?.sessionContext)"
SESSION_READY = """async () => {
    const panel = window.jupyterapp.shell.currentWidget;
    await panel.context.ready;
    await panel.sessionContext.ready;
}"""
KERNEL_IDLE = """() => {
    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel;
    return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}"""
EXECUTION_STARTED = """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
    .some(prompt => /\\[[*0-9]/.test(prompt.textContent))"""


def _run_all_cells(page) -> None:
    """Run every cell once the kernel is connected and idle. JupyterLab drops a run-all issued while
    the kernel is still connecting, so check that execution started and retry once."""
    page.wait_for_function(NOTEBOOK_OPEN, timeout=90_000)
    page.evaluate(SESSION_READY)
    for attempt in range(2):
        page.wait_for_function(KERNEL_IDLE, timeout=90_000, polling=250)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        try:
            page.wait_for_function(EXECUTION_STARTED, timeout=20_000)
            return
        except Exception:
            if attempt == 1:
                raise


@pytest.mark.timeout(300)
def test_quickstart_in_jupyterlab_plays_audio_and_shows_every_turn(jupyterlab: str):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        try:
            page.goto(f"{jupyterlab}/lab/tree/notebooks/01_quickstart.ipynb?reset")
            _run_all_cells(page)
            player = page.locator("[data-testid='vkit-player']")
            player.wait_for(timeout=60_000)
            page.wait_for_function(
                "() => { const p = document.querySelector(\"[data-testid='vkit-player']\");"
                " return p && Number(p.dataset.played) > 24000 && p.dataset.state === 'running'; }", timeout=90_000)
            page.wait_for_function(
                "() => [...document.querySelectorAll(\"[data-testid='vkit-v2v']\")]"
                ".filter(td => /^\\d/.test(td.textContent)).length === 3", timeout=90_000)
            page.wait_for_function(  # the live VAD trace shaded all three user turns
                "() => document.querySelectorAll(\"[data-testid='vkit-vad-trace'] rect\").length === 3", timeout=30_000)
            played = int(player.get_attribute("data-played"))
            received = int(player.get_attribute("data-received"))
            figures = page.locator("[data-testid='vkit-v2v']").all_inner_texts()
            page.locator("[data-testid='vkit-inspector']").first.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "quickstart.png"))
            player.screenshot(path=str(ARTIFACTS / "player.png"))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "failure.png"))
            raise
        finally:
            browser.close()
    assert received > 48_000 and 0 < played <= received + 24_000 * 60
    assert len(figures) == 3 and all(100 < float(f) < 5000 for f in figures)
