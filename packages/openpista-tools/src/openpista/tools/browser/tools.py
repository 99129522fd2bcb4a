"""The six browser tools: navigate, click, type, screenshot, content and close.

Each call works on the calling session's tab of the shared Chromium (see shared.py). Results
are short: where the page is now and what changed; failures are one-line ToolErrors.
"""

from __future__ import annotations

import base64
import contextlib
import struct
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from openpista.core.errors import ToolError
from openpista.core.media import describe_size
from openpista.core.models import Image
from openpista.core.tool import ToolContext, ToolOutput
from openpista.tools.browser.launch import first_line
from openpista.tools.browser.page_reading import describe_element, read_page
from openpista.tools.browser.shared import SharedBrowser
from openpista.tools.browser.tab import PageUnresponsive, Tab, bounded, responsive
from openpista.tools.browser.urls import ALLOWED, may_stay_on, page_url

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import Locator, Page

T = TypeVar("T")

SERIAL_GROUP = "browser"
"""All browser calls of one round run in order: a type, then the click that submits it."""

SCREENSHOT_TIMEOUT_S = 30.0
"""A full-page screenshot of a long page takes a while; it still has to end."""
MAX_FULL_PAGE_HEIGHT = 10_000
MAX_FULL_PAGE_WIDTH = 4_000
"""A full-page screenshot shows at most this many pixels from the top: Chromium cannot draw
a page millions of pixels long in one picture, and nobody could look at it."""
DEFAULT_CONTENT_CHARS = 5000
MAX_CONTENT_CHARS = 100_000

NO_TAB = "no page is open in this session: call browser.navigate first"
REPLACED_NOTE = (
    "note: the page open before had stopped responding; its tab was closed (with its cookies) "
    "and a new one opened"
)


