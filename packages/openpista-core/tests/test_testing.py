"""The test doubles shipped to users: they must behave like the real things they stand for."""

from __future__ import annotations

import asyncio

import pytest

from openpista.core.channel import ChannelAdapter
from openpista.core.errors import ProviderError
from openpista.core.memory import MemoryStore
from openpista.core.models import AgentResponse, ChannelEvent, Message, ToolCall
from openpista.core.provider import ChatRequest, ChatResponse, LlmProvider
from openpista.core.testing import (
    InMemoryStore,
    RecordingChannel,
    ScriptedProvider,
    text_reply,
    tool_call_reply,
)


def test_they_implement_the_core_interfaces() -> None:
    assert isinstance(ScriptedProvider(), LlmProvider)
    assert isinstance(InMemoryStore(), MemoryStore)
    assert isinstance(RecordingChannel(), ChannelAdapter)


async def test_scripted_provider_answers_in_order_and_records_requests() -> None:
    async def echo(request: ChatRequest) -> Message:
        return Message("assistant", f"you said {request.messages[-1].content}")

    provider = ScriptedProvider(["first", Message("assistant", "second"), echo])
    provider.add(tool_call_reply("system.run", {"command": "ls"}, "c9"))
    requests = [ChatRequest([Message("user", str(i))]) for i in range(4)]
    answers = [await provider.complete(request) for request in requests]

    assert [a.message.content for a in answers[:3]] == ["first", "second", "you said 2"]
    assert answers[3].message.tool_calls == [ToolCall("c9", "system.run", '{"command": "ls"}')]
    assert provider.requests == requests
    assert provider.remaining == 0
    assert answers[0].model == "scripted-model"


async def test_scripted_provider_streams_text_in_pieces() -> None:
    pieces: list[str] = []

    async def on_delta(text: str) -> None:
        pieces.append(text)

    provider = ScriptedProvider([text_reply("Hello, streaming world!")])
    await provider.complete(ChatRequest([]), on_delta)
    assert len(pieces) > 1
    assert "".join(pieces) == "Hello, streaming world!"


async def test_scripted_provider_raises_queued_errors_and_when_it_runs_out() -> None:
    provider = ScriptedProvider([ProviderError("rate limited", status_code=429)])
    with pytest.raises(ProviderError, match="rate limited"):
        await provider.complete(ChatRequest([]))
    with pytest.raises(ProviderError, match="no answer left for request 2"):
        await provider.complete(ChatRequest([]))
    await provider.aclose()
    assert provider.closed


async def test_recording_channel_pushes_events_and_records_replies() -> None:
    received: list[ChannelEvent] = []

    async def dispatch(event: ChannelEvent) -> None:
        received.append(event)

    channel = RecordingChannel("web")
    with pytest.raises(RuntimeError, match="needs a dispatcher"):
        await channel.push("too early")
    running = asyncio.create_task(channel.run(dispatch))
    await asyncio.sleep(0)
    assert channel.running
    event = await channel.push("hello", conversation="c1", session_id="s1")
    assert received == [event]
    assert event == ChannelEvent("web:c1", "hello", session_id="s1")

    await channel.send_delta("web:c1", "s1", "he")
    await channel.send_delta("web:c1", "s1", "llo")
    waiting = asyncio.create_task(channel.wait_for_responses(1))
    await channel.send(AgentResponse("web:c1", "s1", "hello"))
    assert [r.content for r in await waiting] == ["hello"]
    assert channel.streamed_text("s1") == "hello"

    await channel.stop()
    await running
    assert not channel.running


async def test_waiting_for_responses_that_never_come_times_out() -> None:
    with pytest.raises(TimeoutError):
        await RecordingChannel().wait_for_responses(1, timeout_s=0.01)


async def test_scripted_function_items_may_return_a_chat_response() -> None:
    async def answer(request: ChatRequest) -> ChatResponse:
        return text_reply(f"{len(request.messages)} messages")

    provider = ScriptedProvider([answer])
    response = await provider.complete(ChatRequest([Message("user", "a"), Message("user", "b")]))
    assert response.message.content == "2 messages"
