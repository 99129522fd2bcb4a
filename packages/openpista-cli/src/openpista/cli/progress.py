"""A one-line "waiting for the model" indicator on stderr, shown only on a terminal."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TextIO

_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_INTERVAL_S = 0.1


class WaitingIndicator:
    """Shows `⠋ waiting for openai/gpt-4.1-mini… 3s` while the agent waits, on a terminal only.

    `pause()` clears the line before other output (tool activity) and `resume()` brings it
    back; on anything but a terminal it writes nothing at all, so logs and pipes stay clean.
    """

    def __init__(self, stream: TextIO, label: str) -> None:
        self._stream = stream
        self._label = label
        self._enabled = _is_terminal(stream)
        self._task: asyncio.Task[None] | None = None
        self._started = time.monotonic()

    def resume(self) -> None:
        if self._enabled and self._task is None:
            self._started = time.monotonic()
            self._task = asyncio.create_task(self._spin())

    async def pause(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        self._stream.write("\r\x1b[2K")
        self._stream.flush()

    async def _spin(self) -> None:
        frame = 0
        while True:
            elapsed = int(time.monotonic() - self._started)
            waited = f" {elapsed}s" if elapsed else ""
            self._stream.write(f"\r\x1b[2K{_FRAMES[frame % len(_FRAMES)]} {self._label}…{waited}")
            self._stream.flush()
            frame += 1
            await asyncio.sleep(_INTERVAL_S)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, OSError, ValueError):
        return False
