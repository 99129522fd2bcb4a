"""A session's tab: its current page, and what the page did on its own (dialogs, new tabs,
downloads), kept as notes for the next result, so nothing happens to the model unsaid.

The rules, as docs/tools.md states them: an alert is closed with OK, a confirm or prompt is
answered Cancel (the model never agrees to anything by accident), a "leave this page?" is
answered Leave; a new tab the page opens becomes the session's tab, and every other tab but
the page that opened it is closed (a session keeps at most two: no tab runs on unseen); a
download is never saved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from playwright.async_api import BrowserContext, Dialog, Download, Page

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_DIALOG_CHARS = 300
MAX_NOTES = 10
"""Notes one result carries at most; the rest are counted (a page opening 200 tabs)."""
CLOSE_S = 5.0
POPUP_WAIT_S = 5.0
"""How long an action that opened a tab waits for Playwright to announce it."""

COUNT_OPENED = """(() => {
  // Counts what this page did that opens a tab (window.open, a target=_blank link or form),
  // so an action can wait for the new tab's announcement, which comes after the click ends.
  let opened = 0;
  const note = () => { opened += 1; };
  Object.defineProperty(window, '__openpistaOpened', { get: () => opened });
  const open = window.open;
  window.open = function (...args) { note(); return open.apply(this, args); };
  const elsewhere = (t) => !!t && !['_self', '_parent', '_top'].includes(t.toLowerCase());
  addEventListener('click', (e) => {
    const link = e.target && e.target.closest ? e.target.closest('a[href], area[href]') : null;
    if (link && !e.defaultPrevented && elsewhere(link.target)) note();
  });
  addEventListener('submit', (e) => {
    if (!e.defaultPrevented && elsewhere(e.target.target)) note();
  });
})();"""
OPENED = "() => window.__openpistaOpened || 0"


class PageUnresponsive(Exception):
    """A call into the page did not answer in time: a script on it is busy or hung."""


async def bounded(awaitable: Awaitable[T], seconds: float) -> T:
    """`awaitable`, or PageUnresponsive after `seconds` (Playwright's page scripts, title and
    close have no timeout of their own)."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError as exc:
        raise PageUnresponsive from exc


async def responsive(page: Page, seconds: float) -> bool:
    """Whether `page` runs a trivial script within `seconds`; a closed page counts as
    responsive (the caller finds it closed)."""
    from playwright.async_api import Error as PlaywrightError

    try:
        await bounded(page.evaluate("1"), seconds)
    except PageUnresponsive:
        return False
    except PlaywrightError:
        pass  # closed, or navigating: not hung
    return True


class Tab:
    """The session's current page in its own browser context, and the notes on what the
    page did since the last result."""

    def __init__(
        self, context: BrowserContext, page: Page, *, element_timeout_s: float, navigation_s: float
    ) -> None:
        self.context = context
        self.page = page
        self._element_timeout_s = element_timeout_s
        self._navigation_s = navigation_s
        self._notes: list[str] = []
        self._popups: list[Page] = []
        self._downloads: list[Download] = []
        self._download_seen = asyncio.Event()
        self._popup_seen = asyncio.Event()
        self._closing: set[asyncio.Task[None]] = set()
        self._watch(page)
        context.on("page", self._on_new_page)

    def current(self) -> Page | None:
        """The page to act on: the latest page still open (the page may have closed itself)."""
        if not self.page.is_closed():
            return self.page
        still_open = [page for page in self.context.pages if not page.is_closed()]
        if not still_open:
            return None
        self.page = still_open[-1]
        return self.page

    async def opened_count(self, page: Page, seconds: float) -> int:
        """How many tabs `page` has opened (see COUNT_OPENED); 0 when it cannot say."""
        from playwright.async_api import Error as PlaywrightError

        try:
            return int(await bounded(page.evaluate(OPENED), seconds))
        except PlaywrightError:  # navigating or closed
            return 0

    async def wait_for_popup(self) -> None:
        """Wait (bounded) for the tab an action opened to be announced."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._popup_seen.wait(), POPUP_WAIT_S)
        self._popup_seen.clear()

    def take_notes(self) -> list[str]:
        """What happened since the last call, once each, at most MAX_NOTES of them."""
        notes = self._notes
        for popup in self._popups:
            if popup is not self.page:
                notes.append(f"the page opened a new tab ({popup.url}), since closed")
        if len(notes) > MAX_NOTES:
            notes = [*notes[: MAX_NOTES - 1], f"(and {len(notes) - MAX_NOTES + 1} more like these)"]
        if self.page in self._popups:
            notes.append(
                f"the page opened a new tab ({self.page.url}), which is now this session's tab"
            )
        self._notes, self._popups = [], []
        self._downloads.clear()
        self._download_seen.clear()
        return notes

    async def next_download(self, seconds: float) -> Download | None:
        """A download the page started (waiting up to `seconds` for one); None if none."""
        if not self._downloads:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._download_seen.wait(), seconds)
        if not self._downloads:
            return None
        download = self._downloads.pop()
        self._notes.remove(_download_note(download))  # the caller reports this one itself
        return download

    def _watch(self, page: Page) -> None:
        page.set_default_timeout(self._element_timeout_s * 1000)
        page.set_default_navigation_timeout(self._navigation_s * 1000)
        page.on("dialog", self._on_dialog)
        page.on("download", self._on_download)

    def _on_new_page(self, page: Page) -> None:
        if page is self.page:
            return  # the tab's own first page, reported as it opened
        self._watch(page)
        self._popups.append(page)
        self.page = page
        self._popup_seen.set()
        task = asyncio.create_task(self._close_all_but(page))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_all_but(self, page: Page) -> None:
        """Close every tab of the session but `page` and the page that opened it."""
        from playwright.async_api import Error as PlaywrightError

        try:
            opener = await bounded(page.opener(), CLOSE_S)
        except (PlaywrightError, TimeoutError, PageUnresponsive):
            opener = None
        for other in list(self.context.pages):
            if other is page or other is opener or other.is_closed():
                continue
            with contextlib.suppress(PlaywrightError, TimeoutError, PageUnresponsive):
                await bounded(other.close(), CLOSE_S)

    async def _on_dialog(self, dialog: Dialog) -> None:
        from playwright.async_api import Error as PlaywrightError

        message = " ".join(dialog.message.split())
        if len(message) > MAX_DIALOG_CHARS:
            message = message[: MAX_DIALOG_CHARS - 1] + "…"
        kind = dialog.type
        if kind == "alert":
            said, answer = f'the page showed an alert: "{message}"', "closed it with OK"
        elif kind == "beforeunload":
            said, answer = "the page asked whether to leave it", "answered Leave"
        else:  # confirm, prompt
            said = f'the page asked ({kind}): "{message}"'
            answer = "answered Cancel (the browser tools never agree to a page's question)"
        self._notes.append(f"{said}; {answer}")
        try:
            await (dialog.accept() if kind in ("alert", "beforeunload") else dialog.dismiss())
        except PlaywrightError:  # the page went away meanwhile
            logger.debug("answering a %s dialog failed", kind, exc_info=True)

    def _on_download(self, download: Download) -> None:
        self._downloads.append(download)
        self._download_seen.set()
        self._notes.append(_download_note(download))


def _download_note(download: Download) -> str:
    return (
        f"the page started a download of {download.suggested_filename} ({download.url}); "
        "it was not saved: the browser tools do not download files"
    )
