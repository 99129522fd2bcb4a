"""The gateway: session routing, per-session order, cross-session parallelism, failures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import NoReturn

import pytest

from openpista.core.agent import Agent
from openpista.core.approval import ApprovalAnswer, ApprovalDecision, ApprovalRequest
from openpista.core.errors import OpenpistaError, ProviderError
from openpista.core.gateway import Gateway, SessionRouter
from openpista.core.media import MediaStore
from openpista.core.memory import LockWaitHandler
from openpista.core.models import (
    AgentResponse,
    Attachment,
    AuditEntry,
    ChannelEvent,
    Image,
    ImagePart,
    Message,
    Session,
    Summary,
    ToolCallRecord,
)
from openpista.core.provider import ChatRequest, ChatResponse
from openpista.core.registry import ToolRegistry
from openpista.core.testing import (
    InMemoryStore,
    RecordingChannel,
    RecordingObserver,
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
    observer = RecordingObserver()
    event = ChannelEvent("test:1", "q")

    response = await gateway.handle(event, observer=observer)
    assert response.content == "direct answer"
    assert response.in_reply_to == event.id
    assert observer.deltas() == "direct answer"
    assert observer.kinds()[0] == "turn_started"
    assert observer.kinds()[-1] == "turn_ended"
    assert channel.responses == []
    assert channel.deltas == []


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
    event = ChannelEvent("test:1", "q", session_id="s-1")
    response = await gateway.handle(event)
    assert response == AgentResponse("test:1", "s-1", "ok", in_reply_to=event.id)


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

    async def record_tool_call(self, entry: AuditEntry) -> None:
        self._fail()

    async def list_tool_calls(
        self, session_id: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        self._fail()

    async def save_summary(self, session_id: str, summary: Summary) -> None:
        self._fail()

    async def load_summary(self, session_id: str) -> Summary | None:
        self._fail()

    def lock_session(
        self, session_id: str, on_wait: LockWaitHandler | None = None
    ) -> AbstractAsyncContextManager[None]:
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


class AskingChannel(RecordingChannel):
    """A RecordingChannel that can ask for approval; a test answers through `answer`."""

    def __init__(self) -> None:
        super().__init__("test")
        self.questions: asyncio.Queue[tuple[ApprovalRequest, asyncio.Future[ApprovalAnswer]]] = (
            asyncio.Queue()
        )

    async def ask_approval(self, request: ApprovalRequest) -> ApprovalAnswer | None:
        answer: asyncio.Future[ApprovalAnswer] = asyncio.get_running_loop().create_future()
        await self.questions.put((request, answer))
        return await answer


def approval_gateway(
    *script: object, timeout_s: float = 120.0
) -> tuple[Gateway, AskingChannel, InMemoryStore, list[str]]:
    ran: list[str] = []

    async def touch(arguments: dict[str, object], context: object) -> str:
        ran.append(str(arguments.get("path")))
        return "touched"

    memory = InMemoryStore()
    channel = AskingChannel()
    agent = Agent(
        ScriptedProvider(list(script)),  # type: ignore[arg-type]
        ToolRegistry([FunctionTool("files.touch", touch)]),  # type: ignore[arg-type]
        memory,
    )
    gateway = Gateway(agent, memory, {"test": channel}, timeout_s=timeout_s)
    return gateway, channel, memory, ran


async def test_approval_goes_to_the_channel_the_message_came_from() -> None:
    gateway, channel, memory, ran = approval_gateway(
        tool_call_reply("files.touch", {"path": "x"}), "Done."
    )
    event = ChannelEvent("test:1", "touch x", sender="ana")
    await gateway.dispatch(event)
    request, answer = await asyncio.wait_for(channel.questions.get(), 5)
    assert (request.tool, request.channel_id, request.sender) == ("files.touch", "test:1", "ana")
    # The answer arrives while the session's turn waits: it never queues behind it.
    answer.set_result(ApprovalAnswer(ApprovalDecision.ALLOW, "ana"))
    (response,) = await channel.wait_for_responses(1)
    assert response.content == "Done."
    assert response.in_reply_to == event.id
    assert ran == ["x"]
    (entry,) = await memory.list_tool_calls()
    assert (entry.decision, entry.decided_by, entry.sender) == ("allowed", "ana", "ana")


async def test_the_turn_timeout_does_not_run_while_a_question_waits() -> None:
    gateway, channel, _, ran = approval_gateway(
        tool_call_reply("files.touch", {"path": "x"}), "Done.", timeout_s=0.3
    )
    await gateway.dispatch(ChannelEvent("test:1", "touch x"))
    _, answer = await asyncio.wait_for(channel.questions.get(), 5)
    await asyncio.sleep(0.6)  # twice the turn timeout: the question's time does not count
    answer.set_result(ApprovalAnswer(ApprovalDecision.ALLOW, "me"))
    (response,) = await channel.wait_for_responses(1)
    assert not response.is_error, response.content
    assert ran == ["x"]


async def test_a_channel_that_cannot_ask_gets_the_call_denied() -> None:
    gateway, channel, _ = make_gateway(ScriptedProvider([]))
    ran: list[str] = []

    async def touch(arguments: dict[str, object], context: object) -> str:
        ran.append("x")
        return "touched"

    gateway.agent.tools.register(FunctionTool("files.touch", touch))  # type: ignore[arg-type]
    provider = gateway.agent.provider
    assert isinstance(provider, ScriptedProvider)
    provider.add(tool_call_reply("files.touch", {}), "I was not allowed.")
    await gateway.dispatch(ChannelEvent("test:1", "touch"))
    (response,) = await channel.wait_for_responses(1)
    assert response.content == "I was not allowed."
    assert ran == []


async def test_cancel_turn_stops_it_and_keeps_what_was_said() -> None:
    started = asyncio.Event()

    async def slow_answer(request: ChatRequest) -> ChatResponse:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    gateway, channel, memory = make_gateway(ScriptedProvider([slow_answer, "after"]))
    await gateway.dispatch(ChannelEvent("test:1", "long task"))
    await asyncio.wait_for(started.wait(), 5)
    (session_id,) = gateway.active_sessions
    assert gateway.cancel_turn(session_id)
    (response,) = await channel.wait_for_responses(1)
    assert response.cancelled and not response.is_error
    # The session goes on: the next message is answered, and the first is still stored.
    await gateway.dispatch(ChannelEvent("test:1", "next"))
    _, second = await channel.wait_for_responses(2)
    assert second.content == "after"
    stored = [m.content for m in await memory.load_messages(session_id)]
    assert stored == ["long task", "next", "after"]
    assert not gateway.cancel_turn(session_id)


async def test_a_cancelled_stream_stores_the_text_already_shown() -> None:
    shown = asyncio.Event()

    memory = InMemoryStore()
    channel = RecordingChannel("test")

    class HalfStreaming(ScriptedProvider):
        async def complete(self, request: ChatRequest, on_delta: object = None) -> ChatResponse:
            assert on_delta is not None
            await on_delta("The first half")  # type: ignore[operator]
            shown.set()
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    agent = Agent(HalfStreaming(), ToolRegistry(), memory)
    gateway = Gateway(agent, memory, {"test": channel})
    await gateway.dispatch(ChannelEvent("test:1", "write an essay"))
    await asyncio.wait_for(shown.wait(), 5)
    (session_id,) = gateway.active_sessions
    gateway.cancel_turn(session_id)
    (response,) = await channel.wait_for_responses(1)
    assert response.cancelled
    stored = await memory.load_messages(session_id)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[1].content.startswith("The first half")
    assert "cancelled" in stored[1].content


async def test_an_unrequested_event_is_answered_with_no_reply_id() -> None:
    gateway, channel, _ = make_gateway(ScriptedProvider(["daily summary"]))
    await gateway.dispatch(ChannelEvent("test:1", "summarise", sender="cron", unrequested=True))
    (response,) = await channel.wait_for_responses(1)
    assert response.in_reply_to is None


async def test_the_sender_is_stored_with_the_user_message() -> None:
    gateway, channel, memory = make_gateway(ScriptedProvider(["hi ana"]))
    await gateway.dispatch(ChannelEvent("test:group", "hello", sender="ana"))
    (response,) = await channel.wait_for_responses(1)
    user, _ = await memory.load_messages(response.session_id)
    assert user.sender == "ana"


async def test_attachments_are_saved_as_media_files_and_referenced(tmp_path: Path) -> None:
    memory = InMemoryStore()
    channel = RecordingChannel("test")
    media = MediaStore(tmp_path / "media")
    agent = Agent(ScriptedProvider(["a cat"]), ToolRegistry(), memory, media=media)
    gateway = Gateway(agent, memory, {"test": channel})
    picture = b"\x89PNG fake picture bytes"
    await gateway.dispatch(
        ChannelEvent(
            "test:1",
            "what is this?",
            attachments=[Attachment("image", "image/png", "cat.png", len(picture), data=picture)],
        )
    )
    (response,) = await channel.wait_for_responses(1)
    user, _ = await memory.load_messages(response.session_id)
    (part,) = user.parts
    assert isinstance(part, ImagePart)
    assert (part.mime_type, part.name, part.size) == ("image/png", "cat.png", len(picture))
    assert media.path_of(part.path).read_bytes() == picture
    assert (media.path_of(part.path).stat().st_mode & 0o777) == 0o600


async def test_a_busy_session_says_the_turn_waits() -> None:
    memory = InMemoryStore()
    gateway, _, _ = make_gateway(ScriptedProvider(["answered"]), memory)
    session = await memory.create_session("test:1", "busy")
    observer = RecordingObserver()
    async with memory.lock_session(session.id):
        turn = asyncio.create_task(
            gateway.handle(ChannelEvent("test:1", "q", session_id="busy"), observer=observer)
        )
        for _ in range(50):
            await asyncio.sleep(0.01)
        assert observer.kinds() == ["waiting"]
    response = await asyncio.wait_for(turn, 5)
    assert response.content == "answered"
    assert observer.kinds()[:2] == ["waiting", "turn_started"]


class BrokenChannel(RecordingChannel):
    """Every way it shows a turn fails; only its send works."""

    async def send_delta(self, channel_id: str, session_id: str, text: str) -> None:
        raise ConnectionError("stream lost")

    async def send_tool_activity(self, *args: object) -> None:
        raise ConnectionError("activity lost")

    async def ask_approval(self, request: ApprovalRequest) -> ApprovalAnswer | None:
        raise ConnectionError("cannot ask")


async def test_a_channel_failing_to_show_the_turn_does_not_break_it() -> None:
    memory = InMemoryStore()
    channel = BrokenChannel("test")
    provider = ScriptedProvider([tool_call_reply("files.touch", {}), "Told you."])

    async def touch(arguments: dict[str, object], context: object) -> str:
        raise AssertionError("must not run: asking failed")

    agent = Agent(provider, ToolRegistry([FunctionTool("files.touch", touch)]), memory)  # type: ignore[arg-type]
    gateway = Gateway(agent, memory, {"test": channel})
    await gateway.dispatch(ChannelEvent("test:1", "touch"))
    (response,) = await channel.wait_for_responses(1)
    assert response.content == "Told you."
    (entry,) = await memory.list_tool_calls()
    assert entry.decision == "denied"
