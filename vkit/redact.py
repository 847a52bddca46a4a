"""Keeping API keys out of every output: log lines, reprs, exceptions and recordings.

Two nets: patterns (``sk-...``, ``Bearer ...``, JSON fields named like a secret, a URL's
``user:password@``) and the literal keys vkit has been handed (``register_secret``), so that a key of
any shape is caught even when a server echoes it back inside free text.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

__all__ = ["REDACTED", "register_secret", "redact_text", "redact_data", "redact_url", "RedactingFilter",
           "install_websockets_filter"]

REDACTED = "[redacted]"
_SECRET_KEYS = re.compile(r"(api[_-]?key|token|secret|password|authorization)", re.I)
_SECRET_VALUES = re.compile(r"(\bsk-[A-Za-z0-9_\-]{8,}|\bek_[A-Za-z0-9_\-]{8,}|\bBearer\s+[^\s'\",}]+"
                            r"|(?i:api[_-]?key|authorization)(['\"]?\s*[:=]\s*['\"]?)(?:(?:Bearer|Basic)\s+)?[^\s'\",}]+)")
_URL_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
_MIN_SECRET_CHARS = 6  # a literal shorter than this would redact ordinary words
_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(secret: str | None) -> None:
    """Redact this literal value wherever vkit writes text from now on (process-wide)."""
    if secret and len(secret) >= _MIN_SECRET_CHARS:
        with _lock:
            _secrets.add(secret)


def redact_text(text: str) -> str:
    """``text`` with registered secrets, key-like tokens and URL credentials replaced by ``[redacted]``."""
    for secret in tuple(_secrets):
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _URL_USERINFO.sub(REDACTED + "@", text)
    return _SECRET_VALUES.sub(_replace_value, text)


def _replace_value(match: re.Match[str]) -> str:
    separator = match.group(2)
    if separator is None:
        return REDACTED
    return match.group(0)[: match.start(2) - match.start(0)] + separator + REDACTED


def redact_data(value: Any) -> Any:
    """A copy of JSON-like data with secret-named text fields and secret-looking strings redacted (a number
    or a structure under a secret-sounding name, such as ``input_tokens`` or ``input_token_details``, is
    kept, its strings checked).

    Iterative, so data nested deeper than the interpreter's recursion limit is handled too."""
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while stack:
        item, parent, key = stack.pop()
        if isinstance(item, dict):
            copy: Any = {}
            for k, v in item.items():
                if _SECRET_KEYS.search(str(k)) and isinstance(v, str):  # usage's "input_tokens": 12 is no secret
                    copy[k] = REDACTED
                else:
                    copy[k] = None
                    stack.append((v, copy, k))
        elif isinstance(item, (list, tuple)):
            copy = [None] * len(item)
            stack.extend((v, copy, i) for i, v in enumerate(item))
        elif isinstance(item, str):
            copy = redact_text(item)
        else:
            copy = item
        parent[key] = copy
    return root[0]


def redact_url(url: str) -> str:
    """A URL fit to show: no ``user:password@``, no query string (it may carry a key)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with ``redact_text`` (headers such as Authorization included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is logging's problem, not a secret leak
            return True
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()


def install_websockets_filter() -> None:
    """Redact the loggers websockets writes to (``websockets.client`` logs headers at DEBUG)."""
    for name in ("websockets", "websockets.client", "websockets.server", "websockets.protocol"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
