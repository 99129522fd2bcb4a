"""The agent loop (ReAct): ask the LLM, run the tools it asks for, repeat until it answers.

Every message is stored as it happens, so a crash or cancellation mid-turn leaves a
conversation that the next turn repairs and continues rather than loses.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from openpista.core.approval import (
    ApprovalGate,
    ApprovalOutcome,
    ApprovalPolicy,
    ApprovalRequest,
    AuditDecision,
    denied_result_text,
)
from openpista.core.context import ContextBudget, resolve_budget
from openpista.core.history import repair_tool_pairs
from openpista.core.media import MediaStore
from openpista.core.memory import MemoryStore
from openpista.core.models import (
    Attachment,
    AuditEntry,
    Image,
    Message,
    Part,
    ToolCall,
    ToolCallRecord,
    ToolResult,
    valid_text,
)
from openpista.core.observer import TurnObserver
from openpista.core.prompt import build_system_prompt
from openpista.core.provider import (
    FINISH_CONTENT_FILTER,
    FINISH_INTERRUPTED,
    FINISH_LENGTH,
    ChatRequest,
    ChatResponse,
    LlmProvider,
    TurnScopedProvider,
)
from openpista.core.registry import ToolRegistry
from openpista.core.tool import ToolContext, ToolStates

logger = logging.getLogger(__name__)

INTERRUPTED_TOOL_RESULT = "(no result: the previous run was interrupted)"
CANCELLED_TOOL_RESULT = (
    "(no result: the turn was stopped, by the user or by openpista shutting down, before this "
    "call finished)"
)
CANCELLED_REPLY_NOTE = "[cancelled by the user]"
EMPTY_REPLY = "(the model returned an empty reply)"
FILTERED_REPLY = "(the provider's content filter withheld the reply)"
CUT_NOTES = {
    FINISH_LENGTH: "[cut off: the model reached its output limit]",
    FINISH_INTERRUPTED: "[cut off: the connection to the provider broke off]",
}
"""The line a reply cut short ends with, by finish reason: stored, shown and returned."""


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
    cut_off: str | None = None
    """The finish reason ("length" or "interrupted") when the reply was cut short; the reply
    then ends with the matching CUT_NOTES line."""


@dataclass(slots=True)
class TurnInput:
    """What the user said in one turn: text, who said it, and what they attached."""

    text: str
    sender: str | None = None
    attachments: Sequence[Attachment] = ()


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
        approval: ApprovalGate | None = None,
        media: MediaStore | None = None,
        context: ContextBudget | None = None,
    ) -> None:
        self.provider = provider
        """Replaceable between turns (a model switch takes effect on the next request)."""
        self.tools = tools
        self.memory = memory
        self.system_prompt = system_prompt
        self.skills_context = skills_context
        self.max_tool_rounds = max_tool_rounds
        self.approval = approval if approval is not None else ApprovalGate()
        self.media = media
        """Where pictures and attachments are saved; None keeps only their descriptions."""
        self.context = (
            context if context is not None else ContextBudget(resolve_budget(0, provider.model))
        )
        """What each request may hold: older turns are compacted to stay within it."""
        self.tool_states = ToolStates()
        """Per-session state tools keep between calls (ToolContext.state)."""

    def build_system_message(self) -> Message:
        """The system message for one request; the skills are read afresh every time."""
        skills = self.skills_context() if self.skills_context is not None else ""
        prompt = build_system_prompt(self.system_prompt, skills, tools=self.tools.specs())
        return Message(role="system", content=prompt)

    async def run_turn(
        self,
        session_id: str,
        message: TurnInput | str,
        *,
        channel_id: str,
        observer: TurnObserver | None = None,
        approval: ApprovalPolicy = "auto",
    ) -> TurnResult:
        """Answer `message` in the (existing) session `session_id`.

        The observer hears the streamed text, the tool calls and the approval questions.
        Raises ProviderError when the LLM fails; everything stored up to then stays stored.
        Cancelled, it stores the text streamed so far and results for the calls it cut short.
        """
        turn = message if isinstance(message, TurnInput) else TurnInput(message)
        observer = observer if observer is not None else TurnObserver()
        memory = self.memory
        conversation = repair_history(await memory.load_messages(session_id))
        user_message = Message(
            role="user",
            content=valid_text(turn.text),
            sender=None if turn.sender is None else valid_text(turn.sender),
            parts=self._store_attachments(turn.attachments),
        )
        # Refused before it is stored when it can never fit; else stored before the LLM is
        # asked, so the message survives a provider failure.
        self.context.refuse_oversized(self.build_system_message(), user_message, self.tools.specs())
        await memory.append_messages(session_id, [user_message])
        conversation.append(user_message)

        context = ToolContext(
            session_id=session_id,
            channel_id=channel_id,
            sender=turn.sender,
            state=self.tool_states.for_session(session_id),
        )
        records: list[ToolCallRecord] = []
        images: list[Image] = []
        rounds = 0
        # A provider with per-turn state (a fallback chain) gets a fresh view every turn, so a
        # switch to a fallback lasts until the turn ends and the next starts on the primary.
        provider = self.provider
        if isinstance(provider, TurnScopedProvider):
            provider = provider.for_turn()
        while True:
            response = await self._ask(
                session_id, conversation, observer, provider=provider, index=rounds
            )
            assistant = response.message
            calls = assistant.tool_calls

            if not calls:
                reply = assistant.content
                if not reply.strip():
                    filtered = response.finish_reason == FINISH_CONTENT_FILTER
                    reply = FILTERED_REPLY if filtered else EMPTY_REPLY
                final = Message(
                    "assistant",
                    reply,
                    parts=assistant.parts,
                    input_tokens=assistant.input_tokens,
                    output_tokens=assistant.output_tokens,
                )
                await memory.append_messages(session_id, [final])
                cut_off = response.finish_reason if response.finish_reason in CUT_NOTES else None
                return TurnResult(reply, records, images, rounds, cut_off=cut_off)

            if rounds >= self.max_tool_rounds:
                reply = self._stopped_reply(assistant.content)
                # The unanswered calls are not stored: the stored conversation stays whole.
                await memory.append_messages(session_id, [Message("assistant", reply)])
                return TurnResult(reply, records, images, rounds, stopped_at_limit=True)

            await memory.append_messages(session_id, [assistant])
            conversation.append(assistant)
            results = await self._run_round(calls, context, observer, approval)
            # Saving a picture gives its Image a path, which the channel gets with the reply.
            result_messages = [self._result_message(result) for result in results]
            await memory.append_messages(session_id, result_messages)
            conversation.extend(result_messages)
            for call, result in zip(calls, results, strict=True):
                records.append(
                    ToolCallRecord(call.name, _record_arguments(call), not result.is_error)
                )
                images.extend(result.images)
            rounds += 1

    async def _ask(
        self,
        session_id: str,
        conversation: list[Message],
        observer: TurnObserver,
        *,
        provider: LlmProvider,
        index: int,
    ) -> ChatResponse:
        """One provider request; on cancellation the text streamed so far is stored.

        A reply cut short (finish reason "length" or "interrupted") comes back as far as it
        went, its tool calls dropped (they may be half made), its text ending with the
        CUT_NOTES line, which is streamed too when the text was.
        """
        streamed: list[str] = []

        async def on_delta(text: str) -> None:
            streamed.append(text)
            await observer.text_delta(index, text)

        tools = self.tools.specs()
        fitted = await self.context.fit(
            session_id,
            self.build_system_message(),
            conversation,
            tools,
            provider=provider,
            memory=self.memory,
        )
        # What the budget kept may have split a call from its result, and a history made with
        # another provider may hold pairs this one never made: send only whole pairs.
        request = ChatRequest(
            repair_tool_pairs(fitted.messages),
            tools,
            notify=observer.notice,
            read_media=None if self.media is None else self.media.read,
        )
        try:
            response = await provider.complete(request, on_delta)
        except asyncio.CancelledError:
            said = "".join(streamed).strip()
            if said:
                partial = Message("assistant", f"{said}\n\n{CANCELLED_REPLY_NOTE}")
                await _store_while_cancelled(self.memory, session_id, [partial])
            raise
        self.context.observe(fitted, response.usage)
        message = response.message
        message.content = valid_text(message.content)
        if response.usage is not None:
            message.input_tokens = response.usage.input_tokens or None
            message.output_tokens = response.usage.output_tokens or None
        note = CUT_NOTES.get(response.finish_reason or "")
        if note is not None:
            if message.tool_calls:
                logger.warning(
                    "session %s: a reply cut short (%s) asked for %d tool calls: not run",
                    session_id,
                    response.finish_reason,
                    len(message.tool_calls),
                )
            message.tool_calls = []
            said = message.content.rstrip()
            message.content = f"{said}\n\n{note}" if said.strip() else note
            if streamed:
                await observer.text_delta(index, f"\n\n{note}")
        await observer.assistant_message(index, message)
        return response

    async def _run_round(
        self,
        calls: Sequence[ToolCall],
        context: ToolContext,
        observer: TurnObserver,
        policy: ApprovalPolicy,
    ) -> list[ToolResult]:
        """Ask about each call in order (one question at a time, so "all" covers the rest),
        then run the allowed ones; every call gets a result and an audit entry, also when the
        turn is cancelled on the way."""
        results: list[ToolResult | None] = [None] * len(calls)
        try:
            outcomes = await self._approve(calls, results, context, observer, policy)
            positions = {id(call): position for position, call in enumerate(calls)}

            async def run_one(call: ToolCall) -> ToolResult:
                position = positions[id(call)]
                result = results[position]
                if result is None:
                    result = await self._run_call(call, outcomes[position], context, observer)
                    results[position] = result
                return result

            await self.tools.run_round(calls, run_one)
        except asyncio.CancelledError:
            # Every call gets a result, so the stored conversation stays one providers accept.
            finished = [
                result
                if result is not None
                else ToolResult(call.id, call.name, CANCELLED_TOOL_RESULT, is_error=True)
                for call, result in zip(calls, results, strict=True)
            ]
            await _store_while_cancelled(
                self.memory, context.session_id, [self._result_message(r) for r in finished]
            )
            raise
        return [result for result in results if result is not None]

    async def _approve(
        self,
        calls: Sequence[ToolCall],
        results: list[ToolResult | None],
        context: ToolContext,
        observer: TurnObserver,
        policy: ApprovalPolicy,
    ) -> list[ApprovalOutcome]:
        """Each call's decision. A call that cannot run (bad arguments, unknown tool) is not
        asked about: its error result goes into `results` at once. A call that did not run
        gets its result (denied) here too."""
        outcomes: list[ApprovalOutcome] = []
        for position, call in enumerate(calls):
            invalid = self.tools.check(call)
            if invalid is not None:
                outcome = ApprovalOutcome(AuditDecision.AUTO, "policy")
                results[position] = invalid
                await observer.tool_finished(call, invalid)
                await self._audit(call, context, outcome, invalid, 0.0)
                outcomes.append(outcome)
                continue
            request = ApprovalRequest(context.session_id, context.channel_id, call, context.sender)
            try:
                outcome = await self.approval.decide(
                    policy, self.tools.get(call.name), request, observer
                )
            except asyncio.CancelledError:
                # Stopped while asking: nobody allowed it, and the audit trail says so.
                # Calls with a result are audited already; the rest never ran: those allowed
                # keep their decision, this one and later ones were allowed by nobody.
                stopped = ApprovalOutcome(AuditDecision.DENIED, "cancelled")
                for index, unfinished in enumerate(calls):
                    if results[index] is None:
                        decided = outcomes[index] if index < len(outcomes) else stopped
                        cut = ToolResult(
                            unfinished.id, unfinished.name, CANCELLED_TOOL_RESULT, True
                        )
                        await _shielded(self._audit(unfinished, context, decided, cut, 0.0))
                raise
            finally:
                await observer.approval_settled(request)
            if not outcome.allowed:
                denied = ToolResult(
                    call.id, call.name, denied_result_text(call.name, outcome), is_error=True
                )
                results[position] = denied
                await observer.tool_finished(call, denied)
                await self._audit(call, context, outcome, denied, 0.0)
            outcomes.append(outcome)
        return outcomes

    async def _run_call(
        self,
        call: ToolCall,
        outcome: ApprovalOutcome,
        context: ToolContext,
        observer: TurnObserver,
    ) -> ToolResult:
        await observer.tool_started(call)
        started = time.monotonic()
        try:
            result = await self.tools.dispatch(call, context)
        except asyncio.CancelledError:
            result = ToolResult(call.id, call.name, CANCELLED_TOOL_RESULT, is_error=True)
            await _shielded(self._audit(call, context, outcome, result, started))
            raise
        await observer.tool_finished(call, result)
        await self._audit(call, context, outcome, result, started)
        return result

    async def _audit(
        self,
        call: ToolCall,
        context: ToolContext,
        outcome: ApprovalOutcome,
        result: ToolResult,
        started: float,
    ) -> None:
        duration_ms = (time.monotonic() - started) * 1000 if started else 0.0
        error = _first_line(result.output) if result.is_error else None
        entry = AuditEntry(
            at=datetime.now(UTC),
            session_id=context.session_id,
            channel_id=context.channel_id,
            sender=context.sender,
            tool=call.name,
            arguments=call.arguments,
            decision=str(outcome.decision),
            decided_by=outcome.decided_by,
            ok=not result.is_error,
            duration_ms=round(duration_ms, 3),
            call_id=call.id,
            error=error,
        )
        try:
            await self.memory.record_tool_call(entry)
        except Exception:
            # The call has happened either way; a failed audit write must not hide its result.
            logger.exception("could not record tool call %s in the audit trail", call.name)

    def _result_message(self, result: ToolResult) -> Message:
        """The tool message stored and sent: text for the LLM, pictures as media files."""
        message = result.to_message()
        if result.images and self.media is not None:
            parts: list[Part] = []
            saved: list[Image] = []
            for image in result.images:
                try:
                    part = self.media.save_image(image, result.name)
                except Exception:
                    logger.exception("could not save a picture from %s", result.name)
                    saved.append(image)
                    continue
                parts.append(part)
                saved.append(replace(image, path=str(self.media.path_of(part.path))))
            message.parts = parts
            result.images = saved
        return message

    def _store_attachments(self, attachments: Sequence[Attachment]) -> list[Part]:
        if not attachments:
            return []
        if self.media is None:
            logger.warning("attachments arrived but no media folder is set: they are not kept")
            return []
        return [self.media.save_attachment(attachment) for attachment in attachments]

    def _stopped_reply(self, partial_text: str) -> str:
        limit = self.max_tool_rounds
        notice = (
            f"I stopped after {limit} tool rounds without reaching a final answer "
            f"(agent.max_tool_rounds = {limit}). Ask me to continue, or raise the limit."
        )
        if partial_text.strip():
            return f"{partial_text.rstrip()}\n\n{notice}"
        return notice


async def _shielded(awaitable: Awaitable[None]) -> None:
    """Finish `awaitable` even though the task running it is being cancelled."""
    try:
        await asyncio.shield(asyncio.ensure_future(awaitable))
    except asyncio.CancelledError:
        pass
    except Exception:
        logger.exception("could not finish recording a cancelled turn")


async def _store_while_cancelled(
    memory: MemoryStore, session_id: str, messages: list[Message]
) -> None:
    await _shielded(memory.append_messages(session_id, messages))


def _first_line(text: str) -> str:
    stripped = text.strip()
    return stripped.splitlines()[0][:500] if stripped else ""


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
