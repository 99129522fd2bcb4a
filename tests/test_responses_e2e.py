"""`openpista run -e` through the OpenAI Responses API, selected by config alone."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from openpista.providers.testing import FakeResponsesServer, responses_run_command_responder

from .conftest import Openpista


@pytest.fixture
def responses_llm() -> Iterator[FakeResponsesServer]:
    with FakeResponsesServer(
        responder=responses_run_command_responder, require_api_key="k", reasoning=True
    ) as server:
        yield server


@pytest.fixture
def configured(openpista: Openpista, responses_llm: FakeResponsesServer) -> Openpista:
    for name in ("OPENPISTA_PROVIDER", "OPENPISTA_MODEL", "OPENPISTA_BASE_URL", "OPENAI_API_KEY"):
        openpista.env.pop(name, None)
    openpista.write_config(
        f"""
[agent]
provider = "openai"
model = "gpt-5-mini"

[providers.openai]
api = "responses"
base_url = "{responses_llm.base_url}"
api_key = "k"
"""
    )
    return openpista


def test_run_completes_a_tool_round_through_the_responses_api(
    configured: Openpista, responses_llm: FakeResponsesServer
) -> None:
    result = configured.run("run", "-e", "run: echo hi")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "Tool said: exit code: 0\n--- stdout ---\nhi\n"
    assert "system.run" in result.stderr  # the tool ran
    first, second = responses_llm.requests
    assert [r.path for r in responses_llm.recorded] == ["/v1/responses"] * 2
    assert first["stream"] is True and first["model"] == "gpt-5-mini"
    assert [tool["name"] for tool in first["tools"]].count("system_run") == 1
    # The second request carried the reasoning item back before the call it led to.
    kinds = [item["type"] for item in second["input"]]
    assert kinds[-3:] == ["reasoning", "function_call", "function_call_output"]
    assert "hi" in second["input"][-1]["output"]


def test_the_reasoning_is_stored_with_the_session_and_sent_back_next_run(
    configured: Openpista, responses_llm: FakeResponsesServer
) -> None:
    first = configured.run("run", "-s", "r1", "-e", "run: echo stored")
    second = configured.run("run", "-s", "r1", "-e", "and now?")

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert second.stdout == "Echo: and now?\n"
    # The third request replays the whole stored round, reasoning included.
    replay = [item["type"] for item in responses_llm.requests[2]["input"]]
    assert replay == [
        "message",
        "reasoning",
        "function_call",
        "function_call_output",
        "reasoning",
        "message",
        "message",
    ]
    shown = json.loads(configured.run("session", "show", "r1", "--json").stdout)
    assert [m["role"] for m in shown["messages"]][-2:] == ["user", "assistant"]
    # In text, the call that came with reasoning is one entry, the state noted on its line.
    text = configured.run("session", "show", "r1").stdout
    call_line = next(line for line in text.splitlines() if "→ system.run" in line)
    assert call_line.startswith("[assistant → system.run ")
    assert "[responses state]" in call_line and "[tokens: " in call_line
    assert "[responses state]" not in [line.strip() for line in text.splitlines()]
