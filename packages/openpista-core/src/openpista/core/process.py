"""Running a subprocess for a tool: its own process group, a hard timeout, bounded output.

Shared by `system.run`, `skill.run` and any tool that shells out, so every one of them kills
the whole process tree at the timeout rather than leaving grandchildren running, and none of
them can be made to hold gigabytes of output (`yes`, `cat /dev/urandom`) in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Give a killed group this long to close its pipes before we stop reading them.
_DRAIN_AFTER_KILL_S = 2.0
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


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


async def _feed(process: asyncio.subprocess.Process, data: bytes | None) -> None:
    if process.stdin is None:
        return
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        if data:
            process.stdin.write(data)
            await process.stdin.drain()
        process.stdin.close()


async def run_process(
    argv: Sequence[str],
    *,
    timeout_s: float,
    stdin: bytes | None = None,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ProcessResult:
    """Run `argv` to completion or until `timeout_s`, then kill its whole process group.

    Keeps at most `max_bytes` of each of stdout and stderr. Raises OSError when the program
    cannot be started (missing, not executable, bad cwd).
    """
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        start_new_session=True,
    )
    assert process.stdout is not None and process.stderr is not None
    out, err = _BoundedSink(max_bytes), _BoundedSink(max_bytes)
    work = asyncio.ensure_future(
        asyncio.gather(_feed(process, stdin), out.drain(process.stdout), err.drain(process.stderr))
    )
    timed_out = False
    try:
        async with asyncio.timeout(timeout_s):
            await asyncio.shield(work)
            await process.wait()
    except TimeoutError:
        timed_out = True
        _kill_group(process)
        try:
            await asyncio.wait_for(work, _DRAIN_AFTER_KILL_S)
        except TimeoutError:
            # A process that escaped the group may still hold the pipes open: give up on them.
            work.cancel()
    except asyncio.CancelledError:
        _kill_group(process)
        work.cancel()
        raise
    finally:
        if process.returncode is None:
            _kill_group(process)
    # Grandchildren left in the group after a normal exit are ended too.
    _kill_group(process)
    if process.returncode is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), _DRAIN_AFTER_KILL_S)
    return ProcessResult(
        exit_code=None if timed_out else process.returncode,
        stdout=out.text(),
        stderr=err.text(),
        timed_out=timed_out,
        stdout_dropped=out.dropped,
        stderr_dropped=err.dropped,
    )


def truncate_output(text: str, max_chars: int) -> str:
    """Cut `text` to `max_chars`, ending with a marker that says how much was cut."""
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    cut = len(text) - max_chars
    return f"{text[:max_chars]}\n[... output truncated: {cut} more characters not shown ...]"
