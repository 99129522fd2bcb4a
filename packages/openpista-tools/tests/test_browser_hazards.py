"""The browser tools against hostile or awkward pages on 127.0.0.1 (real headless Chromium):
scripts that never end, dialogs, new tabs, downloads, very long pages, addresses the tools
refuse, and browsers that do not start."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from openpista.core.errors import ToolError
from openpista.core.tool import Tool, ToolContext, ToolOutput
from openpista.tools.browser import SharedBrowser, browser_tools
from openpista.tools.browser.urls import page_url

pytestmark = pytest.mark.skipif(
    shutil.which("chromium") is None, reason="Debian's chromium is not installed (.ci/run does)"
)

PAGES = {
    "/loop": "<title>loop</title><script>while(true){}</script>",
    # Fine until the test opens /gate?key=K; then it tells /looping?key=K and spins forever.
    "/later": """<title>later</title><p>fine for now</p><script>
const key = location.search.slice(5);
fetch('/gate?key=' + key).then(() => {
  const x = new XMLHttpRequest(); x.open('GET', '/looping?key=' + key, false); x.send();
  while (true) {}
});</script>""",
    "/dialogs": """<title>Dialogs</title>
<button onclick="alert('Saved!')">Save</button>
<button onclick="document.title = confirm('Delete everything?') ? 'yes' : 'no'">Delete</button>
<a href="/second" target="_blank">Open the second page</a>
<button onclick="window.open('/second?via=script')">Pop up</button>
<a href="/report.bin">Get the report</a>""",
    "/second": "<title>Second</title><p>the second page</p>",
    "/popups": """<title>Popups</title>
<button onclick="for (let i = 0; i < 3; i++) window.open('/second?n=' + i)">Three</button>
<button onclick="for (let i = 0; i < 15; i++) window.open('/second?n=' + i)">Fifteen</button>""",
    "/tall": "<title>Tall</title><body style='margin:0'><div style='height:50000px'>top</div>",
    "/wide": "<title>Wide</title><body style='margin:0'>"
    "<div style='width:60000px;height:5000px'>left</div>",
}


class _Site(BaseHTTPRequestHandler):
    gates: ClassVar[dict[str, threading.Event]] = {}
    looping: ClassVar[dict[str, threading.Event]] = {}

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        key = parse_qs(url.query).get("key", [""])[0]
        if url.path == "/gate":
            self.gates.setdefault(key, threading.Event()).wait(30)
            self._send(200, b"go", "text/plain")
        elif url.path == "/looping":
            self.looping.setdefault(key, threading.Event()).set()
            self._send(200, b"ok", "text/plain")
        elif url.path == "/report.bin":
            self._send(
                200,
                b"\0\1" * 500,
                "application/octet-stream",
                {"Content-Disposition": 'attachment; filename="report.bin"'},
            )
        elif url.path == "/to-file":
            self._send(302, b"", "text/plain", {"Location": "file:///etc/hostname"})
        elif url.path in PAGES:
            self._send(200, PAGES[url.path].encode(), "text/html; charset=utf-8")
        else:
            self._send(404, b"<title>Not found</title>", "text/html")

    def _send(self, status: int, body: bytes, kind: str, headers: dict[str, str] = {}) -> None:  # noqa: B006
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    for gate in _Site.gates.values():
        gate.set()
    server.shutdown()
    server.server_close()


def start_hanging(key: str) -> None:
    """Let /later?key=`key` start its endless loop, and return once it has."""
    _Site.gates.setdefault(key, threading.Event()).set()
    assert _Site.looping.setdefault(key, threading.Event()).wait(30)


class Browser:
    def __init__(self, shared: SharedBrowser) -> None:
        self.tools: dict[str, Tool] = {tool.name: tool for tool in browser_tools(shared)}

    async def call(self, name: str, session: str = "s1", **arguments: Any) -> ToolOutput:
        context = ToolContext(session_id=session, channel_id="test:1")
        return await self.tools[f"browser.{name}"].run(arguments, context)

    async def text(self, name: str, session: str = "s1", **arguments: Any) -> str:
        output = await self.call(name, session, **arguments)
        assert output.is_error is False
        return output.text

    async def error(self, name: str, session: str = "s1", **arguments: Any) -> str:
        with pytest.raises(ToolError) as caught:
            await self.call(name, session, **arguments)
        return str(caught.value)


@pytest.fixture
async def shared(tmp_path: Path) -> AsyncIterator[SharedBrowser]:
    browser = SharedBrowser(
        home=tmp_path, element_timeout_s=2, navigation_timeout_s=3, script_timeout_s=1
    )
    yield browser
    await browser.aclose()


@pytest.fixture
def tools(shared: SharedBrowser) -> Browser:
    return Browser(shared)


def unresponsive(tool: str, url: str) -> str:
    return (
        f"{tool}: the page {url} stopped responding (a script on it kept running for over 1 s), "
        "so its tab was closed with its cookies; browser.navigate opens a new one"
    )


# -- pages that stop answering -----------------------------------------------------------------


async def test_a_page_whose_script_never_ends_is_closed_and_said_so(
    tools: Browser, site: str
) -> None:
    assert await tools.error("navigate", url=f"{site}/loop") == unresponsive(
        "browser.navigate", f"{site}/loop"
    )
    # Nothing left hanging: the tab is gone, and a new one works.
    assert await tools.error("content") == (
        "no page is open in this session: call browser.navigate first"
    )
    assert await tools.text("navigate", url=f"{site}/second") == (
        f"loaded {site}/second (HTTP 200)\ntitle: Second"
    )


@pytest.mark.parametrize("tool", ["content", "screenshot", "click"])
async def test_every_call_on_a_page_that_hung_later_ends_with_one_line(
    tools: Browser, site: str, tool: str
) -> None:
    key = f"later-{tool}"
    await tools.text("navigate", url=f"{site}/later?key={key}")
    start_hanging(key)

    arguments = {"text": "fine"} if tool == "click" else {}
    assert await tools.error(tool, **arguments) == unresponsive(
        f"browser.{tool}", f"{site}/later?key={key}"
    )
    assert "Second" in await tools.text("navigate", url=f"{site}/second")


async def test_navigate_away_from_a_hung_page_replaces_its_tab(tools: Browser, site: str) -> None:
    await tools.text("navigate", url=f"{site}/later?key=away")
    start_hanging("away")

    text = await tools.text("navigate", url=f"{site}/second")

    assert text == (
        "note: the page open before had stopped responding; its tab was closed (with its "
        f"cookies) and a new one opened\nloaded {site}/second (HTTP 200)\ntitle: Second"
    )


# -- dialogs, new tabs, downloads --------------------------------------------------------------


async def test_an_alert_is_closed_and_its_message_reported(tools: Browser, site: str) -> None:
    await tools.text("navigate", url=f"{site}/dialogs")
    assert await tools.text("click", text="Save") == (
        f'clicked button "Save"; still on {site}/dialogs (title: Dialogs); the page\'s text '
        'did not change\nthe page showed an alert: "Saved!"; closed it with OK'
    )


async def test_a_confirm_is_answered_cancel_and_reported(tools: Browser, site: str) -> None:
    await tools.text("navigate", url=f"{site}/dialogs")
    assert await tools.text("click", text="Delete") == (
        f'clicked button "Delete"; still on {site}/dialogs; the title changed to no\n'
        'the page asked (confirm): "Delete everything?"; answered Cancel (the browser tools '
        "never agree to a page's question)"
    )


@pytest.mark.parametrize(
    ("label", "opened"), [("Open the second page", "/second"), ("Pop up", "/second?via=script")]
)
async def test_a_new_tab_becomes_the_sessions_tab(
    tools: Browser, site: str, label: str, opened: str
) -> None:
    await tools.text("navigate", url=f"{site}/dialogs")

    text = await tools.text("click", text=label)

    assert text.endswith(
        f"the page is now {site}{opened} (title: Second)\n"
        f"the page opened a new tab ({site}{opened}), which is now this session's tab"
    )
    assert (await tools.text("content")).startswith(f"URL: {site}{opened}\nTitle: Second")


async def open_pages(shared: SharedBrowser, session: str = "s1") -> list[str]:
    """The URLs of every tab of `session`'s browser context still open."""
    tab = shared._tabs[session]  # pyright: ignore[reportPrivateUsage]
    await asyncio.sleep(0.5)  # replaced tabs close just after the result
    return [page.url for page in tab.context.pages if not page.is_closed()]


