"""Tools as Python callables: a function's signature and docstring as a Responses function tool.

The minimum the cascade needs (str/int/float/bool parameters); a shared ``vkit.realtime.tools`` is to
replace it when it lands.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

from vkit.errors import ConfigError, got

_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean",
               "str": "string", "int": "integer", "float": "number", "bool": "boolean"}


def function_tool(fn: Callable[..., Any]) -> dict[str, Any]:
    """The Responses API's ``{"type": "function", ...}`` declaration of ``fn``."""
    properties, required = {}, []
    for name, parameter in inspect.signature(fn).parameters.items():
        kind = _JSON_TYPES.get(parameter.annotation, "string")
        properties[name] = {"type": kind}
        if parameter.default is inspect.Parameter.empty:
            required.append(name)
    return {"type": "function", "name": fn.__name__, "description": inspect.getdoc(fn) or "",
            "parameters": {"type": "object", "properties": properties, "required": required,
                           "additionalProperties": False}, "strict": False}


def call_tool(tools: dict[str, Callable[..., Any]], name: str, arguments: str) -> str:
    """Run the named tool with its JSON arguments; its result as text (JSON unless it is a string)."""
    fn = tools.get(name)
    if fn is None:
        raise ConfigError(f"the model called a tool that was not given {got(name)}")
    result = fn(**(json.loads(arguments) if arguments else {}))
    return result if isinstance(result, str) else json.dumps(result)
