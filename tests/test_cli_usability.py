"""`openpista run` from stdin and its --json failures; `session list --limit`; escaped ids."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

import pytest

from openpista.providers.testing import FakeChatCompletionsServer

from .conftest import OPENPISTA, Openpista


@pytest.mark.parametrize("args", [("run", "-e", "-"), ("run",)])
def test_run_reads_the_task_from_stdin(
    openpista: Openpista, llm: FakeChatCompletionsServer, args: tuple[str, ...]
) -> None:
    llm.queue_text("Read you.")
    result = openpista.run(*args, input="What is in stdin?\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Read you.\n"
    users = [m["content"] for m in llm.requests[0]["messages"] if m["role"] == "user"]
    assert users == ["What is in stdin?"]


def test_run_without_a_task_is_a_usage_error(openpista: Openpista) -> None:
    # No -e and stdin a terminal: nothing to read. A pseudo-terminal stands in for the user's.
    controller, terminal = pty.openpty()
    try:
        result = subprocess.run(
            [OPENPISTA, "run"],
            env=openpista.env,
            stdin=terminal,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.close(controller)
        os.close(terminal)
    assert result.returncode == 2
    assert "no task: give it with -e TEXT" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_with_an_empty_stdin_is_a_usage_error(openpista: Openpista) -> None:
    result = openpista.run("run", input="")
    assert result.returncode == 2
    assert "the task read from stdin is empty" in result.stderr


def test_run_json_reports_a_provider_failure_as_an_error_object(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    llm.queue_error(401, "Incorrect API key provided")
    result = openpista.run("run", "--json", "-e", "hi")
    assert result.returncode == 1
    payload = json.loads(result.stdout)
    assert list(payload) == ["error"]
    assert "Incorrect API key" in payload["error"]


def test_run_json_reports_a_config_error_as_an_error_object(openpista: Openpista) -> None:
    openpista.write_config("[agent]\nmax_tool_rounds = 0\n")
    result = openpista.run("run", "--json", "-e", "hi")
    assert result.returncode == 2
    payload = json.loads(result.stdout)
    assert "agent.max_tool_rounds" in payload["error"]


def test_run_json_reports_a_timeout_as_an_error_object(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    openpista.write_config("[agent]\ntimeout_s = 1\n")
    llm.queue_tool_calls([("system_run", {"command": "sleep 5"})])
    result = openpista.run("run", "--json", "-s", "slow", "-e", "hi")
    assert result.returncode == 1
    payload = json.loads(result.stdout)
    assert "took longer than 1 s" in payload["error"]
    assert "kept in session slow" in payload["error"]


def test_session_list_limit_shows_the_most_recent_sessions(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    for name in ("first", "second", "third"):
        llm.queue_text("ok")
        assert openpista.run("run", "-s", name, "-e", "hi").returncode == 0

    listed = openpista.run("session", "list", "--limit", "2", "--json")
    assert [s["id"] for s in json.loads(listed.stdout)] == ["third", "second"]
    human = openpista.run("session", "list", "--limit", "1").stdout
    assert "third" in human and "second" not in human
    assert openpista.run("session", "list", "--limit", "0").returncode == 2


def test_control_characters_in_session_ids_are_escaped_when_printed(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    llm.queue_text("ok")
    assert openpista.run("run", "-s", "a\x1b[31mb", "-e", "hi").returncode == 0

    listed = openpista.run("session", "list")
    shown = openpista.run("session", "show", "a\x1b[31mb")

    for output in (listed.stdout, shown.stdout):
        assert "\x1b" not in output
        assert "a\\x1b[31mb" in output
    # JSON keeps the id exactly as stored.
    assert json.loads(openpista.run("session", "list", "--json").stdout)[0]["id"] == "a\x1b[31mb"


def test_bytes_that_are_not_utf8_are_shown_as_replacement_characters(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    import subprocess

    from .conftest import OPENPISTA

    done = subprocess.run(
        [OPENPISTA, "run", "-s", b"bad\xff".decode("utf-8", "surrogateescape")],
        input=b"hello \xff\xfe bad\n",
        env=openpista.env,
        capture_output=True,
        cwd=openpista.home,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == "Echo: hello \ufffd\ufffd bad\n"
    listed = openpista.run("session", "list")
    assert "bad\ufffd" in listed.stdout


def test_run_json_reports_a_usage_error_as_an_error_object(openpista: Openpista) -> None:
    result = openpista.run("run", "--json", input="")
    assert result.returncode == 2
    assert "task read from stdin is empty" in json.loads(result.stdout)["error"]


def test_run_json_reports_a_stopping_signal_as_an_error_object(
    openpista: Openpista, llm: FakeChatCompletionsServer, tmp_path: Path
) -> None:
    import signal
    import time

    from .conftest import wait_for

    marker = tmp_path / "started"
    llm.queue_tool_calls([("system_run", {"command": f"touch {marker}; sleep 30"})])
    process = openpista.popen("run", "--json", "-e", "sleep")
    assert wait_for(marker.exists)
    time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    stdout, _ = process.communicate(timeout=30)
    assert process.returncode == 143
    assert json.loads(stdout) == {"error": "stopped by SIGTERM"}


def test_run_json_reports_a_mistyped_option_as_an_error_object(openpista: Openpista) -> None:
    result = openpista.run("run", "--json", "-e", "hi", "--bogus")
    assert result.returncode == 2
    assert json.loads(result.stdout) == {"error": "No such option '--bogus'."}
    assert "No such option '--bogus'" in result.stderr
