"""Running a subprocess for a tool: its own process group, a hard timeout, bounded output.

Shared by `system.run`, `skill.run` and any tool that shells out, so every one of them kills
the whole process tree at the timeout rather than leaving grandchildren running, and none of
them can be made to hold gigabytes of output (`yes`, `cat /dev/urandom`) in memory or on disk.

The command writes its stdout and stderr into deleted temporary files, not pipes: a process it
leaves in the background (`server &`) can go on writing after the call returned, even after
openpista itself exited, where a pipe whose reader is gone would kill it with SIGPIPE at its
first write.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from openpista.core.secrets import scrubbed_environment

# Give a killed process this long to be reaped before we stop waiting for it.
_REAP_AFTER_KILL_S = 2.0
# How often the output files are checked while the command runs: often once one grew past the
# limit (a fast writer), rarely otherwise.
_POLL_QUIET_S = 0.1
_POLL_BUSY_S = 0.01
DEFAULT_MAX_BYTES = 1 << 20
"""Output kept per stream; the rest is counted, never held in memory or left on disk."""


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists (one of another user's counts: it is there)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True, slots=True)
class ProcessResult:
    exit_code: int | None
    """None when the process was killed at the timeout."""
    stdout: str
    stderr: str
    timed_out: bool = False
    stdout_dropped: int = 0
    """Bytes of stdout past `max_bytes`, counted and thrown away."""
    stderr_dropped: int = 0
    left_running: bool = False
    """The process exited but left processes running in the background, kept as asked."""


class _OutputFile:
    """A deleted temporary file (mode 0600) a command writes one stream into.

    Keeps the first `limit` bytes: while the command runs, `trim` cuts the file back to them,
    and the writers, whose shared offset runs on, continue past a hole that takes no disk.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.fd = _temporary_fd()
        self._written = 0

    def _observe(self) -> int:
        """The file's size; notes how much the writers wrote in all."""
        size = os.fstat(self.fd).st_size
        # The writers share this descriptor's file offset: it says how much they wrote, even
        # after the file was cut back.
        self._written = max(self._written, size, os.lseek(self.fd, 0, os.SEEK_CUR))
        return size

    def trim(self) -> bool:
        """Cut the file back to `limit`; True when it had grown past it since the last time."""
        if self._observe() <= self.limit:
            return False
        os.ftruncate(self.fd, self.limit)
        return True

    def collect(self) -> tuple[str, int]:
        """The text kept and the number of bytes written past it."""
        self._observe()
        kept = os.pread(self.fd, self.limit, 0) if self.limit > 0 else b""
        return kept.decode("utf-8", errors="replace"), max(0, self._written - len(kept))

    def close(self) -> None:
        # Processes left in the background keep their own descriptors: their writes go on
        # into the deleted file, which the system frees once the last of them closes it.
        os.close(self.fd)


def _temporary_fd() -> int:
    # tempfile gives O_TMPFILE where the system has it, else a file unlinked at once; 0600.
    with tempfile.TemporaryFile(buffering=0) as file:
        return os.dup(file.fileno())


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
    """Tells when the process has exited and asyncio's child watcher has reaped it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=1 << 16, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


async def _feed(process: asyncio.subprocess.Process, data: bytes | None) -> None:
    if process.stdin is None:
        return
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        if data:
            process.stdin.write(data)
            await process.stdin.drain()
        process.stdin.close()


def _retrieve(future: asyncio.Future[None]) -> None:
    # The feeder is cancelled on purpose at times: its outcome is known and not an error.
    if not future.cancelled():
        future.exception()


async def _wait_trimming(exited: asyncio.Future[None], files: Sequence[_OutputFile]) -> None:
    """Wait for `exited`, keeping the output files at their limit meanwhile."""
    poll = _POLL_QUIET_S
    while not exited.done():
        await asyncio.wait({exited}, timeout=poll)
        grew = [file.trim() for file in files]
        poll = _POLL_BUSY_S if any(grew) else _POLL_QUIET_S


async def _reaped(exited: asyncio.Future[None]) -> None:
    """Give asyncio's child watcher a moment to reap a process just killed."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(exited), _REAP_AFTER_KILL_S)


def _close_once_reaped(
    transport: asyncio.SubprocessTransport, exited: asyncio.Future[None]
) -> None:
    # Closing the transport of a process the child watcher has not reaped yet makes asyncio
    # reap it itself (Popen.poll), racing the watcher: "Unknown child process pid N".
    if exited.done():
        transport.close()
    else:
        exited.add_done_callback(lambda _: transport.close())


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

    The result comes as soon as the process itself exits, with what it wrote until then.
    Processes it left in the background are killed too, unless `keep_background` is set: then
    they keep running, free to go on writing (into deleted files nobody reads), and the
    result says so. When the task awaiting this is cancelled (a signal, a shutdown), the group
    is killed before the cancellation goes on. Keeps at most `max_bytes` of each of stdout and
    stderr and counts the rest. Raises OSError when the program cannot be started (missing,
    not executable, bad cwd).

    `env` defaults to this process's environment without openpista's own secrets
    (core/secrets.py); a caller passing its own should start from `scrubbed_environment()`.
    """
    loop = asyncio.get_running_loop()
    out = _OutputFile(max_bytes)
    try:
        err = _OutputFile(max_bytes)
    except BaseException:
        out.close()
        raise
    try:
        transport, protocol = await loop.subprocess_exec(
            lambda: _ExitWatchingProtocol(loop),
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=out.fd,
            stderr=err.fd,
            cwd=cwd,
            env=dict(env) if env is not None else scrubbed_environment(),
            start_new_session=True,
        )
    except BaseException:
        out.close()
        err.close()
        raise
    process = asyncio.subprocess.Process(transport, protocol, loop)
    pgid = process.pid
    _live_groups.add(pgid)
    feeding = asyncio.ensure_future(_feed(process, stdin))
    feeding.add_done_callback(_retrieve)
    timed_out = False
    left_running = False
    try:
        try:
            async with asyncio.timeout(timeout_s):
                await _wait_trimming(protocol.exited, (out, err))
        except TimeoutError:
            timed_out = True
            _kill_group(pgid)
        else:
            if _group_alive(pgid):
                if keep_background:
                    left_running = True
                else:
                    _kill_group(pgid)
        finally:
            _live_groups.discard(pgid)
            feeding.cancel()
        if not protocol.exited.done():  # killed at the timeout
            await _reaped(protocol.exited)
        stdout, stdout_dropped = out.collect()
        stderr, stderr_dropped = err.collect()
    except BaseException:
        # Cancelled (a signal, a shutdown) or failing: nothing of the command outlives us.
        _kill_group(pgid)
        if not protocol.exited.done():
            await _reaped(protocol.exited)
        raise
    finally:
        _close_once_reaped(transport, protocol.exited)
        out.close()
        err.close()
    return ProcessResult(
        exit_code=None if timed_out else process.returncode,
        stdout=stdout,
        stderr=stderr,
        timed_out=timed_out,
        stdout_dropped=stdout_dropped,
        stderr_dropped=stderr_dropped,
        left_running=left_running,
    )


def truncate_output(text: str, max_chars: int) -> str:
    """Cut `text` to `max_chars`, ending with a marker that says how much was cut."""
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    cut = len(text) - max_chars
    return f"{text[:max_chars]}\n[... output truncated: {cut} more characters not shown ...]"
