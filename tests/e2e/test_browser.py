"""JupyterLab in Debian's chromium, driven by Playwright: Run All on the quickstart (audio plays, every turn
measured, the live VAD trace), a re-run of the same graph and of a changed one reusing the Player, a stop
mid-run, then the dark theme and notebook 04. Screenshots go to tests/e2e/artifacts/ for a person to look at."""

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


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory: pytest.TempPathFactory):
    tmp_path = tmp_path_factory.mktemp("lab")
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
         # the theme switch and workspaces stay in this folder, not in the user's ~/.config/jupyter
         f"--LabApp.user_settings_dir={tmp_path / 'user-settings'}", f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
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


# Every AudioContext the page creates, so a test can count the running ones.
COUNT_CONTEXTS = """(() => {
    window.__contexts = [];
    const Original = window.AudioContext;
    window.AudioContext = class extends Original {
        constructor(...args) { super(...args); window.__contexts.push(this); }
    };
})();"""
RUNNING_CONTEXTS = "() => window.__contexts.filter(c => c.state === 'running').length"
PANEL = "window.jupyterapp.shell.currentWidget"
NOTEBOOK_OPEN = f"() => !!(window.jupyterapp && {PANEL}?.sessionContext)"
SESSION_READY = f"""async () => {{
    const panel = {PANEL};
    await panel.context.ready;
    await panel.sessionContext.ready;
}}"""
KERNEL_IDLE = f"""() => {{
    const kernel = {PANEL}.sessionContext.session?.kernel;
    return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}}"""
EXECUTION_STARTED = """() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
    .some(prompt => /\\[[*0-9]/.test(prompt.textContent))"""
ALL_EXECUTED = f"""() => {{
    const panel = {PANEL}, kernel = panel.sessionContext.session?.kernel;
    const cells = [...panel.content.model.cells].filter(c => c.type === 'code');
    return kernel?.status === 'idle' && cells.every(c => c.executionCount !== null);
}}"""
ERRORS = f"""() => [...{PANEL}.content.model.cells].flatMap(c => c.type === 'code' ? c.outputs.toJSON() : [])
    .filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue)"""
RUN_CELLS = f"""async (indices) => {{
    const panel = {PANEL};
    for (const i of indices) {{
        panel.content.activeCellIndex = i;
        await window.jupyterapp.commands.execute('notebook:run-cell');
    }}
}}"""
APPEND_CELL = f"""(source) => {{
    const shared = {PANEL}.content.model.sharedModel;
    shared.insertCell(shared.cells.length, {{cell_type: 'code', source}});
    return shared.cells.length - 1;
}}"""
V2V_FILLED = """(i) => {
    const cell = document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell')[i];
    const values = cell ? [...cell.querySelectorAll("[data-testid='vkit-v2v']")].map(td => td.textContent) : [];
    return values.length === 3 && values.every(v => /^\\d/.test(v)) ? values.map(Number) : null;
}"""

QUICKSTART = {"graph": 1, "start": 2, "inspector": 3, "vad": 5, "wait": 7, "stages": 8, "view": 9}
CHANGED_RUN = """graph2 = (
    sources.File(sample_path("two_turns.wav"), pace="realtime")
    | filters.Resample(sample_rate_hz=24_000)
    | filters.VAD(model="silero", threshold=0.6)
    | Realtime(turn_detection="manual", server={"responder": "echo", "response_delay_ms": 400})
    | player
)
handle2 = graph2.start()
display(player)  # a second view of the same player: it must not play twice
LatencyInspector(handle2)"""
STOP_RUN = """import time
h = graph.start()
time.sleep(4)
stopped = h.stop()
print(stopped.status, len(stopped.turns))"""


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_function(NOTEBOOK_OPEN, timeout=90_000)
    page.evaluate(SESSION_READY)


def _run_all_cells(page) -> None:
    """Run every cell once the kernel is connected and idle. JupyterLab drops a run-all issued while
    the kernel is still connecting, so check that execution started and retry once."""
    for attempt in range(2):
        page.wait_for_function(KERNEL_IDLE, timeout=90_000, polling=250)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        try:
            page.wait_for_function(EXECUTION_STARTED, timeout=20_000)
            return
        except Exception:
            if attempt == 1:
                raise


def _cell(page, index: int):
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").nth(index)


def _shot(locator, name: str) -> None:
    locator.scroll_into_view_if_needed()
    locator.screenshot(path=str(ARTIFACTS / name))


def _text_luminance(page, selector: str) -> float:
    """Relative luminance (0 black .. 1 white) of an element's computed text colour."""
    return page.evaluate("""(selector) => {
        const [r, g, b] = getComputedStyle(document.querySelector(selector)).color.match(/\\d+/g).map(Number);
        return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
    }""", selector)


