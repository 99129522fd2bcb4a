"""Finding the system Chromium and starting it through Playwright, quiet and headless.

Playwright's own browser downloads are never used (`playwright install` is never run): the
executable is always the one configured or found on PATH, passed as `executable_path`.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from openpista.core.errors import ToolError

if TYPE_CHECKING:
    from playwright.async_api import Browser, Playwright

CHROMIUM_COMMANDS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
"""Searched on PATH, in this order, when `[tools.browser] executable` is empty."""

QUIET_FLAGS = (
    # Without these Chromium phones home (updates, sync, field trials) and, on a machine that
    # refuses outside connections, keeps retrying in the background for the whole session.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
"""Extra command-line flags every launch passes. Playwright adds its own (and, since its
`chromium_sandbox` defaults to off, `--no-sandbox`, which running as root needs)."""

LAUNCH_TIMEOUT_S = 30.0


def find_chromium(configured: str, home: Path) -> str:
    """The browser executable: `configured` (a path, or a command name looked up on PATH), or
    the first of CHROMIUM_COMMANDS on PATH. A clear ToolError when there is none."""
    if configured:
        if os.sep not in configured and not configured.startswith("~"):
            found = shutil.which(configured)
            if found is None:
                raise ToolError(
                    f"tools.browser.executable: {configured!r} is not a command on PATH; "
                    "set it to the full path of a Chromium or Chrome binary"
                )
            return found
        from openpista.core.config import expand_path

        path = expand_path(configured, home)
        if not path.is_file():
            raise ToolError(
                f"tools.browser.executable: {path} does not exist; set it to a Chromium or "
                "Chrome binary, or leave it empty to search PATH"
            )
        if not os.access(path, os.X_OK):
            raise ToolError(f"tools.browser.executable: {path} is not executable")
        return str(path)
    for command in CHROMIUM_COMMANDS:
        found = shutil.which(command)
        if found is not None:
            return found
    raise ToolError(
        f"no Chromium found: none of {', '.join(CHROMIUM_COMMANDS)} is on PATH; install "
        "Chromium (Debian: apt install chromium) or set [tools.browser] executable in config.toml"
    )


def check_display(headless: bool) -> None:
    """A visible browser needs a display: say so before Chromium fails obscurely."""
    if headless or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    raise ToolError(
        "tools.browser.headless is false but there is no display (neither DISPLAY nor "
        "WAYLAND_DISPLAY is set); set headless = true under [tools.browser] or run under X"
    )


async def launch_chromium(playwright: Playwright, executable: str, *, headless: bool) -> Browser:
    """Start `executable` with QUIET_FLAGS; a failure is a ToolError naming the executable."""
    from playwright.async_api import Error as PlaywrightError

    try:
        return await playwright.chromium.launch(
            executable_path=executable,
            headless=headless,
            args=list(QUIET_FLAGS),
            timeout=LAUNCH_TIMEOUT_S * 1000,
            # Ctrl-C in a terminal reaches Playwright's driver too; it must not close the
            # browser under a chat that only meant to stop one reply. openpista closes it.
            handle_sigint=False,
        )
    except PlaywrightError as exc:
        raise ToolError(launch_failure(executable, exc.message)) from exc


_EXIT = re.compile(r"<process did exit: exitCode=(\w+), signal=(\w+)>")
"""How Playwright's call log records the browser process ending during the launch."""


def launch_failure(executable: str, message: str) -> str:
    """One line on why `executable` did not start, from Playwright's error and call log:
    the config is blamed only when the program itself exited, not when it was killed."""
    ended = _EXIT.search(message)
    if ended is not None and ended.group(2) != "null":
        return (
            f"could not start the browser {executable}: it was killed by {ended.group(2)} while "
            "starting (by another program, or for lack of memory); the next browser call tries "
            "again"
        )
    if ended is not None:
        return (
            f"could not start the browser {executable}: it exited at once (exit status "
            f"{ended.group(1)}) without opening its DevTools pipe; is it really Chromium or "
            "Chrome? Set [tools.browser] executable to a Chromium binary"
        )
    reason = first_line(message)
    if reason.startswith("Timeout "):
        return (
            f"could not start the browser {executable}: it did not answer within "
            f"{LAUNCH_TIMEOUT_S:g} s (the machine may be overloaded); the next browser call "
            "tries again"
        )
    return (
        f"could not start the browser {executable}: {reason} (set [tools.browser] executable "
        "to another Chromium)"
    )


def first_line(message: str) -> str:
    """Playwright's messages carry a call log after the first line; the LLM needs the line."""
    line = message.strip().splitlines()[0] if message.strip() else "unknown error"
    return _API_PREFIX.sub("", line.removeprefix("Error: ")).strip()


_API_PREFIX = re.compile(r"^[A-Z][A-Za-z]*\.[a-z][A-Za-z]*: ")
"""`Page.goto: `, `Locator.click: `: which Playwright call failed, noise to the LLM."""
