"""Tool-call pairs repaired before every request: a provider or model switch, a cut context."""

from __future__ import annotations

from typing import Any

import pytest

from openpista.core.agent import Agent
from openpista.core.context import ContextBudget, ContextTooLongError
from openpista.core.history import repair_tool_pairs
from openpista.core.models import Message, ProviderStatePart, ToolCall
from openpista.core.provider import ChatRequest, ChatResponse
from openpista.core.registry import ToolRegistry
from openpista.core.testing import InMemoryStore, ScriptedProvider, text_reply, tool_call_reply
from openpista.core.tool import FunctionTool, ToolContext

CHANNEL = "test:local"


def shape(messages: list[Message]) -> list[tuple[str, str, list[str], str | None]]:
    return [(m.role, m.content, [c.id for c in m.tool_calls], m.tool_call_id) for m in messages]


def call(call_id: str) -> ToolCall:
    return ToolCall(call_id, "system.run", "{}")


def test_whole_pairs_pass_unchanged() -> None:
    messages = [
        Message("system", "be brief"),
        Message("user", "go"),
        Message("assistant", "", [call("a"), call("b")]),
        Message("tool", "A", tool_call_id="a"),
        Message("tool", "B", tool_call_id="b"),
        Message("assistant", "done"),
    ]
    repaired = repair_tool_pairs(messages)
    assert repaired == messages
    assert all(new is old for new, old in zip(repaired, messages, strict=True))


def test_a_call_without_result_is_stripped_and_the_empty_message_left_out() -> None:
    partly = Message("assistant", "two things", [call("a"), call("b")])
    messages = [
        Message("user", "go"),
        partly,
        Message("tool", "A", tool_call_id="a"),
        Message("assistant", "", [call("c")]),
        Message("user", "next"),
    ]
    repaired = repair_tool_pairs(messages)
    assert shape(repaired) == [
        ("user", "go", [], None),
        ("assistant", "two things", ["a"], None),
        ("tool", "A", [], "a"),
        ("user", "next", [], None),
    ]
    assert [c.id for c in partly.tool_calls] == ["a", "b"]  # the caller's message is untouched


def test_results_without_their_call_are_left_out() -> None:
    # The context budget left out the assistant message that made call "x".
    messages = [
        Message("system", "[3 earlier messages omitted]"),
        Message("tool", "orphan", tool_call_id="x"),
        Message("user", "go"),
        Message("assistant", "", [call("a")]),
        Message("tool", "A", tool_call_id="a"),
        Message("tool", "A again", tool_call_id="a"),
        Message("tool", "stray", tool_call_id="zzz"),
        Message("user", "more"),
        Message("tool", "after a user message", tool_call_id="a"),
    ]
    assert shape(repair_tool_pairs(messages)) == [
        ("system", "[3 earlier messages omitted]", [], None),
        ("user", "go", [], None),
        ("assistant", "", ["a"], None),
        ("tool", "A", [], "a"),
        ("user", "more", [], None),
    ]


def test_an_assistant_message_with_provider_state_is_kept_without_its_calls() -> None:
    state = ProviderStatePart("anthropic", {"type": "thinking", "signature": "s"})
    messages = [Message("user", "go"), Message("assistant", "", [call("a")], parts=[state])]
    (user, assistant) = repair_tool_pairs(messages)
    assert user.content == "go"
    assert assistant.tool_calls == [] and assistant.parts == [state]


def test_call_ids_repeated_within_one_message_are_paired_one_to_one() -> None:
    messages = [
        Message("assistant", "", [call("0"), call("0")]),
        Message("tool", "first", tool_call_id="0"),
    ]
    repaired = repair_tool_pairs(messages)
    assert shape(repaired) == [("assistant", "", ["0"], None), ("tool", "first", [], "0")]


async def echo(arguments: dict[str, Any], context: ToolContext) -> str:
    return "x" * 4000


ECHO_TOOL = FunctionTool(
    "test.echo",
    echo,
    description="Echo.",
    parameters={"type": "object", "properties": {}},
)