class BrowserTool:
    """What every browser tool shares: the browser, the serial group, closing at stop."""

    tool_name: ClassVar[str]
    tool_description: ClassVar[str]
    tool_parameters: ClassVar[dict[str, Any]]
    serial_group = SERIAL_GROUP
    requires_approval = True
    opens_tab: ClassVar[bool] = False
    """Whether the tool opens a tab when there is none (navigate) or needs one open."""

    def __init__(self, browser: SharedBrowser) -> None:
        self._browser = browser

    @property
    def name(self) -> str:
        return self.tool_name

    @property
    def description(self) -> str:
        return self.tool_description

    @property
    def parameters(self) -> dict[str, Any]:
        return self.tool_parameters

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolOutput:
        """`act` on the session's tab, every wait bounded: a page that stops answering has
        its tab closed and the call says so; what the page did meanwhile (dialogs, new tabs,
        downloads) follows the result."""
        from playwright.async_api import Error as PlaywrightError

        arguments = self.prepare(arguments)
        session = context.session_id
        tab, note = await self._tab(session)
        before = [note] if note else []
        if not await responsive(tab.page, self._browser.script_timeout_s):
            url = tab.page.url
            await self._browser.drop_tab(session)
            if not self.opens_tab:
                raise self._unresponsive(url)
            tab, _ = await self._tab(session)
            before.append(REPLACED_NOTE)
        try:
            output = await bounded(self.act(tab, arguments), self._budget_s())
        except PageUnresponsive as exc:
            raise await self._closed_unresponsive(session, tab) from exc
        except (ToolError, PlaywrightError) as exc:
            if not await responsive(tab.page, self._browser.script_timeout_s):
                raise await self._closed_unresponsive(session, tab) from exc
            if isinstance(exc, ToolError):
                raise
            raise self._failure(exc) from exc
        await self._refuse_where_it_went(tab)
        output.text = "\n".join([*before, output.text, *tab.take_notes()])
        return output

    def prepare(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Check the arguments before any browser starts."""
        return arguments

    async def act(self, tab: Tab, arguments: dict[str, Any]) -> ToolOutput:
        raise NotImplementedError

    async def aclose(self) -> None:
        await self._browser.aclose()

    async def script(self, awaitable: Awaitable[T]) -> T:
        """A call into the page (a script, its title), bounded: PageUnresponsive after
        `script_timeout_s`."""
        return await bounded(awaitable, self._browser.script_timeout_s)

    async def _tab(self, session_id: str) -> tuple[Tab, str]:
        """The session's tab; only navigate opens one, the others need it open already."""
        tab, note = await self._browser.existing_tab(session_id)
        if tab is None:
            raise ToolError(f"{note}\n{NO_TAB}" if note else NO_TAB)
        return tab, note

    def _budget_s(self) -> float:
        """A bound on a whole call, behind the bounds on each of its steps."""
        shared = self._browser
        return (
            2 * shared.navigation_timeout_s
            + 2 * shared.element_timeout_s
            + SCREENSHOT_TIMEOUT_S
            + 6 * shared.script_timeout_s
        )

    async def _closed_unresponsive(self, session_id: str, tab: Tab) -> ToolError:
        url = tab.page.url
        await self._browser.drop_tab(session_id)
        return self._unresponsive(url)

    def _unresponsive(self, url: str) -> ToolError:
        return ToolError(
            f"{self.name}: the page {url} stopped responding (a script on it kept running for "
            f"over {self._browser.script_timeout_s:g} s), so its tab was closed with its "
            "cookies; browser.navigate opens a new one"
        )

    async def _refuse_where_it_went(self, tab: Tab) -> None:
        """A page that took itself to a file: or chrome: address is sent back to about:blank
        (Chromium blocks most such moves; this catches the rest)."""
        from playwright.async_api import Error as PlaywrightError

        page = tab.current()
        if page is None or may_stay_on(page.url):
            return
        where = page.url
        with contextlib.suppress(PlaywrightError, PageUnresponsive):
            await self.script(page.goto("about:blank"))
        raise ToolError(
            f"{self.name}: the page went to {where}, which the browser tools do not open (only "
            f"{ALLOWED}); the tab was reset to about:blank"
        )

    def _failure(self, exc: PlaywrightError) -> ToolError:
        if not self._browser.running:
            return ToolError(
                f"{self.name}: the browser stopped during the call; the next browser call "
                "starts a new one"
            )
        return ToolError(f"{self.name} failed: {first_line(exc.message)}")


class NavigateTool(BrowserTool):
    tool_name = "browser.navigate"
    tool_description = (
        "Open a URL in this conversation's browser tab (a headless Chromium; the tab and its "
        "cookies are kept between calls). Returns the final URL after redirects, the HTTP "
        "status and the page title; read the page with browser.content."
    )
    tool_parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "url": {
                "type": "string",
                "description": "An http:// or https:// address (data: and about:blank too). "
                "Without a scheme, http:// is assumed for localhost and private addresses, "
                "https:// for the rest.",
            }
        },
        "required": ["url"],
        "additionalProperties": False,
    }

    opens_tab = True

    def prepare(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return {**arguments, "url": page_url(str(arguments.get("url") or ""))}

    async def _tab(self, session_id: str) -> tuple[Tab, str]:
        return await self._browser.open_tab(session_id)

    async def act(self, tab: Tab, arguments: dict[str, Any]) -> ToolOutput:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import TimeoutError as PlaywrightTimeoutError

        url = str(arguments["url"])
        page = tab.page
        try:
            response = await page.goto(url, wait_until="domcontentloaded")
        except PlaywrightTimeoutError as exc:
            raise ToolError(
                f"{url} did not load within {self._browser.navigation_timeout_s:g} s; the tab "
                f"shows {page.url}"
            ) from exc
        except PlaywrightError as exc:
            if not self._browser.running:
                raise
            if "Download is starting" in exc.message:
                raise await self._download_refused(tab, url) from exc
            reason = first_line(exc.message).removesuffix(f" at {url}")
            if "ERR_UNSAFE_REDIRECT" in reason:
                reason += " (it redirects to an address browsers do not follow, such as file:)"
            raise ToolError(f"could not load {url}: {reason}") from exc
        await _settle(page, self._browser.navigation_timeout_s)
        status = f" (HTTP {response.status})" if response is not None else ""
        text = f"loaded {page.url}{status}\ntitle: {await self.script(page.title()) or '(none)'}"
        if response is not None and response.status >= 400:
            text += "\nthe server answered with an error; browser.content shows its page"
        return ToolOutput(text)

    async def _download_refused(self, tab: Tab, url: str) -> ToolError:
        download = await tab.next_download(self._browser.script_timeout_s)
        name = download.suggested_filename if download is not None else url.rsplit("/", 1)[-1]
        return ToolError(
            f"{url} is a file to download ({name}), not a page: it was not saved (the browser "
            f"tools do not download files); the tab still shows {tab.page.url}"
        )


class ClickTool(BrowserTool):
    tool_name = "browser.click"
    tool_description = (
        "Click an element of the current page, found by CSS `selector` (browser.content lists "
        "selectors) or by its visible `text` (a button's or link's label; buttons and links "
        "are preferred over other text). Give one of the two. Says where the page is after."
    )
    tool_parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "selector": {"type": "string", "description": "A CSS selector, e.g. #submit."},
            "text": {"type": "string", "description": "Visible text of what to click."},
        },
        "additionalProperties": False,
    }

    async def act(self, tab: Tab, arguments: dict[str, Any]) -> ToolOutput:
        from playwright.async_api import TimeoutError as PlaywrightTimeoutError

        page = tab.page
        selector = _optional_text(arguments, "selector")
        text = _optional_text(arguments, "text")
        if (selector is None) == (text is None):
            raise ToolError(
                "browser.click needs one of `selector` (a CSS selector) or `text` (the visible "
                "text of what to click), not both and not neither"
            )
        if selector is not None:
            target, matched = await _find_by_selector(
                page, selector, self._browser.element_timeout_s
            )
        else:
            assert text is not None
            target, matched = await _find_by_text(page, text, self._browser.element_timeout_s)
        element = await self.script(describe_element(target))
        before = await self.script(_page_state(page))
        opened = await tab.opened_count(page, self._browser.script_timeout_s)
        busy = False
        try:
            await target.click()
        except PlaywrightTimeoutError as exc:
            # A click whose handler runs long (opening many tabs) times out after it happened:
            # what it opened shows it was clicked.
            clicked = tab.page is not page or (
                await tab.opened_count(page, self._browser.script_timeout_s) > opened
            )
            if not clicked:
                raise ToolError(
                    f"{element.summary()} ({element.selector}) could not be clicked within "
                    f"{self._browser.element_timeout_s:g} s: it stayed disabled, moving or "
                    "covered by another element"
                ) from exc
            busy = True
        after = await _state_after(self, tab, page, opened)
        outcome = f"clicked {element.summary()}"
        if busy:
            outcome += f" (the page was still busy {self._browser.element_timeout_s:g} s later)"
        if matched > 1:
            outcome += f" (the first of {matched} matches)"
        return ToolOutput(f"{outcome}; {_change(before, after)}")


