"""Where the Docker engine is, and quick synchronous questions to it: is it up, has it an image.

`openpista skills list` and the container skill runner's fallback decision ask these; they go
over the engine's socket with the standard library (no aiohttp import, a one-second timeout),
so asking costs milliseconds whether or not an engine answers.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

DEFAULT_ENGINE = "unix:///var/run/docker.sock"
PROBE_TIMEOUT_S = 1.0


def engine_address(env: Mapping[str, str] | None = None) -> str:
    """DOCKER_HOST, or the engine's default socket."""
    env = os.environ if env is None else env
    return env.get("DOCKER_HOST", "").strip() or DEFAULT_ENGINE


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class EngineUnreachable(Exception):
    """No engine answered at the address; the message says where and why."""


def _get(address: str, path: str, timeout_s: float) -> tuple[int, bytes]:
    parts = urlsplit(address)
    if parts.scheme == "unix":
        connection: http.client.HTTPConnection = _UnixConnection(parts.path, timeout_s)
    elif parts.scheme in ("tcp", "http"):
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout_s)
    elif parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout_s
        )
    else:
        raise EngineUnreachable(
            f"DOCKER_HOST {address!r} is no engine address (unix://PATH or tcp://HOST:PORT)"
        )
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        problem = reason or type(exc).__name__
        raise EngineUnreachable(f"no Docker engine at {address} ({problem})") from None
    finally:
        connection.close()


def engine_problem(address: str | None = None, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None when an engine answers at `address` (default: engine_address()), else why not."""
    address = address or engine_address()
    try:
        status, _ = _get(address, "/_ping", timeout_s)
    except EngineUnreachable as exc:
        return str(exc)
    if status != 200:
        return f"the Docker engine at {address} answered its ping with HTTP {status}"
    return None


def image_problem(
    image: str, address: str | None = None, timeout_s: float = PROBE_TIMEOUT_S
) -> str | None:
    """None when the engine has `image`, else what is missing (the engine, or the image)."""
    address = address or engine_address()
    try:
        status, body = _get(address, f"/images/{quote(image, safe='')}/json", timeout_s)
    except EngineUnreachable as exc:
        return str(exc)
    if status == 200:
        return None
    if status == 404:
        return f"image {image} is not on the engine yet (pulled on first use)"
    try:
        message = str(json.loads(body).get("message", ""))
    except (ValueError, AttributeError):
        message = ""
    return f"the Docker engine at {address} could not look up image {image}: {message or status}"
