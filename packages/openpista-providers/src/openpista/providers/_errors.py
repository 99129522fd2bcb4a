"""Turning what an HTTP API said or how a connection failed into short text for one error line."""

from __future__ import annotations

import json
import re
import socket
from typing import Any

import httpx

_WHITESPACE = re.compile(r"\s+")
_ERRNO_PREFIX = re.compile(r"^\[Errno -?\d+\]\s*")


def one_line(text: str, limit: int = 300) -> str:
    """`text` on one line, cut to `limit` characters with a marker when longer."""
    flat = _WHITESPACE.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


MIN_SECRET_LENGTH = 8
"""Shorter "secrets" are placeholders (`ollama`, `none`, `x`): masking them would garble the
message (`***: cannot reach ...`) and protect nothing."""


def scrub(text: str, secret: str) -> str:
    """`text` with every occurrence of `secret` masked, so an API key never reaches a message."""
    return text.replace(secret, "***") if len(secret) >= MIN_SECRET_LENGTH else text


def api_error_message(body: bytes) -> str:
    """The human part of an error body, whatever shape the server chose.

    OpenAI-compatible servers say `{"error": {"message": ...}}`; some say `{"error": "..."}`,
    FastAPI-based ones `{"detail": ...}`, proxies answer with plain text or HTML.
    """
    text = body.decode("utf-8", errors="replace")
    try:
        data: Any = json.loads(text)
    except ValueError:
        return one_line(text) or "no error message"
    message = _message_in(data)
    if message and _PYDANTIC_ERRORS.match(message):
        summary = _pydantic_summary(message)
        message = f"validation error: {summary}" if summary else message
    return one_line(message) if message else one_line(text)


# llama-cpp-python's server answers a request its pydantic model refuses with a 500 whose
# message is the errors as Python reprs, one per member of a union ("7 validation errors:
# {'type': 'literal_error', 'loc': ('body', 'messages', 1, 'ChatCompletionRequestSystemMessage',
# 'role'), 'msg': "Input should be 'system'", ...} ..."): the telling one is buried.
_PYDANTIC_ERRORS = re.compile(r"\d+ validation errors?:")
_PYDANTIC_ENTRY = re.compile(r"'loc': \(([^)]*)\), 'msg': (\"[^\"]*\"|'[^']*')")


def _pydantic_summary(message: str) -> str:
    """`messages.1.content: Input should be a valid string`: each error as where and what,
    leaving out the union members whose role did not match (the message was not one)."""
    entries: list[tuple[list[str], str]] = []
    for loc, msg in _PYDANTIC_ENTRY.findall(message):
        parts = [part.strip().strip("'\"") for part in loc.split(",") if part.strip()]
        entries.append((parts, msg[1:-1]))
    not_meant = {parts[-2] for parts, msg in entries if len(parts) >= 2 and parts[-1] == "role"}
    found: list[str] = []
    for parts, msg in entries:
        if len(parts) >= 2 and parts[-2] in not_meant:
            continue
        # Field names are lower-case; the union member's model name is not, and "body" is noise.
        where = ".".join(p for p in parts if p != "body" and not p[:1].isupper())
        text = f"{where}: {msg}" if where else msg
        if text not in found:
            found.append(text)
    return "; ".join(found)


def _message_in(data: Any) -> str:
    if isinstance(data, str):
        return data
    if isinstance(data, list) and data:
        return _message_in(data[0])
    if isinstance(data, dict):
        for key in ("error", "message", "detail", "msg"):
            if key in data:
                found = _message_in(data[key])
                if found:
                    return found
    return ""


def connection_failure_reason(exc: httpx.TransportError, connect_timeout_s: float) -> str:
    """Why a connection could not be made, in a few words (`connection refused`)."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"no connection within {connect_timeout_s:g} s"
    # httpx wraps the OS error several layers deep (and anyio hides it behind "All connection
    # attempts failed"); the innermost OS error says what really happened.
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "host name not found"
        if isinstance(cause, OSError) and cause.strerror:
            return one_line(cause.strerror, 120).rstrip(".").lower()
        cause = cause.__cause__ or cause.__context__
    text = _ERRNO_PREFIX.sub("", str(exc)) or type(exc).__name__
    return one_line(text, 120).rstrip(".").lower()
