"""The in-process gateway: channel events in, agent turns per session in order, replies out.

Each session has a FIFO and at most one worker task draining it, so two messages to one
session never interleave while different sessions are answered in parallel. A worker exits
when its queue is empty; the next event starts a new one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from openpista.core.agent import Agent, ToolCallHandler, ToolResultHandler
from openpista.core.channel import ChannelAdapter, ToolActivityReceiver
from openpista.core.errors import OpenpistaError, ProviderError
from openpista.core.memory import MemoryStore
from openpista.core.models import AgentResponse, ChannelEvent, ToolCall, ToolResult
from openpista.core.provider import DeltaHandler

logger = logging.getLogger(__name__)


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
                if await self._memory.get_session(session_id) is None:
                    await self._memory.create_session(channel_id, session_id)
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
    on_delta: DeltaHandler | None = None


class Gateway:
    """Routes channel events to agent turns and the agent's replies back to the channels."""

    def __init__(
        self,
        agent: Agent,
        memory: MemoryStore,
        channels: Mapping[str, ChannelAdapter],
        *,
        timeout_s: float = 120.0,
        router: SessionRouter | None = None,
    ) -> None:
        self.agent = agent
        self.memory = memory
        self.timeout_s = timeout_s
        self.router = router if router is not None else SessionRouter(memory)
        self._channels: dict[str, ChannelAdapter] = dict(channels)
        for adapter in channels.values():
            self._channels.setdefault(adapter.name, adapter)
        self._queues: dict[str, deque[_Job]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
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
                AgentResponse(
                    event.channel_id,
                    event.session_id or "",
                    f"❌ Could not open the conversation's session: {type(exc).__name__}: {exc}. "
                    "Check the [database] settings and the log.",
                    is_error=True,
                )
            )
            return
        self._enqueue(_Job(event, session_id, reply_to=None))

    async def handle(
        self, event: ChannelEvent, *, on_delta: DeltaHandler | None = None
    ) -> AgentResponse:
        """Run the turn for `event` (in its session's order) and return the response.

        Streamed text goes to `on_delta` when given, else to the event's channel if it has one.
        """
        if not self._accepting:
            raise OpenpistaError(
                "the gateway is shutting down and takes no new messages; try again after restart"
            )
        session_id = await self.router.resolve(event)
        future: asyncio.Future[AgentResponse] = asyncio.get_running_loop().create_future()
        self._enqueue(_Job(event, session_id, reply_to=future, on_delta=on_delta))
        return await future

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
        response = await self._answer(job)
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
        on_delta = job.on_delta if job.on_delta is not None else self._delta_sender(job)
        on_tool_call, on_tool_result = self._activity_senders(job)
        deadline = asyncio.timeout(self.timeout_s)
        try:
            async with deadline:
                result = await self.agent.run_turn(
                    session_id,
                    event.text,
                    channel_id=channel_id,
                    on_delta=on_delta,
                    on_tool_call=on_tool_call,
                    on_tool_result=on_tool_result,
                )
        except TimeoutError as exc:
            if not deadline.expired():
                # Some other timeout inside the turn, not ours: report it as the failure it is.
                return self._failure(channel_id, session_id, exc)
            limit = f"{self.timeout_s:g}"
            content = (
                f"❌ The agent took longer than {limit} s to answer and was stopped "
                f"(agent.timeout_s = {limit}). Ask for something smaller, or raise "
                "agent.timeout_s in the configuration."
            )
            return AgentResponse(channel_id, session_id, content, is_error=True)
        except ProviderError as exc:
            content = f"❌ The LLM provider failed: {exc}"
            return AgentResponse(channel_id, session_id, content, is_error=True)
        except Exception as exc:
            return self._failure(channel_id, session_id, exc)
        return AgentResponse(
            channel_id,
            session_id,
            result.reply,
            tool_calls=result.tool_calls,
            images=result.images,
        )

    def _failure(self, channel_id: str, session_id: str, exc: Exception) -> AgentResponse:
        logger.exception("answering a message in session %s failed", session_id, exc_info=exc)
        content = (
            f"❌ Something went wrong while answering: {type(exc).__name__}: {exc}. "
            "The log has the details."
        )
        return AgentResponse(channel_id, session_id, content, is_error=True)

    def _delta_sender(self, job: _Job) -> DeltaHandler | None:
        channel_id = job.event.channel_id
        adapter = self._adapter_for(channel_id)
        if adapter is None:
            return None
        session_id = job.session_id

        async def send_delta(text: str) -> None:
            try:
                await adapter.send_delta(channel_id, session_id, text)
            except Exception:
                # A lost piece of streaming is cosmetic; the full reply still follows.
                logger.debug(
                    "channel %s failed to stream to %s", adapter.name, channel_id, exc_info=True
                )

        return send_delta

    def _activity_senders(
        self, job: _Job
    ) -> tuple[ToolCallHandler | None, ToolResultHandler | None]:
        """Tool activity for adapters that show it (ToolActivityReceiver); None otherwise."""
        if job.reply_to is not None:
            return None, None
        channel_id = job.event.channel_id
        adapter = self._adapter_for(channel_id)
        if not isinstance(adapter, ToolActivityReceiver):
            return None, None
        receiver: ToolActivityReceiver = adapter
        session_id = job.session_id

        async def send(call: ToolCall, result: ToolResult | None) -> None:
            try:
                await receiver.send_tool_activity(channel_id, session_id, call, result)
            except Exception:
                # Showing activity is a courtesy; the turn goes on without it.
                logger.debug("channel %s failed to show tool activity", channel_id, exc_info=True)

        async def on_call(call: ToolCall) -> None:
            await send(call, None)

        async def on_result(call: ToolCall, result: ToolResult) -> None:
            await send(call, result)

        return on_call, on_result

    def _adapter_for(self, channel_id: str) -> ChannelAdapter | None:
        return self._channels.get(_channel_name(channel_id))


def _channel_name(channel_id: str) -> str:
    return channel_id.split(":", 1)[0]
