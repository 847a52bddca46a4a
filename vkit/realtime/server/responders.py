"""What the local server answers with.

- ``echo``: the user's own utterance back (no model; deterministic), transcribed when asked to be;
- ``scripted``: given audio or text, in turn;
- ``cascade``: real offline STT -> rule-based reply -> TTS (pocketsphinx, espeak-ng/flite);
- ``tools``: function calls: scripted rules ("when the transcript matches X, call get_weather with
  these arguments"), or the declared tool when the client asks for one; after the tool's output, a
  spoken answer that reads it.

A responder is any object with ``async reply(turn: Turn) -> Reply``; an optional
``transcribe(audio, sample_rate_hz) -> str`` (blocking) serves input transcription.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import soundfile as sf
import soxr

from vkit.errors import ConfigError, got
from vkit.speech import OUTPUT_RATE_HZ, Recogniser, Speech, answer
from vkit.units import ms_to_s, samples_to_ms

T = TypeVar("T")


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


@dataclass
class Turn:
    """What a response is asked to answer.

    ``audio``: the latest user audio in the response's context (mono float32 at ``sample_rate_hz``; may be
    empty); ``transcript``: what the user said when it is known (a text item, a transcription);
    ``items``: the context, oldest first, as protocol items without raw audio; ``run_blocking``: run a
    blocking call off the event loop (``await turn.run_blocking(fn, *args)``), accounted for by the
    server's clock so a virtual session stays deterministic.
    """

    audio: np.ndarray
    sample_rate_hz: int
    transcript: str | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = "auto"
    output_modalities: list[str] = field(default_factory=lambda: ["audio"])
    instructions: str = ""
    run_blocking: Callable[..., Awaitable[Any]] = _in_thread


@dataclass(frozen=True)
class FunctionCall:
    """A call the model makes: the tool's ``name`` and its ``arguments`` as JSON text."""

    name: str
    arguments: str = "{}"


@dataclass
class Reply:
    """An answer: mono float32 audio at 24 kHz (may be empty), its transcript (or text), what the user was
    heard to say, and function calls (each its own output item, after the message if there is one)."""

    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    transcript: str = ""
    input_transcript: str | None = None
    calls: list[FunctionCall] = field(default_factory=list)


class Responder(Protocol):
    name: str

    async def reply(self, turn: Turn) -> Reply: ...


