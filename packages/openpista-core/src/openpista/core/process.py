"""Running a subprocess for a tool: its own process group, a hard timeout, captured output.

Shared by `system.run`, `skill.run` and any tool that shells out, so every one of them kills
the whole process tree at the timeout rather than leaving grandchildren running.
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


@dataclass(frozen=True, slots=True)
class ProcessResult:
    exit_code: int | None
    """None when the process was killed at the timeout."""
    stdout: str
    stderr: str
    timed_out: bool = False


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


async def run_process(
    argv: Sequence[str],
    *,
    timeout_s: float,
    stdin: bytes | None = None,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> ProcessResult:
    """Run `argv` to completion or until `timeout_s`, then kill its whole process group.

    Raises OSError when the program cannot be started (missing, not executable, bad cwd).
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
    communicate = asyncio.ensure_future(process.communicate(stdin))
    timed_out = False
    try:
        stdout, stderr = await asyncio.wait_for(asyncio.shield(communicate), timeout_s)
    except TimeoutError:
        timed_out = True
        _kill_group(process)
        try:
            stdout, stderr = await asyncio.wait_for(communicate, _DRAIN_AFTER_KILL_S)
        except TimeoutError:
            # A process that escaped the group may still hold the pipes open: give up on them.
            communicate.cancel()
            stdout, stderr = b"", b""
    except asyncio.CancelledError:
        _kill_group(process)
        communicate.cancel()
        raise
    finally:
        if process.returncode is None:
            _kill_group(process)
    # Grandchildren left in the group after a normal exit are ended too.
    _kill_group(process)
    return ProcessResult(
        exit_code=None if timed_out else process.returncode,
        stdout=stdout.decode("utf-8", errors="replace"),
        stderr=stderr.decode("utf-8", errors="replace"),
        timed_out=timed_out,
    )


def truncate_output(text: str, max_chars: int) -> str:
    """Cut `text` to `max_chars`, ending with a marker that says how much was cut."""
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    cut = len(text) - max_chars
    return f"{text[:max_chars]}\n[... output truncated: {cut} more characters not shown ...]"
