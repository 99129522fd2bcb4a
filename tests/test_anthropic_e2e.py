"""`openpista run -e` over Anthropic Messages, end to end: the real command, a real tool round,
the fake Anthropic server selected by config alone; and a conversation moving there from a
chat-completions provider with its tool history."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from openpista.providers.testing import FakeAnthropicServer, FakeChatCompletionsServer

from .conftest import Openpista

API_KEY = "sk-ant-e2e-key"


@pytest.fixture
def claude() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer(require_api_key=API_KEY) as server:
        yield server


@pytest.fixture
def configured(openpista: Openpista) -> Openpista:
    """The command with nothing chosen by the environment: the config file decides."""
    for variable in ("OPENPISTA_PROVIDER", "OPENPISTA_MODEL", "OPENPISTA_BASE_URL"):
        openpista.env.pop(variable, None)
    openpista.env.pop("ANTHROPIC_API_KEY", None)
    return openpista


def test_run_completes_a_streamed_tool_round_over_anthropic_selected_by_config(
    configured: Openpista, claude: FakeAnthropicServer
) -> None:
    configured.write_config(
        "[agent]\n"
        'provider = "anthropic"\n'
        'model = "claude-sonnet-4-5"\n'
        "[providers.anthropic]\n"
        f'base_url = "{claude.base_url}"\n'
        f'api_key = "{API_KEY}"\n'
    )
    claude.queue_tool_calls([("system_run", {"command": "echo hi"})], text="Running it.")
    claude.queue_text("The command printed hi.")

    result = configured.run("run", "-e", "run: echo hi")

    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("The command printed hi.\n")
    assert "system.run" in result.stderr
    first, second = claude.recorded
    assert first.headers["x-api-key"] == API_KEY
    assert first.body["stream"] is True
    assert "system_run" in [tool["name"] for tool in first.body["tools"]]
    assert first.body["system"]  # the agent's prompt, outside `messages`
    assert all(turn["role"] in ("user", "assistant") for turn in second.body["messages"])
    (result_block,) = [
        block for block in second.body["messages"][-1]["content"] if block["type"] == "tool_result"
    ]
    assert "hi" in result_block["content"]
    assert "exit code: 0" in result_block["content"]


def test_a_session_started_on_chat_completions_continues_on_anthropic_with_its_tool_history(
    configured: Openpista, llm: FakeChatCompletionsServer, claude: FakeAnthropicServer
) -> None:
    configured.write_config(
        "[agent]\n"
        'provider = "custom"\n'
        'model = "fake-model"\n'
        "[providers.custom]\n"
        f'base_url = "{llm.base_url}"\n'
        "[providers.anthropic]\n"
        f'base_url = "{claude.base_url}"\n'
        f'api_key = "{API_KEY}"\n'
    )
    llm.queue_tool_calls([("system_run", {"command": "echo from-chat"})])
    llm.queue_text("It printed from-chat.")
    claude.queue_text("Earlier you ran echo from-chat.")

    started = configured.run("run", "-s", "switch-1", "-e", "run: echo from-chat")
    continued = configured.run(
        "run",
        "-s",
        "switch-1",
        "--provider",
        "anthropic",
        "--model",
        "claude-sonnet-4-5",
        "--json",
        "-e",
        "What did I run?",
    )

    assert started.returncode == 0, started.stderr
    assert continued.returncode == 0, continued.stderr
    assert json.loads(continued.stdout)["reply"] == "Earlier you ran echo from-chat."
    # The fake refused nothing (it checks pairing, ids and alternation like the real API)
    # and saw the whole tool round, translated.
    (request,) = claude.requests
    kinds = [
        (turn["role"], [block["type"] for block in turn["content"]]) for turn in request["messages"]
    ]
    assert kinds == [
        ("user", ["text"]),
        ("assistant", ["tool_use"]),
        ("user", ["tool_result"]),
        ("assistant", ["text"]),
        ("user", ["text"]),
    ]
    tool_use = request["messages"][1]["content"][0]
    assert tool_use["name"] == "system_run"
    assert tool_use["input"] == {"command": "echo from-chat"}
    assert request["messages"][2]["content"][0]["tool_use_id"] == tool_use["id"]
    assert "from-chat" in request["messages"][2]["content"][0]["content"]


def test_a_history_repeating_a_call_id_still_goes_to_anthropic(
    configured: Openpista, llm: FakeChatCompletionsServer, claude: FakeAnthropicServer
) -> None:
    # Two servers that each number their calls from the start (as local models do): the
    # session holds the same call id twice, which Anthropic refuses unless it is made unique.
    with FakeChatCompletionsServer() as other:
        configured.write_config(
            "[agent]\n"
            'provider = "custom"\n'
            'model = "fake-model"\n'
            "[providers.custom]\n"
            f'base_url = "{llm.base_url}"\n'
            "[providers.together]\n"
            f'base_url = "{other.base_url}"\n'
            'api_key = "tg-key"\n'
            "[providers.anthropic]\n"
            f'base_url = "{claude.base_url}"\n'
            f'api_key = "{API_KEY}"\n'
        )
        for server in (llm, other):
            server.queue_tool_calls([("system_run", {"command": "echo round"})])
            server.queue_text("Done.")
        claude.queue_text("Two rounds.")

        first = configured.run("run", "-s", "dup-ids", "-e", "run: echo round")
        second = configured.run(
            "run", "-s", "dup-ids", "--provider", "together", "--model", "m", "-e", "again"
        )
        third = configured.run(
            "run", "-s", "dup-ids", "--provider", "anthropic", "-e", "How many rounds?"
        )

    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    stored = json.loads(configured.run("session", "show", "dup-ids", "--json").stdout)
    ids = [call["id"] for message in stored["messages"] for call in message["tool_calls"]]
    assert len(ids) == 2 and ids[0] == ids[1]  # the repeat this test is about
    assert third.returncode == 0, third.stderr
    assert third.stdout.strip() == "Two rounds."
    sent = [
        block["id"]
        for turn in claude.requests[-1]["messages"]
        for block in turn["content"]
        if block["type"] == "tool_use"
    ]
    assert len(set(sent)) == 2