@pytest.mark.timeout(420)
def test_quickstart_runs_again_stops_and_reads_in_both_themes(jupyterlab: str):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.add_init_script(COUNT_CONTEXTS)
        try:
            _open(page, f"{jupyterlab}/lab/tree/notebooks/01_quickstart.ipynb?reset")
            _run_all_cells(page)
            page.wait_for_function(ALL_EXECUTED, timeout=120_000, polling=500)
            assert page.evaluate(ERRORS) == []
            first = page.wait_for_function(V2V_FILLED, arg=QUICKSTART["inspector"], timeout=30_000).json_value()
            player = _cell(page, QUICKSTART["start"]).locator("[data-testid='vkit-player']")
            played, received = int(player.get_attribute("data-played")), int(player.get_attribute("data-received"))
            graph = _cell(page, QUICKSTART["graph"]).locator(".jp-OutputArea-output svg, .jp-OutputArea-output img[src^='data:image/svg+xml']")
            inspector = _cell(page, QUICKSTART["inspector"]).locator("[data-testid='vkit-inspector']")
            assert graph.count() == 1 and _cell(page, QUICKSTART["view"]).locator("[data-testid='vkit-graph-svg']").count() == 1
            assert inspector.locator("[data-testid='vkit-axis'] text").count() >= 3
            assert "end-of-turn detection" in inspector.locator("[data-testid='vkit-legend']").inner_text()
            assert inspector.locator("[data-testid='vkit-kpi']").count() >= 2
            assert _cell(page, QUICKSTART["vad"]).locator("[data-testid='vkit-vad-trace'] rect").count() == 3
            _shot(_cell(page, QUICKSTART["graph"]), "light_graph.png")
            _shot(inspector, "light_inspector.png")
            _shot(player, "light_player.png")
            _shot(_cell(page, QUICKSTART["vad"]), "light_vad_trace.png")
            _shot(_cell(page, QUICKSTART["stages"]), "light_stage_table.png")

            # the same graph again (the start and inspector cells re-run): every turn measured again,
            # the replaced player view closed its AudioContext
            page.evaluate(RUN_CELLS, [QUICKSTART["start"], QUICKSTART["inspector"]])
            page.wait_for_function(EXECUTION_STARTED, timeout=20_000)
            again = page.wait_for_function(V2V_FILLED, arg=QUICKSTART["inspector"], timeout=90_000).json_value()
            assert page.evaluate(RUNNING_CONTEXTS) == 1

            # a changed graph reusing the player, shown in a second cell as well
            changed = page.evaluate(APPEND_CELL, CHANGED_RUN)
            page.evaluate(RUN_CELLS, [changed])
            third = page.wait_for_function(V2V_FILLED, arg=changed, timeout=90_000).json_value()
            assert page.evaluate(RUNNING_CONTEXTS) == 1
            assert page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) [data-testid='vkit-player']").count() == 2
            _shot(_cell(page, changed), "light_changed_run.png")

            # a stop mid-run
            stop = page.evaluate(APPEND_CELL, STOP_RUN)
            page.evaluate(RUN_CELLS, [stop])
            page.wait_for_function(ALL_EXECUTED, timeout=60_000, polling=250)
            stop_output = _cell(page, stop).locator(".jp-OutputArea").inner_text()
            assert page.evaluate(ERRORS) == []

            light_text = _text_luminance(page, "[data-testid='vkit-inspector']")
            # JupyterLab Dark: the same outputs restyle from the theme's variables
            page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
            page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
            page.wait_for_timeout(500)
            dark_text = _text_luminance(page, "[data-testid='vkit-inspector']")
            dark_axis = page.evaluate("""() => getComputedStyle(document.querySelector(
                "[data-testid='vkit-axis'] text")).fill""")
            _shot(inspector, "dark_inspector.png")
            _shot(player, "dark_player.png")
            _shot(_cell(page, QUICKSTART["vad"]), "dark_vad_trace.png")
            _shot(_cell(page, QUICKSTART["view"]), "dark_graph_view.png")
            _shot(_cell(page, QUICKSTART["graph"]), "dark_graph.png")

            # notebook 04 in the dark theme
            page.evaluate("() => window.jupyterapp.commands.execute('docmanager:open', "
                          "{path: 'notebooks/04_session_analysis.ipynb'})")
            page.wait_for_function(f"() => {PANEL}?.context?.path?.endsWith('04_session_analysis.ipynb')", timeout=30_000)
            page.evaluate(SESSION_READY)
            _run_all_cells(page)
            page.wait_for_function(ALL_EXECUTED, timeout=120_000, polling=500)
            analysis_errors = page.evaluate(ERRORS)
            images = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output img").count()
            _shot(page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").nth(3), "dark_analysis_turns.png")
            _shot(page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").nth(6), "dark_analysis_waterfall.png")
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "failure.png"))
            raise
        finally:
            browser.close()
    assert received > 48_000 and 0 < played <= received + 24_000 * 60
    assert all(100 < v < 5000 for v in first + again + third)
    assert stop_output.startswith("stopped") and int(stop_output.split()[1]) < 3
    assert light_text < 0.4 and dark_text > 0.6 and dark_axis != "rgb(0, 0, 0)"
    assert analysis_errors == [] and images >= 3
