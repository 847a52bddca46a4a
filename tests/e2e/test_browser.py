"""JupyterLab in Debian's chromium, driven by Playwright: Run All on every notebook in notebooks/ (this is
where the suite executes them), in the light theme and then the dark one; the quickstart also re-runs
with changed parameters, plays one Player in two views, refuses the virtual clock while the Player is
viewed, is stopped and interrupted mid-run. Every notebook: no error output, every cell that runs a graph
for seconds shows progress, text and drawings readable against what is behind them in both themes.
Screenshots (and cell times) go to tests/e2e/artifacts/ (VKIT_TEST_ARTIFACTS), printed at the end."""

from __future__ import annotations

import json
import os
import re
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
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
QUICKSTART = "01_quickstart.ipynb"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]
LONG_CELL_S = 3.0  # a cell that runs a graph this long must show progress
MIN_CONTRAST = 3.0  # WCAG contrast of text against what is drawn behind it (3: large text, graphics)

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium (apt-get install chromium)")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kernel_env() -> dict[str, str]:
    """Kernels import this tree's vkit (not whatever copy is installed), whatever their working folder."""
    path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "JUPYTER_PLATFORM_DIRS": "1", "PYTHONPATH": path}


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory: pytest.TempPathFactory):
    tmp_path = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    (tmp_path / "data").symlink_to(ROOT / "data")
    settings = tmp_path / "settings"
    settings.mkdir()
    (settings / "overrides.json").write_text(json.dumps({
        "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},  # no toast
        # cell times in the metadata (for the progress check); every cell in the DOM
        "@jupyterlab/notebook-extension:tracker": {"recordTiming": True, "windowingMode": "none"}}))
    port = _free_port()
    log = open(tmp_path / "jupyterlab.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.root_dir={tmp_path}", "--IdentityProvider.token=", "--ServerApp.password=",
         f"--LabApp.app_settings_dir={settings}", "--LabApp.extension_manager=readonly",
         # the theme switch and workspaces stay in this folder, not in the user's ~/.config/jupyter
         f"--LabApp.user_settings_dir={tmp_path / 'user-settings'}", f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
         "--LabApp.expose_app_in_browser=True"],
        stdout=log, stderr=subprocess.STDOUT, env=_kernel_env())
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