async def _state_after(
    tool: BrowserTool, tab: Tab, page: Page, opened_before: int
) -> tuple[str, str, str]:
    """Where an action on `page` left the session: a load it started has finished, and
    when it opened a new tab (which became the session's), that tab's state."""
    shared = tool._browser  # pyright: ignore[reportPrivateUsage]
    seconds = shared.navigation_timeout_s
    await _settle(page, seconds)
    after = await tool.script(_page_state(page))
    opened = await tab.opened_count(page, shared.script_timeout_s)
    if opened > opened_before and tab.page is page:
        await tab.wait_for_popup()
    if tab.page is not page:
        await _settle(tab.page, seconds)
        after = await tool.script(_page_state(tab.page))
    return after


class TypeTool(BrowserTool):
    tool_name = "browser.type"
    tool_description = (
        "Type text into a field of the current page (it replaces what the field held), found "
        "by CSS `selector`; with `submit` true, press Enter afterwards (submits most forms)."
    )
    tool_parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "selector": {
                "type": "string",
                "description": 'A CSS selector of the field, e.g. input[name="q"].',
            },
            "text": {"type": "string", "description": "What to type."},
            "submit": {"type": "boolean", "description": "Press Enter after typing."},
        },
        "required": ["selector", "text"],
        "additionalProperties": False,
    }

    async def act(self, tab: Tab, arguments: dict[str, Any]) -> ToolOutput:
        from playwright.async_api import Error as PlaywrightError

        page = tab.page
        selector = _optional_text(arguments, "selector")
        if selector is None:
            raise ToolError("browser.type needs `selector`: a CSS selector of the field")
        text = str(arguments["text"])
        target, _ = await _find_by_selector(page, selector, self._browser.element_timeout_s)
        element = await self.script(describe_element(target))
        try:
            await target.fill(text)
        except PlaywrightError as exc:
            if not self._browser.running:
                raise
            raise ToolError(
                f"cannot type into {element.summary()} ({selector}): {first_line(exc.message)}"
            ) from exc
        outcome = f"typed {len(text)} characters into {element.summary().split(' = ')[0]}"
        if not arguments.get("submit"):
            return ToolOutput(outcome)
        before = await self.script(_page_state(page))
        opened = await tab.opened_count(page, self._browser.script_timeout_s)
        await target.press("Enter")
        after = await _state_after(self, tab, page, opened)
        return ToolOutput(f"{outcome}, pressed Enter; {_change(before, after)}")