async def test_tabs_a_page_opened_and_replaced_are_really_closed(
    tools: Browser, shared: SharedBrowser, site: str
) -> None:
    await tools.text("navigate", url=f"{site}/popups")

    text = await tools.text("click", text="Three")

    lines = text.splitlines()
    assert lines[-3:] == [
        f"the page opened a new tab ({site}/second?n=0), since closed",
        f"the page opened a new tab ({site}/second?n=1), since closed",
        f"the page opened a new tab ({site}/second?n=2), which is now this session's tab",
    ]
    # The newest tab and the page that opened it: nothing else runs unseen.
    assert await open_pages(shared) == [f"{site}/popups", f"{site}/second?n=2"]


async def test_a_click_that_opens_many_tabs_is_a_click_and_its_notes_are_bounded(
    tmp_path: Path, site: str
) -> None:
    # The default page-script time: opening and closing many tabs keeps a loaded machine busy
    # for longer than the 1 s the other tests allow.
    shared = SharedBrowser(home=tmp_path, element_timeout_s=2, navigation_timeout_s=10)
    tools = Browser(shared)
    try:
        await tools.text("navigate", url=f"{site}/popups")
        text = await tools.text("click", text="Fifteen")
        pages = await open_pages(shared)
    finally:
        await shared.aclose()

    assert text.startswith('clicked button "Fifteen"')
    notes = [line for line in text.splitlines() if line.startswith("the page opened")]
    assert len(notes) <= 10
    assert "more like these)" in text
    assert text.splitlines()[-1].endswith("which is now this session's tab")
    assert len(pages) == 2


