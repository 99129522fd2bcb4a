"""run_process: bounded output, stdin, and the process-group kill at the timeout."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
import tracemalloc
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
    assert await _ends(int(pid_file.read_text())), "the background child was not killed"

    kept = await run_process(["bash", "-c", command], timeout_s=20, keep_background=True)
    pid = int(pid_file.read_text())
    try:
        assert (kept.exit_code, kept.stdout, kept.left_running) == (0, "started\n", True)
        assert not _gone(pid)
    finally:
        os.kill(pid, signal.SIGKILL)


async def _ends(pid: int, within_s: float = 5.0) -> bool:
    """True once `pid` is gone (a SIGKILL takes a moment to land), False after `within_s`."""
    for _ in range(int(within_s / 0.05)):
        if _gone(pid):
            return True
        await asyncio.sleep(0.05)
    return False


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


# Writes a line to stdout and to stderr after a second, then leaves a marker: with pipes
# whose reader was gone, the first write killed it (SIGPIPE) and the marker never came.
_WRITE_THEN_MARK = (
    "import sys, time; time.sleep(1); print('late', flush=True); "
    "print('late', file=sys.stderr, flush=True); open(sys.argv[1], 'w').close()"
)


def _background_command(marker: Path, pid_file: Path) -> list[str]:
    script = f'python3 -c "{_WRITE_THEN_MARK}" {marker} & echo $! > {pid_file}; echo started'
    return ["bash", "-c", script]


async def _appears(path: Path, within_s: float = 5.0) -> bool:
    for _ in range(int(within_s / 0.05)):
        if _exists(path):
            return True
        await asyncio.sleep(0.05)
    return False


def _exists(path: Path) -> bool:
    return path.exists()


def _kill_group_of(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(os.getpgid(pid), signal.SIGKILL)


async def test_a_kept_background_child_goes_on_writing_after_the_call(tmp_path: Path) -> None:
    marker, pid_file = tmp_path / "marker", tmp_path / "pid"
    result = await run_process(
        _background_command(marker, pid_file), timeout_s=20, keep_background=True
    )
    pid = int(pid_file.read_text())
    try:
        assert (result.exit_code, result.stdout, result.left_running) == (0, "started\n", True)
        assert not marker.exists()
        assert await _appears(marker), "the background child died writing its output"
    finally:
        _kill_group_of(pid)


async def test_a_kept_background_child_outlives_the_python_process_that_ran_it(
    tmp_path: Path,
) -> None:
    marker, pid_file = tmp_path / "marker", tmp_path / "pid"
    program = (
        "import asyncio, sys\n"
        "from openpista.core.process import run_process\n"
        f"argv = {_background_command(marker, pid_file)!r}\n"
        "result = asyncio.run(run_process(argv, timeout_s=20, keep_background=True))\n"
        "print(result.exit_code, result.left_running)\n"
    )
    runner = await asyncio.create_subprocess_exec(
        sys.executable, "-c", program, stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await asyncio.wait_for(runner.communicate(), 20)
    pid = int(pid_file.read_text())
    try:
        assert (runner.returncode, stdout) == (0, b"0 True\n")
        assert not marker.exists()
        assert await _appears(marker), "the background child died once openpista was gone"
    finally:
        _kill_group_of(pid)


async def test_a_background_child_that_is_not_kept_writes_nothing_more(tmp_path: Path) -> None:
    marker, pid_file = tmp_path / "marker", tmp_path / "pid"
    result = await run_process(_background_command(marker, pid_file), timeout_s=20)
    assert (result.exit_code, result.left_running) == (0, False)
    assert await _ends(int(pid_file.read_text()))
    await asyncio.sleep(1.5)
    assert not marker.exists()


async def test_huge_output_is_counted_without_being_held(tmp_path: Path) -> None:
    tracemalloc.start()
    try:
        result = await run_process(["bash", "-c", "yes | head -c 50000000"], timeout_s=30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0
    assert len(result.stdout) == 1 << 20
    assert result.stdout.startswith("y\ny\n")
    assert result.stdout_dropped == 50_000_000 - (1 << 20)
    assert peak < 8 << 20, f"{peak:,} bytes held for 50 MB of output"


async def test_output_files_stay_small_on_disk_while_the_command_writes() -> None:
    task = asyncio.create_task(run_process(["bash", "-c", "exec yes"], timeout_s=2, max_bytes=1000))
    await asyncio.sleep(0.3)
    largest = 0
    for pid in _children_named("yes"):
        for _ in range(20):
            with contextlib.suppress(FileNotFoundError):
                largest = max(largest, os.stat(f"/proc/{pid}/fd/1").st_blocks * 512)
            await asyncio.sleep(0.05)
    result = await task
    assert result.timed_out and result.exit_code is None
    assert len(result.stdout) == 1000
    assert result.stdout_dropped > 10_000_000  # `yes` writes far faster than that
    assert 0 < largest < 256 << 20, f"the output file took {largest:,} bytes on disk"


def _children_named(name: str) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            text = status.read_text()
            if f"Name:\t{name}\n" in text and f"\nPPid:\t{os.getpid()}\n" in text:
                found.append(int(status.parent.name))
    return found


async def test_killed_commands_are_reaped_by_asyncio_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Closing the transport of a process killed a moment ago made asyncio reap it itself
    # (Popen.poll) while its child watcher waited for it: "Unknown child process pid N, will
    # report returncode 255", now and then, after a Ctrl-C or a timeout.
    for _ in range(20):
        task = asyncio.create_task(run_process(["bash", "-c", "sleep 100"], timeout_s=60))
        await asyncio.sleep(0.03)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        timed_out = await run_process(["bash", "-c", "sleep 100"], timeout_s=0.03)
        assert timed_out.timed_out
    await asyncio.sleep(0.2)
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
