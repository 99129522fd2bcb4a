"""Tool approval end to end: the real `openpista` command asking, piped answers, the audit."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from openpista.providers.testing import FakeChatCompletionsServer

from .conftest import OPENPISTA, Openpista, wait_for

ASK = '[agent]\napproval = "ask"\n'


def tool_results(request: dict) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def test_a_call_answered_n_never_runs_and_the_llm_hears_it_was_denied(
    openpista: Openpista, llm: FakeChatCompletionsServer, tmp_path: Path
) -> None:
    target = tmp_path / "denied"
    openpista.write_config(ASK)
    llm.queue_tool_calls([("system_run", {"command": f"touch {target}"})])
    llm.queue_text("Understood, I left it alone.")

    result = openpista.run(input="please touch the file\nn\n")

    assert result.returncode == 0, result.stderr
    assert not target.exists()
    assert f'Allow system.run {{"command": "touch {target}"}}? [y]es / [n]o / [a]ll' in (
        result.stdout
    )
    assert "Understood, I left it alone." in result.stdout
    (denied,) = tool_results(llm.requests[1])
    assert "denied" in denied


def test_a_call_answered_y_runs(
    openpista: Openpista, llm: FakeChatCompletionsServer, tmp_path: Path
) -> None:
    target = tmp_path / "allowed"
    openpista.write_config(ASK)
    llm.queue_tool_calls([("system_run", {"command": f"touch {target}"})])
    llm.queue_text("Done.")

    result = openpista.run(input="please touch the file\ny\n")

    assert result.returncode == 0, result.stderr
    assert target.exists()
    assert result.stdout.rstrip().endswith("Done.")


def test_all_lets_two_calls_in_a_row_run_on_one_answer(
    openpista: Openpista, llm: FakeChatCompletionsServer, tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    openpista.write_config(ASK)
    llm.queue_tool_calls([("system_run", {"command": f"touch {first}"})])
    llm.queue_tool_calls([("system_run", {"command": f"touch {second}"})])
    llm.queue_text("Both made.")

    result = openpista.run(input="make two files\na\n")

    assert result.returncode == 0, result.stderr
    assert first.exists() and second.exists()
    assert result.stdout.count("Allow system.run") == 1


def test_an_answer_that_is_no_answer_is_asked_again(
    openpista: Openpista, llm: FakeChatCompletionsServer, tmp_path: Path
) -> None:
    target = tmp_path / "made"
    openpista.write_config(ASK)
    llm.queue_tool_calls([("system_run", {"command": f"touch {target}"})])
    llm.queue_text("Done.")

    result = openpista.run(input="make it\nperhaps\nyes\n")

    assert result.returncode == 0, result.stderr
    assert "Please answer y (yes), n (no) or a (all)" in result.stdout
    assert target.exists()


def test_end_of_input_at_the_question_denies(
    openpista: Openpista, llm: FakeChatCompletionsServer, tmp_path: Path
) -> None:
    target = tmp_path / "never"
    openpista.write_config(ASK)
    llm.queue_tool_calls([("system_run", {"command": f"touch {target}"})])
    llm.queue_text("Not done.")

    result = openpista.run(input="make it\n")

    assert result.returncode == 0, result.stderr
    assert not target.exists()


def test_run_e_under_ask_without_a_terminal_denies_and_says_so(
    openpista: Openpista, llm: FakeChatCompletionsServer, tmp_path: Path
) -> None:
    target = tmp_path / "one-shot"
    openpista.write_config(ASK)
    llm.queue_tool_calls([("system_run", {"command": f"touch {target}"})])
    llm.queue_text("I was not allowed to.")

    result = openpista.run("run", "-e", "touch it", input="")

    assert result.returncode == 0, result.stderr
    assert not target.exists()
    assert "needs approval" in result.stderr and "no terminal" in result.stderr
    assert result.stdout == "I was not allowed to.\n"


def test_run_e_is_auto_by_default(
    openpista: Openpista, llm: FakeChatCompletionsServer, tmp_path: Path
) -> None:
    target = tmp_path / "auto"
    llm.queue_tool_calls([("system_run", {"command": f"touch {target}"})])
    llm.queue_text("Made.")
    result = openpista.run("run", "-e", "touch it", input="")
    assert result.returncode == 0, result.stderr
    assert target.exists()


def test_a_channel_setting_overrides_the_agent_policy(
    openpista: Openpista, llm: FakeChatCompletionsServer, tmp_path: Path
) -> None:
    target = tmp_path / "chat-auto"
    openpista.write_config(ASK + '\n[channels.cli]\napproval = "auto"\n')
    llm.queue_tool_calls([("system_run", {"command": f"touch {target}"})])
    llm.queue_text("Made.")
    result = openpista.run(input="touch it\n")
    assert result.returncode == 0, result.stderr
    assert target.exists()
    assert "Allow" not in result.stdout


def test_audit_lists_every_call_with_its_decision(
    openpista: Openpista, llm: FakeChatCompletionsServer, tmp_path: Path
) -> None:
    openpista.write_config(ASK)
    llm.queue_tool_calls([("system_run", {"command": "echo one"})])
    llm.queue_text("first done")
    llm.queue_tool_calls([("system_run", {"command": "echo two"})])
    llm.queue_text("second refused")
    chat = openpista.run("-s", "audited", input="one\ny\ntwo\nn\n")
    assert chat.returncode == 0, chat.stderr
    llm.queue_tool_calls([("system_run", {"command": "echo three"})])
    llm.queue_text("third not asked")
    assert openpista.run("run", "-e", "three", input="").returncode == 0

    shown = openpista.run("audit", "--json")

    assert shown.returncode == 0, shown.stderr
    entries = json.loads(shown.stdout)
    assert [(e["tool"], e["arguments"], e["decision"], e["ok"]) for e in entries] == [
        ("system.run", {"command": "echo three"}, "denied", False),
        ("system.run", {"command": "echo two"}, "denied", False),
        ("system.run", {"command": "echo one"}, "allowed", True),
    ]
    assert {e["session_id"] for e in entries[1:]} == {"audited"}
    assert all(e["at"] for e in entries)
    only = json.loads(openpista.run("audit", "--session", "audited", "--json").stdout)
    assert len(only) == 2


def run_e_on_a_terminal(
    openpista: Openpista,
    llm: FakeChatCompletionsServer,
    *,
    typed_first: bytes,
    answer: bytes,
    before_answer: Callable[[], None] = lambda: None,
) -> tuple[int, str, str]:
    """`openpista run -e "touch it"` with a pseudo-terminal as stdin: `typed_first` is typed at
    once (while it starts), `answer` once the question is up. (status, stdout, stderr)."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [OPENPISTA, "run", "-e", "touch it"],
            env=openpista.env,
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=openpista.home,
        )
        if typed_first:
            os.write(controller, typed_first)
        assert wait_for(lambda: bool(llm.requests), timeout=30)
        time.sleep(1.0)  # the question is on stderr now, waiting for the terminal
        before_answer()
        os.write(controller, answer)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        os.close(controller)
        os.close(terminal)
    return process.returncode, stdout, stderr


