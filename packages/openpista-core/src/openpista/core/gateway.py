"""The in-process gateway: channel events in, agent turns per session in order, replies out.

Each session has a FIFO and at most one worker task draining it, so two messages to one
session never interleave while different sessions are answered in parallel. A worker exits
when its queue is empty; the next event starts a new one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from openpista.core.agent import Agent, TurnInput, TurnResult
from openpista.core.approval import ApprovalAnswer, ApprovalPolicy, ApprovalRequest
from openpista.core.channel import (
    ApprovalAsker,
    ChannelAdapter,
    NoticeReceiver,
    ToolActivityReceiver,
    TurnObserving,
)
from openpista.core.errors import OpenpistaError, ProviderError
from openpista.core.memory import MemoryStore
from openpista.core.models import AgentResponse, ChannelEvent, Message, ToolCall, ToolResult
from openpista.core.observer import TurnInfo, TurnObserver

logger = logging.getLogger(__name__)

CANCELLED_REPLY = "(cancelled)"

PolicyResolver = Callable[[str], ApprovalPolicy]
"""The approval policy for a channel id (`[channels.NAME] approval`, then `[agent] approval`)."""


def ask_everywhere(channel_id: str) -> ApprovalPolicy:
    """The default policy resolver: ask on every channel (what remote channels need)."""
    return "ask"


async def ensure_session(memory: MemoryStore, session_id: str, channel_id: str) -> None:
    """Create session `session_id` unless it exists, tolerating another process creating it
    at the same moment (two `run -s X` started together both go on in session X)."""
    if await memory.get_session(session_id) is not None:
        return
    try:
        await memory.create_session(channel_id, session_id)
    except OpenpistaError:
        if await memory.get_session(session_id) is None:
            raise


class SessionRouter:
    """Which session a channel's messages go to: the channel's current session.

    An event naming a session uses it (creating it under that id if needed) and makes it the
    channel's current one; otherwise the channel's current session is kept in memory here,
    then looked up in the store (the latest one of that channel), then created.
    """

    def __init__(self, memory: MemoryStore) -> None:
        self._memory = memory
        self._current: dict[str, str] = {}
        # Serialises lookups that may create a session, so one is never created twice.
        self._lock = asyncio.Lock()

    async def resolve(self, event: ChannelEvent) -> str:
        channel_id = event.channel_id
        if event.session_id is None:
            current = self._current.get(channel_id)
            if current is not None:
                return current
        async with self._lock:
            session_id = event.session_id
            if session_id is not None:
                await ensure_session(self._memory, session_id, channel_id)
            else:
                current = self._current.get(channel_id)
                if current is not None:
                    return current
                latest = await self._memory.latest_session_for_channel(channel_id)
                if latest is None:
                    latest = await self._memory.create_session(channel_id)
                session_id = latest.id
            self._current[channel_id] = session_id
            return session_id

    def set_current(self, channel_id: str, session_id: str) -> None:
        """Send the channel's next messages (without a session id) to `session_id`."""
        self._current[channel_id] = session_id

    def current(self, channel_id: str) -> str | None:
        """The channel's current session as known in this process, if any."""
        return self._current.get(channel_id)


@dataclass(slots=True)
class _Job:
    event: ChannelEvent
    session_id: str
    reply_to: asyncio.Future[AgentResponse] | None
    """Set for `handle`: the response goes here instead of to the channel."""
    observer: TurnObserver | None = None
    """Set for `handle`: hears the turn instead of the channel."""
    policy: ApprovalPolicy | None = None


