"""run_process: bounded output, stdin, and the process-group kill at the timeout."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

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
