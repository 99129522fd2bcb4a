"""The gateway: session routing, per-session order, cross-session parallelism, failures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import NoReturn

import pytest

from openpista.core.agent import Agent
from openpista.core.errors import OpenpistaError, ProviderError
from openpista.core.gateway import Gateway, SessionRouter
from openpista.core.models import (
    AgentResponse,
    ChannelEvent,
    Image,
    Message,
    Session,
    ToolCallRecord,
)
from openpista.core.provider import ChatRequest, ChatResponse
from openpista.core.registry import ToolRegistry
from openpista.core.testing import (
    InMemoryStore,
    RecordingChannel,
    ScriptedProvider,
    text_reply,
    tool_call_reply,
)
from openpista.core.tool import FunctionTool


def make_gateway(
    provider: ScriptedProvider,
    memory: InMemoryStore | None = None,
    *,
    timeout_s: float = 120.0,
) -> tuple[Gateway, RecordingChannel, InMemoryStore]:
    memory = memory if memory is not None else InMemoryStore()
    channel = RecordingChannel("test")
    agent = Agent(provider, ToolRegistry(), memory)
    gateway = Gateway(agent, memory, {"test": channel}, timeout_s=timeout_s)
    return gateway, channel, memory


def last_user_text(request: ChatRequest) -> str:
    return [m.content for m in request.messages if m.role == "user"][-1]


async def test_a_message_is_answered_on_its_channel_with_streaming() -> None:
    gateway, channel, memory = make_gateway(ScriptedProvider(["Hello from openpista."]))
    await gateway.dispatch(ChannelEvent("test:42", "hi"))
    (response,) = await channel.wait_for_responses(1)

    assert response.channel_id == "test:42"
    assert response.content == "Hello from openpista."
    assert not response.is_error
    assert channel.streamed_text(response.session_id) == "Hello from openpista."
    session = await memory.get_session(response.session_id)
    assert session is not None
    assert session.channel_id == "test:42"
    assert session.message_count == 2


async def test_messages_of_one_channel_stay_in_one_session() -> None:
    gateway, channel, _ = make_gateway(ScriptedProvider(["one", "two"]))
    await gateway.dispatch(ChannelEvent("test:1", "a"))
    await channel.wait_for_responses(1)
    await gateway.dispatch(ChannelEvent("test:1", "b"))
    first, second = await channel.wait_for_responses(2)
    assert first.session_id == second.session_id


async def test_different_channels_get_different_sessions() -> None:
    gateway, channel, _ = make_gateway(ScriptedProvider(["one", "two"]))
    await gateway.dispatch(ChannelEvent("test:1", "a"))
    await gateway.dispatch(ChannelEvent("test:2", "b"))
    responses = await channel.wait_for_responses(2)
    assert len({response.session_id for response in responses}) == 2


async def test_a_named_session_is_created_under_that_id_and_becomes_current() -> None:
    gateway, channel, memory = make_gateway(ScriptedProvider(["one", "two"]))
    await gateway.dispatch(ChannelEvent("test:1", "a", session_id="my-session"))
    await channel.wait_for_responses(1)
    session = await memory.get_session("my-session")
    assert session is not None
    assert session.channel_id == "test:1"
    await gateway.dispatch(ChannelEvent("test:1", "b"))
    _, second = await channel.wait_for_responses(2)
    assert second.session_id == "my-session"
    assert session.id == gateway.router.current("test:1")


async def test_a_named_existing_session_is_continued() -> None:
    memory = InMemoryStore()
    existing = await memory.create_session("web:other")
    provider = ScriptedProvider(["continued"])
    gateway, channel, _ = make_gateway(provider, memory)
    await gateway.dispatch(ChannelEvent("test:1", "go on", session_id=existing.id))
    (response,) = await channel.wait_for_responses(1)
    assert response.session_id == existing.id
    assert len(await memory.list_sessions()) == 1


async def test_a_new_gateway_continues_the_channels_latest_session() -> None:
    memory = InMemoryStore()
    await memory.create_session("test:1")
    latest = await memory.create_session("test:1")
    gateway, channel, _ = make_gateway(ScriptedProvider(["hi"]), memory)
    await gateway.dispatch(ChannelEvent("test:1", "hello again"))
    (response,) = await channel.wait_for_responses(1)
    assert response.session_id == latest.id


async def test_router_set_current_redirects_a_channel() -> None:
    memory = InMemoryStore()
    router = SessionRouter(memory)
    first = await router.resolve(ChannelEvent("web:c1", "x"))
    assert await router.resolve(ChannelEvent("web:c1", "y")) == first
    other = await memory.create_session("web:c1")
    router.set_current("web:c1", other.id)
    assert await router.resolve(ChannelEvent("web:c1", "z")) == other.id


async def test_concurrent_first_messages_create_one_session() -> None:
    memory = InMemoryStore()
    router = SessionRouter(memory)
    ids = await asyncio.gather(*(router.resolve(ChannelEvent("test:9", str(i))) for i in range(5)))
    assert len(set(ids)) == 1
    assert len(await memory.list_sessions()) == 1


async def test_messages_to_one_session_are_answered_in_order_one_at_a_time() -> None:
    first_asked, release_first = asyncio.Event(), asyncio.Event()

    async def slow_first(request: ChatRequest) -> ChatResponse:
        first_asked.set()
        await release_first.wait()
        return text_reply("first answer")

    provider = ScriptedProvider([slow_first, "second answer"])
    gateway, channel, _ = make_gateway(provider)
    await gateway.dispatch(ChannelEvent("test:1", "first"))
    await gateway.dispatch(ChannelEvent("test:1", "second"))
    await first_asked.wait()
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(provider.requests) == 1
    release_first.set()

    responses = await channel.wait_for_responses(2)
    assert [r.content for r in responses] == ["first answer", "second answer"]
    # The second turn saw the first one finished: its answer is in the history.
    assert [m.content for m in provider.requests[1].messages[1:]] == [
        "first",
        "first answer",
        "second",
    ]


async def test_different_sessions_are_answered_in_parallel() -> None:
    b_asked = asyncio.Event()

    async def answer(request: ChatRequest) -> ChatResponse:
        if last_user_text(request) == "A":
            # Only finishes if session B is served while A is still busy.
            await b_asked.wait()
            return text_reply("A done")
        b_asked.set()
        return text_reply("B done")

    gateway, channel, _ = make_gateway(ScriptedProvider([answer, answer]))
    await gateway.dispatch(ChannelEvent("test:a", "A"))
    await gateway.dispatch(ChannelEvent("test:b", "B"))
    responses = await channel.wait_for_responses(2)
    assert [r.content for r in responses] == ["B done", "A done"]


async def test_idle_workers_exit() -> None:
    gateway, channel, _ = make_gateway(ScriptedProvider(["x", "y"]))
    await gateway.dispatch(ChannelEvent("test:a", "1"))
    await gateway.dispatch(ChannelEvent("test:b", "2"))
    assert len(gateway.active_sessions) == 2
    await channel.wait_for_responses(2)
    for _ in range(5):
        await asyncio.sleep(0)
    assert gateway.active_sessions == frozenset()


async def test_handle_returns_the_response_instead_of_sending_it() -> None:
    gateway, channel, _ = make_gateway(ScriptedProvider(["direct answer"]))
    pieces: list[str] = []

    async def on_delta(text: str) -> None:
        pieces.append(text)

    response = await gateway.handle(ChannelEvent("test:1", "q"), on_delta=on_delta)
    assert response.content == "direct answer"
    assert "".join(pieces) == "direct answer"
    assert channel.responses == []


async def test_handle_streams_to_the_channel_when_no_handler_is_given() -> None:
    gateway, channel, _ = make_gateway(ScriptedProvider(["streamed"]))
    response = await gateway.handle(ChannelEvent("test:1", "q"))
    assert channel.streamed_text(response.session_id) == "streamed"
    assert channel.responses == []


async def test_a_provider_failure_becomes_an_error_reply() -> None:
    provider = ScriptedProvider([ProviderError("openai: 401 invalid api key", status_code=401)])
    gateway, channel, _ = make_gateway(provider)
    await gateway.dispatch(ChannelEvent("test:1", "hi"))
    (response,) = await channel.wait_for_responses(1)
    assert response.is_error
    assert response.content == "❌ The LLM provider failed: openai: 401 invalid api key"


async def test_a_slow_turn_is_stopped_at_the_timeout() -> None:
    async def never(request: ChatRequest) -> ChatResponse:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    gateway, channel, _ = make_gateway(ScriptedProvider([never, "next one works"]), timeout_s=0.05)
    await gateway.dispatch(ChannelEvent("test:1", "hi"))
    await gateway.dispatch(ChannelEvent("test:1", "again"))
    timed_out, answered = await channel.wait_for_responses(2)
    assert timed_out.is_error
    assert timed_out.content.startswith("❌ The agent took longer than 0.05 s")
    assert "agent.timeout_s" in timed_out.content
    assert answered.content == "next one works"


async def test_an_unexpected_failure_becomes_an_error_reply_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gateway, channel, _ = make_gateway(ScriptedProvider([RuntimeError("disk on fire")]))
    with caplog.at_level(logging.ERROR, logger="openpista.core.gateway"):
        await gateway.dispatch(ChannelEvent("test:1", "hi"))
        (response,) = await channel.wait_for_responses(1)
    assert response.is_error
    assert response.content.startswith("❌ ")
    assert "RuntimeError: disk on fire" in response.content
    assert any("disk on fire" in (record.exc_text or "") for record in caplog.records)


async def test_a_channel_that_fails_to_stream_still_gets_the_reply() -> None:
    class BrokenStreaming(RecordingChannel):
        async def send_delta(self, channel_id: str, session_id: str, text: str) -> None:
            raise ConnectionError("socket closed")

    memory = InMemoryStore()
    channel = BrokenStreaming("test")
    agent = Agent(ScriptedProvider(["full reply"]), ToolRegistry(), memory)
    gateway = Gateway(agent, memory, {"test": channel})
    await gateway.dispatch(ChannelEvent("test:1", "hi"))
    (response,) = await channel.wait_for_responses(1)
    assert response.content == "full reply"


async def test_a_reply_for_a_channel_not_running_is_stored_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gateway, _, memory = make_gateway(ScriptedProvider(["summary"]))
    with caplog.at_level(logging.WARNING, logger="openpista.core.gateway"):
        await gateway.dispatch(ChannelEvent("telegram:5", "summarise", sender="cron"))
        await gateway.shutdown()
    assert "no channel adapter named 'telegram'" in caplog.text
    session = await memory.latest_session_for_channel("telegram:5")
    assert session is not None
    assert [m.content for m in await memory.load_messages(session.id)] == ["summarise", "summary"]


async def test_events_reach_the_gateway_through_a_running_channel() -> None:
    memory = InMemoryStore()
    channel = RecordingChannel("test")
    agent = Agent(ScriptedProvider(["pong"]), ToolRegistry(), memory)
    gateway = Gateway(agent, memory, {"test": channel})
    runner = asyncio.create_task(channel.run(gateway.dispatch))
    await asyncio.sleep(0)
    await channel.push("ping", conversation="7")
    (response,) = await channel.wait_for_responses(1)
    assert (response.channel_id, response.content) == ("test:7", "pong")
    await channel.stop()
    await runner


async def test_shutdown_lets_running_turns_finish_then_refuses_new_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    asked, release = asyncio.Event(), asyncio.Event()

    async def slow(request: ChatRequest) -> ChatResponse:
        asked.set()
        await release.wait()
        return text_reply("finished")

    gateway, channel, _ = make_gateway(ScriptedProvider([slow, "queued too"]))
    await gateway.dispatch(ChannelEvent("test:1", "one"))
    await gateway.dispatch(ChannelEvent("test:1", "two"))
    await asked.wait()
    stopping = asyncio.create_task(gateway.shutdown())
    await asyncio.sleep(0)
    assert not stopping.done()
    release.set()
    await stopping
    assert [r.content for r in channel.responses] == ["finished", "queued too"]

    with caplog.at_level(logging.WARNING, logger="openpista.core.gateway"):
        await gateway.dispatch(ChannelEvent("test:1", "late"))
    assert "shutting down" in caplog.text
    with pytest.raises(OpenpistaError, match="shutting down"):
        await gateway.handle(ChannelEvent("test:1", "late"))
    assert len(channel.responses) == 2


async def test_shutdown_with_cancel_stops_running_turns() -> None:
    asked = asyncio.Event()

    async def never(request: ChatRequest) -> ChatResponse:
        asked.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    gateway, channel, _ = make_gateway(ScriptedProvider([never]))
    pending = asyncio.create_task(gateway.handle(ChannelEvent("test:1", "one")))
    await gateway.dispatch(ChannelEvent("test:1", "queued"))
    await asked.wait()
    async with asyncio.timeout(10):
        await gateway.shutdown(cancel=True)
    with pytest.raises(asyncio.CancelledError):
        await pending
    assert channel.responses == []
    assert gateway.active_sessions == frozenset()


async def test_handle_answers_in_the_named_session() -> None:
    gateway, _, _ = make_gateway(ScriptedProvider(["ok"]))
    response = await gateway.handle(ChannelEvent("test:1", "q", session_id="s-1"))
    assert response == AgentResponse("test:1", "s-1", "ok")


async def test_the_reply_carries_the_turns_tool_calls_and_images(
    screenshot_tool: FunctionTool,
) -> None:
    memory = InMemoryStore()
    channel = RecordingChannel("test")
    provider = ScriptedProvider([tool_call_reply("screen.capture", {}), "Here it is."])
    agent = Agent(provider, ToolRegistry([screenshot_tool]), memory)
    gateway = Gateway(agent, memory, {"test": channel})
    await gateway.dispatch(ChannelEvent("test:1", "show me the screen"))
    (response,) = await channel.wait_for_responses(1)
    assert response.content == "Here it is."
    assert response.tool_calls == [ToolCallRecord("screen.capture", {}, ok=True)]
    assert response.images == [Image("image/png", "AAAA")]


class UnreachableStore:
    """A MemoryStore whose database is down: every call fails as a lost connection would."""

    def _fail(self) -> NoReturn:
        raise ConnectionRefusedError("database at 10.0.0.5:5432 refused the connection")

    async def create_session(self, channel_id: str, session_id: str | None = None) -> Session:
        self._fail()

    async def get_session(self, session_id: str) -> Session | None:
        self._fail()

    async def latest_session_for_channel(self, channel_id: str) -> Session | None:
        self._fail()

    async def touch_session(self, session_id: str) -> None:
        self._fail()

    async def list_sessions(self, limit: int | None = None) -> list[Session]:
        self._fail()

    async def delete_session(self, session_id: str) -> bool:
        self._fail()

    async def append_messages(self, session_id: str, messages: Sequence[Message]) -> None:
        self._fail()

    async def load_messages(self, session_id: str) -> list[Message]:
        self._fail()

    async def aclose(self) -> None:
        pass


async def test_a_memory_failure_is_answered_not_raised_into_the_channel(
    caplog: pytest.LogCaptureFixture,
) -> None:
    memory = UnreachableStore()
    channel = RecordingChannel("test")
    agent = Agent(ScriptedProvider(["never"]), ToolRegistry(), memory)
    gateway = Gateway(agent, memory, {"test": channel})
    with caplog.at_level(logging.ERROR, logger="openpista.core.gateway"):
        await gateway.dispatch(ChannelEvent("test:1", "hi"))
    (response,) = channel.responses
    assert response.is_error
    assert response.content.startswith("❌ Could not open the conversation's session")
    assert "refused the connection" in response.content
    assert "refused the connection" in caplog.text
