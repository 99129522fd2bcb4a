"""The channel adapter contract every channel (cli, telegram, web, whatsapp, ...) follows.

A channel turns its native protocol into ChannelEvents handed to `dispatch`, and delivers
AgentResponses the gateway routes back with `send`. Channel ids are `"{channel}:{conversation}"`
(`cli:local`, `telegram:42`); the part before the first colon is the adapter's `name`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from openpista.core.models import AgentResponse, ChannelEvent, ToolCall, ToolResult

if TYPE_CHECKING:
    from openpista.core.approval import ApprovalAnswer, ApprovalRequest
    from openpista.core.config import Config
    from openpista.core.observer import TurnInfo, TurnObserver

EventDispatcher = Callable[[ChannelEvent], Awaitable[None]]
"""Hands an event to the gateway. Returns once it is queued, not when it is answered."""


@runtime_checkable
class ChannelAdapter(Protocol):
    @property
    def name(self) -> str:
        """The channel id prefix this adapter owns (`cli`, `telegram`)."""
        ...

    async def run(self, dispatch: EventDispatcher) -> None:
        """Receive until stopped or the source ends, dispatching each event."""
        ...

    async def send(self, response: AgentResponse) -> None:
        """Deliver a reply (or an error reply, `is_error`) to `response.channel_id`."""
        ...

    async def send_delta(self, channel_id: str, session_id: str, text: str) -> None:
        """Deliver a piece of streamed reply text. Channels that cannot stream ignore it."""
        ...

    async def stop(self) -> None:
        """Stop receiving and release resources; `run` returns soon after."""
        ...


@runtime_checkable
class ToolActivityReceiver(Protocol):
    """Optional for adapters: implemented by those that show which tools run as they run."""

    async def send_tool_activity(
        self, channel_id: str, session_id: str, call: ToolCall, result: ToolResult | None
    ) -> None:
        """Called with `result=None` when a call starts, and with its result when it ends."""
        ...


@runtime_checkable
class ApprovalAsker(Protocol):
    """Optional for adapters: implemented by those that can ask their user to approve a tool
    call. The gateway calls it while the turn waits; the adapter must take the answer from
    its input outside the session's queue (never as the session's next message)."""

    async def ask_approval(self, request: ApprovalRequest) -> ApprovalAnswer | None:
        """The user's answer, or None when nobody can be asked (the call is then denied).
        Cancelled when the question expires; remove it from the screen then."""
        ...


@runtime_checkable
class NoticeReceiver(Protocol):
    """Optional for adapters: implemented by those that show notices about a turn outside
    the reply (e.g. that the primary model failed and a fallback model answers)."""

    async def send_notice(self, channel_id: str, session_id: str, text: str) -> None:
        """Show `text`, one line, to the conversation `channel_id`."""
        ...


@runtime_checkable
class TurnObserving(Protocol):
    """Optional for adapters: the whole turn as an observer (typing indicators, message
    boundaries of streamed text). When implemented, the gateway uses this observer instead of
    calling send_delta, send_tool_activity, send_notice and ask_approval itself."""

    def observe_turn(self, turn: TurnInfo) -> TurnObserver: ...


ChannelFactory = Callable[["Config"], ChannelAdapter]
"""What an `openpista.channels` entry point names: the adapter for a configuration."""