async def test_every_request_the_agent_sends_has_whole_pairs_only() -> None:
    # A history another provider left behind: a call with no result, then a result for no call
    # (stored that way by a crash, or written by another program into the same store).
    memory = InMemoryStore()
    session = (await memory.create_session(CHANNEL)).id
    await memory.append_messages(
        session,
        [
            Message("user", "earlier"),
            Message("assistant", "", [ToolCall("gone", "test.echo", "{}")]),
            Message("user", "and then"),
            Message("tool", "late result", tool_call_id="gone"),
            Message("assistant", "ok"),
        ],
    )
    seen: list[ChatRequest] = []

    async def check(request: ChatRequest) -> ChatResponse:
        seen.append(request)
        open_ids: list[str] = []
        for message in request.messages:
            if message.role == "tool":
                assert message.tool_call_id in open_ids, "a result without its call was sent"
                open_ids.remove(message.tool_call_id)
                continue
            assert not open_ids, "a call without its result was sent"
            open_ids = [c.id for c in message.tool_calls]
        return text_reply("fine")

    provider = ScriptedProvider([check])
    agent = Agent(provider, ToolRegistry([ECHO_TOOL]), memory)
    result = await agent.run_turn(session, "now", channel_id=CHANNEL)

    assert result.reply == "fine"
    assert [(m.role, m.content) for m in seen[0].messages[1:]] == [
        ("user", "earlier"),
        ("assistant", ""),
        ("tool", "(no result: the previous run was interrupted)"),
        ("user", "and then"),
        ("assistant", "ok"),
        ("user", "now"),
    ]


async def test_a_tight_budget_never_splits_a_call_from_its_result() -> None:
    memory = InMemoryStore()
    session = (await memory.create_session(CHANNEL)).id
    provider = ScriptedProvider(
        [tool_call_reply("test.echo", {}) for _ in range(6)] + [text_reply("done")]
    )
    agent = Agent(provider, ToolRegistry([ECHO_TOOL]), memory, context=ContextBudget(3000))
    result = await agent.run_turn(session, "echo a lot", channel_id=CHANNEL)

    assert result.reply == "done"
    for request in provider.requests:
        calls = {c.id for m in request.messages for c in m.tool_calls}
        results = {m.tool_call_id for m in request.messages if m.role == "tool"}
        assert calls == results


def test_call_ids_reused_across_rounds_are_made_distinct_with_their_results() -> None:
    # A local model numbering its calls from 0 every round; Anthropic refuses the repeat.
    history = [
        Message("user", "list twice"),
        Message("assistant", tool_calls=[ToolCall("call_0", "system.run", '{"command":"ls"}')]),
        Message("tool", "a.txt", tool_call_id="call_0"),
        Message("assistant", tool_calls=[ToolCall("call_0", "system.run", '{"command":"pwd"}')]),
        Message("tool", "/home", tool_call_id="call_0"),
        Message("assistant", tool_calls=[ToolCall("call_0", "system.run", "{}")]),
        Message("tool", "x", tool_call_id="call_0"),
    ]

    repaired = repair_tool_pairs(history)

    call_ids = [call.id for message in repaired for call in message.tool_calls]
    result_ids = [message.tool_call_id for message in repaired if message.role == "tool"]
    assert call_ids == ["call_0", "call_0_2", "call_0_3"]
    assert result_ids == call_ids
    assert [m.content for m in repaired if m.role == "tool"] == ["a.txt", "/home", "x"]
    # The stored messages are untouched.
    assert history[3].tool_calls[0].id == "call_0"
    assert history[4].tool_call_id == "call_0"


def test_a_renamed_id_never_takes_an_id_used_elsewhere() -> None:
    history = [
        Message("assistant", tool_calls=[ToolCall("c", "a"), ToolCall("c", "b")]),
        Message("tool", "1", tool_call_id="c"),
        Message("tool", "2", tool_call_id="c"),
        Message("assistant", tool_calls=[ToolCall("c_2", "d")]),
        Message("tool", "3", tool_call_id="c_2"),
    ]

    repaired = repair_tool_pairs(history)

    call_ids = [call.id for message in repaired for call in message.tool_calls]
    assert len(set(call_ids)) == 3
    assert call_ids[0] == "c" and call_ids[2] == "c_2"
    assert [m.tool_call_id for m in repaired if m.role == "tool"] == call_ids


async def test_a_message_too_long_ever_to_fit_is_refused_and_not_kept() -> None:
    # Kept, it would be summarised (a huge request) at the next turn.
    memory = InMemoryStore()
    session = (await memory.create_session(CHANNEL)).id
    provider = ScriptedProvider([text_reply("never asked")])
    agent = Agent(provider, ToolRegistry([ECHO_TOOL]), memory, context=ContextBudget(2000))

    with pytest.raises(ContextTooLongError):
        await agent.run_turn(session, "x" * 50_000, channel_id=CHANNEL)

    assert await memory.load_messages(session) == []
    assert provider.requests == []
