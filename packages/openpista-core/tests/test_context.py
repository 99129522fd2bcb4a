"""The context budget: no request over budget, old outputs cut first, summaries made once and
reused, tool calls kept with their results, and the stored history left whole."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from openpista.core.context import (
    DEFAULT_CONTEXT_TOKENS,
    SUMMARY_HEADING,
    ContextBudget,
    ContextTooLongError,
    FittedRequest,
    TokenEstimator,
    context_window,
    resolve_budget,
    text_weight,
)
from openpista.core.errors import OpenpistaError, ProviderError
from openpista.core.models import (
    FilePart,
    ImagePart,
    Message,
    ProviderStatePart,
    Summary,
    TextPart,
    ToolCall,
)
from openpista.core.provider import ChatRequest, ChatResponse, ToolSpec, Usage
from openpista.core.testing import InMemoryStore, ScriptedProvider, text_reply

SYSTEM = Message("system", "You are openpista, a helpful assistant.")
SHELL = ToolSpec(
    "system.run",
    "system_run",
    "Run a shell command.",
    {"type": "object", "properties": {"command": {"type": "string"}}},
)


def is_summary_request(request: ChatRequest) -> bool:
    return request.messages[0].content.startswith("You compact the conversation")


class Model:
    """A ScriptedProvider that answers summarization requests with "summary N" (or what a
    test asks for) and every other request with a short reply."""

    def __init__(self, *, summaries: Sequence[str | BaseException] = (), turns: int = 200) -> None:
        self.summaries = list(summaries)
        self.made = 0

        async def answer(request: ChatRequest) -> ChatResponse:
            if is_summary_request(request):
                self.made += 1
                summary = self.summaries.pop(0) if self.summaries else f"summary {self.made}"
                if isinstance(summary, BaseException):
                    raise summary
                return text_reply(summary)
            return text_reply("Noted.")

        self.provider = ScriptedProvider([answer] * turns)

    @property
    def requests(self) -> list[ChatRequest]:
        return self.provider.requests

    def summary_requests(self) -> list[ChatRequest]:
        return [r for r in self.requests if is_summary_request(r)]

    def chat_requests(self) -> list[ChatRequest]:
        return [r for r in self.requests if not is_summary_request(r)]


async def new_session(memory: InMemoryStore, history: Sequence[Message] = ()) -> str:
    session = await memory.create_session("test:local")
    await memory.append_messages(session.id, history)
    return session.id


async def converse(
    budget: ContextBudget,
    model: Model,
    memory: InMemoryStore,
    session_id: str,
    text: str,
    tools: Sequence[ToolSpec] = (),
) -> FittedRequest:
    """One turn as the agent runs it: store the user message, fit, ask, observe, store."""
    history = await memory.load_messages(session_id)
    user = Message("user", text)
    await memory.append_messages(session_id, [user])
    fitted = await budget.fit(
        session_id, SYSTEM, [*history, user], tools, provider=model.provider, memory=memory
    )
    response = await model.provider.complete(ChatRequest(fitted.messages, list(tools)))
    budget.observe(fitted, response.usage)
    await memory.append_messages(session_id, [response.message])
    return fitted


def raw_tokens(request: ChatRequest) -> float:
    """Every character a request carries, at 4 a token."""
    chars = 0
    for message in request.messages:
        chars += len(message.content)
        chars += sum(len(call.arguments) + len(call.name) for call in message.tool_calls)
    return chars / 4


def assert_pairs_whole(messages: Sequence[Message]) -> None:
    """Every tool call is answered right after it, and every tool result answers one."""
    waiting: list[str] = []
    for message in messages:
        if message.role == "tool":
            assert message.tool_call_id in waiting, f"orphan result {message.tool_call_id}"
            waiting.remove(message.tool_call_id)
            continue
        assert not waiting, f"calls {waiting} separated from their results"
        waiting = [call.id for call in message.tool_calls]
    assert not waiting


def tool_round(call_id: str, output: str, command: str = "ls") -> list[Message]:
    call = ToolCall(call_id, "system.run", json.dumps({"command": command}))
    return [
        Message("assistant", tool_calls=[call]),
        Message("tool", output, tool_call_id=call_id),
    ]


def turn(number: int, size: int = 2000) -> str:
    label = f"turn-{number:02d} "
    return label + "x" * (size - len(label))


# --- the acceptance scenario --------------------------------------------------------------


async def test_twenty_long_turns_keep_answering_within_3000_tokens() -> None:
    memory, model = InMemoryStore(), Model()
    budget = ContextBudget(3000)
    session_id = await new_session(memory)

    for number in range(20):
        fitted = await converse(budget, model, memory, session_id, turn(number), [SHELL])
        assert fitted.messages[-1].content == turn(number)  # the newest message, whole

    for request in model.requests:
        assert budget.estimator.request_tokens(request.messages, request.tools) <= 3000
        assert raw_tokens(request) <= 3000
    assert len(model.chat_requests()) == 20
    stored = await memory.load_messages(session_id)
    assert len(stored) == 40
    assert [m.content for m in stored[::2]] == [turn(n) for n in range(20)]


async def test_each_message_is_summarized_once_and_summaries_are_reused() -> None:
    memory, model = InMemoryStore(), Model()
    budget = ContextBudget(3000)
    session_id = await new_session(memory)

    for number in range(20):
        await converse(budget, model, memory, session_id, turn(number))

    folds = model.summary_requests()
    assert 0 < len(folds) < 10  # most turns reuse the stored summary
    transcripts = "".join(r.messages[1].content for r in folds)
    for number in range(20):
        assert transcripts.count(f"turn-{number:02d} ") <= 1
    # Each fold after the first starts from the previous summary.
    for earlier, later in itertools.pairwise(folds):
        assert "Previous summary:\nsummary" in later.messages[1].content
        assert earlier.messages[1].content != later.messages[1].content
    summary = await memory.load_summary(session_id)
    assert summary is not None
    assert summary.text == f"summary {model.made}"
    assert summary.covers % 2 == 0  # it ends before a user message


# --- fitting without a summary ------------------------------------------------------------


async def test_a_conversation_that_fits_is_sent_as_it_is() -> None:
    memory, model = InMemoryStore(), Model()
    session_id = await new_session(memory)
    conversation = [Message("user", "hi"), Message("assistant", "hello"), Message("user", "ls")]

    fitted = await ContextBudget(1000).fit(
        session_id, SYSTEM, conversation, [SHELL], provider=model.provider, memory=memory
    )

    assert fitted.messages == [SYSTEM, *conversation]
    assert all(a is b for a, b in zip(fitted.messages, [SYSTEM, *conversation], strict=True))
    assert (fitted.summarized, fitted.omitted, fitted.cut_outputs) == (0, 0, 0)
    assert model.requests == []


async def test_old_tool_outputs_are_cut_oldest_first_before_any_summary() -> None:
    history = [
        Message("user", "what is in /etc?"),
        *tool_round("c1", "a" * 6000),
        Message("assistant", "Lots of files."),
        Message("user", "and /var?"),
        *tool_round("c2", "b" * 2000),
        Message("assistant", "Logs, mostly."),
    ]
    memory, model = InMemoryStore(), Model()
    session_id = await new_session(memory, history)
    newest = Message("user", "thanks")
    conversation = [*history, newest]

    fitted = await ContextBudget(1500).fit(
        session_id, SYSTEM, conversation, [], provider=model.provider, memory=memory
    )

    assert model.requests == []  # no summary was needed
    assert fitted.cut_outputs == 1
    assert fitted.messages[3].content == "[output cut to save context: 6,000 characters]"
    assert fitted.messages[7].content == "b" * 2000  # the newer output still fitted
    assert fitted.tokens <= 1500
    assert history[2].content == "a" * 6000  # the caller's messages are untouched
    assert (await memory.load_messages(session_id))[2].content == "a" * 6000


async def test_the_latest_rounds_outputs_are_kept_while_older_ones_are_cut() -> None:
    earlier = [Message("user", "look"), *tool_round("c1", "a" * 5000), Message("assistant", "ok")]
    this_turn = [Message("user", "look again"), *tool_round("c2", "b" * 3000)]
    memory, model = InMemoryStore(), Model()
    session_id = await new_session(memory, [*earlier, *this_turn])

    fitted = await ContextBudget(1200).fit(
        session_id, SYSTEM, [*earlier, *this_turn], [], provider=model.provider, memory=memory
    )

    assert fitted.messages[3].content.startswith("[output cut to save context")
    assert fitted.messages[-1].content == "b" * 3000
    assert model.requests == []


async def test_a_message_too_long_for_the_budget_is_refused_before_sending() -> None:
    memory, model = InMemoryStore(), Model()
    session_id = await new_session(memory)

    with pytest.raises(ContextTooLongError) as caught:
        await ContextBudget(1000).fit(
            session_id,
            SYSTEM,
            [Message("user", "y" * 8000)],
            [SHELL],
            provider=model.provider,
            memory=memory,
        )

    assert isinstance(caught.value, OpenpistaError)
    assert "too long for a request of at most 1,000 tokens" in str(caught.value)
    assert "[agent] context_tokens" in str(caught.value)
    assert model.requests == []


# --- summaries ----------------------------------------------------------------------------


async def test_a_stored_summary_is_reused_without_asking_the_model() -> None:
    history = [m for n in range(6) for m in (Message("user", turn(n)), Message("assistant", "ok"))]
    memory, model = InMemoryStore(), Model()
    session_id = await new_session(memory, history)
    await memory.save_summary(session_id, Summary(8, "they talked of x", datetime.now(UTC)))
    newest = Message("user", "next")

    fitted = await ContextBudget(3000).fit(
        session_id, SYSTEM, [*history, newest], [], provider=model.provider, memory=memory
    )

    assert model.requests == []
    assert fitted.summarized == 8
    assert fitted.messages[0].content == (
        f"{SYSTEM.content}\n\n{SUMMARY_HEADING}\nthey talked of x"
    )
    assert fitted.messages[1:] == [*history[8:], newest]
    assert SYSTEM.content == "You are openpista, a helpful assistant."


async def test_a_new_summary_folds_the_old_one_with_the_next_messages_only() -> None:
    history = [m for n in range(10) for m in (Message("user", turn(n)), Message("assistant", "ok"))]
    memory, model = InMemoryStore(), Model(summaries=["the newer summary"])
    session_id = await new_session(memory, history)
    await memory.save_summary(session_id, Summary(8, "the older summary", datetime.now(UTC)))

    fitted = await ContextBudget(3000).fit(
        session_id,
        SYSTEM,
        [*history, Message("user", "next")],
        [],
        provider=model.provider,
        memory=memory,
    )

    (fold,) = model.requests
    assert fold.tools == []
    assert fold.messages[1].content.startswith("Previous summary:\nthe older summary")
    assert "turn-03" not in fold.messages[1].content
    assert "turn-04" in fold.messages[1].content
    summary = await memory.load_summary(session_id)
    assert summary is not None
    assert summary.text == "the newer summary"
    assert summary.covers == fitted.summarized > 8
    assert history[summary.covers].role == "user"
    assert fitted.tokens <= 3000


async def test_summarizing_a_long_head_is_chunked_so_each_request_fits() -> None:
    history = [m for n in range(16) for m in (Message("user", turn(n)), Message("assistant", "ok"))]
    memory, model = InMemoryStore(), Model()
    session_id = await new_session(memory, history)
    budget = ContextBudget(3000)

    fitted = await budget.fit(
        session_id,
        SYSTEM,
        [*history, Message("user", "next")],
        [],
        provider=model.provider,
        memory=memory,
    )

    folds = model.summary_requests()
    assert len(folds) > 1
    for request in folds:
        assert budget.estimator.request_tokens(request.messages, request.tools) <= 3000
    assert "Previous summary:\nsummary 1" in folds[1].messages[1].content
    assert fitted.tokens <= 3000
    assert fitted.omitted == 0


async def test_a_summary_that_comes_back_too_long_is_cut() -> None:
    history = [m for n in range(8) for m in (Message("user", turn(n)), Message("assistant", "ok"))]
    memory, model = InMemoryStore(), Model(summaries=["s" * 20_000] * 5)
    session_id = await new_session(memory, history)
    budget = ContextBudget(3000)

    fitted = await budget.fit(
        session_id,
        SYSTEM,
        [*history, Message("user", "next")],
        [],
        provider=model.provider,
        memory=memory,
    )

    summary = await memory.load_summary(session_id)
    assert summary is not None
    assert "summary cut to save context: 20,000 characters" in summary.text
    assert len(summary.text) <= 3000  # a quarter of the budget, at 4 characters a token
    added = budget.estimator.message_tokens(fitted.messages[0]) - (
        budget.estimator.message_tokens(SYSTEM)
    )
    assert added <= 750
    assert fitted.tokens <= 3000


async def test_a_failure_while_summarizing_leaves_the_oldest_turns_out_instead() -> None:
    history = [m for n in range(8) for m in (Message("user", turn(n)), Message("assistant", "ok"))]
    failure = ProviderError("rate limited", provider="scripted", retryable=True)
    memory, model = InMemoryStore(), Model(summaries=[failure])
    session_id = await new_session(memory, history)
    budget = ContextBudget(3000)
    conversation = [*history, Message("user", "next")]

    fitted = await budget.fit(
        session_id, SYSTEM, conversation, [], provider=model.provider, memory=memory
    )

    assert fitted.omitted > 0
    assert fitted.summarized == 0
    assert fitted.messages[0].content.endswith(f"[{fitted.omitted} earlier messages omitted]")
    assert fitted.messages[1].role == "user"
    assert fitted.messages[-1].content == "next"
    assert fitted.tokens <= 3000
    assert await memory.load_summary(session_id) is None
    assert len(await memory.load_messages(session_id)) == 16

    # The next request tries again, and this time the model answers.
    await budget.fit(session_id, SYSTEM, conversation, [], provider=model.provider, memory=memory)
    assert await memory.load_summary(session_id) is not None


async def test_a_summary_that_no_longer_matches_the_history_is_not_used() -> None:
    history = [m for n in range(8) for m in (Message("user", turn(n)), Message("assistant", "ok"))]
    memory, model = InMemoryStore(), Model()
    session_id = await new_session(memory, history)
    # covers = 5 would start the kept messages at an assistant message.
    await memory.save_summary(session_id, Summary(5, "stale", datetime.now(UTC)))

    fitted = await ContextBudget(3000).fit(
        session_id,
        SYSTEM,
        [*history, Message("user", "next")],
        [],
        provider=model.provider,
        memory=memory,
    )

    assert "stale" not in fitted.messages[0].content
    assert fitted.summarized > 0
    assert "Previous summary" not in model.requests[0].messages[1].content
    assert "turn-00" in model.requests[0].messages[1].content
    assert all("stale" not in r.messages[1].content for r in model.requests)


# --- tool calls ---------------------------------------------------------------------------


async def test_tool_calls_stay_with_their_results_in_every_request() -> None:
    memory, model = InMemoryStore(), Model()
    budget = ContextBudget(2500)
    session_id = await new_session(memory)

    for number in range(12):
        rounds = tool_round(f"t{number}", "o" * 3000, command="x" * 300)
        user = Message("user", turn(number, 600))
        await memory.append_messages(session_id, [user, *rounds])
        conversation = await memory.load_messages(session_id)
        fitted = await budget.fit(
            session_id, SYSTEM, conversation, [SHELL], provider=model.provider, memory=memory
        )
        await model.provider.complete(ChatRequest(fitted.messages, [SHELL]))
        await memory.append_messages(session_id, [Message("assistant", "done")])
        assert fitted.messages[-1].content == "o" * 3000  # the latest round, whole
        assert fitted.messages[-3] == user

    for request in model.chat_requests():
        assert_pairs_whole(request.messages)
        assert request.messages[1].role == "user"
        assert budget.estimator.request_tokens(request.messages, request.tools) <= 2500
    assert len(await memory.load_messages(session_id)) == 48


async def test_this_turns_older_rounds_are_left_out_when_they_outgrow_the_budget() -> None:
    rounds = [m for n in range(10) for m in tool_round(f"r{n}", "ok", command="c" * 800)]
    conversation = [Message("user", "do many things"), *rounds]
    memory, model = InMemoryStore(), Model()
    session_id = await new_session(memory, conversation)

    fitted = await ContextBudget(1000).fit(
        session_id, SYSTEM, conversation, [], provider=model.provider, memory=memory
    )

    assert fitted.tokens <= 1000
    assert fitted.omitted > 0 and fitted.omitted % 2 == 0
    assert f"[{fitted.omitted} earlier messages omitted]" in fitted.messages[0].content
    assert fitted.messages[1].content == "do many things"
    assert fitted.messages[-2:] == rounds[-2:]
    assert_pairs_whole(fitted.messages)


async def test_the_latest_rounds_output_is_clipped_only_when_nothing_else_fits() -> None:
    conversation = [Message("user", "read the log"), *tool_round("r1", "b" * 20_000)]
    memory, model = InMemoryStore(), Model()
    session_id = await new_session(memory, conversation)

    fitted = await ContextBudget(1000).fit(
        session_id, SYSTEM, conversation, [], provider=model.provider, memory=memory
    )

    assert fitted.tokens <= 1000
    assert fitted.cut_outputs == 1
    output = fitted.messages[-1].content
    assert output.startswith("bbb") and output.endswith("bbb")
    assert "[output cut to save context: 20,000 characters]" in output
    assert conversation[-1].content == "b" * 20_000


async def test_a_tool_call_too_long_for_the_budget_is_refused() -> None:
    conversation = [Message("user", "write it"), *tool_round("r1", "done", command="w" * 8000)]
    memory, model = InMemoryStore(), Model()
    session_id = await new_session(memory, conversation)

    with pytest.raises(ContextTooLongError, match="latest tool round is too long"):
        await ContextBudget(1000).fit(
            session_id, SYSTEM, conversation, [], provider=model.provider, memory=memory
        )
    assert model.requests == []


async def assert_fits_or_is_refused(
    history: list[Message], limit: int
) -> tuple[InMemoryStore, str] | None:
    """`history` fitted to `limit`, or refused: when it fits, the newest user message is in,
    the estimate is exact and within the limit, pairs are whole, and so is every summary
    request. Returns the store and session it used (None when refused)."""
    memory, model = InMemoryStore(), Model()
    session_id = await new_session(memory, history)
    budget = ContextBudget(limit)

    try:
        fitted = await budget.fit(
            session_id, SYSTEM, history, [SHELL], provider=model.provider, memory=memory
        )
    except ContextTooLongError:
        return None
    newest = max(i for i, m in enumerate(history) if m.role == "user")
    assert history[newest] in fitted.messages
    assert fitted.tokens <= limit
    assert fitted.tokens == budget.estimator.request_tokens(fitted.messages, [SHELL])
    assert_pairs_whole(fitted.messages)
    for request in model.requests:
        assert budget.estimator.request_tokens(request.messages, request.tools) <= limit
    return memory, session_id


@pytest.mark.parametrize("seed", range(30))
async def test_random_conversations_fit_or_are_refused(seed: int) -> None:
    rng = random.Random(seed)
    history: list[Message] = []
    for number in range(rng.randint(1, 25)):
        history.append(Message("user", turn(number, rng.randint(10, 3000))))
        for r in range(rng.randint(0, 3)):
            history += tool_round(f"{number}-{r}", "o" * rng.randint(0, 6000), "c" * 50)
        history.append(Message("assistant", "a" * rng.randint(1, 800)))
    history.pop()  # the turn in progress: ends with its user message or a tool round
    limit = rng.choice([800, 1500, 3000, 6000])
    used = await assert_fits_or_is_refused(history, limit)
    if used is not None:
        memory, session_id = used
        assert len(await memory.load_messages(session_id)) == len(history)


# --- the estimate -------------------------------------------------------------------------


def test_the_estimate_counts_calls_parts_and_tools() -> None:
    estimator = TokenEstimator()
    assert estimator.message_tokens(Message("user", "x" * 400)) == 104
    call = ToolCall("id", "system.run", "a" * 390)
    assert estimator.message_tokens(Message("assistant", tool_calls=[call])) == 105
    picture = ImagePart("media/a.png", "image/png", size=5_000_000)
    document = FilePart("media/a.pdf", "application/pdf", size=9_000_000)
    # Sent as placeholder lines, not megabytes.
    assert estimator.message_tokens(Message("user", parts=[picture, document])) == 4 + 2 * 32
    assert estimator.message_tokens(Message("user", parts=[TextPart("t" * 40)])) == 14
    state = ProviderStatePart("openai", {"encrypted": "e" * 100})
    assert estimator.message_tokens(Message("assistant", parts=[state])) == 4 + 30
    spec_json = json.dumps(
        {"name": SHELL.wire_name, "description": SHELL.description, "parameters": SHELL.parameters}
    )
    assert estimator.tools_tokens([SHELL]) == -(-len(spec_json) // 4) + 4


def test_reported_usage_corrects_the_estimate_smoothly_and_within_bounds() -> None:
    estimator = TokenEstimator()
    before = estimator.message_tokens(Message("user", "z" * 4000))

    estimator.observe(1000, 2000)  # the provider counted twice as many
    assert 1.0 < estimator.scale < 2.0
    assert estimator.message_tokens(Message("user", "z" * 4000)) > before

    for _ in range(50):
        estimator.observe(1000, 100_000)
    assert estimator.scale == 4.0
    for _ in range(50):
        estimator.observe(1000, 10)
    assert estimator.scale == 0.8

    estimator.scale = 1.0
    estimator.observe(1000, None)
    estimator.observe(1000, 0)
    estimator.observe(50, 500)  # too small a request to learn from
    assert estimator.scale == 1.0


def test_the_budget_passes_reported_usage_to_its_estimator() -> None:
    budget = ContextBudget(3000)
    fitted = FittedRequest([SYSTEM], tokens=1000)
    budget.observe(fitted, None)
    budget.observe(fitted, Usage(0, 10))
    assert budget.estimator.scale == 1.0
    budget.observe(fitted, Usage(1500, 10))
    assert budget.estimator.scale > 1.0


# --- text that is not ASCII --------------------------------------------------------------


def cjk_turn(number: int, size: int) -> str:
    label = f"turn-{number:02d} "
    return label + "中" * (size - len(label))


def char_tokens(char: str) -> float:
    if char.isascii():
        return 0.25
    if "\u3000" <= char <= "\ud7ff":  # CJK, kana, Hangul
        return 1
    return 2 if ord(char) > 0xFFFF else 0.5


def script_tokens(request: ChatRequest) -> float:
    """What a request's text costs by script, character by character: near what a real
    tokenizer counts, and far more than 4 characters a token for CJK text."""
    tokens = 0.0
    for message in request.messages:
        for text in [message.content, *(call.arguments for call in message.tool_calls)]:
            tokens += sum(map(char_tokens, text))
    return tokens


@pytest.mark.parametrize(
    ("text", "weight"),
    [
        ("", 0),
        ("plain ASCII, as before", 22),
        ("é", 2),  # 2 bytes in UTF-8: half a token
        ("Привет", 12),
        ("Γειά", 8),
        ("مرحبا", 10),
        ("中文", 8),  # 3 bytes: a token each
        ("ひらがなカタカナ", 32),
        ("한국어", 12),
        ("नमस्ते", 24),
        ("“quoted” — …", 4 + 6 + 4 + 1 + 4 + 1 + 4),
        ("😀", 8),  # 4 bytes: two tokens
        ("👍🏽", 16),
        ("\udcff", 4),  # a lone surrogate (say, from a file name) does not fail
        ("ok, 日本 and Ёж 🚀!", 4 + 8 + 5 + 4 + 1 + 8 + 1),
    ],
)
def test_text_weighs_by_the_length_of_its_utf8_encoding(text: str, weight: int) -> None:
    assert text_weight(text) == weight


def test_an_ascii_estimate_is_unchanged() -> None:
    estimator = TokenEstimator()
    rng = random.Random(7)
    for _ in range(200):
        size = rng.randint(0, 5000)
        text = "".join(rng.choice("abc xyz{}:,\n0123") for _ in range(size))
        assert estimator.message_tokens(Message("user", text)) == -(-size // 4) + 4


def test_non_latin_text_is_estimated_by_script() -> None:
    estimator = TokenEstimator()
    assert estimator.message_tokens(Message("user", "中" * 7200)) == 7200 + 4
    assert estimator.message_tokens(Message("user", "あア한" * 100)) == 300 + 4
    assert estimator.message_tokens(Message("user", "Ж" * 300)) == 150 + 4
    assert estimator.message_tokens(Message("user", "😀" * 10)) == 20 + 4
    mixed = "The plan: 計画を立てる, then Привет 👋"  # 10 + 6*4 + 7 + 6*2 + 1 + 8
    assert estimator.message_tokens(Message("user", mixed)) == -(-62 // 4) + 4
    call = ToolCall("id", "system.run", json.dumps({"command": "echo 中文"}, ensure_ascii=False))
    # id 2 + name 10 + arguments: 20 ASCII characters and 2 CJK (8) = 40, a tenth of 400
    assert estimator.message_tokens(Message("assistant", tool_calls=[call])) == 10 + 4
    assert estimator.message_tokens(Message("user", parts=[TextPart("中" * 40)])) == 44


async def test_a_cjk_message_over_the_budget_is_refused_not_sent() -> None:
    # 7,200 CJK characters once counted as 1,800 tokens and went out whole under 3,000.
    memory, model = InMemoryStore(), Model()
    session_id = await new_session(memory)

    with pytest.raises(ContextTooLongError) as caught:
        await ContextBudget(3000).fit(
            session_id,
            SYSTEM,
            [Message("user", "中" * 7200)],
            [SHELL],
            provider=model.provider,
            memory=memory,
        )

    assert caught.value.needed > 7200
    assert "the message is too long for a request of at most 3,000 tokens" in str(caught.value)
    assert model.requests == []


async def test_a_cjk_conversation_is_compacted_to_fit_3000_tokens() -> None:
    memory, model = InMemoryStore(), Model()
    budget = ContextBudget(3000)
    session_id = await new_session(memory)

    for number in range(12):
        text = cjk_turn(number, 900)
        fitted = await converse(budget, model, memory, session_id, text, [SHELL])
        assert fitted.messages[-1].content == text
        assert fitted.tokens <= 3000

    assert model.summary_requests()
    for request in model.requests:
        assert budget.estimator.request_tokens(request.messages, request.tools) <= 3000
        assert script_tokens(request) <= 3000
    assert len(await memory.load_messages(session_id)) == 24


async def test_a_long_cjk_summary_is_cut_to_its_allowance() -> None:
    history = [
        m for n in range(8) for m in (Message("user", cjk_turn(n, 600)), Message("assistant", "好"))
    ]
    memory, model = InMemoryStore(), Model(summaries=["要約" * 10_000] * 5)
    session_id = await new_session(memory, history)
    budget = ContextBudget(3000)

    fitted = await budget.fit(
        session_id,
        SYSTEM,
        [*history, Message("user", "次")],
        [],
        provider=model.provider,
        memory=memory,
    )

    summary = await memory.load_summary(session_id)
    assert summary is not None
    assert "summary cut to save context: 20,000 characters" in summary.text
    assert summary.text.startswith("要約") and summary.text.endswith("要約")
    added = budget.estimator.message_tokens(fitted.messages[0]) - (
        budget.estimator.message_tokens(SYSTEM)
    )
    assert added <= 750
    assert fitted.tokens <= 3000
    for request in model.requests:
        assert budget.estimator.request_tokens(request.messages) <= 3000


async def test_a_long_non_latin_tool_output_is_clipped_to_fit() -> None:
    output = "ログ 😀 Ошибка " * 2000
    conversation = [Message("user", "read the log"), *tool_round("r1", output)]
    memory, model = InMemoryStore(), Model()
    session_id = await new_session(memory, conversation)

    fitted = await ContextBudget(1000).fit(
        session_id, SYSTEM, conversation, [], provider=model.provider, memory=memory
    )

    assert fitted.tokens <= 1000
    assert fitted.cut_outputs == 1
    clipped = fitted.messages[-1].content
    assert clipped.startswith("ログ 😀") and clipped.endswith("Ошибка ")
    assert f"[output cut to save context: {len(output):,} characters]" in clipped
    assert script_tokens(ChatRequest(fitted.messages)) <= 1000


@pytest.mark.parametrize("seed", range(15))
async def test_random_mixed_script_conversations_fit_or_are_refused(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = ["a", "b", " ", "é", "Ж", "中", "あ", "한", "😀"]

    def text(size: int) -> str:
        return "".join(rng.choices(alphabet, k=size))

    history: list[Message] = []
    for number in range(rng.randint(1, 15)):
        history.append(Message("user", f"turn-{number:02d} " + text(rng.randint(10, 1500))))
        for r in range(rng.randint(0, 2)):
            history += tool_round(f"{number}-{r}", text(rng.randint(0, 3000)), text(30))
        history.append(Message("assistant", text(rng.randint(1, 400))))
    history.pop()
    limit = rng.choice([800, 1500, 3000, 6000])
    await assert_fits_or_is_refused(history, limit)


# --- the budget from the configuration ----------------------------------------------------


@pytest.mark.parametrize(
    ("model", "window"),
    [
        ("gpt-4.1-mini", 1_047_576),
        ("gpt-4o", 128_000),
        ("gpt-4", 8_192),
        ("gpt-5-mini", 400_000),
        ("o4-mini", 200_000),
        ("claude-sonnet-4-5", 200_000),
        ("anthropic/claude-3.5-sonnet", 200_000),
        ("llama3.2:3b", 128_000),
        ("meta-llama/Llama-3.3-70B-Instruct-Turbo", 128_000),
        ("qwen2.5-coder:7b", 32_768),
        ("gemini-2.5-pro", 1_048_576),
        ("some-local-model", None),
    ],
)
def test_known_models_have_their_windows(model: str, window: int | None) -> None:
    assert context_window(model) == window


def test_a_configured_budget_wins_else_the_window_less_room_for_the_reply() -> None:
    assert resolve_budget(3000, "gpt-4.1") == 3000
    assert resolve_budget(0, "claude-sonnet-4-5") == 200_000 - 4096
    assert resolve_budget(0, "gpt-4") == 8192 - 1024
    assert resolve_budget(0, "mystery") == DEFAULT_CONTEXT_TOKENS - 4096
