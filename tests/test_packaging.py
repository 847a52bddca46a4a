"""The wheel: its metadata and package data, and the two install shapes it promises.

``pip install vkit`` (no extras) must run graphs in a script or a Dask worker; notebook-only calls then
fail naming the extra. In the suite the built wheel is unpacked and run from an empty folder with the
notebook and analysis packages made unimportable; ``make wheel-check`` (``VKIT_WHEEL_CHECK=1``) also
installs it into fresh virtualenvs from the registry.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_ONLY = ("jupyterlab", "ipywidgets", "anywidget", "IPython", "ipykernel", "traitlets")
ANALYSIS_ONLY = ("pandas", "matplotlib", "pyarrow")

# Run inside the installed (or unpacked) wheel, from an empty folder. argv: [blocked module names...]
CHECK_SCRIPT = textwrap.dedent('''
    import importlib.abc, json, sys
    blocked = set(sys.argv[1:])

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in blocked:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
    import numpy as np
    import vkit
    from vkit import filters, sinks, sources

    tone = (0.1 * np.sin(np.arange(24_000) / 24_000 * 2 * np.pi * 440)).astype(np.float32)
    memory = sinks.Memory()
    session = vkit.run(sources.Array(tone, 24_000) | filters.NoiseGate(-40) | filters.Resample(16_000) | memory)
    result = {"vkit_file": vkit.__file__, "status": str(session.status), "num_samples": int(memory.audio().size)}
    errors = {}
    for name, call in [("sinks.Player()", lambda: sinks.Player()), ("sources.BrowserMic", lambda: sources.BrowserMic),
                       ("widgets.LatencyInspector", lambda: __import__("vkit.widgets").widgets.LatencyInspector),
                       ("plots.latency_distribution", lambda: vkit.plots.latency_distribution({"a": []})),
                       ("turns.to_frame()", lambda: session.turns.to_frame())]:
        try:
            call()
            errors[name] = None
        except ImportError as exc:
            errors[name] = str(exc)
    result["errors"] = errors
    print(json.dumps(result))
''')


def clean_env(path: Path | None = None) -> dict[str, str]:
    """The environment without the source tree on PYTHONPATH (optionally with ``path`` instead)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if path is not None:
        env["PYTHONPATH"] = str(path)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the sources (a build leaves build/ and egg-info behind)."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "vkit", source / "vkit", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(source)],
                   check=True, capture_output=True, timeout=240, env=clean_env())
    (path,) = out.glob("vkit-*.whl")
    return path


@pytest.fixture(scope="module")
def unpacked(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def metadata(wheel: Path) -> tuple[list[str], dict[str, list[str]]]:
    """The wheel's unconditional requirements and, per extra, the requirement names it adds."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        message = Parser().parsestr(archive.read(name).decode())
    required, extras = [], {extra: [] for extra in message.get_all("Provides-Extra") or []}
    for requirement in message.get_all("Requires-Dist") or []:
        spec, _, marker = requirement.partition(";")
        project = spec.split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower()
        if "extra ==" in marker:
            extras[marker.split("extra ==")[1].strip().strip("\"'")].append(project)
        else:
            required.append(project)
    return required, extras


def run_check(python: str, cwd: Path, blocked: tuple[str, ...], path: Path | None = None) -> dict:
    done = subprocess.run([python, "-c", CHECK_SCRIPT, *blocked], cwd=cwd, env=clean_env(path), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_demo(command: list[str], cwd: Path, path: Path | None = None) -> str:
    done = subprocess.run([*command, "demo", "--fast", "--responder", "echo", "--record", "rec"], cwd=cwd,
                          env=clean_env(path),
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def test_wheel_requires_no_notebook_package_and_ships_its_data(wheel: Path):
    required, extras = metadata(wheel)
    assert {"numpy", "scipy", "librosa", "soxr", "soundfile", "websockets", "onnxruntime"} <= set(required)
    assert not set(required) & {"jupyterlab", "ipywidgets", "anywidget", "pandas", "matplotlib", "pyarrow"}
    assert {"jupyterlab", "ipywidgets", "anywidget"} <= set(extras["notebook"])
    assert {"pandas", "matplotlib", "pyarrow"} <= set(extras["analysis"])
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    widget_assets = {f"vkit/{folder}/{p.name}" for folder in ("widgets", "sources", "sinks")
                     for p in (ROOT / "vkit" / folder).iterdir() if p.suffix in (".js", ".css")}
    assert {"vkit/sources/browser_mic.js", "vkit/sinks/browser_player.js"} < widget_assets <= names
    assert {"vkit/models/silero_vad.onnx", "vkit/models/smart-turn-v3.2-cpu.onnx", "vkit/models/NOTICE",
            "vkit/data/two_turns.wav", "vkit/data/two_turns.segments.csv", "vkit/py.typed"} <= names
    assert any(n.endswith("licenses/vkit/models/SMART_TURN_LICENSE") for n in names)
    assert not any(n.startswith(("data/", "tests/", "notebooks/")) for n in names)


def test_unpacked_wheel_runs_a_graph_without_notebook_packages_and_names_the_extra(unpacked: Path, tmp_path: Path):
    result = run_check(sys.executable, tmp_path, NOTEBOOK_ONLY + ANALYSIS_ONLY, path=unpacked)
    assert Path(result["vkit_file"]).is_relative_to(unpacked)  # the wheel's vkit, not the source tree
    assert result["status"] == "complete" and result["num_samples"] == 16_000
    errors = result["errors"]
    assert "pip install 'vkit[notebook]'" in errors["sinks.Player()"]
    assert "pip install 'vkit[notebook]'" in errors["sources.BrowserMic"]
    assert "pip install 'vkit[notebook]'" in errors["widgets.LatencyInspector"]
    assert "pip install 'vkit[analysis]'" in errors["plots.latency_distribution"]
    assert "pip install 'vkit[analysis]'" in errors["turns.to_frame()"]


def test_demo_runs_from_the_unpacked_wheel_in_an_empty_folder(unpacked: Path, tmp_path: Path):
    out = run_demo([sys.executable, "-m", "vkit"], tmp_path, path=unpacked)
    assert str(unpacked / "vkit" / "data" / "two_turns.wav") in out
    assert "3 turns" in out
    assert (tmp_path / "rec" / "turns.csv").is_file()


@pytest.mark.skipif(os.environ.get("VKIT_WHEEL_CHECK") != "1", reason="installs from the registry: make wheel-check")
def test_fresh_virtualenvs_from_the_registry(wheel: Path, tmp_path: Path):
    core = tmp_path / "core"
    venv.create(core, with_pip=True)
    python = str(core / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", str(wheel)], check=True, timeout=600, env=clean_env())
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_check(python, empty, ())
    assert Path(result["vkit_file"]).is_relative_to(core)
    assert result["status"] == "complete" and result["num_samples"] == 16_000
    assert "pip install 'vkit[notebook]'" in result["errors"]["sinks.Player()"]
    assert "pip install 'vkit[analysis]'" in result["errors"]["turns.to_frame()"]
    assert "3 turns" in run_demo([str(core / "bin" / "vkit")], empty)
    subprocess.run([python, "-m", "pip", "install", "-q", f"vkit[notebook] @ {wheel.as_uri()}"], check=True,
                   timeout=600, env=clean_env())
    assert run_check(python, empty, ())["errors"]["sinks.Player()"] is None
