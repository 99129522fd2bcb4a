"""The browser tools against Debian's Chromium (headless) and a small site on 127.0.0.1:
what the model reads after navigate, click, type, content and screenshot, per-session tabs and
cookies, and the errors it gets."""

from __future__ import annotations

import base64
import io
import shutil
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image as PILImage

from openpista.core.errors import ToolError
from openpista.core.tool import Tool, ToolContext, ToolOutput
from openpista.tools.browser import SharedBrowser, browser_tools

needs_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None, reason="Debian's chromium is not installed (.ci/run does)"
)

FORM_PAGE = """<!doctype html>
<html><head><title>Order form</title></head>
<body>
<h1>Place an order</h1>
<form action="/result" method="get">
  <label for="name">Your name</label> <input id="name" name="name">
  <label>Colour <select name="colour"><option>red</option><option>blue</option></select></label>
  <input type="checkbox" name="gift"> gift wrap
  <button type="submit" id="send">Send order</button>
</form>
<p id="lines">Lines: 1</p>
<button onclick="document.getElementById('lines').textContent = 'Lines: 2'">Add line</button>
<button id="closed" disabled>Closed for today</button>
<a href="/about">About us</a>
<input type="hidden" name="secret" value="not listed">
</body></html>"""

RESULT_PAGE = """<!doctype html>
<html><head><title>Order received</title></head>
<body><h1>Thank you, {name}!</h1><p>Your {colour} order number is 4711.</p></body></html>"""

ABOUT_PAGE = """<!doctype html><html><head><title>About</title></head>
<body><p>We sell things.</p><p style="display:none">hidden words</p></body></html>"""

# A red block 200x100 at the top left, a blue one 100x50 below it, on white.
COLOURS_PAGE = """<!doctype html><html><head><title>Colours</title>
<style>body { margin: 0; background: #fff; } div { position: absolute; }</style></head>
<body>
<div style="left:0; top:0; width:200px; height:100px; background:#ff0000"></div>
<div style="left:0; top:100px; width:100px; height:50px; background:#0000ff"></div>
</body></html>"""

LONG_PAGE = (
    "<!doctype html><html><head><title>Long</title></head><body style='margin:0'>"
    + "".join(f"<p>Paragraph {i} says something.</p>" for i in range(400))
    + "</body></html>"
)