@pytest.fixture(scope="module")
def page(jupyterlab: str):
    """One browser page with JupyterLab loaded; each test opens its notebook in it."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in [*ARTIFACTS.glob("*.png"), *ARTIFACTS.glob("cell_times.txt")]:  # this run's files only
        old.unlink()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.add_init_script(COUNT_CONTEXTS)
        page.goto(f"{jupyterlab}/lab?reset")
        page.wait_for_function("() => !!window.jupyterapp?.shell", timeout=90_000)
        page.evaluate("async () => { await window.jupyterapp.restored; }")  # every plugin's commands exist
        try:
            yield page
        finally:
            browser.close()


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
VISIBLE = ".jp-NotebookPanel:not(.lm-mod-hidden)"
OPEN_NOTEBOOK = """async (path) => {
    const app = window.jupyterapp;
    for (const widget of [...app.shell.widgets('main')]) {   // the last notebook: kernel off, tab closed
        if (widget.sessionContext) { await widget.sessionContext.shutdown(); widget.dispose(); }
    }
    const panel = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
    await panel.context.ready;
    await panel.sessionContext.ready;
}"""
KERNEL_IDLE = f"""() => {{
    const kernel = {PANEL}.sessionContext.session?.kernel;
    return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}}"""
EXECUTION_STARTED = f"""() => [...document.querySelectorAll('{VISIBLE} .jp-CodeCell .jp-InputPrompt')]
    .some(prompt => /\\[[*0-9]/.test(prompt.textContent))"""
ALL_EXECUTED = f"""() => {{
    const panel = {PANEL}, kernel = panel.sessionContext.session?.kernel;
    const cells = [...panel.content.model.cells].filter(c => c.type === 'code');
    const failed = cells.some(c => c.outputs.toJSON().some(o => o.output_type === 'error'));  // run-all stops there
    return kernel?.status === 'idle' && (failed || cells.every(c => c.executionCount !== null));
}}"""
OUTPUTS = f"""() => [...{PANEL}.content.model.cells].map((c, i) => ({{index: i, type: c.type,
    source: c.sharedModel.getSource(), outputs: c.type === 'code' ? c.outputs.toJSON() : [],
    execution: c.getMetadata ? (c.getMetadata('execution') || null) : null}}))"""
RUN_CELLS = f"""async (indices) => {{
    const panel = {PANEL};
    for (const i of indices) {{
        panel.content.activeCellIndex = i;
        await window.jupyterapp.commands.execute('notebook:run-cell');
    }}
}}"""
START_CELL = f"""(i) => {{   // run one cell without waiting for it to finish (run-cell resolves at the end)
    {PANEL}.content.activeCellIndex = i;
    window.jupyterapp.commands.execute('notebook:run-cell');
}}"""
SET_SOURCE = f"""([index, source]) => {PANEL}.content.model.sharedModel.cells[index].setSource(source)"""
APPEND_CELL = f"""(source) => {{
    const shared = {PANEL}.content.model.sharedModel;
    shared.insertCell(shared.cells.length, {{cell_type: 'code', source}});
    return shared.cells.length - 1;
}}"""
V2V_FILLED = f"""([i, after]) => {{
    const cell = document.querySelectorAll('{VISIBLE} .jp-Cell')[i];
    const root = cell?.querySelector("[data-testid='vkit-inspector']");
    const values = root ? [...root.querySelectorAll("[data-testid='vkit-v2v']")].map(td => td.textContent) : [];
    const done = root?.querySelector("[data-testid='vkit-inspector-status']")?.textContent.startsWith('complete');
    return done && values.length === 3 && values.every(v => /^\\d/.test(v)) && values.join() !== after ? values.map(Number) : null;
}}"""
# Text in the outputs whose colour is too close to what is drawn behind it. Each text element's colour
# (SVG: fill) against the first thing under its centre that paints: an SVG shape's opaque fill or an
# element's opaque background (the page's background at the bottom).
LOW_CONTRAST = f"""([index, minimum]) => {{
    const cell = document.querySelectorAll('{VISIBLE} .jp-Cell')[index];
    const rgba = (text) => {{ const m = (text || '').match(/[\\d.]+/g); return m && m.length >= 3 ? m.map(Number) : null; }};
    const luminance = ([r, g, b]) => {{
        const lin = (c) => {{ c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; }};
        return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
    }};
    const contrast = (a, b) => {{ const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); }};
    const paint = (el) => {{
        const style = getComputedStyle(el);
        if (el instanceof SVGElement && !(el instanceof SVGSVGElement)) {{
            if (['text', 'tspan', 'g', 'line', 'polyline'].includes(el.tagName)) return null;
            const fill = rgba(style.fill);
            const alpha = (fill && fill.length > 3 ? fill[3] : 1) * Number(style.fillOpacity || 1) * Number(style.opacity || 1);
            return fill && style.fill !== 'none' && alpha >= 0.5 ? fill.slice(0, 3) : null;
        }}
        const bg = rgba(style.backgroundColor);
        return bg && (bg.length === 3 || bg[3] >= 0.5) ? bg.slice(0, 3) : null;
    }};
    const texts = [...cell.querySelectorAll('.jp-OutputArea-output *')].filter(el =>
        [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()) && el.getClientRects().length);
    const bad = [];
    for (const el of texts) {{
        const box = el.getBoundingClientRect();
        if (!box.width || !box.height) continue;
        const style = getComputedStyle(el);
        if (style.visibility === 'hidden' || Number(style.opacity) < 0.1) continue;
        const fg = rgba(el instanceof SVGElement ? style.fill : style.color);
        if (!fg) continue;
        const x = box.left + box.width / 2, y = box.top + box.height / 2;
        if (x < 0 || y < 0 || x >= innerWidth || y >= innerHeight) continue;   // scrolled out of view
        const under = document.elementsFromPoint(x, y).filter(e => e !== el && !el.contains(e));
        const bg = under.map(paint).find(c => c) || [255, 255, 255];
        const ratio = contrast(fg.slice(0, 3), bg);
        if (ratio < minimum) bad.push({{text: el.textContent.trim().slice(0, 40), fg: fg.slice(0, 3).join(','),
                                        bg: bg.join(','), ratio: Math.round(ratio * 100) / 100}});
    }}
    return {{checked: texts.length, bad}};
}}"""

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
VIRTUAL_REFUSED = """try:
    vkit.run(graph2, clock="virtual")
