"""The agent loop (ReAct): ask the LLM, run the tools it asks for, repeat until it answers.

Every message is stored as it happens, so a crash or cancellation mid-turn leaves a
conversation that the next turn repairs and continues rather than loses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from openpista.core.memory import MemoryStore
from openpista.core.models import Image, Message, ToolCall, ToolCallRecord, ToolResult
from openpista.core.prompt import build_system_prompt
from openpista.core.provider import ChatRequest, DeltaHandler, LlmProvider
from openpista.core.registry import ToolRegistry
from openpista.core.tool import ToolContext

ToolCallHandler = Callable[[ToolCall], Awaitable[None]]
"""Called when the LLM asks for a tool call, before it runs."""
ToolResultHandler = Callable[[ToolCall, ToolResult], Awaitable[None]]
"""Called when a tool call has finished, as soon as it finishes."""

INTERRUPTED_TOOL_RESULT = "(no result: the previous run was interrupted)"
EMPTY_REPLY = "(no reply)"


@dataclass(slots=True)
class TurnResult:
    """What one turn produced: the final reply and what was done on the way."""

    reply: str
    tool_calls: list[ToolCallRecord] = field(default_factory=lambda: [])
    images: list[Image] = field(default_factory=lambda: [])
    rounds: int = 0
    """How many rounds of tool calls ran (0 when the LLM answered straight away)."""
    stopped_at_limit: bool = False
    """True when the turn ended at max_tool_rounds rather than with the LLM's answer."""


class Agent:
    """Answers a user message in a session, using the provider, the tools and memory."""

    def __init__(
        self,
        provider: LlmProvider,
        tools: ToolRegistry,
        memory: MemoryStore,
        *,
        system_prompt: str = "",
        skills_context: Callable[[], str] | None = None,
        max_tool_rounds: int = 30,
    ) -> None:
        self.provider = provider
        """Replaceable between turns (a model switch takes effect on the next request)."""
        self.tools = tools
        self.memory = memory
        self.system_prompt = system_prompt
        self.skills_context = skills_context
        self.max_tool_rounds = max_tool_rounds

    def build_system_message(self) -> Message:
        """The system message for one request; the skills are read afresh every time."""
        skills = self.skills_context() if self.skills_context is not None else ""
        return Message(role="system", content=build_system_prompt(self.system_prompt, skills))

    async def run_turn(
        self,
        session_id: str,
        text: str,
        *,
        channel_id: str,
        on_delta: DeltaHandler | None = None,
        on_tool_call: ToolCallHandler | None = None,
        on_tool_result: ToolResultHandler | None = None,
    ) -> TurnResult:
        """Answer `text` in the (existing) session `session_id`.

        Raises ProviderError when the LLM fails; everything stored up to then stays stored.
        """
        memory = self.memory
        conversation = repair_history(await memory.load_messages(session_id))
        user_message = Message(role="user", content=text)
        # Stored before the LLM is asked, so the message survives a provider failure.
        await memory.append_messages(session_id, [user_message])
        conversation.append(user_message)

        context = ToolContext(session_id=session_id, channel_id=channel_id)
        records: list[ToolCallRecord] = []
        images: list[Image] = []
        rounds = 0
        while True:
            request = ChatRequest(
                messages=[self.build_system_message(), *conversation], tools=self.tools.specs()
            )
            response = await self.provider.complete(request, on_delta)
            assistant = response.message
            calls = assistant.tool_calls

            if not calls:
                reply = assistant.content if assistant.content.strip() else EMPTY_REPLY
                await memory.append_messages(session_id, [Message("assistant", reply)])
                return TurnResult(reply, records, images, rounds)

            if rounds >= self.max_tool_rounds:
                reply = self._stopped_reply(assistant.content)
                # The unanswered calls are not stored: the stored conversation stays whole.
                await memory.append_messages(session_id, [Message("assistant", reply)])
                return TurnResult(reply, records, images, rounds, stopped_at_limit=True)

            await memory.append_messages(session_id, [assistant])
            conversation.append(assistant)
            if on_tool_call is not None:
                for call in calls:
                    await on_tool_call(call)
            results = await self._run_round(calls, context, on_tool_result)
            result_messages = [result.to_message() for result in results]
            await memory.append_messages(session_id, result_messages)
            conversation.extend(result_messages)
            for call, result in zip(calls, results, strict=True):
                records.append(
                    ToolCallRecord(call.name, _record_arguments(call), not result.is_error)
                )
                images.extend(result.images)
            rounds += 1

    async def _run_round(
        self,
        calls: Sequence[ToolCall],
        context: ToolContext,
        on_tool_result: ToolResultHandler | None,
    ) -> list[ToolResult]:
        if on_tool_result is None:
            return await self.tools.dispatch_all(calls, context)

        async def run_and_report(call: ToolCall) -> ToolResult:
            result = await self.tools.dispatch(call, context)
            await on_tool_result(call, result)
            return result

        return list(await asyncio.gather(*(run_and_report(call) for call in calls)))

    def _stopped_reply(self, partial_text: str) -> str:
        limit = self.max_tool_rounds
        notice = (
            f"I stopped after {limit} tool rounds without reaching a final answer "
            f"(agent.max_tool_rounds = {limit}). Ask me to continue, or raise the limit."
        )
        if partial_text.strip():
            return f"{partial_text.rstrip()}\n\n{notice}"
        return notice


def repair_history(messages: list[Message]) -> list[Message]:
    """The conversation as providers accept it: every tool call answered exactly once.

    A call left without a result (a crash mid-round) gets a synthetic one; a tool result
    that answers no call of the assistant message before it (or answers one twice) is
    dropped. The messages themselves are not changed, so memory stays as it was.
    """
    repaired: list[Message] = []
    append = repaired.append
    # Call ids are only unique within one assistant message (some local models number
    # them from 0 every time), so results are matched to the latest assistant message only.
    unanswered: list[str] = []
    for message in messages:
        if message.role == "tool":
            if message.tool_call_id in unanswered:
                unanswered.remove(message.tool_call_id)
                append(message)
            continue
        if unanswered:
            repaired.extend(_interrupted_results(unanswered))
            unanswered = []
        append(message)
        if message.tool_calls and message.role == "assistant":
            unanswered = [call.id for call in message.tool_calls]
    if unanswered:
        repaired.extend(_interrupted_results(unanswered))
    return repaired


def _interrupted_results(call_ids: list[str]) -> list[Message]:
    return [Message("tool", INTERRUPTED_TOOL_RESULT, tool_call_id=call_id) for call_id in call_ids]


def _record_arguments(call: ToolCall) -> dict[str, object] | str:
    try:
        return call.parsed_arguments()
    except ValueError:
        return call.arguments
