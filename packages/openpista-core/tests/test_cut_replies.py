"""Replies cut short: at the output limit, or by a stream that broke off after text was shown."""

from __future__ import annotations

from typing import Any

from openpista.core.agent import Agent
from openpista.core.gateway import Gateway
from openpista.core.models import ChannelEvent, ToolCall
from openpista.core.registry import ToolRegistry
from openpista.core.testing import (
    InMemoryStore,
    RecordingChannel,
    RecordingObserver,
    ScriptedProvider,
    cut_reply,
    text_reply,
)
from openpista.core.tool import FunctionTool, ToolContext

CHANNEL = "test:local"
LIMIT_NOTE = "[cut off: the model reached its output limit]"
BROKE_NOTE = "[cut off: the connection to the provider broke off]"

ran: list[str] = []


async def record(arguments: dict[str, Any], context: ToolContext) -> str:
    ran.append(str(arguments.get("what", "")))
    return "done"


RECORD_TOOL = FunctionTool(
    "test.record",
    record,
    description="Record something.",
    parameters={"type": "object", "properties": {"what": {"type": "string"}}},
)


async def run(provider: ScriptedProvider, text: str = "write an essay") -> tuple[Any, Any, Any]:
    memory = InMemoryStore()
    session = (await memory.create_session(CHANNEL)).id
    agent = Agent(provider, ToolRegistry([RECORD_TOOL]), memory)
    observer = RecordingObserver()
    result = await agent.run_turn(session, text, channel_id=CHANNEL, observer=observer)
    return result, await memory.load_messages(session), observer


async def test_a_reply_at_the_output_limit_is_stored_as_far_as_it_went_and_said_to_be_cut() -> None:
    result, stored, observer = await run(
        ScriptedProvider([cut_reply("The essay begins", "length")])
    )

    expected = f"The essay begins\n\n{LIMIT_NOTE}"
    assert result.reply == expected
    assert result.cut_off == "length"
    assert stored[-1].role == "assistant"
    assert stored[-1].content == expected
    # A streaming channel shows the note too, after the text it already showed.
    assert observer.deltas() == expected


async def test_an_interrupted_reply_is_kept_and_its_half_made_calls_are_not_run() -> None:
    ran.clear()
    half_made = ToolCall("call_1", "test.record", '{"what": "hal')
    provider = ScriptedProvider([cut_reply("Let me note that", "interrupted", half_made)])

    result, stored, observer = await run(provider)

    assert result.reply == f"Let me note that\n\n{BROKE_NOTE}"
    assert result.cut_off == "interrupted"
    assert result.tool_calls == [] and result.rounds == 0
    assert ran == []
    assert [(m.role, m.content, m.tool_calls) for m in stored] == [
        ("user", "write an essay", []),
        ("assistant", f"Let me note that\n\n{BROKE_NOTE}", []),
    ]
    assert "tool_started" not in observer.kinds()


async def test_a_cut_reply_with_no_text_says_only_that_it_was_cut() -> None:
    result, stored, _ = await run(ScriptedProvider([cut_reply("", "length")]))
    assert result.reply == LIMIT_NOTE
    assert stored[-1].content == LIMIT_NOTE


async def test_a_complete_reply_carries_no_note() -> None:
    result, _, _ = await run(ScriptedProvider([text_reply("Complete.")]))
    assert result.reply == "Complete."
    assert result.cut_off is None


async def test_the_next_turn_continues_after_a_cut_reply() -> None:
    memory = InMemoryStore()
    session = (await memory.create_session(CHANNEL)).id
    provider = ScriptedProvider([cut_reply("Part one", "length"), "Part two."])
    agent = Agent(provider, ToolRegistry([RECORD_TOOL]), memory)
    await agent.run_turn(session, "write", channel_id=CHANNEL)

    result = await agent.run_turn(session, "go on", channel_id=CHANNEL)

    assert result.reply == "Part two."
    sent = [(m.role, m.content) for m in provider.requests[-1].messages[1:]]
    assert sent == [
        ("user", "write"),
        ("assistant", f"Part one\n\n{LIMIT_NOTE}"),
        ("user", "go on"),
    ]


async def test_the_gateway_reply_says_it_was_cut() -> None:
    memory = InMemoryStore()
    channel = RecordingChannel("test")
    provider = ScriptedProvider([cut_reply("Half", "interrupted")])
    gateway = Gateway(Agent(provider, ToolRegistry(), memory), memory, {"test": channel})
    await gateway.dispatch(ChannelEvent("test:1", "hi"))
    (response,) = await channel.wait_for_responses(1)

    assert response.content == f"Half\n\n{BROKE_NOTE}"
    assert response.cut_off == "interrupted"
    assert not response.is_error
    assert channel.streamed_text(response.session_id) == f"Half\n\n{BROKE_NOTE}"
    await gateway.shutdown()