async def test_a_download_is_reported_and_not_saved(
    tools: Browser, site: str, tmp_path: Path
) -> None:
    await tools.text("navigate", url=f"{site}/dialogs")

    clicked = await tools.text("click", text="Get the report")
    refused = await tools.error("navigate", url=f"{site}/report.bin")

    assert clicked.endswith(
        f"\nthe page started a download of report.bin ({site}/report.bin); it was not saved: "
        "the browser tools do not download files"
    )
    assert refused == (
        f"{site}/report.bin is a file to download (report.bin), not a page: it was not saved "
        f"(the browser tools do not download files); the tab still shows {site}/dialogs"
    )
    assert [path for path in tmp_path.rglob("*")] == []  # noqa: ASYNC240 (a tiny folder)
    # The refused download is not reported a second time.
    assert "download" not in await tools.text("navigate", url=f"{site}/second")


# -- long pages --------------------------------------------------------------------------------


async def test_a_full_page_screenshot_of_a_very_long_page_is_cut_and_says_so(
    tools: Browser, site: str
) -> None:
    await tools.text("navigate", url=f"{site}/tall")

    output = await tools.call("screenshot", full_page=True)

    (image,) = output.images
    assert (image.width, image.height) == (1280, 10000)
    assert output.text.startswith(
        "screenshot of the top left of the page (it is 1,280x50,000 px; full-page screenshots "
        "stop at 4,000 px wide and 10,000 px long and then keep the window's width; "
        f"browser.content reads the text of the rest) at {site}/tall (title: Tall): "
        "1280x10000 PNG"
    )
    # The window is back to its size afterwards.
    assert (await tools.call("screenshot")).images[0].height == 720


async def test_a_full_page_screenshot_of_a_very_wide_page_keeps_the_window_width(
    tools: Browser, site: str
) -> None:
    await tools.text("navigate", url=f"{site}/wide")

    output = await tools.call("screenshot", full_page=True)

    (image,) = output.images
    assert (image.width, image.height) == (1280, 5000)
    assert "(it is 60,000x5,000 px; full-page screenshots stop at 4,000 px wide" in output.text


# -- addresses ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("file:///etc/hostname", "file"),
        ("chrome://version", "chrome"),
        ("view-source:http://127.0.0.1/", "view-source"),
        ("javascript:alert(1)", "javascript"),
        ("devtools://devtools/bundled/inspector.html", "devtools"),
        ("chrome-extension://abc/page.html", "chrome-extension"),
    ],
)
async def test_addresses_that_reach_the_machine_are_refused(
    tools: Browser, shared: SharedBrowser, url: str, scheme: str
) -> None:
    assert await tools.error("navigate", url=url) == (
        f"browser.navigate does not open {scheme}: addresses ({url}); it opens only http://, "
        "https://, data: and about:blank"
    )
    assert shared.running is False


async def test_a_redirect_to_a_file_url_is_not_followed(tools: Browser, site: str) -> None:
    assert await tools.error("navigate", url=f"{site}/to-file") == (
        f"could not load {site}/to-file: net::ERR_UNSAFE_REDIRECT (it redirects to an address "
        "browsers do not follow, such as file:)"
    )


async def test_a_local_address_without_scheme_gets_http(tools: Browser, site: str) -> None:
    bare = site.removeprefix("http://")
    assert await tools.text("navigate", url=f"{bare}/second") == (
        f"loaded {site}/second (HTTP 200)\ntitle: Second"
    )


@pytest.mark.parametrize(
    ("given", "opened"),
    [
        ("localhost:8000/form", "http://localhost:8000/form"),
        ("[::1]:8000", "http://[::1]:8000"),
        ("192.168.1.20/admin", "http://192.168.1.20/admin"),
        ("10.0.0.1:3000", "http://10.0.0.1:3000"),
        ("example.com/page", "https://example.com/page"),
        ("HTTP://Example.com", "HTTP://Example.com"),
        ("about:blank", "about:blank"),
    ],
)
def test_the_scheme_assumed_without_one(given: str, opened: str) -> None:
    assert page_url(given) == opened


# -- browsers that do not start ----------------------------------------------------------------


async def test_a_program_that_is_not_chromium_is_named_as_such(tmp_path: Path) -> None:
    shared = SharedBrowser("/bin/true", home=tmp_path)
    try:
        message = await Browser(shared).error("navigate", url="about:blank")
    finally:
        await shared.aclose()
    assert message == (
        "could not start the browser /bin/true: it exited at once (exit status 0) without "
        "opening its DevTools pipe; is it really Chromium or Chrome? Set [tools.browser] "
        "executable to a Chromium binary"
    )


async def test_a_browser_killed_while_starting_does_not_blame_the_config(tmp_path: Path) -> None:
    killed = tmp_path / "killed-chromium"
    killed.write_text("#!/bin/sh\nkill -KILL $$\n")
    killed.chmod(0o755)
    shared = SharedBrowser(str(killed), home=tmp_path)
    try:
        message = await Browser(shared).error("navigate", url="about:blank")
    finally:
        await shared.aclose()
    assert message == (
        f"could not start the browser {killed}: it was killed by SIGKILL while starting (by "
        "another program, or for lack of memory); the next browser call tries again"
    )
