"""One Chromium per agent process, shared by every session: each session gets its own
BrowserContext (cookies and storage of its own) holding one tab."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from openpista.tools.browser.launch import check_display, find_chromium, launch_chromium

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, Playwright

logger = logging.getLogger(__name__)

NAVIGATION_TIMEOUT_S = 30.0
"""How long a page may take to load (browser.navigate, or a click that leads elsewhere)."""
ELEMENT_TIMEOUT_S = 10.0
"""How long click and type wait for their element to appear before saying it is not there."""
CLOSE_TIMEOUT_S = 10.0

RELAUNCH_NOTE = (
    "note: the browser had stopped (killed or crashed) and was started again; this session's "
    "tab, its page and its cookies were lost"
)


class SharedBrowser:
    """Starts Chromium on the first call that needs it (once, however many sessions ask at
    the same moment), hands each session its tab, and starts a new Chromium when the old one
    died. `aclose()` ends Chromium and Playwright's driver process.

    Chromium never outlives us: Playwright's driver (a node process) talks to us over its
    stdin and kills Chromium's whole process group when that pipe closes, which happens even
    when this process is killed with SIGKILL.
    """

    def __init__(
        self,
        executable: str = "",
        *,
        headless: bool = True,
        home: Path,
        element_timeout_s: float = ELEMENT_TIMEOUT_S,
    ) -> None:
        self.element_timeout_s = element_timeout_s
        self._configured_executable = executable
        self._headless = headless
        self._home = home
        self._lock = asyncio.Lock()
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._tabs: dict[str, Page] = {}
        self._lost_tabs: set[str] = set()
        """Sessions whose tab went down with a Chromium that stopped: their next call says so."""

    @property
    def running(self) -> bool:
        return self._browser is not None and self._browser.is_connected()

    async def open_tab(self, session_id: str) -> tuple[Page, str]:
        """The session's tab, opened (and Chromium started) when needed, with a note for the
        result when a dead Chromium was replaced on the way ("" otherwise)."""
        async with self._lock:
            self._forget_dead_browser()
            page = self._live_tab(session_id)
            if page is None:
                browser = await self._ensure_browser()
                context = await browser.new_context()
                page = await context.new_page()
                page.set_default_timeout(self.element_timeout_s * 1000)
                page.set_default_navigation_timeout(NAVIGATION_TIMEOUT_S * 1000)
                self._tabs[session_id] = page
            return page, self._take_note(session_id)

    async def existing_tab(self, session_id: str) -> tuple[Page | None, str]:
        """The session's tab if it has one; never starts Chromium."""
        async with self._lock:
            self._forget_dead_browser()
            return self._live_tab(session_id), self._take_note(session_id)

    async def close_tab(self, session_id: str) -> bool:
        """Close the session's tab and its cookies; False when it had none open."""
        async with self._lock:
            self._forget_dead_browser()
            self._lost_tabs.discard(session_id)
            page = self._tabs.pop(session_id, None)
            if page is None or page.is_closed():
                return False
            await page.context.close()
            return True

    async def aclose(self) -> None:
        """Close Chromium and the driver. Safe to call twice; a later call starts them again."""
        browser, playwright = self._browser, self._playwright
        self._browser = self._playwright = None
        self._tabs.clear()
        await _stop(browser, playwright)

    def _live_tab(self, session_id: str) -> Page | None:
        page = self._tabs.get(session_id)
        if page is not None and page.is_closed():  # the page closed itself (window.close())
            del self._tabs[session_id]
            return None
        return page

    def _take_note(self, session_id: str) -> str:
        if session_id in self._lost_tabs:
            self._lost_tabs.discard(session_id)
            return RELAUNCH_NOTE
        return ""

    def _forget_dead_browser(self) -> None:
        """A Chromium that was killed or crashed: drop it (and its driver) so the next call
        starts a new one, and remember whose tabs went with it."""
        if self._browser is None or self._browser.is_connected():
            return
        logger.warning("the browser stopped unexpectedly; the next browser call starts another")
        self._lost_tabs.update(self._tabs)
        self._tabs.clear()
        browser, playwright = self._browser, self._playwright
        self._browser = self._playwright = None
        # The old driver may still be alive; stop it without making the caller wait.
        task = asyncio.get_running_loop().create_task(_stop(browser, playwright))
        _background_stops.add(task)
        task.add_done_callback(_background_stops.discard)

    async def _ensure_browser(self) -> Browser:
        if self._browser is not None:
            return self._browser
        executable = find_chromium(self._configured_executable, self._home)
        check_display(self._headless)
        from playwright.async_api import async_playwright

        playwright = await async_playwright().start()
        try:
            browser = await launch_chromium(playwright, executable, headless=self._headless)
        except BaseException:
            await playwright.stop()
            raise
        self._playwright, self._browser = playwright, browser
        logger.info("started the browser %s (Chromium %s)", executable, browser.version)
        return browser


_background_stops: set[asyncio.Task[None]] = set()
"""Stops of dead browsers' drivers still running (kept so the tasks are not collected)."""


async def _stop(browser: Browser | None, playwright: Playwright | None) -> None:
    """Close the browser, then the driver (whose exit kills whatever Chromium is left)."""
    if browser is None and playwright is None:
        return  # never started: nothing to close, and no reason to import Playwright
    from playwright.async_api import Error as PlaywrightError

    if browser is not None:
        try:
            await asyncio.wait_for(browser.close(), CLOSE_TIMEOUT_S)
        except (PlaywrightError, TimeoutError):
            logger.debug("closing the browser failed; stopping its driver", exc_info=True)
    if playwright is not None:
        try:
            await asyncio.wait_for(playwright.stop(), CLOSE_TIMEOUT_S)
        except (PlaywrightError, TimeoutError, OSError):
            logger.debug("stopping Playwright's driver failed", exc_info=True)
