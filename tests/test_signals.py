"""A signal during a tool call: the tool's processes end with openpista, and nothing noisy."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from openpista.providers.testing import FakeChatCompletionsServer

from .conftest import Openpista, wait_for

NOISE = (
    "Traceback",
    "never retrieved",
    "Event loop is closed",
    "Task was destroyed",
)


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


def _start_sleeping_tool(llm: FakeChatCompletionsServer, pid_file: Path) -> None:
    """The model runs a command whose `sleep 100` grandchild writes its pid to `pid_file`."""
    command = f"sleep 100 & echo $! > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}; wait"
    llm.queue_tool_calls([("system_run", {"command": command})])
    llm.queue_text("never reached")


def _assert_ended(pid_file: Path) -> None:
    pid = int(pid_file.read_text())
    ended = wait_for(lambda: _gone(pid), timeout=5)
    if not ended:
        os.kill(pid, signal.SIGKILL)
    assert ended, f"the tool's `sleep 100` (pid {pid}) outlived openpista"


@pytest.mark.parametrize(
    ("signum", "status"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
)
def test_run_stopped_by_a_signal_ends_the_tool_and_exits_with_the_conventional_status(
    openpista: Openpista,
    llm: FakeChatCompletionsServer,
    tmp_path: Path,
    signum: signal.Signals,
    status: int,
) -> None:
    pid_file = tmp_path / "sleep.pid"
    _start_sleeping_tool(llm, pid_file)
    with openpista.popen("run", "-e", "sleep a while") as process:
        assert wait_for(pid_file.exists), "the tool never started"
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=20)

    assert process.returncode == status, stderr
    assert stdout == ""
    assert stderr.splitlines()[-1] == f"openpista: stopped by {signum.name}"
    for noise in NOISE:
        assert noise not in stderr
    _assert_ended(pid_file)


# The daemon's cli channel asks before running tools by default; these tests are about signals.
AUTO_APPROVAL = '[channels.cli]\napproval = "auto"\n'


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_second_signal_makes_the_daemon_cancel_the_tool_at_once(
    openpista: Openpista, llm: FakeChatCompletionsServer, tmp_path: Path, signum: signal.Signals
) -> None:
    pid_file = tmp_path / "sleep.pid"
    _start_sleeping_tool(llm, pid_file)
    openpista.write_config(AUTO_APPROVAL)
    with openpista.popen("start") as process:
        assert process.stdin is not None
        process.stdin.write("sleep a while\n")
        process.stdin.flush()
        assert wait_for(pid_file.exists), "the tool never started"
        process.send_signal(signum)
        time.sleep(0.3)
        process.send_signal(signum)
        started = time.monotonic()
        _, stderr = process.communicate(timeout=20)

    assert time.monotonic() - started < 5, "the second signal did not cut the grace short"
    assert process.returncode == 0, stderr
    assert "openpista: stopped" in stderr
    for noise in NOISE:
        assert noise not in stderr
    _assert_ended(pid_file)
    assert not (openpista.home / "openpista.pid").exists()


def test_sighup_shuts_the_daemon_down_like_sigterm_ending_the_tool_after_the_grace(
    openpista: Openpista, llm: FakeChatCompletionsServer, tmp_path: Path
) -> None:
    pid_file = tmp_path / "sleep.pid"
    _start_sleeping_tool(llm, pid_file)
    openpista.write_config(AUTO_APPROVAL)
    with openpista.popen("start") as process:
        assert process.stdin is not None
        process.stdin.write("sleep a while\n")
        process.stdin.flush()
        assert wait_for(pid_file.exists), "the tool never started"
        process.send_signal(signal.SIGHUP)
        _, stderr = process.communicate(timeout=40)

    assert process.returncode == 0, stderr
    for noise in NOISE:
        assert noise not in stderr
    _assert_ended(pid_file)


def test_ctrl_c_in_the_chat_stops_the_reply_and_keeps_the_chat(
    openpista: Openpista, llm: FakeChatCompletionsServer, tmp_path: Path
) -> None:
    pid_file = tmp_path / "sleep.pid"
    command = f"sleep 100 & echo $! > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}; wait"
    llm.queue_tool_calls([("system_run", {"command": command})])
    llm.queue_text("Still here.")
    openpista.write_config(AUTO_APPROVAL)
    with openpista.popen("-s", "chat") as process:
        assert process.stdin is not None
        process.stdin.write("sleep a while\n")
        process.stdin.flush()
        assert wait_for(pid_file.exists), "the tool never started"
        process.send_signal(signal.SIGINT)
        _assert_ended(pid_file)
        process.stdin.write("are you there?\n")
        process.stdin.flush()
        stdout, stderr = process.communicate(timeout=20)

    assert process.returncode == 0, stderr
    assert stdout == "Still here.\n"
    assert "(cancelled)" in stderr
    for noise in NOISE:
        assert noise not in stderr
    shown = openpista.run("session", "show", "chat", "--json")
    import json

    messages = json.loads(shown.stdout)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "user", "assistant"]
    assert "the turn was stopped" in messages[2]["content"]
