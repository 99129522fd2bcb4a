"""Conversation repair for the wire: every tool call paired with its result, before a request.

A conversation may hold tool calls without results or results without calls: the context
budget left out a round's assistant message but not its results, a provider or model switch
brought a history the new provider never made, a crash stored half a round. Chat-completions
and Anthropic APIs refuse such a request with a 400. `repair_tool_pairs` strips the unpaired
halves from what is sent; nothing stored changes. It also gives every call an id of its own
across the conversation: local models that number their calls from 0 every round leave
`call_0` several times in one history, which Anthropic refuses ("tool_use ids must be
unique") once the conversation moves there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from openpista.core.models import Message, ToolCall


def repair_tool_pairs(messages: Sequence[Message]) -> list[Message]:
    """`messages` with every tool call answered and every tool result answering a call.

    A result belongs to the assistant message right before it (tool results follow their
    call); call ids are only unique within one assistant message, since some local models
    number them from 0 every time. An assistant message keeps only its answered calls, and
    is left out when nothing else is left of it (no text, no parts); a result whose call is
    not there, or that answers a call a second time, is left out. Messages that change are
    copies: the caller's objects are never mutated. Provider state parts of other providers
    stay: each provider skips what is not its own.
    """
    repaired: list[Message] = []
    taken = {call.id for message in messages for call in message.tool_calls}
    seen: set[str] = set()
    index = 0
    count = len(messages)
    while index < count:
        message = messages[index]
        index += 1
        if message.role == "tool":
            continue  # no assistant message with calls right before it: an orphan
        if message.role != "assistant" or not message.tool_calls:
            repaired.append(message)
            continue
        results: list[Message] = []
        open_ids = [call.id for call in message.tool_calls]
        while index < count and messages[index].role == "tool":
            result = messages[index]
            index += 1
            if result.tool_call_id in open_ids:
                open_ids.remove(result.tool_call_id)
                results.append(result)
        if open_ids:
            unanswered = Counter(open_ids)
            answered: list[ToolCall] = []
            for call in message.tool_calls:
                if unanswered[call.id] > 0:
                    unanswered[call.id] -= 1
                else:
                    answered.append(call)
            message = message.copy()
            message.tool_calls = answered
            if not answered and not message.content.strip() and not message.parts:
                continue
        message, results = _distinct_ids(message, results, seen, taken)
        repaired.append(message)
        repaired.extend(results)
    return repaired


def _distinct_ids(
    message: Message, results: list[Message], seen: set[str], taken: set[str]
) -> tuple[Message, list[Message]]:
    """The assistant message and its results with each call id not `seen` before (renamed
    `ID_2`, `ID_3`, ... where needed; never to an id `taken` elsewhere); `seen` grows."""
    renamed: list[tuple[str, str]] = []  # (old, new) per call, in order
    calls: list[ToolCall] = []
    for call in message.tool_calls:
        new_id = call.id
        number = 2
        while new_id in seen:
            candidate = f"{call.id}_{number}"
            number += 1
            if candidate not in taken:
                new_id = candidate
        seen.add(new_id)
        taken.add(new_id)
        renamed.append((call.id, new_id))
        calls.append(call if new_id == call.id else ToolCall(new_id, call.name, call.arguments))
    if all(old == new for old, new in renamed):
        return message, results
    message = message.copy()
    message.tool_calls = calls
    pending = list(renamed)
    fixed: list[Message] = []
    for result in results:
        match = next((pair for pair in pending if pair[0] == result.tool_call_id), None)
        if match is not None:
            pending.remove(match)
            if match[1] != match[0]:
                result = result.copy()
                result.tool_call_id = match[1]
        fixed.append(result)
    return message, fixed
