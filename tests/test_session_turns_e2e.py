"""Turns of one session across processes, and long sessions within the context budget."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from openpista.providers.testing import FakeChatCompletionsServer, FakeReply, last_user_text

from .conftest import OPENPISTA, Openpista


def slow_echo(request: dict[str, Any]) -> FakeReply:
    # Long enough that two turns started together would overlap without the session lock.
    time.sleep(1.0)
    return FakeReply(text=f"Echo: {last_user_text(request)}")


def test_two_runs_on_one_session_are_answered_one_after_the_other(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    llm.responder = slow_echo
    runs = [
        subprocess.Popen(
            [OPENPISTA, "run", "-s", "race", "-e", text],
            env=openpista.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=openpista.home,
        )
        for text in ("first", "second")
    ]
    outputs = [run.communicate(timeout=60) for run in runs]

    for run, (stdout, stderr) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, stderr
        assert stdout.startswith("Echo: ")
    waited = [stderr for _, stderr in outputs if "busy" in stderr]
    assert len(waited) == 1, outputs
    assert "session race is busy with another turn; waiting for it" in waited[0]

    shown = json.loads(openpista.run("session", "show", "race", "--json").stdout)
    messages = [(m["role"], m["content"]) for m in shown["messages"]]
    assert [role for role, _ in messages] == ["user", "assistant", "user", "assistant"]
    # Each answer follows its own question: the turns did not interleave.
    assert messages[1][1] == f"Echo: {messages[0][1]}"
    assert messages[3][1] == f"Echo: {messages[2][1]}"
    # The second turn saw the first one's whole exchange.
    second_request = llm.requests[1]
    assert [m["role"] for m in second_request["messages"][1:]] == ["user", "assistant", "user"]


def request_chars(request: dict[str, Any]) -> int:
    """What a request carries, in characters: every message's text and the tool schemas."""
    text = 0
    for message in request["messages"]:
        content = message.get("content") or ""
        text += len(content if isinstance(content, str) else json.dumps(content))
        text += len(json.dumps(message.get("tool_calls") or []))
    return text + len(json.dumps(request.get("tools") or []))


def test_a_long_session_keeps_answering_within_the_context_budget(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    # Room for the system prompt, every tool's definition (about 2,500 tokens with the OS and
    # sandbox tools) and two or three turns: 20 turns of 500 tokens must be summarised.
    budget = 5000
    openpista.write_config(f"[agent]\ncontext_tokens = {budget}\n")
    llm.responder = lambda request: FakeReply(text="Noted.")

    for turn in range(20):
        message = f"turn {turn:02d} " + ("lorem ipsum " * 200)[: 2000 - 8]
        assert len(message) == 2000
        result = openpista.run("run", "-s", "long", "-e", message)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "Noted.\n"

    # No request, the summarising ones included, went past the budget (about 4 characters
    # a token), while the newest user message always went whole.
    sizes = [request_chars(request) for request in llm.requests]
    assert max(sizes) <= budget * 4, sizes
    answering = [r for r in llm.requests if "turn 19 " in json.dumps(r["messages"][-1])]
    assert answering, "the last turn's message was never sent whole"
    shown = json.loads(openpista.run("session", "show", "long", "--json").stdout)
    assert len(shown["messages"]) == 40
