"""The context budget: fits a conversation into the tokens one request may take.

The stored history of a session grows for ever; a model reads only so much. Before each
request the agent hands the whole conversation to `ContextBudget.fit`, which returns the
messages to send, never more than `max_tokens` by the `TokenEstimator`'s count (tools'
schemas included). It shrinks the request in this order, stopping as soon as it fits:

1. Old tool outputs are cut, oldest first: their text is replaced by a marker such as
   `[output cut to save context: 12,345 characters]`. The results of the turn's latest
   round are kept whole.
2. The oldest turns are compacted: the model summarizes them (`provider.complete` with no
   tools), the summary is stored (`MemoryStore.save_summary`) and replaces those messages,
   appended to a copy of the system message. Later turns reuse the stored summary; when more
   must be folded in, the model updates the old summary with the next messages only, in
   chunks that each fit the budget. The kept messages start at a user message, so a tool
   call is never separated from its result. A summary longer than its allowance (a quarter
   of the budget) is cut.
3. Last resorts, for a turn whose own messages outgrow the budget: the summary is cut
   shorter or, with no room for one, not made and the older messages left out with a note
   (`[N earlier messages omitted]`); this turn's older rounds are left out (a call always
   with its results); finally the latest round's outputs are clipped.

The newest user message is always sent whole: when it does not fit beside the system
message and the tools, `ContextTooLongError` is raised and nothing is sent. Nothing stored
is changed or deleted (the caller's Message objects are never mutated either), so
`openpista session show` still lists every message.

A provider failure while summarizing does not fail the user's turn: the messages that could
not be summarized are left out with a note (`[N earlier messages omitted]`) and a warning is
logged; the next turn that needs them summarized tries again.

Tokens are estimated from characters, with nothing imported: a tokenizer would cost more
start-up time than the estimate is worth. ASCII text counts 4 characters a token; other
characters count more, by the length of their UTF-8 encoding (`text_weight`), since a
tokenizer splits the scripts it saw less of into more tokens: half a token for a character of
2 bytes (accented Latin, Greek, Cyrillic, Hebrew, Arabic), a whole token for 3 bytes (CJK,
kana, Hangul, Indic scripts, Thai, typographic punctuation and symbols), two for 4 bytes
(emoji). `ContextBudget.observe` corrects the estimate with the input tokens the provider
reports.

    budget = ContextBudget(resolve_budget(config.agent.context_tokens, provider.model))
    fitted = await budget.fit(session_id, system, conversation, tools,
                              provider=provider, memory=memory)
    response = await provider.complete(ChatRequest(fitted.messages, tools), on_delta)
    budget.observe(fitted, response.usage)
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from openpista.core.errors import OpenpistaError, ProviderError
from openpista.core.memory import MemoryStore
from openpista.core.models import (
    FilePart,
    ImagePart,
    Message,
    ProviderStatePart,
    Summary,
    TextPart,
)
from openpista.core.provider import ChatRequest, LlmProvider, ToolSpec, Usage

logger = logging.getLogger(__name__)

DEFAULT_CONTEXT_TOKENS = 128_000
"""The window assumed for a model `context_window` does not know."""

MIN_SUMMARY_TOKENS = 64
"""A summary is only made when at least this much room is left for it beside the newest turn."""

SUMMARY_HEADING = "Summary of the earlier conversation (its messages are not shown here):"

SUMMARY_INSTRUCTION = (
    "You compact the conversation between a user and openpista, an AI assistant that runs "
    "tools (shell commands and the like) for its owner. Write a summary of the messages you "
    "are given that lets the assistant carry on without them: the user's goals and requests, "
    "facts and decisions established, names of files, commands and results that matter, and "
    "what is still open. When a previous summary is given, return it updated with the new "
    "messages. Write plain text, at most {words} words, and nothing but the summary."
)

# Known context windows by model-name prefix (the longest matching prefix wins). Names are
# matched in lower case after any routing prefix (`openai/gpt-4o` -> `gpt-4o`).
_KNOWN_WINDOWS: dict[str, int] = {
    "gpt-5": 400_000,
    "gpt-4.1": 1_047_576,
    "gpt-4o": 128_000,
    "gpt-4-turbo": 128_000,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 16_385,
    "gpt-oss": 131_072,
    "o1": 200_000,
    "o3": 200_000,
    "o4": 200_000,
    "claude-": 200_000,
    "llama3.1": 128_000,
    "llama3.2": 128_000,
    "llama3.3": 128_000,
    "llama-3.1": 128_000,
    "llama-3.2": 128_000,
    "llama-3.3": 128_000,
    "qwen2.5": 32_768,
    "gemini-1.5": 1_048_576,
    "gemini-2": 1_048_576,
}


def context_window(model: str) -> int | None:
    """The context window (in tokens) of a known model, by name prefix; None when unknown.

    Local servers may run a model with a smaller window than the model's own (Ollama's
    `num_ctx`): set `[agent] context_tokens` there.
    """
    name = model.strip().lower().rsplit("/", 1)[-1]
    matches = [prefix for prefix in _KNOWN_WINDOWS if name.startswith(prefix)]
    return _KNOWN_WINDOWS[max(matches, key=len)] if matches else None


def reply_reserve(window: int) -> int:
    """The part of a model's window kept free for its reply: min(4096, window / 8)."""
    return min(4096, window // 8)


def resolve_budget(configured: int, model: str) -> int:
    """The most tokens one request's input may take.

    `configured` (`[agent] context_tokens`) wins when above 0 and is taken as the input
    budget itself. Otherwise it is the model's window (`context_window`, else
    DEFAULT_CONTEXT_TOKENS) less `reply_reserve`, so the reply still has room.
    """
    if configured > 0:
        return configured
    window = context_window(model) or DEFAULT_CONTEXT_TOKENS
    return window - reply_reserve(window)


class ContextTooLongError(OpenpistaError):
    """Even the newest user message (or this turn's latest tool round) does not fit the
    budget beside the system prompt and the tool definitions. Nothing was sent."""

    def __init__(self, needed: int, budget: int, *, tool_round: bool = False) -> None:
        self.needed = needed
        self.budget = budget
        what = "this turn's latest tool round" if tool_round else "the message"
        advice = "Ask for less at a time" if tool_round else "Send a shorter message"
        super().__init__(
            f"{what} is too long for a request of at most {budget:,} tokens (the model's "
            "context window, or [agent] context_tokens when set): with the system prompt "
            f"and tool definitions it needs about {needed:,} tokens. {advice}."
        )


_BELOW_E0 = bytes(range(0xE0))
_BELOW_F0 = bytes(range(0xF0))


def text_weight(text: str) -> int:
    """What `text` costs, counted in ASCII characters: each character weighs 1, 2, 4 or 8 as its
    UTF-8 encoding takes 1, 2, 3 or 4 bytes (see the module's doc). ASCII text weighs its
    length at once; other text is encoded and its bytes counted in C, a few microseconds per
    1,000 characters (about 0.6 ms for 100,000 CJK characters)."""
    if text.isascii():
        return len(text)
    data = text.encode("utf-8", "surrogatepass")
    # The first bytes of characters of 3 or 4 bytes (0xE0-0xF4) are the only bytes >= 0xE0.
    wide = data.translate(None, _BELOW_E0)
    return len(data) + len(wide) + 3 * len(wide.translate(None, _BELOW_F0))


def _prefix_within(text: str, weight: int) -> int:
    """How many characters from the start of `text` weigh at most `weight` together."""
    if text.isascii():
        return max(0, min(len(text), weight))
    low, high = min(len(text), max(0, weight) // 8), min(len(text), max(0, weight))
    while low < high:  # text[:low] fits; text[:high + 1] does not (or is past the end)
        middle = (low + high + 1) // 2
        if text_weight(text[:middle]) <= weight:
            low = middle
        else:
            high = middle - 1
    return low


class TokenEstimator:
    """Counts tokens from characters, corrected by what the provider reports.

    A message costs the `text_weight` of its text (content, text parts, tool calls' ids,
    names and arguments, provider state as JSON) divided by `chars_per_token` (ASCII
    characters a token), plus `message_overhead` tokens, plus `attachment_tokens` for each
    picture or file (a one-line placeholder for most models; a model that takes
    images reports what a picture really cost, and `scale` follows).
    Everything is multiplied by `scale`, which `observe` moves towards the provider's count:
    smoothed, and kept between `min_scale` and `max_scale` so one odd report cannot make the
    estimate wild. `observe` expects input tokens that include any cached prompt tokens.
    """

    def __init__(
        self,
        chars_per_token: float = 4.0,
        *,
        message_overhead: int = 4,
        attachment_tokens: int = 32,
        min_scale: float = 0.8,
        max_scale: float = 4.0,
        smoothing: float = 0.3,
    ) -> None:
        self.chars_per_token = chars_per_token
        self.message_overhead = message_overhead
        self.attachment_tokens = attachment_tokens
        self.min_scale = min_scale
        self.max_scale = max_scale
        self.smoothing = smoothing
        self.scale = 1.0

    def tokens_for(self, weight: int, *, extra_tokens: int = 0) -> int:
        """The estimate for one message of text weighing `weight` (plus `extra_tokens`)."""
        raw = weight / self.chars_per_token + self.message_overhead + extra_tokens
        return math.ceil(self.scale * raw)

    def weight_for(self, tokens: int) -> int:
        """How much text weight `tokens` stand for (rounded up)."""
        return math.ceil(tokens / self.scale * self.chars_per_token)

    def weight_within(self, tokens: int) -> int:
        """The most text weight one plain message may have to cost at most `tokens`."""
        weight = (tokens / self.scale - self.message_overhead) * self.chars_per_token
        return max(0, math.floor(weight) - 1)

    def message_tokens(self, message: Message) -> int:
        weight = text_weight(message.content) + text_weight(message.tool_call_id or "")
        weight += text_weight(message.sender or "")
        for call in message.tool_calls:
            weight += text_weight(call.id) + text_weight(call.name) + text_weight(call.arguments)
        attachments = 0
        for part in message.parts:
            if isinstance(part, TextPart):
                weight += text_weight(part.text)
            elif isinstance(part, ProviderStatePart):
                weight += len(json.dumps(part.data, default=str))  # ASCII: non-ASCII escaped
            else:  # a picture or file, sent as a placeholder
                attachments += 1
        return self.tokens_for(weight, extra_tokens=attachments * self.attachment_tokens)

    def tools_tokens(self, tools: Sequence[ToolSpec]) -> int:
        """What the tool definitions cost: each as the JSON a provider would send."""
        return sum(
            self.tokens_for(
                len(
                    json.dumps(
                        {
                            "name": tool.wire_name,
                            "description": tool.description,
                            "parameters": tool.parameters,
                        },
                        default=str,
                    )
                )
            )
            for tool in tools
        )

    def request_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
        """The estimate for a whole request: its messages and its tools."""
        return sum(map(self.message_tokens, messages)) + self.tools_tokens(tools)

    def observe(self, estimated_tokens: int, input_tokens: int | None) -> None:
        """Correct `scale` by a request estimated at `estimated_tokens` that the provider
        counted as `input_tokens`. Ignored when the provider gave no count, or the request
        was too small for its fixed overhead not to dominate."""
        if not input_tokens or input_tokens <= 0 or estimated_tokens < 200:
            return
        target = self.scale * input_tokens / estimated_tokens
        scale = self.scale + self.smoothing * (target - self.scale)
        self.scale = min(self.max_scale, max(self.min_scale, scale))


@dataclass(slots=True)
class FittedRequest:
    """What `ContextBudget.fit` chose to send. The messages go in the ChatRequest as they are."""

    messages: list[Message]
    tokens: int
    """The estimate for the request (messages and tools); at most the budget."""
    summarized: int = 0
    """How many messages at the start of the conversation the summary stands in for."""
    omitted: int = 0
    """How many messages were left out with no summary (a note says so)."""
    cut_outputs: int = 0
    """How many tool outputs were cut or clipped."""


class ContextBudget:
    """Fits conversations into `max_tokens` per request; one per agent, shared by sessions.

    `max_tokens` may be changed between requests (a model switch: `resolve_budget` again).
    `summary_share` is the part of the budget a summary may take.
    """

    def __init__(
        self,
        max_tokens: int,
        *,
        estimator: TokenEstimator | None = None,
        summary_share: float = 0.25,
    ) -> None:
        self.max_tokens = max_tokens
        self.estimator = estimator if estimator is not None else TokenEstimator()
        self.summary_share = summary_share

    def refuse_oversized(
        self, system: Message, message: Message, tools: Sequence[ToolSpec] = ()
    ) -> None:
        """ContextTooLongError when `message` cannot fit a request even alone beside the
        system prompt and the tools: checked before the message is stored, so a refused
        message does not stay in the session (to be summarised at the next turn)."""
        needed = self.estimator.request_tokens([system, message], tools)
        if needed > self.max_tokens:
            raise ContextTooLongError(needed, self.max_tokens)

    def observe(self, fitted: FittedRequest, usage: Usage | None) -> None:
        """Tell the estimator what the provider counted for the request `fitted` made."""
        self.estimator.observe(fitted.tokens, usage.input_tokens if usage is not None else None)

    async def fit(
        self,
        session_id: str,
        system: Message,
        conversation: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        provider: LlmProvider,
        memory: MemoryStore,
    ) -> FittedRequest:
        """The messages to send, `system` first, within the budget (see the module's doc).

        `conversation` is the session's stored history (repaired, as the agent sends it) and
        this turn's messages: the newest user message and any rounds since. A stored
        summary's `covers` counts messages of this list from its start. Raises
        ContextTooLongError when the newest user message cannot be sent whole; a provider
        failure while summarizing is logged and worked around, not raised.
        """
        messages = [system, *conversation]
        tokens = self.estimator.request_tokens(messages, tools)
        if tokens <= self.max_tokens:
            return FittedRequest(messages, tokens)
        fitting = _Fitting(self, session_id, system, list(conversation), tools)
        return await fitting.run(provider, memory)


class _Fitting:
    """One call of ContextBudget.fit: the costs it computed and the choices it made."""

    def __init__(
        self,
        budget: ContextBudget,
        session_id: str,
        system: Message,
        conversation: list[Message],
        tools: Sequence[ToolSpec],
    ) -> None:
        self.limit = budget.max_tokens
        self.estimator = estimator = budget.estimator
        self.summary_allowance = max(1, int(budget.max_tokens * budget.summary_share))
        self.session_id = session_id
        self.system = system
        self.conversation = conversation
        self.tools = tools
        self.system_tokens = estimator.message_tokens(system)
        self.fixed = self.system_tokens + estimator.tools_tokens(tools)
        self.costs = [estimator.message_tokens(message) for message in conversation]

        count = len(conversation)
        users = [i for i, message in enumerate(conversation) if message.role == "user"]
        self.newest_user = users[-1] if users else None
        self.turn_start = self.newest_user + 1 if self.newest_user is not None else 0
        # The results of this turn's latest round: the tool messages ending the conversation.
        latest = count
        while latest > self.turn_start and conversation[latest - 1].role == "tool":
            latest -= 1
        self.latest_round = latest
        # Possible splits: the kept messages start at a user message, never at index 0.
        self.splits = [i for i in users if i > 0]

        self.cuts: list[Message | None] = [None] * count
        savings = [0] * count
        for i in range(latest):
            message = conversation[i]
            if message.role == "tool":
                cut = message.copy()
                cut.content = f"[output cut to save context: {len(message.content):,} characters]"
                saved = self.costs[i] - estimator.message_tokens(cut)
                if saved > 0:
                    self.cuts[i] = cut
                    savings[i] = saved
        self.savings = savings
        # smallest[i]: the least messages i.. can cost once every old output is cut.
        self.smallest = [0] * (count + 1)
        for i in range(count - 1, -1, -1):
            self.smallest[i] = self.smallest[i + 1] + self.costs[i] - savings[i]

    async def run(self, provider: LlmProvider, memory: MemoryStore) -> FittedRequest:
        costs, limit = self.costs, self.limit
        if self.newest_user is not None:
            needed = self.fixed + costs[self.newest_user]
            if needed > limit:
                raise ContextTooLongError(needed, limit)
        if self.fixed + self.smallest[0] <= limit:
            return self.assemble(0, None, 0)

        stored = await memory.load_summary(self.session_id)
        base, summary_text = 0, None
        if stored is not None and stored.covers in self.splits and stored.text.strip():
            base, summary_text = stored.covers, self.clip_summary(stored.text)
            if self.fixed + self.summary_cost(summary_text) + self.smallest[base] <= limit:
                return self.assemble(base, summary_text, base)

        split = self.choose_split(base)
        if split <= base:
            return self.assemble(base, summary_text, base)
        if self.limit - self.fixed - self.smallest[split] < MIN_SUMMARY_TOKENS:
            # A summary would find no room beside this turn: leave the older messages out
            # rather than pay for a summary that cannot be sent.
            return self.assemble(split, None, 0)
        covers, summary_text = await self.summarize(provider, memory, base, split, summary_text)
        return self.assemble(split, summary_text, covers)

    def choose_split(self, base: int) -> int:
        """Where the kept messages start when the summary is to cover more than `base`.

        It folds in enough that the kept messages take at most half of the room left beside
        the summary, so the next few turns reuse the summary rather than make another.
        """
        room = self.limit - self.fixed - self.summary_allowance
        later = [i for i in self.splits if i > base]
        for target in (room // 2, room):
            for split in later:
                if self.smallest[split] <= target:
                    return split
        return later[-1] if later else base

    def clip_summary(self, text: str) -> str:
        """`text` cut so the summary adds at most its allowance to the system message."""
        overhead = text_weight(_summary_block(""))
        tokens = self.summary_allowance - 1
        weight = math.floor(tokens / self.estimator.scale * self.estimator.chars_per_token)
        return _clip(text.strip(), max(0, weight - overhead - 1), "summary")

    def summary_cost(self, summary_text: str) -> int:
        """What the summary adds to the system message."""
        return self.estimator.message_tokens(self.head(summary_text, 0)) - self.system_tokens

    def head(self, summary_text: str | None, omitted: int) -> Message:
        """The system message, with the summary and the note on omitted messages if any."""
        extra = ""
        if summary_text:
            extra += _summary_block(summary_text)
        if omitted:
            extra += f"\n\n[{omitted} earlier messages omitted]"
        if not extra:
            return self.system
        head = self.system.copy()
        head.content += extra
        return head

    async def summarize(
        self,
        provider: LlmProvider,
        memory: MemoryStore,
        start: int,
        end: int,
        previous: str | None,
    ) -> tuple[int, str | None]:
        """Fold messages start..end into the summary, in chunks that each fit the budget.

        Saves the summary each time a chunk ends where kept messages may start (at a user
        message). Returns how many messages the last saved summary covers, and its text.
        """
        estimator, conversation = self.estimator, self.conversation
        words = max(30, self.summary_allowance * 3 // 5)
        instruction = Message("system", SUMMARY_INSTRUCTION.format(words=words))
        room = self.limit - estimator.message_tokens(instruction)
        covered, saved, text = start, previous, previous
        index = start
        while index < end:
            intro = f"Previous summary:\n{text}\n\n" if text else ""
            intro += "Messages to fold into the summary:\n\n"
            space = estimator.weight_within(room) - text_weight(intro)
            if space < 200:
                logger.warning(
                    "session %s: no room to summarize within %d tokens", self.session_id, room
                )
                break
            lines: list[str] = []
            used = 0
            while index < end:
                line = _transcript_line(conversation[index])
                weight = text_weight(line)
                if used + weight > space:
                    if lines:
                        break
                    line = _clip(line, space, "message")
                    weight = text_weight(line)
                lines.append(line)
                used += weight
                index += 1
            request = ChatRequest([instruction, Message("user", intro + "".join(lines))])
            try:
                response = await provider.complete(request)
            except ProviderError as exc:
                logger.warning("session %s: summarizing failed: %s", self.session_id, exc)
                break
            if response.usage is not None:
                estimator.observe(
                    estimator.request_tokens(request.messages), response.usage.input_tokens
                )
            reply = response.message.content.strip()
            if not reply:
                logger.warning("session %s: the summary came back empty", self.session_id)
                break
            text = self.clip_summary(reply)
            if index < len(conversation) and conversation[index].role == "user":
                covered, saved = index, text
                await memory.save_summary(
                    self.session_id, Summary(covered, text, datetime.now(UTC))
                )
        return covered, saved

    def assemble(self, split: int, summary_text: str | None, covers: int) -> FittedRequest:
        """The request from `split` on, under the summary of the first `covers` messages,
        shrunk step by step until it fits."""
        limit, estimator, conversation = self.limit, self.estimator, self.conversation
        count = len(conversation)
        chosen: dict[int, Message] = {i: conversation[i] for i in range(split, count)}
        costs = {i: self.costs[i] for i in range(split, count)}
        tail = sum(costs.values()) + self.fixed - self.system_tokens
        omitted = split - covers if summary_text else split
        head = self.head(summary_text, omitted)
        total = tail + estimator.message_tokens(head)
        cut_outputs = 0

        # 1. Old tool outputs, oldest first.
        for i in range(split, count):
            if total <= limit:
                break
            cut = self.cuts[i]
            if cut is not None:
                chosen[i], costs[i] = cut, self.costs[i] - self.savings[i]
                tail -= self.savings[i]
                total -= self.savings[i]
                cut_outputs += 1
        # 2. A shorter summary, down to none (its messages then count as omitted).
        if total > limit and summary_text:
            keep = text_weight(summary_text) - estimator.weight_for(total - limit) - 16
            if keep < estimator.weight_for(MIN_SUMMARY_TOKENS) // 2:
                summary_text, omitted = None, split
            else:
                summary_text = _clip(summary_text, keep, "summary")
            head = self.head(summary_text, omitted)
            total = tail + estimator.message_tokens(head)
        # 3. This turn's older rounds, a call always with its results.
        for group in _rounds(conversation, max(split, self.turn_start), self.latest_round):
            if total <= limit:
                break
            for i in group:
                tail -= costs.pop(i)
                del chosen[i]
            omitted += len(group)
            head = self.head(summary_text, omitted)
            total = tail + estimator.message_tokens(head)
        # 4. The latest round's outputs, clipped.
        for i in range(max(split, self.latest_round), count):
            if total <= limit:
                break
            clipped = chosen[i].copy()
            keep = text_weight(clipped.content) - estimator.weight_for(total - limit) - 64
            clipped.content = _clip(clipped.content, max(0, keep), "output")
            cost = estimator.message_tokens(clipped)
            tail += cost - costs[i]
            total += cost - costs[i]
            chosen[i], costs[i] = clipped, cost
            cut_outputs += 1

        messages = [head, *chosen.values()]
        tokens = estimator.request_tokens(messages, self.tools)
        if tokens > limit:
            raise ContextTooLongError(tokens, limit, tool_round=self.latest_round < count)
        summarized = covers if summary_text else 0
        return FittedRequest(messages, tokens, summarized, omitted, cut_outputs)


def _summary_block(text: str) -> str:
    return f"\n\n{SUMMARY_HEADING}\n{text}"


def _rounds(conversation: Sequence[Message], start: int, latest_round: int) -> list[list[int]]:
    """The messages of this turn before its latest round, from `start`, as groups of indices:
    each assistant message with the tool results that answer it."""
    end = len(conversation)
    if latest_round < end:
        end = latest_round - 1  # the latest round's call, kept with its results
    groups: list[list[int]] = []
    for i in range(start, end):
        if conversation[i].role == "tool" and groups:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _transcript_line(message: Message) -> str:
    """A message as a line of the transcript a summary is made from."""
    who = "tool result" if message.role == "tool" else message.role
    if message.sender:
        who += f" ({message.sender})"
    pieces = [message.content] if message.content else []
    for part in message.parts:
        if isinstance(part, TextPart):
            pieces.append(part.text)
        elif isinstance(part, ImagePart | FilePart):
            pieces.append(f"[{part.kind}: {part.name or part.path}]")
    pieces.extend(f"[calls {call.name} {call.arguments}]" for call in message.tool_calls)
    return f"{who}: {' '.join(pieces)}\n\n"


def _clip(text: str, max_weight: int, what: str) -> str:
    """`text` weighing at most `max_weight` (`text_weight`; for ASCII text, its length): its
    start and end kept, the middle replaced by a marker saying how much was cut."""
    if text_weight(text) <= max_weight:
        return text
    marker = f"\n[{what} cut to save context: {len(text):,} characters]\n"
    room = max_weight - len(marker)
    if room <= 0:
        return text[: _prefix_within(text, max_weight)]
    head = _prefix_within(text, room * 2 // 3)
    tail = _prefix_within(text[::-1], room - room * 2 // 3)
    return text[:head] + marker + text[len(text) - tail :]