class _SiteHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        if url.path == "/form":
            self._send(200, FORM_PAGE)
        elif url.path == "/go-to-form":
            self._send(302, "", {"Location": "/form"})
        elif url.path == "/result":
            name = query.get("name", "nobody")
            self._send(200, RESULT_PAGE.format(name=name, colour=query.get("colour", "?")))
        elif url.path == "/about":
            self._send(200, ABOUT_PAGE)
        elif url.path == "/colours":
            self._send(200, COLOURS_PAGE)
        elif url.path == "/long":
            self._send(200, LONG_PAGE)
        elif url.path == "/remember":
            who = query.get("who", "")
            page = f"<html><head><title>Remembered</title></head><body>hello {who}</body></html>"
            self._send(200, page, {"Set-Cookie": f"who={who}; Path=/"})
        elif url.path == "/whoami":
            cookie = self.headers.get("Cookie") or "no cookie"
            self._send(200, f"<html><head><title>Who</title></head><body>{cookie}</body></html>")
        else:
            self._send(404, "<html><head><title>Not found</title></head><body>nope</body></html>")

    def _send(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve_site() -> Iterator[str]:
    """The site on a free port of 127.0.0.1; yields its base URL (no trailing slash)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SiteHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with serve_site() as base:
        yield base


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[SharedBrowser]:
    shared = SharedBrowser(home=tmp_path, element_timeout_s=1)
    yield shared
    await shared.aclose()


class Browser:
    """The six tools on one SharedBrowser, called as a session would."""

    def __init__(self, shared: SharedBrowser) -> None:
        self.tools: dict[str, Tool] = {tool.name: tool for tool in browser_tools(shared)}

    async def call(self, name: str, session: str = "s1", **arguments: Any) -> ToolOutput:
        context = ToolContext(session_id=session, channel_id="test:1")
        return await self.tools[f"browser.{name}"].run(arguments, context)

    async def text(self, name: str, session: str = "s1", **arguments: Any) -> str:
        output = await self.call(name, session, **arguments)
        assert output.is_error is False
        return output.text


@pytest.fixture
def tools(browser: SharedBrowser) -> Browser:
    return Browser(browser)


pytestmark = needs_chromium


async def test_navigate_reports_the_final_url_status_and_title(tools: Browser, site: str) -> None:
    text = await tools.text("navigate", url=f"{site}/go-to-form")
    assert text == f"loaded {site}/form (HTTP 200)\ntitle: Order form"


async def test_navigate_to_a_missing_page_reports_its_status(tools: Browser, site: str) -> None:
    text = await tools.text("navigate", url=f"{site}/nowhere")
    assert text.startswith(f"loaded {site}/nowhere (HTTP 404)\ntitle: Not found")
    assert "the server answered with an error" in text


async def test_navigate_to_a_closed_port_is_one_clear_error(tools: Browser) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    with pytest.raises(ToolError) as caught:
        await tools.call("navigate", url=url)
    assert str(caught.value) == f"could not load {url}: net::ERR_CONNECTION_REFUSED"


async def test_type_then_click_submit_reaches_the_result_page(tools: Browser, site: str) -> None:
    await tools.text("navigate", url=f"{site}/form")

    typed = await tools.text("type", selector="#name", text="Ada")
    clicked = await tools.text("click", text="Send order")
    content = await tools.text("content")

    assert typed == 'typed 3 characters into field "Your name"'
    assert clicked == (
        f'clicked button "Send order"; the page is now {site}/result?name=Ada&colour=red '
        "(title: Order received)"
    )
    assert "Thank you, Ada!" in content
    assert "Your red order number is 4711." in content


async def test_type_with_submit_presses_enter(tools: Browser, site: str) -> None:
    await tools.text("navigate", url=f"{site}/form")

    text = await tools.text("type", selector='input[name="name"]', text="Grace", submit=True)

    assert text == (
        'typed 5 characters into field "Your name", pressed Enter; the page is now '
        f"{site}/result?name=Grace&colour=red (title: Order received)"
    )
    assert "Thank you, Grace!" in await tools.text("content")


async def test_a_click_that_changes_the_page_in_place_says_so(tools: Browser, site: str) -> None:
    await tools.text("navigate", url=f"{site}/form")

    text = await tools.text("click", text="add line")

    assert text == (
        f'clicked button "Add line"; still on {site}/form (title: Order form); '
        "the page's text changed"
    )
    assert "Lines: 2" in await tools.text("content")


async def test_click_by_text_prefers_the_link_to_plain_text(tools: Browser, site: str) -> None:
    await tools.text("navigate", url=f"{site}/form")
    text = await tools.text("click", text="About us")
    assert text == f'clicked link "About us"; the page is now {site}/about (title: About)'


async def test_click_on_a_selector_that_matches_nothing_names_it(tools: Browser, site: str) -> None:
    await tools.text("navigate", url=f"{site}/form")
    with pytest.raises(ToolError) as caught:
        await tools.call("click", selector="#no-such-button")
    assert str(caught.value) == (
        f"no visible element matches the selector '#no-such-button' on {site}/form within 1 s; "
        "browser.content lists the page's links, fields and buttons with their selectors"
    )


async def test_a_malformed_selector_is_reported_as_such(tools: Browser, site: str) -> None:
    await tools.text("navigate", url=f"{site}/form")
    with pytest.raises(ToolError, match=r"^bad selector '#\[oops': "):
        await tools.call("click", selector="#[oops")


async def test_click_wants_exactly_one_of_selector_and_text(tools: Browser, site: str) -> None:
    await tools.text("navigate", url=f"{site}/form")
    for arguments in ({}, {"selector": "#send", "text": "Send order"}):
        with pytest.raises(ToolError, match="needs one of `selector`"):
            await tools.call("click", **arguments)


async def test_typing_into_something_that_is_not_a_field_fails_clearly(
    tools: Browser, site: str
) -> None:
    await tools.text("navigate", url=f"{site}/form")
    with pytest.raises(ToolError, match=r'^cannot type into paragraph|^cannot type into p "'):
        await tools.call("type", selector="#lines", text="x")


async def test_content_gives_text_and_usable_selectors(tools: Browser, site: str) -> None:
    await tools.text("navigate", url=f"{site}/form")

    content = await tools.text("content")

    assert content.startswith(f"URL: {site}/form\nTitle: Order form\n\nPlace an order\n")
    listed = content.split("Links, fields and buttons (selectors for browser.click and ")[1]
    assert '- field "Your name" -> #name' in listed
    assert '- choice "Colour" = "red" -> select[name="colour"]' in listed
    assert '- field (checkbox) "gift" (not checked) -> input[name="gift"]' in listed
    assert '- button "Send order" -> #send' in listed
    assert f'- link "About us" -> a[href="/about"] ({site}/about)' in listed
    assert "secret" not in content  # hidden inputs are not offered
    # A selector from the list works as given.
    await tools.text("type", selector="#name", text="Lin")
    assert '- field "Your name" = "Lin" -> #name' in await tools.text("content")


async def test_content_leaves_out_hidden_text(tools: Browser, site: str) -> None:
    await tools.text("navigate", url=f"{site}/about")
    content = await tools.text("content")
    assert "We sell things." in content
    assert "hidden words" not in content


async def test_content_is_cut_at_max_chars(tools: Browser, site: str) -> None:
    await tools.text("navigate", url=f"{site}/long")

    content = await tools.text("content", max_chars=100)

    text = content.split("\n\n", 1)[1]
    kept, marker = text.split("\n[... ")
    assert len(kept) == 100
    assert kept.startswith("Paragraph 0 says something.")
    assert marker.endswith(
        "more characters; call browser.content with a larger max_chars to read them]"
    )


async def test_screenshot_is_a_png_of_the_page(tools: Browser, site: str) -> None:
    await tools.text("navigate", url=f"{site}/colours")

    output = await tools.call("screenshot")

    (image,) = output.images
    picture = PILImage.open(io.BytesIO(base64.b64decode(image.data_b64))).convert("RGB")
    assert (image.mime_type, image.width, image.height) == ("image/png", 1280, 720)
    assert picture.size == (1280, 720)
    assert picture.getpixel((10, 10)) == (255, 0, 0)
    assert picture.getpixel((199, 99)) == (255, 0, 0)
    assert picture.getpixel((50, 125)) == (0, 0, 255)
    assert picture.getpixel((150, 125)) == (255, 255, 255)
    assert output.text.startswith(
        f"screenshot of the window at {site}/colours (title: Colours): 1280x720 PNG, "
    )
    assert image.data_b64[:40] not in output.text


async def test_full_page_screenshot_covers_the_whole_page(tools: Browser, site: str) -> None:
    await tools.text("navigate", url=f"{site}/long")
    (image,) = (await tools.call("screenshot", full_page=True)).images
    picture = PILImage.open(io.BytesIO(base64.b64decode(image.data_b64)))
    assert picture.size == (image.width, image.height)
    assert image.height > 720


async def test_reading_before_any_navigate_says_what_to_do_and_starts_nothing(
    tools: Browser, browser: SharedBrowser
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("content", {}),
        ("screenshot", {}),
        ("click", {"selector": "#x"}),
        ("type", {"selector": "#x", "text": "y"}),
    ]
    for name, arguments in calls:
        with pytest.raises(
            ToolError, match=r"^no page is open in this session: call browser.navigate first$"
        ):
            await tools.call(name, **arguments)
    assert browser.running is False


async def test_sessions_have_their_own_tabs_and_cookies(tools: Browser, site: str) -> None:
    await tools.text("navigate", "alice", url=f"{site}/remember?who=alice")
    await tools.text("navigate", "bob", url=f"{site}/about")

    assert (await tools.text("content", "alice")).startswith(f"URL: {site}/remember?who=alice")
    assert (await tools.text("content", "bob")).startswith(f"URL: {site}/about")
    await tools.text("navigate", "alice", url=f"{site}/whoami")
    await tools.text("navigate", "bob", url=f"{site}/whoami")
    assert "who=alice" in await tools.text("content", "alice")
    assert "no cookie" in await tools.text("content", "bob")


async def test_close_ends_the_sessions_tab_and_cookies(tools: Browser, site: str) -> None:
    await tools.text("navigate", url=f"{site}/remember?who=carol")

    assert await tools.text("close") == "closed this session's browser tab and its cookies"
    with pytest.raises(ToolError, match=r"^no page is open"):
        await tools.call("content")
    assert await tools.text("close") == "no browser tab was open in this session; nothing to close"
    await tools.text("navigate", url=f"{site}/whoami")
    assert "no cookie" in await tools.text("content")


async def test_a_missing_configured_executable_names_the_key(tmp_path: Path) -> None:
    shared = SharedBrowser(str(tmp_path / "no-chromium"), home=tmp_path)
    with pytest.raises(ToolError) as caught:
        await Browser(shared).call("navigate", url="about:blank")
    assert str(caught.value) == (
        f"tools.browser.executable: {tmp_path / 'no-chromium'} does not exist; set it to a "
        "Chromium or Chrome binary, or leave it empty to search PATH"
    )


async def test_no_chromium_on_path_says_what_was_searched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError) as caught:
        await Browser(SharedBrowser(home=tmp_path)).call("navigate", url="about:blank")
    assert str(caught.value) == (
        "no Chromium found: none of chromium, chromium-browser, google-chrome, "
        "google-chrome-stable is on PATH; install Chromium (Debian: apt install chromium) or "
        "set [tools.browser] executable in config.toml"
    )


async def test_a_visible_browser_without_a_display_is_refused_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    shared = SharedBrowser(home=tmp_path, headless=False)
    with pytest.raises(
        ToolError, match=r"^tools.browser.headless is false but there is no display"
    ):
        await Browser(shared).call("navigate", url="about:blank")
    assert shared.running is False


def test_the_tools_declare_approval_and_one_serial_group(browser: SharedBrowser) -> None:
    tools = browser_tools(browser)
    asked = {tool.name: getattr(tool, "requires_approval", True) for tool in tools}
    assert asked == {
        "browser.navigate": True,
        "browser.click": True,
        "browser.type": True,
        "browser.screenshot": False,
        "browser.content": False,
        "browser.close": False,
    }
    assert {getattr(tool, "serial_group", None) for tool in tools} == {"browser"}


async def test_a_disabled_button_is_reported_not_clicked(tools: Browser, site: str) -> None:
    await tools.text("navigate", url=f"{site}/form")
    with pytest.raises(ToolError) as caught:
        await tools.call("click", text="Closed for today")
    assert str(caught.value) == (
        'button "Closed for today" (#closed) could not be clicked within 1 s: it stayed '
        "disabled, moving or covered by another element"
    )
