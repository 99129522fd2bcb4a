"""The local web server a browser sign-in comes back to with `?code=...&state=...`.

It listens on 127.0.0.1 only, answers one path, and checks `state` in constant time. A
request with a wrong or missing state is refused and the wait goes on, so a stray or
hostile request cannot end a sign-in; an `error` from the authorization server ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>openpista</title></head>
<body style="font-family: sans-serif; margin: 3em"><h2>{title}</h2><p>{text}</p></body></html>
"""


@dataclass(frozen=True, slots=True)
class CallbackResult:
    code: str = ""
    error: str = ""
    """The authorization server's `error` (and description) when it refused."""


class CallbackServer:
    """Serves `path` on 127.0.0.1:`port` (0: a free port) until `wait` has a result."""

    def __init__(self, *, port: int, path: str, state: str | None) -> None:
        """`state`: the value the callback must carry; None for flows without one (OpenRouter)."""
        self.path = path
        self.state = state
        self._loop: asyncio.AbstractEventLoop | None = None
        self._future: asyncio.Future[CallbackResult] | None = None
        try:
            self._httpd = _CallbackHttpServer(("127.0.0.1", port), _CallbackHandler)
        except OSError as exc:
            raise OSError(
                exc.errno,
                f"cannot listen on 127.0.0.1:{port} for the sign-in callback ({exc.strerror}); "
                "is another sign-in running?",
            ) from None
        self._httpd.callback = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    async def __aenter__(self) -> CallbackServer:
        self._loop = asyncio.get_running_loop()
        self._future = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="openpista-signin-callback",
            daemon=True,
        )
        self._thread.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self._stop)

    def _stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    async def wait(self, timeout_s: float) -> CallbackResult:
        """The callback's result; raises TimeoutError when none came within `timeout_s`."""
        assert self._future is not None, "use `async with CallbackServer(...)`"
        return await asyncio.wait_for(asyncio.shield(self._future), timeout_s)

    def _accept(self, query: dict[str, list[str]]) -> tuple[int, str, str]:
        """Handle one callback request: (HTTP status, page title, page text)."""

        def first(name: str) -> str:
            return query.get(name, [""])[0]

        if self.state is not None and not hmac.compare_digest(
            first("state").encode(), self.state.encode()
        ):
            return (
                400,
                "Sign-in link not recognised",
                (
                    "This page does not belong to the sign-in openpista is waiting for "
                    "(an old tab?). Start `openpista auth login` again if it is not running."
                ),
            )
        if first("error"):
            description = first("error_description")
            error = first("error") + (f": {description}" if description else "")
            self._resolve(CallbackResult(error=error))
            return 400, "Sign-in refused", f"The sign-in was refused ({_html(error)})."
        if not first("code"):
            return 400, "No code", "The callback carried no authorization code."
        self._resolve(CallbackResult(code=first("code")))
        # Not "signed in" yet: the code is exchanged after this page is sent, and can fail.
        return (
            200,
            "Sign-in received",
            "Return to your terminal: openpista finishes the sign-in there.",
        )

    def _resolve(self, result: CallbackResult) -> None:
        loop, future = self._loop, self._future
        if loop is None or future is None:
            return

        def settle() -> None:
            if not future.done():
                future.set_result(result)

        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting any more
            loop.call_soon_threadsafe(settle)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _CallbackHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    callback: CallbackServer


class _CallbackHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        # The request line holds the authorization code: never logged.
        pass

    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, _CallbackHttpServer)
        callback = server.callback
        url = urlsplit(self.path)
        if url.path != callback.path:
            status, title, text = 404, "Not found", "Nothing here."
        else:
            status, title, text = callback._accept(parse_qs(url.query))  # pyright: ignore[reportPrivateUsage]
        body = _PAGE.format(title=title, text=text).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
