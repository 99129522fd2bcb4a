"""The browser tools (`browser.navigate`, `click`, `type`, `screenshot`, `content`, `close`):
Playwright driving the system Chromium, one browser per process, a tab per session.

Playwright is imported inside the first call, never here: registering these tools costs
nothing until the model uses one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openpista.tools.browser.shared import SharedBrowser
from openpista.tools.browser.tools import (
    BrowserTool,
    ClickTool,
    CloseTool,
    ContentTool,
    NavigateTool,
    ScreenshotTool,
    TypeTool,
)
from openpista.tools.settings import BrowserSettings

if TYPE_CHECKING:
    from openpista.core.config import Config
    from openpista.core.tool import Tool

__all__ = ["BrowserTool", "SharedBrowser", "browser_tools", "create_tools"]


def browser_tools(browser: SharedBrowser) -> list[Tool]:
    """The six tools, all working on `browser`."""
    return [
        NavigateTool(browser),
        ClickTool(browser),
        TypeTool(browser),
        ScreenshotTool(browser),
        ContentTool(browser),
        CloseTool(browser),
    ]


def create_tools(config: Config) -> list[Tool]:
    """The `openpista.tools` entry point `browser`, set up from `[tools.browser]`."""
    settings = config.section("tools.browser", BrowserSettings)
    browser = SharedBrowser(settings.executable, headless=settings.headless, home=config.home)
    return browser_tools(browser)