class ScreenshotTool(BrowserTool):
    tool_name = "browser.screenshot"
    tool_description = (
        "Take a PNG screenshot of this conversation's browser tab (the visible part, or the "
        "whole page with full_page). The picture goes to the user; you get its size."
    )
    tool_parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "full_page": {
                "type": "boolean",
                "description": "The whole scrollable page instead of the window. Default false.",
            }
        },
        "additionalProperties": False,
    }
    requires_approval = False
    """Read-only: it looks at a page already open."""

    async def act(self, tab: Tab, arguments: dict[str, Any]) -> ToolOutput:
        from playwright.async_api import TimeoutError as PlaywrightTimeoutError

        page = tab.page
        full_page = bool(arguments.get("full_page", False))
        what = "the window"
        try:
            if full_page:
                page_width, page_height = (
                    int(side) for side in await self.script(page.evaluate(_PAGE_SIZE))
                )
                if page_height > MAX_FULL_PAGE_HEIGHT or page_width > MAX_FULL_PAGE_WIDTH:
                    png = await self._top_of_page(page, min(page_height, MAX_FULL_PAGE_HEIGHT))
                    what = (
                        f"the top left of the page (it is {page_width:,}x{page_height:,} px; "
                        f"full-page screenshots stop at {MAX_FULL_PAGE_WIDTH:,} px wide and "
                        f"{MAX_FULL_PAGE_HEIGHT:,} px long and then keep the window's width; "
                        "browser.content reads the text of the rest)"
                    )
                else:
                    png = await page.screenshot(
                        type="png", full_page=True, timeout=SCREENSHOT_TIMEOUT_S * 1000
                    )
                    what = "the whole page"
            else:
                png = await page.screenshot(type="png", timeout=SCREENSHOT_TIMEOUT_S * 1000)
        except PlaywrightTimeoutError as exc:
            raise ToolError(
                f"browser.screenshot: the page {page.url} was not drawn within "
                f"{SCREENSHOT_TIMEOUT_S:g} s (a very large or busy page); try again without "
                "full_page, or read it with browser.content"
            ) from exc
        width, height = _png_size(png)
        title = await self.script(page.title()) or "(none)"
        text = (
            f"screenshot of {what} at {page.url} (title: {title}): "
            f"{width}x{height} PNG, {describe_size(len(png))}"
        )
        image = Image("image/png", base64.b64encode(png).decode("ascii"), width, height)
        return ToolOutput(text, images=[image])

    async def _top_of_page(self, page: Page, height: int) -> bytes:
        """The top `height` pixels, the window's width across, of a page too large for
        Playwright's full-page capture (which renders all of it first): the window made that
        tall for one picture."""
        window = page.viewport_size or {"width": 1280, "height": 720}
        await self.script(page.set_viewport_size({**window, "height": max(height, 1)}))
        try:
            await self.script(page.evaluate("window.scrollTo(0, 0)"))
            return await page.screenshot(type="png", timeout=SCREENSHOT_TIMEOUT_S * 1000)
        finally:
            await self.script(page.set_viewport_size(window))


_PAGE_SIZE = """() => [
  Math.max(document.documentElement.scrollWidth, document.body ? document.body.scrollWidth : 0),
  Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0),
]"""


class ContentTool(BrowserTool):
    tool_name = "browser.content"
    tool_description = (
        "Read the page open in this conversation's browser tab: its URL, title and visible "
        "text, then up to 40 links, fields and buttons with CSS selectors for browser.click "
        "and browser.type."
    )
    tool_parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "max_chars": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_CONTENT_CHARS,
                "description": f"Cut the page text after this many characters. Default "
                f"{DEFAULT_CONTENT_CHARS}.",
            }
        },
        "additionalProperties": False,
    }
    requires_approval = False
    """Read-only: it looks at a page already open."""

    async def act(self, tab: Tab, arguments: dict[str, Any]) -> ToolOutput:
        max_chars = int(arguments.get("max_chars", DEFAULT_CONTENT_CHARS))
        return ToolOutput((await self.script(read_page(tab.page))).render(max_chars))


