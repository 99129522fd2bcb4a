"""What every fake server shares: the HTTP plumbing, so each fake module holds only its API.

A fake is a real `ThreadingHTTPServer` on 127.0.0.1 (a free port unless told) serving in a
daemon thread, or in the calling thread from a shell. `FakeServer` owns its lifecycle, the
recorded requests and the open connections; `ScriptedFakeServer` adds the script queue of
replies and the responder behind it; `FakeHandler` is the request handler's wire side (quiet
logs, JSON and chunked replies, a hang-up mid-body).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import re
import signal
import socket
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, Generic, Protocol, Self, TypeVar, cast

IMAGE_URL = re.compile(
    r"^(data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/]+={0,2}|https?://\S+)$"
)
"""What the OpenAI APIs take as an image URL: base64 picture data or an http(s) address."""


class RecordedWithBody(Protocol):
    """What a scripted fake records of a request: its headers and JSON body."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def body(self) -> dict[str, Any]: ...


RecordT = TypeVar("RecordT")
RequestT = TypeVar("RequestT", bound=RecordedWithBody)
ReplyT = TypeVar("ReplyT")
FakeT = TypeVar("FakeT", bound="FakeServer[Any]")


class FakeServer(Generic[RecordT]):
    """A fake's server side: serving, closing, recorded requests, connections.

    `url_path` is what `base_url` adds to the host root ("/v1", or "" for the root itself).
    """

    def __init__(
        self,
        handler: type[FakeHandler[Any]],
        *,
        host: str,
        port: int,
        thread_name: str,
        url_path: str = "",
    ) -> None:
        self._lock = threading.Lock()
        self._recorded: list[RecordT] = []
        self._connections: set[socket.socket] = set()
        self._connection_count = 0
        self._ids = itertools.count(1)
        self._url_path = url_path
        self._thread_name = thread_name
        self._thread: threading.Thread | None = None
        self._httpd = _HttpServer((host, port), handler)
        self._httpd.fake = self
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """What a client takes as base_url: http://127.0.0.1:PORT and the API's path."""
        return f"http://{self._httpd.server_address[0]}:{self.port}{self._url_path}"

    def start(self) -> Self:
        """Serve in a background (daemon) thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                # close() waits up to one poll interval for the loop to notice.
                kwargs={"poll_interval": 0.05},
                name=self._thread_name,
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted."""
        self._httpd.serve_forever()

    def close(self) -> None:
        """Stop serving and drop open connections (clients see them closed)."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- records ---------------------------------------------------------------------------

    @property
    def recorded(self) -> list[RecordT]:
        with self._lock:
            return list(self._recorded)

    @property
    def connection_count(self) -> int:
        """TCP connections accepted so far: one per client pool when keep-alive works."""
        with self._lock:
            return self._connection_count

    # -- serving (called from handler threads) -----------------------------------------------

    def _connection_opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)
            self._connection_count += 1

    def _connection_closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _record(self, record: RecordT) -> None:
        with self._lock:
            self._recorded.append(record)

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)


class ScriptedFakeServer(FakeServer[RequestT], Generic[ReplyT, RequestT]):
    """A fake LLM API: replies come from the script queue, then `responder`, then `fallback`
    (the fake's echo)."""

    def __init__(
        self,
        handler: type[FakeHandler[Any]],
        *,
        responder: Callable[[dict[str, Any]], ReplyT] | None,
        fallback: Callable[[dict[str, Any]], ReplyT],
        host: str,
        port: int,
        thread_name: str,
        url_path: str = "",
    ) -> None:
        super().__init__(handler, host=host, port=port, thread_name=thread_name, url_path=url_path)
        self.responder = responder
        self._fallback = fallback
        self._script: deque[ReplyT] = deque()

    def queue(self, reply: ReplyT) -> None:
        """Answer the next request with `reply`."""
        with self._lock:
            self._script.append(reply)

    @property
    def pending(self) -> int:
        """Scripted replies not yet used."""
        with self._lock:
            return len(self._script)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The JSON body of every API request, in arrival order."""
        return [record.body for record in self.recorded]

    @property
    def headers(self) -> list[Mapping[str, str]]:
        """The headers (names lower-cased) of every API request, in arrival order."""
        return [record.headers for record in self.recorded]

    def _next_reply(self, body: dict[str, Any]) -> ReplyT:
        with self._lock:
            scripted = self._script.popleft() if self._script else None
        if scripted is not None:
            return scripted
        if self.responder is not None:
            return self.responder(body)
        return self._fallback(body)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    # Keep-alive connections idle in their threads; close() shuts them down instead.
    block_on_close = False
    fake: FakeServer[Any]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-reply is normal here (tests cut streams on purpose).
        if isinstance(sys.exc_info()[1], ConnectionError | OSError):
            return
        super().handle_error(request, client_address)


class FakeHandler(BaseHTTPRequestHandler, Generic[FakeT]):
    """A fake's request handler: the fake it serves, and the wire side of answering."""

    protocol_version = "HTTP/1.1"
    server_version = "openpista-fake/1"
    # Headers and body go out in separate writes; with Nagle on, each reply waits ~40 ms.
    disable_nagle_algorithm = True

    @property
    def fake(self) -> FakeT:
        server = self.server
        assert isinstance(server, _HttpServer)
        return cast(FakeT, server.fake)

    def setup(self) -> None:
        super().setup()
        self.fake._connection_opened(self.connection)  # pyright: ignore[reportPrivateUsage]

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.fake._connection_closed(self.connection)  # pyright: ignore[reportPrivateUsage]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # Tests and benchmarks want quiet stderr.

    def _read_json_request(self) -> tuple[Any, dict[str, Any], dict[str, str]]:
        """Read the request body: (the parsed JSON or None, the body when it is a JSON
        object or {}, the headers with lower-cased names)."""
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            parsed: Any = json.loads(raw)
        except ValueError:
            parsed = None
        body = cast("dict[str, Any]", parsed) if isinstance(parsed, dict) else {}
        headers = {name.lower(): value for name, value in self.headers.items()}
        return parsed, body, headers

    def _send_json(
        self, status: int, payload: Any, extra_headers: Mapping[str, str] | None = None
    ) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), "application/json", extra_headers)

    def _send_bytes(
        self,
        status: int,
        data: bytes,
        content_type: str,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _start_event_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _hang_up(self) -> None:
        """Drop the connection mid-body, as a crashing server or a broken network would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)


# -- serving from a shell ---------------------------------------------------------------------


def shell_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A fake's command line, with the options every fake takes: --host, --port,
    --require-api-key, --model."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (the default) picks a free port")
    parser.add_argument("--require-api-key", metavar="KEY", help="refuse other keys with 401")
    parser.add_argument(
        "--model", action="append", dest="models", help="serve only this model (repeatable)"
    )
    return parser


def serve_from_shell(server: FakeServer[Any], what: str) -> int:
    """Serve `server` in this thread until Ctrl-C or SIGTERM; its base URL goes on the first
    stdout line (what a script waits for), `what` it is on stderr."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(server.base_url, flush=True)
    print(f"fake {what} server running; Ctrl-C to stop", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0
