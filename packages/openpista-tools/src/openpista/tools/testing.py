"""Real local things for testing tools that look at a screen: a private X display (Xvfb).

`with xvfb(1920, 1080) as display:` starts Xvfb on a free display number and stops it after;
point `DISPLAY` (or a tool's `display` argument) at `display.name`. Needs Debian's xvfb.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

__all__ = ["STARTUP_TIMEOUT_S", "XDisplay", "first_line", "stop", "xvfb"]

STARTUP_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class XDisplay:
    name: str
    """":N", as DISPLAY takes it."""
    width: int
    height: int


def first_line(stream: IO[str], what: str, process: subprocess.Popen[Any]) -> str:
    """The first line `process` writes to `stream`; RuntimeError naming `what` when it never
    comes (the process is killed then)."""
    ready, _, _ = select.select([stream], [], [], STARTUP_TIMEOUT_S)
    line = stream.readline() if ready else ""
    if not line.strip():
        process.kill()
        raise RuntimeError(f"{what} did not start (exit code {process.wait()})")
    return line.strip()


def stop(process: subprocess.Popen[Any]) -> None:
    """Terminate `process`, killing it when it does not end within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


@contextlib.contextmanager
def xvfb(width: int = 1920, height: int = 1080) -> Iterator[XDisplay]:
    """A private Xvfb of `width` x `height` at 24 bits, for as long as the block runs."""
    # -displayfd: Xvfb picks a free display number itself and writes it once it accepts
    # clients. -noreset: without it the server resets when its last client leaves, and a
    # grab racing that reset fails at random.
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        [
            *("Xvfb", "-displayfd", str(write_end), "-noreset", "-nolisten", "tcp"),
            *("-screen", "0", f"{width}x{height}x24"),
        ],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end) as numbers:
            number = first_line(numbers, "Xvfb", process)
        yield XDisplay(f":{number}", width, height)
    finally:
        stop(process)