class CloseTool(BrowserTool):
    tool_name = "browser.close"
    tool_description = (
        "Close this conversation's browser tab, forgetting its page and cookies. The next "
        "browser.navigate opens a fresh one."
    )
    tool_parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {},
        "additionalProperties": False,
    }
    requires_approval = False
    """Closing our own tab reaches nothing outside: nothing to ask the user about."""

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolOutput:
        if await self._browser.close_tab(context.session_id):
            return ToolOutput("closed this session's browser tab and its cookies")
        return ToolOutput("no browser tab was open in this session; nothing to close")


# -- finding elements ----------------------------------------------------------------------


async def _find_by_selector(page: Page, selector: str, timeout_s: float) -> tuple[Locator, int]:
    """The first visible element `selector` matches, and how many match; waits up to
    `timeout_s` for one to appear."""
    locator = page.locator(selector).filter(visible=True)
    await _wait_for_any(
        locator, page, f"no visible element matches the selector {selector!r}", selector, timeout_s
    )
    return locator.first, await locator.count()


async def _find_by_text(page: Page, text: str, timeout_s: float) -> tuple[Locator, int]:
    """The element showing `text`: a button, else a link, else any text (all matched
    ignoring case, as substrings); waits up to `timeout_s`."""
    kinds = [
        page.get_by_role("button", name=text),
        page.get_by_role("link", name=text),
        page.get_by_text(text),
    ]
    visible = [kind.filter(visible=True) for kind in kinds]
    anything = visible[0].or_(visible[1]).or_(visible[2])
    await _wait_for_any(anything, page, f"nothing visible shows the text {text!r}", None, timeout_s)
    for candidates in visible:
        count = await candidates.count()
        if count:
            return candidates.first, count
    return anything.first, 1  # it vanished in between: let the click report that


async def _wait_for_any(
    locator: Locator, page: Page, missing: str, selector: str | None, timeout_s: float
) -> None:
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import TimeoutError as PlaywrightTimeoutError

    try:
        await locator.first.wait_for(state="visible", timeout=timeout_s * 1000)
    except PlaywrightTimeoutError as exc:
        raise ToolError(
            f"{missing} on {page.url} within {timeout_s:g} s; browser.content lists "
            "the page's links, fields and buttons with their selectors"
        ) from exc
    except PlaywrightError as exc:
        if selector is None or "selector" not in exc.message.lower():
            raise
        raise ToolError(f"bad selector {selector!r}: {first_line(exc.message)}") from exc


# -- what changed ----------------------------------------------------------------------------


async def _settle(page: Page, seconds: float) -> None:
    """Let a navigation the action started finish loading (bounded); a page still loading
    after that is reported as it stands."""
    from playwright.async_api import Error as PlaywrightError

    with contextlib.suppress(PlaywrightError):
        await page.wait_for_load_state("load", timeout=seconds * 1000)


_TEXT_FINGERPRINT = """() => {
  const text = document.body ? document.body.innerText : '';
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (hash * 31 + text.charCodeAt(i)) | 0;
  return text.length + ':' + hash;
}"""


async def _page_state(page: Page) -> tuple[str, str, str]:
    """URL, title and a fingerprint of the visible text: enough to say what an action changed."""
    from playwright.async_api import Error as PlaywrightError

    try:
        fingerprint = str(await page.evaluate(_TEXT_FINGERPRINT))
        title = await page.title()
    except PlaywrightError:  # the page was replaced mid-read: it changed, say so
        fingerprint, title = "", ""
    return page.url, title, fingerprint


def _change(before: tuple[str, str, str], after: tuple[str, str, str]) -> str:
    url, title, text = after
    shown_title = title or "(none)"
    if url != before[0]:
        return f"the page is now {url} (title: {shown_title})"
    if title != before[1]:
        return f"still on {url}; the title changed to {shown_title}"
    if text != before[2]:
        return f"still on {url} (title: {shown_title}); the page's text changed"
    return f"still on {url} (title: {shown_title}); the page's text did not change"


# -- small parts -------------------------------------------------------------------------------


def _optional_text(arguments: dict[str, Any], key: str) -> str | None:
    value = arguments.get(key)
    return value if isinstance(value, str) and value.strip() else None


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk (bytes 16-24), no image library needed."""
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)
