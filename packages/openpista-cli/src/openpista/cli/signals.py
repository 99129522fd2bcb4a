"""Stopping a command on SIGINT, SIGTERM or SIGHUP by cancelling its work, never mid-air.

Python's defaults end the process at once on SIGTERM and SIGHUP, and turn SIGINT into a
KeyboardInterrupt wherever it lands: either way a running tool's process group (started in
its own session, so the terminal's signals do not reach it) is left behind. Cancelling the
main task instead lets every `run_process` kill its group and every resource close.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def exit_status(signum: int) -> int:
    """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + signum


InterruptHandler = Callable[[], bool]
"""Called on Ctrl-C first: True when it dealt with it (it stopped a running turn), so the
command goes on; False lets Ctrl-C stop the command."""


def run_cancellable(
    coroutine: Coroutine[Any, Any, int], interrupt: list[InterruptHandler] | None = None
) -> int:
    """`asyncio.run(coroutine)`, cancelled cleanly by a stop signal.

    After a signal the work is cancelled, cleaned up, one line is printed on stderr and the
    status is 128 + the signal number. `interrupt` is a holder the coroutine may put an
    InterruptHandler into once it has something Ctrl-C should stop first (the chat's turn).
    """
    return asyncio.run(_cancel_on_signal(coroutine, interrupt if interrupt is not None else []))


async def _cancel_on_signal(
    coroutine: Coroutine[Any, Any, int], interrupt: list[InterruptHandler]
) -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    received: list[int] = []

    def on_signal(signum: int) -> None:
        if signum == signal.SIGINT and not received and any(handler() for handler in interrupt):
            return
        if not received:  # a second Ctrl-C while cleaning up changes nothing
            received.append(signum)
            task.cancel()

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        status = await coroutine
    except asyncio.CancelledError:
        if not received:
            raise
        task.uncancel()
        status = 0
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
    if received:
        name = signal.Signals(received[0]).name
        sys.stderr.write(f"openpista: stopped by {name}\n")
        sys.stderr.flush()
        return exit_status(received[0])
    return status