def _to_output_rate(audio: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    if sample_rate_hz == OUTPUT_RATE_HZ or audio.size == 0:
        return np.asarray(audio, np.float32)
    return soxr.resample(audio, sample_rate_hz, OUTPUT_RATE_HZ).astype(np.float32)


class EchoResponder:
    """Answers with the user's own utterance (no model; deterministic).

    With ``transcribe=True`` a pocketsphinx ``Recogniser`` transcribes what it echoes, so the answer's
    transcript (and input transcription) is filled (a text-only answer without it says how much audio it
    echoes); it costs the recognition's time (about a third of the
    utterance's length) in the response's processing, so it is off by default.
    """

    name = "echo"

    def __init__(self, transcribe: bool = False) -> None:
        self.recogniser = Recogniser() if transcribe else None

    def transcribe(self, audio: np.ndarray, sample_rate_hz: int) -> str:
        return self.recogniser.transcribe(audio, sample_rate_hz) if self.recogniser is not None else ""

    async def reply(self, turn: Turn) -> Reply:
        heard = turn.transcript
        if heard is None and self.recogniser is not None and turn.audio.size:
            heard = await turn.run_blocking(self.recogniser.transcribe, turn.audio, turn.sample_rate_hz)
        text = heard or ""
        if not text and "audio" not in turn.output_modalities:  # text only, nothing recognised: still answer
            text = f"(echo of {ms_to_s(samples_to_ms(turn.audio.size, turn.sample_rate_hz)):.2f} s of audio)"
        return Reply(_to_output_rate(turn.audio, turn.sample_rate_hz), transcript=text, input_transcript=heard)

    def close(self) -> None:
        if self.recogniser is not None:
            self.recogniser.close()


class ScriptedResponder:
    """Answers from a list of replies in turn (cycling): audio arrays at 24 kHz, audio files, or text."""

    name = "scripted"

    def __init__(self, replies: Sequence[str | Path | np.ndarray]) -> None:
        if not replies:
            raise ConfigError(f"the scripted responder needs at least one reply {got(replies)}")
        self._replies: list[Reply] = []
        speech: Speech | None = None
        for reply in replies:
            if isinstance(reply, np.ndarray):
                self._replies.append(Reply(reply.astype(np.float32)))
            elif isinstance(reply, Path) or (isinstance(reply, str) and Path(reply).suffix in (".wav", ".flac")):
                audio, rate = sf.read(str(reply), dtype="float32", always_2d=True)
                self._replies.append(Reply(_to_output_rate(audio.mean(1), rate)))
            else:
                speech = speech or Speech()
                self._replies.append(Reply(speech.synthesise(str(reply)), transcript=str(reply)))
        self._next = 0

    async def reply(self, turn: Turn) -> Reply:
        reply = self._replies[self._next % len(self._replies)]
        self._next += 1
        return reply


class CascadeResponder:
    """A real local cascade: pocketsphinx speech recognition (``Recogniser``), a rule-based reply, espeak-ng."""

    name = "cascade"

    def __init__(self, tts_engine: str | None = None) -> None:
        self._speech = Speech(tts_engine)
        self.recogniser = Recogniser()

    def transcribe(self, audio: np.ndarray, sample_rate_hz: int) -> str:
        return self.recogniser.transcribe(audio, sample_rate_hz)

    answer = staticmethod(answer)

    def _run(self, audio: np.ndarray, sample_rate_hz: int, heard: str | None) -> Reply:
        heard = self.transcribe(audio, sample_rate_hz) if heard is None else heard
        text = self.answer(heard)
        return Reply(self._speech.synthesise(text), transcript=text, input_transcript=heard)

    async def reply(self, turn: Turn) -> Reply:
        return await turn.run_blocking(self._run, turn.audio, turn.sample_rate_hz, turn.transcript)

    def close(self) -> None:
        """End the recognition worker."""
        self.recogniser.close()


@dataclass(frozen=True)
class ToolRule:
    """When the user's transcript matches ``pattern`` (a regex, case-insensitive), call each of ``calls``:
    ``(tool name, arguments)`` pairs; two or more are parallel calls in one response."""

    pattern: str
    calls: tuple[tuple[str, dict[str, Any]], ...]

    @classmethod
    def parse(cls, spec: str) -> ToolRule:
        """``"PATTERN=NAME:{json arguments}"`` (the command line's form); ``;`` separates parallel calls."""
        pattern, sep, rest = spec.partition("=")
        calls = []
        for part in rest.split(";") if sep else ():
            name, _, arguments = part.partition(":")
            try:
                calls.append((name.strip(), json.loads(arguments) if arguments.strip() else {}))
            except json.JSONDecodeError:
                raise ConfigError(f"a tool rule's arguments must be a JSON object {got(spec)}") from None
        if not pattern or not calls or not all(name for name, _ in calls):
            raise ConfigError(f"a tool rule is PATTERN=NAME:{{json}} (';' between parallel calls) {got(spec)}")
        return cls(pattern, tuple(calls))


class ToolsResponder:
    """Answers with function calls.

    A turn is answered, in this order: (1) after a ``function_call_output``, by reading the tool's output
    aloud ("get_weather says: ..."); (2) by each ``ToolRule`` whose pattern the user's transcript matches;
    (3) when the client asks for a tool (``tool_choice: "required"`` calls the first declared tool, ``{"type":
    "function", "name": ...}`` that one, and a transcript that names a declared tool, e.g. "get weather", that
    one), with arguments from the tool's JSON schema (each required property's ``default``, first ``enum``
    value or first ``examples`` value, else an empty value of its type); (4) otherwise by echoing the user.
    ``tool_choice: "none"`` turns (2) and (3) off.
    """

    name = "tools"

    def __init__(self, rules: Sequence[ToolRule | str] = (), *, transcribe: bool = False) -> None:
        self.rules = [rule if isinstance(rule, ToolRule) else ToolRule.parse(rule) for rule in rules]
        self._echo = EchoResponder(transcribe)
        self._speech = Speech() if shutil.which("espeak-ng") or shutil.which("flite") else None

    def transcribe(self, audio: np.ndarray, sample_rate_hz: int) -> str:
        return self._echo.transcribe(audio, sample_rate_hz)

    async def reply(self, turn: Turn) -> Reply:
        last = turn.items[-1] if turn.items else {}
        if last.get("type") == "function_call_output":
            call = next((i for i in turn.items if i.get("type") == "function_call"
                         and i.get("call_id") == last.get("call_id")), {})
            text = f"{call.get('name', 'The tool')} says: {last.get('output', '')}"
            spoken = "audio" in turn.output_modalities and self._speech is not None
            audio = await turn.run_blocking(self._speech.synthesise, text) if spoken else np.zeros(0, np.float32)  # type: ignore[union-attr]
            return Reply(audio, transcript=text)
        if turn.tool_choice != "none":
            heard = turn.transcript
            if heard is None and self._echo.recogniser is not None and turn.audio.size:
                heard = await turn.run_blocking(self._echo.recogniser.transcribe, turn.audio, turn.sample_rate_hz)
            calls = self._calls(turn, heard or "")
            if calls:
                return Reply(transcript="", input_transcript=heard, calls=calls)
        return await self._echo.reply(turn)

    def _calls(self, turn: Turn, heard: str) -> list[FunctionCall]:
        for rule in self.rules:
            if re.search(rule.pattern, heard, re.IGNORECASE):
                return [FunctionCall(name, json.dumps(arguments)) for name, arguments in rule.calls]
        tools = {t.get("name"): t for t in turn.tools if t.get("type", "function") == "function"}
        if not tools:
            return []
        choice = turn.tool_choice
        if isinstance(choice, dict) and choice.get("name") in tools:
            chosen = tools[choice["name"]]
        elif choice == "required":
            chosen = next(iter(tools.values()))
        else:
            spoken = re.sub(r"[^a-z0-9]+", " ", heard.lower())
            chosen = next((t for name, t in tools.items() if name and name.lower().replace("_", " ") in spoken), None)
        return [] if chosen is None else [FunctionCall(chosen["name"], json.dumps(example_arguments(chosen)))]

    def close(self) -> None:
        self._echo.close()


def example_arguments(tool: dict[str, Any]) -> dict[str, Any]:
    """Arguments for a function tool from its JSON schema: each required property's default, first enum
    value or first example, else an empty value of its type."""
    schema = tool.get("parameters") or {}
    properties = schema.get("properties") or {}
    empty = {"string": "", "integer": 0, "number": 0, "boolean": False, "array": [], "object": {}}
    arguments = {}
    for name in schema.get("required") or []:
        spec = properties.get(name) or {}
        if "default" in spec:
            arguments[name] = spec["default"]
        elif spec.get("enum"):
            arguments[name] = spec["enum"][0]
        elif spec.get("examples"):
            arguments[name] = spec["examples"][0]
        else:
            kind = spec.get("type")
            arguments[name] = empty.get(kind[0] if isinstance(kind, list) else kind)
    return arguments


RESPONDERS = ("echo", "scripted", "cascade", "tools")


def make_responder(name: str, replies: Sequence[str | Path | np.ndarray] | None = None, *,
                   tool_rules: Sequence[ToolRule | str] = (), transcribe: bool = False) -> Responder:
    """A responder by name (``RESPONDERS``); ``replies`` for scripted, ``tool_rules`` for tools."""
    if name == "echo":
        return EchoResponder(transcribe)
    if name == "scripted":
        return ScriptedResponder(replies or ["This is a scripted answer."])
    if name == "cascade":
        return CascadeResponder()
    if name == "tools":
        return ToolsResponder(tool_rules, transcribe=transcribe)
    raise ConfigError(f"responder must be one of {', '.join(RESPONDERS)} {got(name)}")
