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


def scrub(text: str, secret: str) -> str:
    """`text` with every occurrence of `secret` masked, so an API key never reaches a message."""
    return text.replace(secret, "***") if secret else text


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
    return one_line(message) if message else one_line(text)


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
