"""One Chromium per agent process, shared by every session: each session gets its own
BrowserContext (cookies and storage of its own) holding one tab."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from openpista.tools.browser.launch import check_display, find_chromium, launch_chromium
from openpista.tools.browser.tab import COUNT_OPENED, Tab

if TYPE_CHECKING:
    from playwright.async_api import Browser, Playwright

logger = logging.getLogger(__name__)

NAVIGATION_TIMEOUT_S = 30.0
"""How long a page may take to load (browser.navigate, or a click that leads elsewhere)."""
ELEMENT_TIMEOUT_S = 10.0
"""How long click and type wait for their element to appear before saying it is not there."""
SCRIPT_TIMEOUT_S = 10.0
"""How long a page may take to answer a script (reading it, checking it after an action)
before it counts as hung and its tab is closed."""
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
        navigation_timeout_s: float = NAVIGATION_TIMEOUT_S,
        script_timeout_s: float = SCRIPT_TIMEOUT_S,
    ) -> None:
        self.element_timeout_s = element_timeout_s
        self.navigation_timeout_s = navigation_timeout_s
        self.script_timeout_s = script_timeout_s
        self._configured_executable = executable
        self._headless = headless
        self._home = home
        self._lock = asyncio.Lock()
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._tabs: dict[str, Tab] = {}
        self._lost_tabs: set[str] = set()
        """Sessions whose tab went down with a Chromium that stopped: their next call says so."""

    @property
    def running(self) -> bool:
        return self._browser is not None and self._browser.is_connected()

    async def open_tab(self, session_id: str) -> tuple[Tab, str]:
        """The session's tab, opened (and Chromium started) when needed, with a note for the
        result when a dead Chromium was replaced on the way ("" otherwise)."""
        async with self._lock:
            self._forget_dead_browser()
            tab = self._live_tab(session_id)
            if tab is None:
                browser = await self._ensure_browser()
                # Downloads are refused (and reported by the Tab): nothing lands on disk.
                context = await browser.new_context(accept_downloads=False)
                await context.add_init_script(COUNT_OPENED)
                page = await context.new_page()
                tab = Tab(
                    context,
                    page,
                    element_timeout_s=self.element_timeout_s,
                    navigation_s=self.navigation_timeout_s,
                )
                self._tabs[session_id] = tab
            return tab, self._take_note(session_id)

    async def existing_tab(self, session_id: str) -> tuple[Tab | None, str]:
        """The session's tab if it has one; never starts Chromium."""
        async with self._lock:
            self._forget_dead_browser()
            return self._live_tab(session_id), self._take_note(session_id)

    async def close_tab(self, session_id: str) -> bool:
        """Close the session's tab and its cookies; False when it had none open."""
        async with self._lock:
            self._forget_dead_browser()
            self._lost_tabs.discard(session_id)
            tab = self._tabs.pop(session_id, None)
            if tab is None or tab.current() is None:
                return False
            await _close_context(tab)
            return True

    async def drop_tab(self, session_id: str) -> None:
        """Close the session's tab whatever state its page is in (a hung one included)."""
        async with self._lock:
            tab = self._tabs.pop(session_id, None)
            if tab is not None:
                await _close_context(tab)

    async def aclose(self) -> None:
        """Close Chromium and the driver. Safe to call twice; a later call starts them again."""
        browser, playwright = self._browser, self._playwright
        self._browser = self._playwright = None
        self._tabs.clear()
        await _stop(browser, playwright)

    def _live_tab(self, session_id: str) -> Tab | None:
        tab = self._tabs.get(session_id)
        if tab is not None and tab.current() is None:  # its pages closed (window.close())
            del self._tabs[session_id]
            return None
        return tab

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


async def _close_context(tab: Tab) -> None:
    """Close a tab's context: its pages and cookies. Chromium closes even a hung page, but
    the wait is bounded all the same."""
    from playwright.async_api import Error as PlaywrightError

    try:
        await asyncio.wait_for(tab.context.close(), CLOSE_TIMEOUT_S)
    except (PlaywrightError, TimeoutError):
        logger.debug("closing a browser tab failed", exc_info=True)


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