class Gateway:
    """Routes channel events to agent turns and the agent's replies back to the channels.

    Every turn, whichever way it arrives (`dispatch` from a channel, `handle` from `run -e`),
    runs through `_answer`: the session lock, the turn timeout (paused while an approval
    question waits), the observer, and failures turned into error replies.
    """

    def __init__(
        self,
        agent: Agent,
        memory: MemoryStore,
        channels: Mapping[str, ChannelAdapter],
        *,
        timeout_s: float = 120.0,
        router: SessionRouter | None = None,
        approval: PolicyResolver = ask_everywhere,
    ) -> None:
        self.agent = agent
        self.memory = memory
        self.timeout_s = timeout_s
        self.router = router if router is not None else SessionRouter(memory)
        self.approval = approval
        self._channels: dict[str, ChannelAdapter] = dict(channels)
        for adapter in channels.values():
            self._channels.setdefault(adapter.name, adapter)
        self._queues: dict[str, deque[_Job]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._turns: dict[str, asyncio.Task[AgentResponse]] = {}
        self._accepting = True

    @property
    def active_sessions(self) -> frozenset[str]:
        """Sessions with a turn running or queued."""
        return frozenset(self._workers)

    async def dispatch(self, event: ChannelEvent) -> None:
        """Queue `event` on its session; the reply goes to its channel. Returns once queued."""
        if not self._accepting:
            logger.warning("gateway is shutting down: dropped a message from %s", event.channel_id)
            return
        try:
            session_id = await self.router.resolve(event)
        except Exception as exc:
            # The channel's receive loop must survive a memory failure: answer, don't raise.
            logger.exception("could not find the session for a message from %s", event.channel_id)
            await self._deliver(
                _error_reply(
                    event,
                    event.session_id or "",
                    f"❌ Could not open the conversation's session: {type(exc).__name__}: {exc}. "
                    "Check the [database] settings and the log.",
                )
            )
            return
        self._enqueue(_Job(event, session_id, reply_to=None))

    async def handle(
        self,
        event: ChannelEvent,
        *,
        observer: TurnObserver | None = None,
        approval: ApprovalPolicy | None = None,
    ) -> AgentResponse:
        """Run the turn for `event` (in its session's order) and return the response.

        `observer` hears the turn (else the event's channel, if one is running);
        `approval` overrides the channel's policy.
        """
        if not self._accepting:
            raise OpenpistaError(
                "the gateway is shutting down and takes no new messages; try again after restart"
            )
        session_id = await self.router.resolve(event)
        future: asyncio.Future[AgentResponse] = asyncio.get_running_loop().create_future()
        self._enqueue(_Job(event, session_id, future, observer, approval))
        return await future

    def cancel_turn(self, session_id: str) -> bool:
        """Cancel the session's running turn (the user's stop). What was said stays stored, and
        the reply says the turn was cancelled. False when no turn is running."""
        task = self._turns.get(session_id)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    async def shutdown(self, cancel: bool = False) -> None:
        """Stop taking events, then let queued and running turns finish (or cancel them)."""
        self._accepting = False
        workers = list(self._workers.values())
        if cancel:
            for queue in self._queues.values():
                for job in queue:
                    if job.reply_to is not None and not job.reply_to.done():
                        job.reply_to.cancel()
                queue.clear()
            for worker in workers:
                worker.cancel()
        if workers:
            await asyncio.gather(*workers, return_exceptions=True)

    def _enqueue(self, job: _Job) -> None:
        session_id = job.session_id
        queue = self._queues.get(session_id)
        if queue is None:
            queue = self._queues[session_id] = deque()
        queue.append(job)
        if session_id not in self._workers:
            self._workers[session_id] = asyncio.create_task(
                self._drain(session_id, queue), name=f"openpista-session-{session_id}"
            )

    async def _drain(self, session_id: str, queue: deque[_Job]) -> None:
        try:
            while queue:
                job = queue.popleft()
                try:
                    await self._process(job)
                except asyncio.CancelledError:
                    if job.reply_to is not None and not job.reply_to.done():
                        job.reply_to.cancel()
                    raise
                except Exception:
                    # _process handles its own failures; this is a bug, keep the worker alive.
                    logger.exception("unexpected error answering session %s", session_id)
        finally:
            # No await between the queue running dry and this: no event can slip in unseen.
            del self._workers[session_id]
            del self._queues[session_id]
            # Only left over when this worker was cancelled: nobody will answer them now.
            for job in queue:
                if job.reply_to is not None and not job.reply_to.done():
                    job.reply_to.cancel()

    async def _process(self, job: _Job) -> None:
        # The turn is a task of its own so that cancel_turn stops the turn, not the worker.
        turn = asyncio.create_task(self._answer(job), name=f"openpista-turn-{job.session_id}")
        self._turns[job.session_id] = turn
        try:
            response = await turn
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the worker itself is being cancelled (shutdown)
            response = AgentResponse(
                job.event.channel_id,
                job.session_id,
                CANCELLED_REPLY,
                in_reply_to=_reply_id(job.event),
                cancelled=True,
            )
        finally:
            self._turns.pop(job.session_id, None)
        if job.reply_to is not None:
            if not job.reply_to.done():
                job.reply_to.set_result(response)
            return
        await self._deliver(response)

    async def _deliver(self, response: AgentResponse) -> None:
        adapter = self._adapter_for(response.channel_id)
        if adapter is None:
            logger.warning(
                "no channel adapter named %r is running: the reply to %s (session %s) was "
                "not delivered",
                _channel_name(response.channel_id),
                response.channel_id,
                response.session_id,
            )
            return
        try:
            await adapter.send(response)
        except Exception:
            logger.exception(
                "channel %s failed to deliver the reply to %s", adapter.name, response.channel_id
            )

    async def _answer(self, job: _Job) -> AgentResponse:
        event = job.event
        channel_id = event.channel_id
        session_id = job.session_id
        info = TurnInfo(session_id, channel_id, event.id, event.sender)
        observer = _GuardedObserver(
            job.observer if job.observer is not None else self._observer_for(info)
        )
        policy = job.policy if job.policy is not None else self.approval(channel_id)
        turn_input = TurnInput(event.text, event.sender, event.attachments)

        async def on_wait() -> None:
            await observer.waiting_for_session(info)

        result: TurnResult | None = None
        failure: BaseException | None = None
        async with self.memory.lock_session(session_id, on_wait):
            await observer.turn_started(info)
            deadline = observer.deadline = asyncio.timeout(self.timeout_s)
            try:
                async with deadline:
                    result = await self.agent.run_turn(
                        session_id,
                        turn_input,
                        channel_id=channel_id,
                        observer=observer,
                        approval=policy,
                    )
            except TimeoutError as exc:
                failure = exc
                if not deadline.expired():
                    # Some other timeout inside the turn, not ours: report it as the failure.
                    return self._failure(event, session_id, exc)
                limit = f"{self.timeout_s:g}"
                content = (
                    f"❌ The agent took longer than {limit} s to answer and was stopped "
                    f"(agent.timeout_s = {limit}). Ask for something smaller, or raise "
                    "agent.timeout_s in the configuration."
                )
                return _error_reply(event, session_id, content)
            except ProviderError as exc:
                failure = exc
                return _error_reply(event, session_id, f"❌ The LLM provider failed: {exc}")
            except OpenpistaError as exc:
                # Our own errors say what happened and what to do: show them as they are.
                failure = exc
                return _error_reply(event, session_id, f"❌ {exc}")
            except Exception as exc:
                failure = exc
                return self._failure(event, session_id, exc)
            except asyncio.CancelledError as exc:
                failure = exc
                raise
            finally:
                await observer.turn_ended(info, result, failure)
        assert result is not None  # every other way out of the try returned or raised
        return AgentResponse(
            channel_id,
            session_id,
            result.reply,
            tool_calls=result.tool_calls,
            images=result.images,
            in_reply_to=_reply_id(event),
            stopped_at_limit=result.stopped_at_limit,
            cut_off=result.cut_off,
        )

    def _failure(self, event: ChannelEvent, session_id: str, exc: Exception) -> AgentResponse:
        logger.exception("answering a message in session %s failed", session_id, exc_info=exc)
        content = (
            f"❌ Something went wrong while answering: {type(exc).__name__}: {exc}. "
            "The log has the details."
        )
        return _error_reply(event, session_id, content)

    def _observer_for(self, turn: TurnInfo) -> TurnObserver:
        adapter = self._adapter_for(turn.channel_id)
        if adapter is None:
            return TurnObserver()
        if isinstance(adapter, TurnObserving):
            return adapter.observe_turn(turn)
        return ChannelObserver(adapter, turn)

    def _adapter_for(self, channel_id: str) -> ChannelAdapter | None:
        return self._channels.get(_channel_name(channel_id))


class ChannelObserver(TurnObserver):
    """A turn as a plain channel adapter shows it: streamed text through send_delta, tool
    activity when it is a ToolActivityReceiver, notices when it is a NoticeReceiver, approval
    questions when it is an ApprovalAsker. (The gateway's guard keeps a failing channel from
    breaking the turn.)"""

    def __init__(self, adapter: ChannelAdapter, turn: TurnInfo) -> None:
        self.adapter = adapter
        self.turn = turn

    async def text_delta(self, message_index: int, text: str) -> None:
        turn = self.turn
        await self.adapter.send_delta(turn.channel_id, turn.session_id, text)

    async def tool_started(self, call: ToolCall) -> None:
        await self._activity(call, None)

    async def tool_finished(self, call: ToolCall, result: ToolResult) -> None:
        await self._activity(call, result)

    async def request_approval(self, request: ApprovalRequest) -> ApprovalAnswer | None:
        adapter = self.adapter
        if not isinstance(adapter, ApprovalAsker):
            return None
        return await adapter.ask_approval(request)

    async def notice(self, text: str) -> None:
        adapter = self.adapter
        if isinstance(adapter, NoticeReceiver):
            turn = self.turn
            await adapter.send_notice(turn.channel_id, turn.session_id, text)

    async def _activity(self, call: ToolCall, result: ToolResult | None) -> None:
        adapter = self.adapter
        if isinstance(adapter, ToolActivityReceiver):
            turn = self.turn
            await adapter.send_tool_activity(turn.channel_id, turn.session_id, call, result)


class _GuardedObserver(TurnObserver):
    """Passes the turn on to `inner`, so that a failing observer never breaks the turn (its
    errors are logged; a failed question counts as unanswerable), and stops the turn's clock
    while a question waits: the time a person takes to answer does not count against
    agent.timeout_s."""

    def __init__(self, inner: TurnObserver) -> None:
        self.inner = inner
        self.deadline: asyncio.Timeout | None = None
        self._questions = 0
        self._remaining: float | None = None

    async def turn_started(self, turn: TurnInfo) -> None:
        await _contained(self.inner.turn_started(turn), "turn_started")

    async def waiting_for_session(self, turn: TurnInfo) -> None:
        await _contained(self.inner.waiting_for_session(turn), "waiting_for_session")

    async def text_delta(self, message_index: int, text: str) -> None:
        await _contained(self.inner.text_delta(message_index, text), "text_delta")

    async def assistant_message(self, message_index: int, message: Message) -> None:
        await _contained(self.inner.assistant_message(message_index, message), "assistant_message")

    async def tool_started(self, call: ToolCall) -> None:
        await _contained(self.inner.tool_started(call), "tool_started")

    async def tool_finished(self, call: ToolCall, result: ToolResult) -> None:
        await _contained(self.inner.tool_finished(call, result), "tool_finished")

    async def approval_settled(self, request: ApprovalRequest) -> None:
        await _contained(self.inner.approval_settled(request), "approval_settled")

    async def notice(self, text: str) -> None:
        await _contained(self.inner.notice(text), "notice")

    async def turn_ended(
        self, turn: TurnInfo, result: TurnResult | None, error: BaseException | None
    ) -> None:
        await _contained(self.inner.turn_ended(turn, result, error), "turn_ended")

    async def request_approval(self, request: ApprovalRequest) -> ApprovalAnswer | None:
        loop = asyncio.get_running_loop()
        deadline = self.deadline
        if self._questions == 0 and deadline is not None:
            when = deadline.when()
            self._remaining = None if when is None else max(when - loop.time(), 0.0)
            deadline.reschedule(None)
        self._questions += 1
        try:
            return await self.inner.request_approval(request)
        except Exception:
            logger.exception("asking for approval of %s failed: not run", request.tool)
            return None
        finally:
            self._questions -= 1
            if self._questions == 0 and deadline is not None and self._remaining is not None:
                deadline.reschedule(loop.time() + self._remaining)


async def _contained(awaitable: Awaitable[None], what: str) -> None:
    try:
        await awaitable
    except Exception:
        logger.warning("a turn observer's %s failed", what, exc_info=True)


def _reply_id(event: ChannelEvent) -> str | None:
    return None if event.unrequested else event.id


def _error_reply(event: ChannelEvent, session_id: str, content: str) -> AgentResponse:
    return AgentResponse(
        event.channel_id, session_id, content, is_error=True, in_reply_to=_reply_id(event)
    )


def _channel_name(channel_id: str) -> str:
    return channel_id.split(":", 1)[0]
