"""The browser tools through `openpista run -e`: a model completes a form on a local site
through tool calls alone, and no Chromium outlives the command, even one stopped mid-call."""

from __future__ import annotations

import os
import re
import shutil
import signal
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from openpista.providers.testing import FakeChatCompletionsServer, FakeReply

from .conftest import Openpista, wait_for

pytestmark = pytest.mark.skipif(
    shutil.which("chromium") is None, reason="Debian's chromium is not installed (.ci/run does)"
)

FORM = """<!doctype html><html><head><title>Library card</title></head><body>
<form action="/done" method="post">
  <label for="reader">Reader</label> <input id="reader" name="reader">
  <button type="submit">Request card</button>
</form></body></html>"""

DONE = """<!doctype html><html><head><title>Card issued</title></head><body>
<p>Card 0042 is ready for {reader}.</p></body></html>"""


class _Library(BaseHTTPRequestHandler):
    release = threading.Event()
    slow_requested = threading.Event()

    def do_GET(self) -> None:
        if self.path == "/slow":  # a page that loads only when the test says so
            type(self).slow_requested.set()
            type(self).release.wait(60)
            return  # by then openpista and its browser are gone: nobody to answer
        self._send(FORM)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        assert urlsplit(self.path).path == "/done"
        self._send(DONE.format(reader=form.get("reader", ["nobody"])[0]))

    def _send(self, page: str) -> None:
        data = page.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def library() -> Iterator[str]:
    _Library.release.clear()
    _Library.slow_requested.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Library)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    _Library.release.set()
    server.shutdown()
    server.server_close()
    thread.join()


def _processes_of(home: Path) -> list[int]:
    """Live processes started under this OPENPISTA_HOME: they inherited it in their environment
    (Playwright's driver, Chromium and every helper Chromium starts, detached or not)."""
    marker = f"OPENPISTA_HOME={home}".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            if "\nState:\tZ" in (entry / "status").read_text():
                continue
        except OSError:
            continue
        found.append(int(entry.name))
    return found


def _chromium_of(home: Path) -> list[int]:
    chromium: list[int] = []
    for pid in _processes_of(home):
        try:
            if "chrom" in Path(f"/proc/{pid}/comm").read_text():
                chromium.append(pid)
        except OSError:
            continue
    return chromium


def _quote_the_page(request: dict) -> FakeReply:
    """The model's last step: it reads what browser.content returned and reports it."""
    page = request["messages"][-1]["content"]
    found = re.search(r"Card \d+ is ready for \w+\.", page)
    return FakeReply(text=f"Done. The library says: {found.group(0) if found else page}")


def test_a_model_fills_in_a_form_and_reads_the_result_through_the_browser_tools(
    openpista: Openpista, llm: FakeChatCompletionsServer, library: str
) -> None:
    llm.queue_tool_calls([("browser_navigate", {"url": f"{library}/form"})])
    # One round, two calls: the browser's serial group keeps them in the model's order.
    llm.queue_tool_calls(
        [
            ("browser_type", {"selector": "#reader", "text": "Ada"}),
            ("browser_click", {"text": "Request card"}),
        ]
    )
    llm.queue_tool_calls([("browser_content", {})])
    llm.responder = _quote_the_page

    result = openpista.run("run", "-e", "Get me a library card in the name of Ada", timeout=120)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "Done. The library says: Card 0042 is ready for Ada.\n"
    # What the model read after each step.
    results = [
        [m["content"] for m in request["messages"] if m["role"] == "tool"]
        for request in llm.requests
    ]
    assert results[1] == [f"loaded {library}/form (HTTP 200)\ntitle: Library card"]
    assert results[2][1:] == [
        'typed 3 characters into field "Reader"',
        f'clicked button "Request card"; the page is now {library}/done (title: Card issued)',
    ]
    assert results[3][-1].startswith(
        f"URL: {library}/done\nTitle: Card issued\n\nCard 0042 is ready for Ada."
    )
    assert "browser_navigate" in [t["function"]["name"] for t in llm.requests[0]["tools"]]
    # Nothing of the browser outlives the command.
    assert wait_for(lambda: not _processes_of(openpista.home), timeout=10), _processes_of(
        openpista.home
    )


def test_sigterm_during_a_browser_call_leaves_no_chromium(
    openpista: Openpista, llm: FakeChatCompletionsServer, library: str
) -> None:
    llm.queue_tool_calls([("browser_navigate", {"url": f"{library}/slow"})])
    llm.queue_text("never reached")
    process = openpista.popen("run", "-e", "open the slow page")
    try:
        assert _Library.slow_requested.wait(60), "the browser never asked for the page"
        assert _chromium_of(openpista.home)

        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)

        assert process.returncode == 143, stderr
        assert "Traceback" not in stderr
        left = _processes_of(openpista.home)
        if not wait_for(lambda: not _processes_of(openpista.home), timeout=10):
            for pid in left:
                os.kill(pid, signal.SIGKILL)
            pytest.fail(f"processes outlived openpista: {left}")
    finally:
        _Library.release.set()
        if process.poll() is None:
            process.kill()
            process.communicate()