except vkit.ConfigError as error:
    print(error)"""
STOP_RUN = """import time
h = graph.start()
time.sleep(4)
stopped = h.stop()
print(stopped.status, len(stopped.turns))"""
INTERRUPTED_RUN = """session = graph.start().wait()
print("after the wait:", session.status)"""


def _open(page, name: str) -> None:
    page.evaluate(OPEN_NOTEBOOK, f"notebooks/{name}")
    page.wait_for_function(f"() => {PANEL}?.context?.path?.endsWith({name!r})", timeout=30_000)


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
    return page.locator(f"{VISIBLE} .jp-Cell").nth(index)


def _shot(locator, name: str) -> None:
    locator.scroll_into_view_if_needed()
    locator.screenshot(path=str(ARTIFACTS / name))


def _theme(page, name: str) -> None:
    light = "true" if name == "JupyterLab Light" else "false"
    page.evaluate(f"() => window.jupyterapp.commands.execute('apputils:change-theme', {{theme: {name!r}}})")
    page.wait_for_function(f"() => document.body.dataset.jpThemeLight === {light!r}", timeout=30_000)
    page.wait_for_timeout(500)  # the outputs restyle from the theme's variables


def _seconds(execution: dict | None) -> float:
    if not execution or "iopub.execute_input" not in execution or "shell.execute_reply" not in execution:
        return 0.0
    from datetime import datetime

    start, end = (datetime.fromisoformat(execution[k].replace("Z", "+00:00"))
                  for k in ("iopub.execute_input", "shell.execute_reply"))
    return (end - start).total_seconds()


def _check_outputs(page, name: str) -> list[dict]:
    """No error output, no traceback, no key in any output; every cell that runs a graph for seconds
    shows a progress bar or a live vkit widget. Writes the cell times next to the screenshots."""
    cells = page.evaluate(OUTPUTS)
    errors = [f"cell {c['index']}: {o['ename']}: {o['evalue']}" for c in cells for o in c["outputs"]
              if o["output_type"] == "error"]
    text = "".join(str(o.get("data", {}).get("text/plain", "")) + str(o.get("text", "")) for c in cells for o in c["outputs"])
    lines, unshown = [], []
    for c in cells:
        if c["type"] != "code":
            continue
        seconds = _seconds(c["execution"])
        progress = _cell(page, c["index"]).locator(".jp-OutputArea-output .widget-hprogress, "
                                                   ".jp-OutputArea-output [data-testid^='vkit-']").count()
        lines.append(f"{name} cell {c['index']:>2} {seconds:6.1f} s  progress shown: {progress > 0!s:<5}  "
                     f"{c['source'].strip().splitlines()[0][:70] if c['source'].strip() else ''}")
        if seconds > LONG_CELL_S and re.search(r"\brun\(|\.wait\(", c["source"]) and not progress:
            unshown.append(lines[-1])
    with open(ARTIFACTS / "cell_times.txt", "a") as out:
        out.write("\n".join(lines) + "\n")
    assert errors == [] and "Traceback" not in text and "sk-" not in text, errors
    assert unshown == [], unshown
    return cells


def _check_theme(page, name: str, theme: str, cells: list[dict]) -> None:
    """Every cell with outputs: screenshot it, and check that its text stands out from its background."""
    stem = Path(name).stem
    low = []
    for c in cells:
        if c["type"] != "code" or not c["outputs"]:
            continue
        cell = _cell(page, c["index"])
        _shot(cell, f"{stem}_{theme}_cell{c['index']:02d}.png")
        result = page.evaluate(LOW_CONTRAST, [c["index"], MIN_CONTRAST])
        low += [f"cell {c['index']}: {b}" for b in result["bad"]]
    assert low == [], f"{name}, {theme}: text too close to its background: {low[:10]}"


def _run_notebook_in_both_themes(page, name: str) -> list[dict]:
    _open(page, name)
    _run_all_cells(page)
    page.wait_for_function(ALL_EXECUTED, timeout=240_000, polling=500)
    cells = _check_outputs(page, name)
    _check_theme(page, name, "light", cells)
    return cells


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", [n for n in NOTEBOOKS if n != QUICKSTART])
def test_run_all_in_jupyterlab_reads_well_in_both_themes(page, name: str):
    try:
        cells = _run_notebook_in_both_themes(page, name)
        _theme(page, "JupyterLab Dark")
        _check_theme(page, name, "dark", cells)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / f"{Path(name).stem}_failure.png"))
        raise
    finally:
        _theme(page, "JupyterLab Light")


QUICKSTART_CELLS = {"graph": 1, "start": 2, "inspector": 3, "vad": 5, "wait": 7, "stages": 8, "view": 9}


@pytest.mark.timeout(420)
@pytest.mark.skipif(QUICKSTART not in NOTEBOOKS, reason="no quickstart notebook")
def test_quickstart_runs_again_with_new_parameters_stops_and_reads_in_both_themes(page):
    q = QUICKSTART_CELLS
    try:
        cells = _run_notebook_in_both_themes(page, QUICKSTART)
        first = page.wait_for_function(V2V_FILLED, arg=[q["inspector"], ""], timeout=30_000).json_value()
        player = _cell(page, q["start"]).locator("[data-testid='vkit-player']")
        played, received = int(player.get_attribute("data-played")), int(player.get_attribute("data-received"))
        graph = _cell(page, q["graph"]).locator(".jp-OutputArea-output svg, .jp-OutputArea-output img[src^='data:image/svg+xml']")
        inspector = _cell(page, q["inspector"]).locator("[data-testid='vkit-inspector']")
        assert graph.count() == 1 and _cell(page, q["view"]).locator("[data-testid='vkit-graph-svg']").count() == 1
        assert inspector.locator("[data-testid='vkit-axis'] text").count() >= 3
        assert "end-of-turn detection" in inspector.locator("[data-testid='vkit-legend']").inner_text()
        assert inspector.locator("[data-testid='vkit-kpi']").count() >= 2
        assert _cell(page, q["vad"]).locator("[data-testid='vkit-vad-trace'] rect").count() == 3
        assert _cell(page, q["wait"]).locator(".widget-hprogress").count() == 1  # the wait shows its progress

        # the graph cell edited (the server answers 300 ms later) and re-run with the start and inspector
        # cells: every turn measured again, about 300 ms later; the replaced player closed its AudioContext
        source = next(c["source"] for c in cells if c["index"] == q["graph"])
        assert '"response_delay_ms": 200' in source
        page.evaluate(SET_SOURCE, [q["graph"], source.replace('"response_delay_ms": 200', '"response_delay_ms": 500')])
        page.evaluate(RUN_CELLS, [q["graph"], q["start"], q["inspector"]])
        again = page.wait_for_function(V2V_FILLED, arg=[q["inspector"], ",".join(f"{v:.1f}" for v in first)],
                                       timeout=90_000).json_value()
        assert page.evaluate(RUNNING_CONTEXTS) == 1

        # a changed graph reusing the new player, shown in a second cell as well: it plays once
        changed = page.evaluate(APPEND_CELL, CHANGED_RUN)
        page.evaluate(RUN_CELLS, [changed])
        third = page.wait_for_function(V2V_FILLED, arg=[changed, ""], timeout=90_000).json_value()
        assert page.evaluate(RUNNING_CONTEXTS) == 1
        assert page.locator(f"{VISIBLE} [data-testid='vkit-player']").count() == 2
        _shot(_cell(page, changed), "01_quickstart_light_changed_run.png")

        # the player is viewed, so its graph cannot run on the virtual clock
        refused = page.evaluate(APPEND_CELL, VIRTUAL_REFUSED)
        page.evaluate(RUN_CELLS, [refused])
        page.wait_for_function(ALL_EXECUTED, timeout=60_000, polling=250)
        refusal = _cell(page, refused).locator(".jp-OutputArea").inner_text()

        # a stop mid-run, then Kernel > Interrupt during a wait
        stop = page.evaluate(APPEND_CELL, STOP_RUN)
        page.evaluate(RUN_CELLS, [stop])
        page.wait_for_function(ALL_EXECUTED, timeout=60_000, polling=250)
        stop_output = _cell(page, stop).locator(".jp-OutputArea").inner_text()
        interrupted = page.evaluate(APPEND_CELL, INTERRUPTED_RUN)
        page.evaluate(START_CELL, interrupted)
        page.wait_for_function(f"() => /\\[\\*\\]/.test(document.querySelectorAll('{VISIBLE} .jp-Cell')[{interrupted}]"
                               ".querySelector('.jp-InputPrompt').textContent)", timeout=20_000)
        page.wait_for_timeout(4000)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:interrupt-kernel')")
        page.wait_for_function(ALL_EXECUTED, timeout=60_000, polling=250)
        interrupt_outputs = [o for o in page.evaluate(OUTPUTS)[interrupted]["outputs"] if o["output_type"] != "display_data"]
        _shot(_cell(page, interrupted), "01_quickstart_light_interrupted.png")
        cells = _check_outputs(page, QUICKSTART)

        _theme(page, "JupyterLab Dark")
        _check_theme(page, QUICKSTART, "dark", cells)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "01_quickstart_failure.png"))
        raise
    finally:
        _theme(page, "JupyterLab Light")
    assert received > 48_000 and 0 < played <= received + 24_000 * 60
    assert all(100 < v < 5000 for v in first + again + third)
    assert all(a - f > 200 for a, f in zip(again, first, strict=True))  # the new delay (+300 ms) shows in every turn
    assert "Player is shown in the browser (2 view(s))" in refusal and "(got 'virtual')" in refusal
    assert stop_output.startswith("stopped") and int(stop_output.split()[1]) < 3
    streams = [(o["name"], o["text"].strip()) for o in interrupt_outputs]
    errs = [text for stream, text in streams if stream == "stderr"]
    assert len(errs) == 1 and errs[0].startswith("vkit: interrupted; session stopped after") and "\n" not in errs[0]
    assert ("stdout", "after the wait: stopped") in streams
