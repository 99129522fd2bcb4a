"""Running a subprocess for a tool: its own process group, a hard timeout, bounded output.

Shared by `system.run`, `skill.run` and any tool that shells out, so every one of them kills
the whole process tree at the timeout rather than leaving grandchildren running, and none of
them can be made to hold gigabytes of output (`yes`, `cat /dev/urandom`) in memory.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openpista.core.secrets import scrubbed_environment

# Give a killed group this long to close its pipes before we stop reading them.
_DRAIN_AFTER_KILL_S = 2.0
# After the process exits, read what is left in its pipes for at most this long: a child it
# left in the background (`server &`) holds them open for as long as it runs.
_DRAIN_AFTER_EXIT_S = 0.25
_CHUNK = 65536
DEFAULT_MAX_BYTES = 1 << 20
"""Output kept per stream; the rest is read (so the process never blocks) and counted."""


@dataclass(frozen=True, slots=True)
class ProcessResult:
    exit_code: int | None
    """None when the process was killed at the timeout."""
    stdout: str
    stderr: str
    timed_out: bool = False
    stdout_dropped: int = 0
    """Bytes of stdout past `max_bytes`, read and thrown away."""
    stderr_dropped: int = 0
    left_running: bool = False
    """The process exited but left processes running in the background, kept as asked."""


class _BoundedSink:
    """Keeps the first `limit` bytes of a stream and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept = bytearray()
        self.dropped = 0

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(_CHUNK):
            room = self.limit - len(self.kept)
            if room > 0:
                self.kept += chunk[:room]
            self.dropped += max(0, len(chunk) - max(room, 0))

    def text(self) -> str:
        return self.kept.decode("utf-8", errors="replace")


_live_groups: set[int] = set()
"""Process groups of commands still running, ended at interpreter exit if still there."""


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@atexit.register
def _kill_live_groups() -> None:
    # The interpreter is leaving without the commands' awaiting tasks having been
    # cancelled (an exit from a thread, a loop stopped early): take the commands along.
    for pgid in list(_live_groups):
        _kill_group(pgid)
    _live_groups.clear()


class _ExitWatchingProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Tells when the process itself exits; `Process.wait()` also waits for its pipes to
    close, which a background child (`server &`) keeps open for as long as it runs."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=_CHUNK, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


def _retrieve(future: asyncio.Future[Any]) -> None:
    # The readers are cancelled on purpose at times: their outcome is known and not an error.
    if not future.cancelled():
        future.exception()


async def _feed(process: asyncio.subprocess.Process, data: bytes | None) -> None:
    if process.stdin is None:
        return
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        if data:
            process.stdin.write(data)
            await process.stdin.drain()
        process.stdin.close()


async def _finish_reading(work: asyncio.Future[Any], within_s: float) -> None:
    """Give the readers `within_s` to reach end of file, then stop them."""
    await asyncio.wait({work}, timeout=within_s)
    if not work.done():
        # A process that escaped the group may hold the pipes open: give up on them.
        work.cancel()


async def run_process(
    argv: Sequence[str],
    *,
    timeout_s: float,
    stdin: bytes | None = None,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    keep_background: bool = False,
) -> ProcessResult:
    """Run `argv` until it exits or until `timeout_s`, then kill its whole process group.

    The result comes as soon as the process itself exits, with the output read until then
    (and for a moment after). Processes it left in the background are killed too, unless
    `keep_background` is set: then they keep running and the result says so. When the task
    awaiting this is cancelled (a signal, a shutdown), the group is killed before the
    cancellation goes on. Keeps at most `max_bytes` of each of stdout and stderr. Raises
    OSError when the program cannot be started (missing, not executable, bad cwd).

    `env` defaults to this process's environment without openpista's own secrets
    (core/secrets.py); a caller passing its own should start from `scrubbed_environment()`.
    """
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.subprocess_exec(
        lambda: _ExitWatchingProtocol(loop),
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=dict(env) if env is not None else scrubbed_environment(),
        start_new_session=True,
    )
    process = asyncio.subprocess.Process(transport, protocol, loop)
    pgid = process.pid
    _live_groups.add(pgid)
    assert process.stdout is not None and process.stderr is not None
    out, err = _BoundedSink(max_bytes), _BoundedSink(max_bytes)
    work = asyncio.ensure_future(
        asyncio.gather(_feed(process, stdin), out.drain(process.stdout), err.drain(process.stderr))
    )
    work.add_done_callback(_retrieve)
    timed_out = False
    left_running = False
    try:
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(protocol.exited)
        except TimeoutError:
            timed_out = True
            _kill_group(pgid)
            await _finish_reading(work, _DRAIN_AFTER_KILL_S)
        else:
            # Output the process wrote just before exiting is still in the pipes.
            await asyncio.wait({work}, timeout=_DRAIN_AFTER_EXIT_S)
            if _group_alive(pgid):
                if keep_background:
                    left_running = True
                    work.cancel()
                else:
                    _kill_group(pgid)
                    await _finish_reading(work, _DRAIN_AFTER_KILL_S)
            elif not work.done():
                # Something outside the group (a daemon that set up its own session) holds
                # the pipes.
                left_running = keep_background
                work.cancel()
    except BaseException:
        # Cancelled (a signal, a shutdown) or failing: nothing of the command outlives us.
        _kill_group(pgid)
        work.cancel()
        raise
    finally:
        _live_groups.discard(pgid)
        transport.close()
    if process.returncode is None:  # killed at the timeout: collect its status
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(protocol.exited), _DRAIN_AFTER_KILL_S)
    return ProcessResult(
        exit_code=None if timed_out else process.returncode,
        stdout=out.text(),
        stderr=err.text(),
        timed_out=timed_out,
        stdout_dropped=out.dropped,
        stderr_dropped=err.dropped,
        left_running=left_running,
    )


def truncate_output(text: str, max_chars: int) -> str:
    """Cut `text` to `max_chars`, ending with a marker that says how much was cut."""
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    cut = len(text) - max_chars
    return f"{text[:max_chars]}\n[... output truncated: {cut} more characters not shown ...]"
