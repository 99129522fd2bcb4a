"""The turn observer: everything a channel (or `run -e`) sees of a turn while it runs.

One interface replaces separate callbacks: the turn's start and end (typing indicators),
streamed text with message boundaries (which assistant message a delta belongs to), tool calls
starting and finishing, approval questions, waiting for a session another process holds, and
notices (a switch to a fallback model).
Subclass `TurnObserver` and override what you show; every hook does nothing by default, and
`request_approval` answers None ("nobody can be asked here"), which denies the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from openpista.core.models import Message, ToolCall, ToolResult

if TYPE_CHECKING:
    from openpista.core.agent import TurnResult
    from openpista.core.approval import ApprovalAnswer, ApprovalRequest


@dataclass(frozen=True, slots=True)
class TurnInfo:
    """Which turn an observer hears about."""

    session_id: str
    channel_id: str
    event_id: str | None = None
    """The ChannelEvent being answered, when there is one."""
    sender: str | None = None


class TurnObserver:
    """Hooks called during one turn, in order. Exceptions raised by a hook are the caller's to
    contain: the gateway's channel observer logs them; a hook should not raise."""

    async def turn_started(self, turn: TurnInfo) -> None:
        """The turn begins (the session is ours): start a typing indicator."""

    async def waiting_for_session(self, turn: TurnInfo) -> None:
        """Another turn (possibly in another process) holds the session: this one waits."""

    async def text_delta(self, message_index: int, text: str) -> None:
        """A piece of streamed text of the turn's `message_index`-th assistant message (0, 1,
        ...): a new index means a new message, e.g. text after a round of tool calls."""

    async def assistant_message(self, message_index: int, message: Message) -> None:
        """An assistant message is complete (its text may be empty when it only calls tools)."""

    async def tool_started(self, call: ToolCall) -> None:
        """The call is about to run (after approval, if it needed any)."""

    async def tool_finished(self, call: ToolCall, result: ToolResult) -> None:
        """The call finished (or was denied: then the result says so and is an error)."""

    async def request_approval(self, request: ApprovalRequest) -> ApprovalAnswer | None:
        """Ask the user whether the call may run. None: nobody can be asked (denied)."""
        return None

    async def approval_settled(self, request: ApprovalRequest) -> None:
        """The question was answered, expired or withdrawn: take it off the screen."""

    async def notice(self, text: str) -> None:
        """A one-line notice for the user about the turn, outside the reply: e.g. "openai/
        gpt-4.1-mini failed (...); switched to anthropic/claude-sonnet-4-5"."""

    async def turn_ended(
        self, turn: TurnInfo, result: TurnResult | None, error: BaseException | None
    ) -> None:
        """The turn is over: `result` when it answered, else the `error` that ended it
        (CancelledError when it was cancelled)."""


class ObserverGroup(TurnObserver):
    """Several observers as one; approval goes to the first that can ask."""

    def __init__(self, *observers: TurnObserver) -> None:
        self.observers = list(observers)

    async def turn_started(self, turn: TurnInfo) -> None:
        for observer in self.observers:
            await observer.turn_started(turn)

    async def waiting_for_session(self, turn: TurnInfo) -> None:
        for observer in self.observers:
            await observer.waiting_for_session(turn)

    async def text_delta(self, message_index: int, text: str) -> None:
        for observer in self.observers:
            await observer.text_delta(message_index, text)

    async def assistant_message(self, message_index: int, message: Message) -> None:
        for observer in self.observers:
            await observer.assistant_message(message_index, message)

    async def tool_started(self, call: ToolCall) -> None:
        for observer in self.observers:
            await observer.tool_started(call)

    async def tool_finished(self, call: ToolCall, result: ToolResult) -> None:
        for observer in self.observers:
            await observer.tool_finished(call, result)

    async def request_approval(self, request: ApprovalRequest) -> ApprovalAnswer | None:
        for observer in self.observers:
            answer = await observer.request_approval(request)
            if answer is not None:
                return answer
        return None

    async def approval_settled(self, request: ApprovalRequest) -> None:
        for observer in self.observers:
            await observer.approval_settled(request)

    async def notice(self, text: str) -> None:
        for observer in self.observers:
            await observer.notice(text)

    async def turn_ended(
        self, turn: TurnInfo, result: TurnResult | None, error: BaseException | None
    ) -> None:
        for observer in self.observers:
            await observer.turn_ended(turn, result, error)
