"""Test doubles for anyone testing with openpista: a scripted LLM, memory, and a channel.

They are real implementations of the core interfaces, not mocks: `ScriptedProvider` answers
from a script, `InMemoryStore` is a complete MemoryStore kept in a dict, `RecordingChannel`
records what the gateway sends it and lets a test push messages in.

    provider = ScriptedProvider([tool_call_reply("system.run", {"command": "ls"}), "done"])
    agent = Agent(provider, ToolRegistry([my_tool]), InMemoryStore())
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from openpista.core.approval import ApprovalAnswer, ApprovalDecision, ApprovalRequest
from openpista.core.channel import EventDispatcher
from openpista.core.errors import OpenpistaError, ProviderError, SessionNotFoundError
from openpista.core.memory import LockWaitHandler
from openpista.core.models import (
    AgentResponse,
    AuditEntry,
    ChannelEvent,
    Message,
    Session,
    Summary,
    ToolCall,
    ToolResult,
)
from openpista.core.observer import TurnInfo, TurnObserver
from openpista.core.provider import ChatRequest, ChatResponse, DeltaHandler
from openpista.core.store.session_locks import SessionLocks

if TYPE_CHECKING:
    from openpista.core.agent import TurnResult

ScriptFunction = Callable[[ChatRequest], Awaitable[ChatResponse | Message]]


@dataclass(frozen=True, slots=True)
class BrokenStream:
    """A scripted answer that streams `text` and then fails with `error` (a reply that broke
    off after part of it was shown, as a provider that raises rather than returning it)."""

    text: str
    error: BaseException


ScriptItem = ChatResponse | Message | str | BaseException | BrokenStream | ScriptFunction
"""One scripted answer: a response, an assistant message, plain text, an exception to raise,
a stream that breaks off, or an async function of the request that returns the answer (for
answers that depend on it)."""

_call_ids = itertools.count(1)


def text_reply(text: str) -> ChatResponse:
    """An assistant reply that is just `text`."""
    return ChatResponse(Message(role="assistant", content=text), finish_reason="stop")


def tool_call_reply(
    name: str, arguments: dict[str, Any], call_id: str | None = None, *, text: str = ""
) -> ChatResponse:
    """An assistant reply asking for one tool call (`name` is the internal dotted name)."""
    call = ToolCall(call_id or f"call_{next(_call_ids)}", name, json.dumps(arguments))
    return tool_calls_reply(call, text=text)


def tool_calls_reply(*calls: ToolCall, text: str = "") -> ChatResponse:
    """An assistant reply asking for several tool calls in one round."""
    message = Message(role="assistant", content=text, tool_calls=list(calls))
    return ChatResponse(message, finish_reason="tool_calls")


def cut_reply(text: str, reason: str = "length", *calls: ToolCall) -> ChatResponse:
    """A reply cut short: `reason` "length" (the output limit) or "interrupted" (the stream
    broke off), with the text (and any half-made tool calls) that came before the cut."""
    message = Message(role="assistant", content=text, tool_calls=list(calls))
    return ChatResponse(message, finish_reason=reason)


class ScriptedProvider:
    """An LlmProvider answering each request with the next item of its script.

    Every request is kept in `requests`. Text is streamed to `on_delta` in a few pieces.
    A ProviderError is raised when the script runs out; an exception in the script is raised.
    """

    def __init__(
        self,
        script: Iterable[ScriptItem] = (),
        *,
        name: str = "scripted",
        model: str = "scripted-model",
    ) -> None:
        self._name = name
        self._model = model
        self._script: list[ScriptItem] = list(script)
        self.requests: list[ChatRequest] = []
        self.closed = False

    @property
    def name(self) -> str:
        return self._name

    @property
    def model(self) -> str:
        return self._model

    @property
    def remaining(self) -> int:
        """How many scripted answers have not been used yet."""
        return len(self._script)

    def add(self, *items: ScriptItem) -> None:
        """Queue more answers at the end of the script."""
        self._script.extend(items)

    async def complete(
        self, request: ChatRequest, on_delta: DeltaHandler | None = None
    ) -> ChatResponse:
        self.requests.append(request)
        if not self._script:
            raise ProviderError(
                f"ScriptedProvider has no answer left for request {len(self.requests)}: "
                "queue more with add() or in the script",
                provider=self._name,
            )
        item = self._script.pop(0)
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, BrokenStream):
            if on_delta is not None:
                for piece in _pieces(item.text):
                    await on_delta(piece)
            raise item.error
        if isinstance(item, str):
            response = text_reply(item)
        elif isinstance(item, ChatResponse):
            response = item
        elif isinstance(item, Message):
            response = ChatResponse(item)
        else:
            answer = await item(request)
            response = answer if isinstance(answer, ChatResponse) else ChatResponse(answer)
        if response.model is None:
            response.model = self._model
        if on_delta is not None and response.message.content:
            for piece in _pieces(response.message.content):
                await on_delta(piece)
        return response

    async def aclose(self) -> None:
        self.closed = True


def _pieces(text: str, count: int = 3) -> list[str]:
    size = max(1, -(-len(text) // count))
    return [text[start : start + size] for start in range(0, len(text), size)]


@dataclass(slots=True)
class _StoredSession:
    channel_id: str
    created_at: datetime
    updated_at: datetime
    order: int
    """Breaks ties between equal timestamps: later updates sort first."""
    messages: list[Message] = field(default_factory=lambda: [])
    summary: Summary | None = None


class InMemoryStore:
    """A MemoryStore kept in process memory: complete, fast, and gone when the process ends.

    It hands out copies, never its stored objects, so a caller changing what it got back
    (or what it stored) changes nothing stored, as with a database. Session locks hold
    within this process, as the SQL store's do within one (without the cross-process part).
    """

    def __init__(self) -> None:
        self._sessions: dict[str, _StoredSession] = {}
        self._order = itertools.count()
        self._audit: list[AuditEntry] = []
        self._locks = SessionLocks(None)

    def _get(self, session_id: str) -> _StoredSession:
        stored = self._sessions.get(session_id)
        if stored is None:
            raise SessionNotFoundError(f"no session has the id {session_id!r}")
        return stored

    def _session(self, session_id: str, stored: _StoredSession) -> Session:
        return Session(
            id=session_id,
            channel_id=stored.channel_id,
            created_at=stored.created_at,
            updated_at=stored.updated_at,
            message_count=len(stored.messages),
        )

    async def create_session(self, channel_id: str, session_id: str | None = None) -> Session:
        session_id = session_id or str(uuid.uuid4())
        if session_id in self._sessions:
            raise OpenpistaError(
                f"a session with id {session_id!r} already exists; "
                "continue it, or choose another id"
            )
        now = datetime.now(UTC)
        stored = _StoredSession(channel_id, now, now, next(self._order))
        self._sessions[session_id] = stored
        return self._session(session_id, stored)

    async def get_session(self, session_id: str) -> Session | None:
        stored = self._sessions.get(session_id)
        return self._session(session_id, stored) if stored is not None else None

    async def latest_session_for_channel(self, channel_id: str) -> Session | None:
        matching = [(sid, s) for sid, s in self._sessions.items() if s.channel_id == channel_id]
        if not matching:
            return None
        session_id, stored = max(matching, key=lambda item: (item[1].updated_at, item[1].order))
        return self._session(session_id, stored)

    async def touch_session(self, session_id: str) -> None:
        stored = self._get(session_id)
        stored.updated_at = datetime.now(UTC)
        stored.order = next(self._order)

    async def list_sessions(self, limit: int | None = None) -> list[Session]:
        ordered = sorted(
            self._sessions.items(),
            key=lambda item: (item[1].updated_at, item[1].order),
            reverse=True,
        )
        if limit is not None:
            ordered = ordered[:limit]
        return [self._session(session_id, stored) for session_id, stored in ordered]

    async def delete_session(self, session_id: str) -> bool:
        return self._sessions.pop(session_id, None) is not None

    async def append_messages(self, session_id: str, messages: Sequence[Message]) -> None:
        """Store copies of `messages`; the session counts as updated now."""
        stored = self._get(session_id)
        # Deep copies: a ProviderStatePart's data is a dict the caller could change later.
        stored.messages.extend(message.copy() for message in messages)
        stored.updated_at = datetime.now(UTC)
        stored.order = next(self._order)

    async def load_messages(self, session_id: str) -> list[Message]:
        """Copies of the session's messages in order; [] for an unknown session, as in the
        SQL store."""
        stored = self._sessions.get(session_id)
        return [message.copy() for message in stored.messages] if stored is not None else []

    async def record_tool_call(self, entry: AuditEntry) -> None:
        self._audit.append(entry)

    async def list_tool_calls(
        self, session_id: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        """Newest first by `at`, ties in reverse order of recording, as in the SQL store."""
        recorded = [
            (entry.at, index, entry)
            for index, entry in enumerate(self._audit)
            if session_id in (None, entry.session_id)
        ]
        recorded.sort(key=lambda item: (item[0], item[1]), reverse=True)
        entries = [entry for _, _, entry in recorded]  # frozen: safe to hand out as they are
        return entries if limit is None else entries[: max(limit, 0)]

    async def save_summary(self, session_id: str, summary: Summary) -> None:
        self._get(session_id).summary = summary

    async def load_summary(self, session_id: str) -> Summary | None:
        stored = self._sessions.get(session_id)
        return stored.summary if stored is not None else None

    def lock_session(
        self, session_id: str, on_wait: LockWaitHandler | None = None
    ) -> AbstractAsyncContextManager[None]:
        return self._locks.hold(session_id, on_wait)

    async def aclose(self) -> None:
        pass


class RecordingObserver(TurnObserver):
    """A TurnObserver that records what it hears and answers approval questions from a list.

    `events` holds ("turn_started" | "delta" | "message" | "tool_started" | "tool_finished" |
    "approval" | "notice" | "turn_ended" | "waiting", detail) tuples in order. `answers` are
    given to the approval questions in turn (an ApprovalDecision, or None for "nobody can be
    asked"); with none left, questions are answered None.
    """

    def __init__(
        self, answers: Iterable[ApprovalDecision | None] = (), *, who: str = "tester"
    ) -> None:
        self.answers: list[ApprovalDecision | None] = list(answers)
        self.who = who
        self.events: list[tuple[str, Any]] = []
        self.questions: list[ApprovalRequest] = []

    def deltas(self, message_index: int | None = None) -> str:
        """The streamed text (of one assistant message, when an index is given)."""
        pieces: list[str] = []
        for kind, detail in self.events:
            if kind == "delta" and message_index in (None, detail[0]):
                pieces.append(detail[1])
        return "".join(pieces)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]

    async def turn_started(self, turn: TurnInfo) -> None:
        self.events.append(("turn_started", turn))

    async def waiting_for_session(self, turn: TurnInfo) -> None:
        self.events.append(("waiting", turn))

    async def text_delta(self, message_index: int, text: str) -> None:
        self.events.append(("delta", (message_index, text)))

    async def assistant_message(self, message_index: int, message: Message) -> None:
        self.events.append(("message", (message_index, message)))

    async def tool_started(self, call: ToolCall) -> None:
        self.events.append(("tool_started", call))

    async def tool_finished(self, call: ToolCall, result: ToolResult) -> None:
        self.events.append(("tool_finished", (call, result)))

    async def request_approval(self, request: ApprovalRequest) -> ApprovalAnswer | None:
        self.questions.append(request)
        self.events.append(("approval", request))
        answer = self.answers.pop(0) if self.answers else None
        return None if answer is None else ApprovalAnswer(answer, self.who)

    async def notice(self, text: str) -> None:
        self.events.append(("notice", text))

    def notices(self) -> list[str]:
        return [detail for kind, detail in self.events if kind == "notice"]

    async def turn_ended(
        self, turn: TurnInfo, result: TurnResult | None, error: BaseException | None
    ) -> None:
        self.events.append(("turn_ended", (result, error)))


class RecordingChannel:
    """A ChannelAdapter that records replies and streamed text, and lets a test send messages.

    Its channel ids are `"{name}:{conversation}"`. `push` hands a message to the dispatcher
    given to `run` (or to the constructor); `wait_for_responses` waits for replies to arrive.
    """

    def __init__(self, name: str = "test", *, dispatch: EventDispatcher | None = None) -> None:
        self._name = name
        self._dispatch = dispatch
        self.responses: list[AgentResponse] = []
        self.deltas: list[tuple[str, str, str]] = []
        """(channel_id, session_id, text) of each streamed piece, in order."""
        self.notices: list[tuple[str, str, str]] = []
        """(channel_id, session_id, text) of each notice (a switch to a fallback model)."""
        self.running = False
        self._stopped = asyncio.Event()
        self._arrived = asyncio.Event()

    @property
    def name(self) -> str:
        return self._name

    def channel_id(self, conversation: str = "local") -> str:
        return f"{self._name}:{conversation}"

    async def run(self, dispatch: EventDispatcher) -> None:
        self._dispatch = dispatch
        self.running = True
        try:
            await self._stopped.wait()
        finally:
            self.running = False

    async def send(self, response: AgentResponse) -> None:
        self.responses.append(response)
        self._arrived.set()

    async def send_delta(self, channel_id: str, session_id: str, text: str) -> None:
        self.deltas.append((channel_id, session_id, text))

    async def send_notice(self, channel_id: str, session_id: str, text: str) -> None:
        self.notices.append((channel_id, session_id, text))

    async def stop(self) -> None:
        self._stopped.set()

    async def push(
        self,
        text: str,
        *,
        conversation: str = "local",
        session_id: str | None = None,
        sender: str | None = None,
    ) -> ChannelEvent:
        """Send `text` as a user message from `conversation`; returns the event dispatched."""
        if self._dispatch is None:
            raise RuntimeError(
                "RecordingChannel.push needs a dispatcher: start run(dispatch) first or pass "
                "dispatch= to the constructor"
            )
        event = ChannelEvent(
            channel_id=self.channel_id(conversation),
            text=text,
            session_id=session_id,
            sender=sender,
        )
        await self._dispatch(event)
        return event

    def streamed_text(self, session_id: str) -> str:
        """Everything streamed for `session_id`, joined."""
        return "".join(text for _, sid, text in self.deltas if sid == session_id)

    async def wait_for_responses(self, count: int, timeout_s: float = 10.0) -> list[AgentResponse]:
        """Wait until `count` responses have arrived in all; TimeoutError after `timeout_s`."""
        async with asyncio.timeout(timeout_s):
            while len(self.responses) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return list(self.responses)