def test_run_e_under_ask_asks_on_the_terminal(
    openpista: Openpista, llm: FakeChatCompletionsServer, tmp_path: Path
) -> None:
    target = tmp_path / "asked"
    openpista.write_config(ASK)
    llm.queue_tool_calls([("system_run", {"command": f"touch {target}"})])
    llm.queue_text("Made it.")

    def not_run_yet() -> None:
        assert not target.exists()

    status, stdout, stderr = run_e_on_a_terminal(
        openpista, llm, typed_first=b"", answer=b"y\n", before_answer=not_run_yet
    )

    assert status == 0, stderr
    assert f'Allow system.run {{"command": "touch {target}"}}? [y]es / [n]o / [a]ll' in stderr
    assert target.exists()
    assert stdout == "Made it.\n"


def test_a_key_pressed_before_the_question_does_not_answer_it(
    openpista: Openpista, llm: FakeChatCompletionsServer, tmp_path: Path
) -> None:
    target = tmp_path / "typed-ahead"
    openpista.write_config(ASK)
    llm.queue_tool_calls([("system_run", {"command": f"touch {target}"})])
    llm.queue_text("Left alone.")

    # "y" typed while openpista starts, before any question; "n" once it is asked.
    status, stdout, stderr = run_e_on_a_terminal(openpista, llm, typed_first=b"y\n", answer=b"n\n")

    assert status == 0, stderr
    assert not target.exists()
    assert stdout == "Left alone.\n"
