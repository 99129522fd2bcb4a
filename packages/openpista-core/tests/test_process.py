"""run_process: bounded output, stdin, and the process-group kill at the timeout."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from pathlib import Path

import pytest

from openpista.core.process import run_process


async def test_run_process_keeps_at_most_max_bytes_and_counts_the_rest() -> None:
    result = await run_process(
        ["bash", "-c", "head -c 300000 /dev/zero; echo oops >&2"], timeout_s=10, max_bytes=1000
    )
    assert result.exit_code == 0
    assert len(result.stdout) == 1000
    assert result.stdout_dropped == 299000
    assert result.stderr == "oops\n"
    assert result.stderr_dropped == 0


async def test_run_process_feeds_stdin_and_kills_the_group_at_the_timeout(tmp_path: Path) -> None:
    echoed = await run_process(["bash", "-c", "cat; exit 3"], timeout_s=5, stdin=b"xyz")
    assert (echoed.exit_code, echoed.stdout) == (3, "xyz")

    pid_file = tmp_path / "pid"
    started = await run_process(
        ["bash", "-c", f"sleep 30 & echo $! > {pid_file}; echo before; wait"], timeout_s=0.5
    )
    assert started.timed_out and started.exit_code is None
    assert started.stdout == "before\n"
    pid = int(pid_file.read_text())
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the grandchild outlived the timeout")


async def test_cancelling_the_awaiting_task_kills_the_group_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pid_file = tmp_path / "pid"
    task = asyncio.create_task(
        run_process(["bash", "-c", f"sleep 100 & echo $! > {pid_file}; wait"], timeout_s=60)
    )
    for _ in range(100):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pid = int(pid_file.read_text())
    await asyncio.sleep(0.1)
    gc.collect()  # an unretrieved exception is reported when its future is collected
    assert _gone(pid), "the grandchild outlived the cancellation"
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


async def test_a_background_child_is_killed_unless_kept(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    command = f"sleep 100 & echo $! > {pid_file}; echo started"
    ended = await run_process(["bash", "-c", command], timeout_s=20)
    assert (ended.exit_code, ended.stdout, ended.left_running) == (0, "started\n", False)
    assert _gone(int(pid_file.read_text()))

    kept = await run_process(["bash", "-c", command], timeout_s=20, keep_background=True)
    pid = int(pid_file.read_text())
    try:
        assert (kept.exit_code, kept.stdout, kept.left_running) == (0, "started\n", True)
        assert not _gone(pid)
    finally:
        os.kill(pid, signal.SIGKILL)


def _gone(pid: int) -> bool:
    """True once `pid` no longer runs: vanished, or a zombie waiting for its reaper."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
