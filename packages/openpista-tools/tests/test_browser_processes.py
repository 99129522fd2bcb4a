"""The browser's processes: one Chromium per process however many sessions start it at once,
a new one after it was killed, and none left behind when we close or are killed."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from openpista.core.tool import ToolContext
from openpista.tools.browser import SharedBrowser, browser_tools
from openpista.tools.browser.shared import RELAUNCH_NOTE

pytestmark = pytest.mark.skipif(
    shutil.which("chromium") is None, reason="Debian's chromium is not installed (.ci/run does)"
)

PAGE = "data:text/html,<title>Here</title><p>hello</p>"


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll `predicate` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


async def navigate(shared: SharedBrowser, session: str, url: str = PAGE) -> str:
    tool = next(t for t in browser_tools(shared) if t.name == "browser.navigate")
    output = await tool.run({"url": url}, ToolContext(session_id=session, channel_id="test:1"))
    return output.text


def chromium_pids(ancestor: int) -> list[int]:
    """Live Chromium processes descending from `ancestor` (through Playwright's driver)."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("State", "").startswith("Z"):
            continue
        parents[int(entry.name)] = int(fields.get("PPid", "0"))
        names[int(entry.name)] = fields.get("Name", "")

    def descends(pid: int) -> bool:
        seen = 0
        while pid > 1 and seen < 64:
            pid = parents.get(pid, 0)
            if pid == ancestor:
                return True
            seen += 1
        return False

    return sorted(pid for pid, name in names.items() if "chrom" in name and descends(pid))


def browser_main_pids(ancestor: int) -> list[int]:
    """The Chromium main processes (not its renderers, GPU and helpers) under `ancestor`."""
    found: list[int] = []
    for pid in chromium_pids(ancestor):
        try:
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        # Chromium's helpers rewrite their command line into one string: search, not split.
        if b"--type=" not in b" ".join(arguments):
            found.append(pid)
    return found


def the_browser_main_pid(ancestor: int) -> int:
    """The one Chromium main process under `ancestor`. A helper Chromium has just forked
    carries the main's command line until it rewrites it, so a count can briefly see two:
    look until exactly one is seen."""
    found: list[int] = []

    def one() -> bool:
        found[:] = browser_main_pids(ancestor)
        return len(found) == 1

    assert wait_for(one, timeout=10), found
    return found[0]


async def test_sessions_starting_the_browser_together_start_one_chromium(tmp_path: Path) -> None:
    shared = SharedBrowser(home=tmp_path)
    try:
        texts = await asyncio.gather(*(navigate(shared, f"s{i}") for i in range(3)))
        assert all(text.startswith("loaded data:text/html") for text in texts)
        await asyncio.to_thread(the_browser_main_pid, os.getpid())
    finally:
        await shared.aclose()


async def test_aclose_leaves_no_chromium_behind(tmp_path: Path) -> None:
    shared = SharedBrowser(home=tmp_path)
    await navigate(shared, "s1")
    started = chromium_pids(os.getpid())
    assert started

    await shared.aclose()

    assert chromium_pids(os.getpid()) == []
    assert shared.running is False
    await shared.aclose()  # a second close is harmless


async def test_a_killed_chromium_is_started_again_with_a_note(tmp_path: Path) -> None:
    shared = SharedBrowser(home=tmp_path)
    try:
        await navigate(shared, "s1")
        await navigate(shared, "s2")
        main = await asyncio.to_thread(the_browser_main_pid, os.getpid())
        os.kill(main, signal.SIGKILL)
        await asyncio.to_thread(wait_for, lambda: not shared.running)

        first = await navigate(shared, "s1")
        second = await navigate(shared, "s2")
        third = await navigate(shared, "s1")

        assert first == f"{RELAUNCH_NOTE}\nloaded {PAGE}\ntitle: Here"
        assert second.startswith(RELAUNCH_NOTE)  # s2 lost its tab too
        assert not third.startswith("note:")  # said once
        new_main = await asyncio.to_thread(the_browser_main_pid, os.getpid())
        assert new_main != main
    finally:
        await shared.aclose()


CHILD = """
import asyncio, sys
from pathlib import Path
from openpista.core.tool import ToolContext
from openpista.tools.browser import SharedBrowser, browser_tools

async def main():
    shared = SharedBrowser(home=Path(sys.argv[1]))
    navigate = next(t for t in browser_tools(shared) if t.name == "browser.navigate")
    await navigate.run({"url": "data:text/html,hi"}, ToolContext("s1", "test:1"))
    print("ready", flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def test_chromium_ends_when_its_owner_is_killed_outright(tmp_path: Path) -> None:
    # SIGKILL gives us no chance to close anything: Playwright's driver sees its stdin close
    # and kills Chromium's process group.
    marker = f"OPENPISTA_BROWSER_TEST={tmp_path}"
    env = {**os.environ, "OPENPISTA_BROWSER_TEST": str(tmp_path)}
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n"
            assert chromium_pids(child.pid)
            # Everything Chromium started, the crash handlers it detaches included, inherited
            # the marker in its environment.
            browsers = [pid for pid in processes_with(marker) if pid != child.pid]
            assert len(browsers) > 2  # node, chromium and its helpers

            child.kill()
            child.wait()
        finally:
            if child.poll() is None:
                child.kill()

    left = [pid for pid in browsers if wait_for(lambda p=pid: _gone(p)) is False]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == [], "Chromium outlived the process that started it"


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def processes_with(marker: str) -> list[int]:
    """Live processes whose environment holds `marker` (NAME=value)."""
    wanted = marker.encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environment = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted in environment and not _gone(int(entry.name)):
            found.append(int(entry.name))
    return found
