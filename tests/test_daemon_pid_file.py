"""The PID file: a stale one left by an unrelated process does not block `start`; it is 0600."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator

import pytest

from .conftest import Openpista, wait_for


@pytest.fixture
def unrelated_pid() -> Iterator[int]:
    sleeper = subprocess.Popen(["sleep", "60"])
    yield sleeper.pid
    sleeper.kill()
    sleeper.wait()


@pytest.mark.parametrize("which", ["sleep", "init"])
def test_a_pid_file_naming_a_live_process_that_is_not_openpista_does_not_block_start(
    openpista: Openpista, unrelated_pid: int, which: str
) -> None:
    pid_file = openpista.home / "openpista.pid"
    pid_file.write_text(f"{unrelated_pid if which == 'sleep' else 1}\n")
    pid_file.chmod(0o644)
    with openpista.popen("start") as process:
        assert wait_for(lambda: pid_file.read_text().strip() == str(process.pid)), (
            "start did not take over the stale PID file"
        )
        assert pid_file.stat().st_mode & 0o777 == 0o600
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert "already running" not in stderr
    assert not pid_file.exists()
