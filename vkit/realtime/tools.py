"""Client-side tools for the ``Realtime`` stage: Python callables the model can call.

A tool is a plain function (sync or async). Its JSON schema comes from its type hints and docstring
(``str``, ``int``, ``float``, ``bool``, ``Literal``, ``Enum``, ``list[...]``, ``Optional``, ``TypedDict`` and
dataclass parameters), or is given explicitly with ``tool(fn, parameters={...})``. ``ToolDispatcher`` is
what the stage runs: it sees the server's function-call events, runs each call once its arguments are
complete (parallel calls concurrently; sync tools in a worker thread), sends the ``function_call_output``
items and then one ``response.create``, and stamps ``ToolCall`` events on the session clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import inspect
import json
import logging
import re
import types
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from vkit.clock import SessionClock
from vkit.errors import ConfigError, got
from vkit.frames import Event, ToolCall
from vkit.realtime import events as ev

log = logging.getLogger(__name__)

__all__ = ["Tool", "tool", "as_tool", "schema_of", "ToolDispatcher"]


@dataclass(frozen=True)
class Tool:
    """A callable the model may call: its wire ``name``, ``description`` and JSON-schema ``parameters``."""

    fn: Callable[..., Any]
    name: str
    description: str
    parameters: dict[str, Any]
    _hints: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def declaration(self) -> dict[str, Any]:
        """The entry of ``session.tools`` (the same shape in the GA and beta dialects)."""
        return {"type": "function", "name": self.name, "description": self.description,
                "parameters": self.parameters}

    async def call(self, arguments: str) -> str:
        """Run the tool on the model's JSON ``arguments`` and return its output as text.

        Raises what the tool raises; bad JSON or arguments that do not fit the signature raise ValueError.
        """
        try:
            values = json.loads(arguments or "{}")
        except json.JSONDecodeError as exc:
            raise ValueError(f"the arguments are not JSON ({exc}) {got(arguments)}") from exc
        if not isinstance(values, dict):
            raise ValueError(f"the arguments must be a JSON object {got(arguments)}")
        kwargs = {k: _coerce(v, self._hints[k]) if k in self._hints else v for k, v in values.items()}
        if inspect.iscoroutinefunction(self.fn):
            result = await self.fn(**kwargs)
        else:
            result = await asyncio.to_thread(self.fn, **kwargs)
            if inspect.isawaitable(result):
                result = await result
        return result if isinstance(result, str) else json.dumps(result, default=_jsonable)


def tool(fn: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None,
         parameters: dict[str, Any] | None = None) -> Any:
    """Make ``fn`` a ``Tool``, overriding what is derived from it. Also a decorator: ``@tool(name="x")``."""
    if fn is None:
        return lambda f: tool(f, name=name, description=description, parameters=parameters)
    if not callable(fn):
        raise ConfigError(f"a tool must be a callable {got(type(fn).__name__)}")
    summary, param_docs = _parse_docstring(inspect.getdoc(fn) or "")
    hints = _hints_of(fn)
    schema = parameters if parameters is not None else schema_of(fn, param_docs)
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise ConfigError(f"a tool's parameters must be a JSON schema of type 'object' {got(schema)}")
    tool_name = name or getattr(fn, "__name__", "")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", tool_name):
        raise ConfigError(f"a tool name must be 1-64 letters, digits, '_' or '-' {got(tool_name)}")
    return Tool(fn, tool_name, description if description is not None else summary, schema,
                hints if parameters is None else {})


def as_tool(obj: Tool | Callable[..., Any]) -> Tool:
    """``obj`` itself when it is a Tool, else ``tool(obj)``."""
    return obj if isinstance(obj, Tool) else tool(obj)


def schema_of(fn: Callable[..., Any], param_docs: dict[str, str] | None = None) -> dict[str, Any]:
    """The JSON schema (an object) of ``fn``'s parameters, from its type hints."""
    hints = _hints_of(fn)
    fn_name = getattr(fn, "__name__", repr(fn))
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise ConfigError(f"a tool's parameters must be nameable in JSON (no *args, **kwargs or "
                              f"positional-only) {got(f'{fn_name}({param})')}")
        if param.name not in hints:
            raise ConfigError(f"a tool parameter needs a type hint to derive its schema "
                              f"{got(f'{fn_name}({param.name})')}")
        prop = _schema_of_type(hints[param.name], param.name)
        if param_docs and param.name in param_docs:
            prop = {**prop, "description": param_docs[param.name]}
        if param.default is param.empty:
            required.append(param.name)
        elif isinstance(param.default, (str, int, float, bool)) or param.default is None:
            prop = {**prop, "default": param.default}
        elif isinstance(param.default, enum.Enum):
            prop = {**prop, "default": param.default.value}
        properties[param.name] = prop
    return {"type": "object", "properties": properties, "required": required}


