"""The waiting indicator: animated on a terminal, silent anywhere else."""

from __future__ import annotations

import asyncio
import io
import os
import select

from openpista.cli.progress import WaitingIndicator


async def test_indicator_draws_on_a_terminal_and_clears_its_line() -> None:
    master, slave = os.openpty()
    with os.fdopen(slave, "w", encoding="utf-8") as terminal:
        indicator = WaitingIndicator(terminal, "waiting for openai/gpt")
        indicator.resume()
        await asyncio.sleep(0.25)
        await indicator.pause()
        shown = _read_all(master)
    os.close(master)
    assert "waiting for openai/gpt…" in shown
    assert shown.endswith("\r\x1b[2K")  # the line is cleared for what comes next


def _read_all(fd: int) -> str:
    chunks: list[bytes] = []
    while select.select([fd], [], [], 0.2)[0]:
        chunks.append(os.read(fd, 65536))
    return b"".join(chunks).decode()


async def test_indicator_writes_nothing_when_not_a_terminal() -> None:
    stream = io.StringIO()
    indicator = WaitingIndicator(stream, "waiting")
    indicator.resume()
    await asyncio.sleep(0.15)
    await indicator.pause()
    assert stream.getvalue() == ""
