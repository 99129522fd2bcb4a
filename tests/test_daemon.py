"""`openpista start`: channels, cron, the PID file and graceful shutdown, as a real process."""

from __future__ import annotations

import signal
from pathlib import Path

from openpista.providers.testing import FakeChatCompletionsServer

from .conftest import Openpista, wait_for


def test_start_serves_the_cli_channel_writes_pid_and_stops_on_sigterm(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    llm.queue_text("Hello from the daemon.")
    pid_file = openpista.home / "openpista.pid"
    with openpista.popen("start") as process:
        assert wait_for(pid_file.exists), "PID file never appeared"
        assert pid_file.read_text().strip() == str(process.pid)
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write("hi there\n")
        process.stdin.flush()
        line = process.stdout.readline()
        assert "Hello from the daemon." in line

        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert not pid_file.exists()
    assert "Traceback" not in stderr


def test_start_refuses_a_second_daemon(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    pid_file = openpista.home / "openpista.pid"
    with openpista.popen("start") as first:
        assert wait_for(pid_file.exists)
        second = openpista.run("start", input="", timeout=30)
        assert second.returncode == 1
        assert "already running" in second.stderr
        assert pid_file.read_text().strip() == str(first.pid)
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=20)
    assert first.returncode == 0
    assert not pid_file.exists()


def test_cron_job_delivers_a_message_into_its_channel_session(
    openpista: Openpista, llm: FakeChatCompletionsServer, tmp_path: Path
) -> None:
    openpista.write_config(
        '[[cron]]\nschedule = "* * * * * *"\nchannel_id = "cli:local"\nmessage = "cron says hi"\n'
    )
    llm.queue_text("Answer to the cron job.")
    with openpista.popen("start") as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "Answer to the cron job." in line
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
    users = [m["content"] for m in llm.requests[0]["messages"] if m["role"] == "user"]
    assert users == ["cron says hi"]
    assert process.returncode == 0


def test_start_names_an_enabled_channel_that_is_not_installed(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    openpista.write_config("[channels.discord]\nenabled = true\n")
    result = openpista.run("start", input="")
    assert result.returncode == 0, result.stderr
    assert "channels.discord is enabled, but no installed distribution" in result.stderr
    assert "every channel's input has ended" in result.stderr


def test_start_with_nothing_enabled_says_so(openpista: Openpista) -> None:
    openpista.write_config("[channels.cli]\nenabled = false\n")
    result = openpista.run("start", input="")
    assert result.returncode == 1
    assert "nothing to run" in result.stderr
    assert not (openpista.home / "openpista.pid").exists()


def test_a_provider_outage_reaches_the_user_and_the_daemon_keeps_serving(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    for _ in range(3):  # every attempt of the first message fails
        llm.queue_error(503, "The server is overloaded")
    llm.queue_text("Back again.")
    with openpista.popen("start") as process:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write("first\nsecond\n")
        process.stdin.flush()
        assert "Back again." in process.stdout.readline()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "❌" in stderr and "overloaded" in stderr
    users = [m["content"] for m in llm.requests[-1]["messages"] if m["role"] == "user"]
    assert users == ["first", "second"]  # the failed message was kept in the session


def test_sigterm_lets_an_in_flight_reply_finish(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    llm.queue_tool_calls([("system_run", {"command": "sleep 1.5; echo finished"})])
    llm.queue_text("All finished.")
    openpista.write_config('[channels.cli]\napproval = "auto"\n')
    with openpista.popen("start") as process:
        assert process.stdin is not None
        process.stdin.write("take your time\n")
        process.stdin.flush()
        assert wait_for(lambda: len(llm.requests) == 1)  # the tool is running now
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "All finished." in stdout
    (tool_message,) = [m for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert "finished" in tool_message["content"]