def _hints_of(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        hints = get_type_hints(fn)
    except (NameError, TypeError) as exc:
        raise ConfigError(f"cannot read the type hints of tool {getattr(fn, '__name__', fn)!r} ({exc})") from exc
    hints.pop("return", None)
    return hints


_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _schema_of_type(annotation: Any, where: str) -> dict[str, Any]:
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation in _SCALARS:
        return {"type": _SCALARS[annotation]}
    if annotation is Any:
        return {}
    if origin is Literal:
        kinds = {_SCALARS.get(type(a)) for a in args}
        return {"type": kinds.pop(), "enum": list(args)} if len(kinds) == 1 else {"enum": list(args)}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        values = [m.value for m in annotation]
        kinds = {_SCALARS.get(type(v)) for v in values}
        return {"type": kinds.pop(), "enum": values} if len(kinds) == 1 else {"enum": values}
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        inner = _schema_of_type(options[0], where) if len(options) == 1 else {
            "anyOf": [_schema_of_type(a, where) for a in options]}
        if len(options) == len(args):
            return inner
        if isinstance(inner.get("type"), str):
            return {**inner, "type": [inner["type"], "null"]}
        return {"anyOf": [inner, {"type": "null"}]}
    if origin in (list, tuple, set, frozenset, Sequence) or annotation in (list, tuple, set):
        return {"type": "array", "items": _schema_of_type(args[0], where)} if args else {"type": "array"}
    if origin is dict or annotation is dict:
        return {"type": "object"}
    if typing.is_typeddict(annotation):
        hints = get_type_hints(annotation)
        return {"type": "object", "properties": {k: _schema_of_type(v, f"{where}.{k}") for k, v in hints.items()},
                "required": sorted(annotation.__required_keys__)}
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        hints = get_type_hints(annotation)
        fields_ = dataclasses.fields(annotation)
        return {"type": "object", "properties": {f.name: _schema_of_type(hints[f.name], f"{where}.{f.name}")
                                                 for f in fields_},
                "required": [f.name for f in fields_ if f.default is dataclasses.MISSING
                             and f.default_factory is dataclasses.MISSING]}
    raise ConfigError(f"no JSON schema for the type of tool parameter {where!r}; pass parameters= to tool() "
                      f"{got(annotation)}")


def _coerce(value: Any, annotation: Any) -> Any:
    """JSON data -> the annotated Python type where they differ (Enum members, dataclasses, tuples)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if value is None:
        return None
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return annotation(value)
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type) and isinstance(value, dict):
        hints = get_type_hints(annotation)
        return annotation(**{k: _coerce(v, hints[k]) if k in hints else v for k, v in value.items()})
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        return _coerce(value, options[0]) if len(options) == 1 else value
    if origin in (list, tuple, set, frozenset) and isinstance(value, list):
        items = [_coerce(v, args[0]) for v in value] if args else value
        return origin(items)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The summary (first paragraph) and per-parameter text of a Google- or Sphinx-style docstring."""
    summary = doc.split("\n\n", 1)[0].strip().replace("\n", " ")
    params: dict[str, str] = {}
    for match in re.finditer(r"^\s*:param\s+(?:\w+\s+)?(\w+):\s*(.+(?:\n(?!\s*:)\s+.+)*)", doc, re.M):
        params[match.group(1)] = " ".join(match.group(2).split())
    section = re.search(r"^(?:Args|Arguments|Parameters):\s*\n((?:[ \t]+.*\n?|\s*\n)+)", doc, re.M)
    if section:
        current = None
        for line in section.group(1).splitlines():
            entry = re.match(r"^\s{1,8}(\w+)(?:\s*\([^)]*\))?:\s*(.*)$", line)
            if entry:
                current = entry.group(1)
                params[current] = entry.group(2).strip()
            elif current and line.strip():
                params[current] = f"{params[current]} {line.strip()}".strip()
    if ":param" in summary or summary.startswith(("Args:", "Parameters:")):
        summary = ""
    return summary, params


# -- running calls ---------------------------------------------------------------------------------


@dataclass
class _Call:
    call_id: str
    name: str
    response_id: str
    item_id: str
    task: asyncio.Task[None] | None = None
    done: bool = False


class ToolDispatcher:
    """Runs the calls a server's responses make, for one Realtime session.

    ``send`` sends a client event; ``publish`` puts an event on the session record; ``clock`` is the
    session clock (a tool runs as ``clock.busy()`` work: a virtual clock waits for it, real I/O included). Feed it every server event with ``on_event``; ``busy`` is true while a call runs or its
    follow-up response has not been created yet (the stage does not close then).
    """

    def __init__(self, tools: Sequence[Tool], send: Callable[[ev.ClientEvent], Awaitable[None]],
                 publish: Callable[[Event], Any], clock: SessionClock) -> None:
        self.tools = {t.name: t for t in tools}
        self._send = send
        self._publish = publish
        self._clock = clock
        self._now_ns = clock.now_ns
        self.calls: dict[str, _Call] = {}  # by call_id
        self._responses_done: dict[str, str] = {}  # response_id -> status
        self._followups_sent: set[str] = set()
        self._awaiting_followup = False

    @property
    def busy(self) -> bool:
        return self._awaiting_followup or any(not c.done for c in self.calls.values())

    async def on_event(self, event: ev.RealtimeEvent, now_ns: int) -> None:
        kind = event.type
        if kind == "response.function_call_arguments.done":
            self._start(event.call_id, getattr(event, "name", None), event.response_id, event.item_id,  # type: ignore[attr-defined]
                        event.arguments, now_ns)  # type: ignore[attr-defined]
        elif kind == "response.output_item.done":
            item = event.item or {}  # type: ignore[attr-defined]
            if item.get("type") == "function_call":
                self._start(item.get("call_id"), item.get("name"), event.response_id, item.get("id"),  # type: ignore[attr-defined]
                            item.get("arguments"), now_ns)
        elif kind == "response.created" and self._awaiting_followup:
            self._awaiting_followup = False
        elif kind == "response.done":
            response = event.response or {}  # type: ignore[attr-defined]
            response_id = response.get("id", "")
            for item in response.get("output") or ():
                if item.get("type") == "function_call" and item.get("status", "completed") == "completed":
                    self._start(item.get("call_id"), item.get("name"), response_id, item.get("id"),
                                item.get("arguments"), now_ns)
            self._responses_done[response_id] = response.get("status", "completed")
            await self._maybe_follow_up(response_id)

    def _start(self, call_id: str | None, name: str | None, response_id: str, item_id: str | None,
               arguments: str | None, now_ns: int) -> None:
        if not call_id or call_id in self.calls:
            return
        call = _Call(call_id, name or "", response_id, item_id or "")
        self.calls[call_id] = call
        self._event(call, "arrived", now_ns, arguments=arguments or "")
        call.task = asyncio.ensure_future(self._run(call, arguments or ""))

    async def _run(self, call: _Call, arguments: str) -> None:
        tool_ = self.tools.get(call.name)
        self._event(call, "started", self._now_ns(), arguments=arguments)
        error = None
        try:
            if tool_ is None:
                raise LookupError(f"no tool named {call.name!r} (declared: {', '.join(self.tools) or 'none'})")
            with self._clock.busy():
                output = await tool_.call(arguments)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a tool's failure is the model's to read, not the session's
            error = f"{type(exc).__name__}: {exc}"
            log.warning("tool %r (call %s) raised %s", call.name, call.call_id, error, exc_info=True)
            output = json.dumps({"error": error})
        self._event(call, "finished", self._now_ns(), output=output, error=error)
        await self._send(ev.CLIENT_EVENTS["conversation.item.create"](item={
            "type": "function_call_output", "call_id": call.call_id, "output": output}))
        self._event(call, "output_sent", self._now_ns())
        call.done = True
        await self._maybe_follow_up(call.response_id)

    async def _maybe_follow_up(self, response_id: str) -> None:
        """One ``response.create`` once the response is done and all its calls have their output sent."""
        calls = [c for c in self.calls.values() if c.response_id == response_id]
        if (not calls or response_id in self._followups_sent or response_id not in self._responses_done
                or not all(c.done for c in calls)):
            return
        self._followups_sent.add(response_id)
        if self._responses_done[response_id] != "completed":
            return  # cancelled or cut short (a barge-in): the user's next turn asks for the next answer
        self._awaiting_followup = True
        self._event(calls[-1], "response_requested", self._now_ns())
        await self._send(ev.CLIENT_EVENTS["response.create"]())

    def _event(self, call: _Call, phase: str, t_ns: int, **fields: Any) -> None:
        self._publish(ToolCall(phase=phase, name=call.name, call_id=call.call_id,  # type: ignore[arg-type]
                               response_id=call.response_id, item_id=call.item_id, t_ns=t_ns, **fields))

    async def close(self) -> None:
        """Cancel the calls still running (the session is ending)."""
        tasks = [c.task for c in self.calls.values() if c.task is not None and not c.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
