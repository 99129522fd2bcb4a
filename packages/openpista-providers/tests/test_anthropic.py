"""AnthropicProvider against the fake Anthropic server over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import pytest

from openpista.core.errors import ProviderError
from openpista.core.models import Message, ProviderStatePart, ToolCall
from openpista.core.provider import ChatRequest, LlmProvider, ToolSpec
from openpista.providers.anthropic import AnthropicProvider, default_max_tokens
from openpista.providers.testing import FakeAnthropicReply, FakeAnthropicServer

from .conftest import BROWSER_NAVIGATE, SYSTEM_RUN, Deltas, ask, providers_made

API_KEY = "sk-ant-test-key-123"
OAUTH_TOKEN = "sk-ant-oat01-signed-in-token"

MakeProvider = Callable[..., AnthropicProvider]


@pytest.fixture
def server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer(require_api_key=API_KEY, require_oauth_token=OAUTH_TOKEN) as fake:
        yield fake


@pytest.fixture
async def make_provider(
    server: FakeAnthropicServer, delays: list[float]
) -> AsyncIterator[MakeProvider]:
    """Providers aimed at the fake server; backoff sleeps recorded in `delays`, not waited."""
    async with providers_made(
        AnthropicProvider,
        delays,
        name="anthropic",
        model="claude-sonnet-4-5",
        base_url=server.base_url,
        api_key=API_KEY,
    ) as make:
        yield make


def oauth_headers(beta: str = "oauth-2025-04-20") -> Callable[[], Any]:
    async def auth() -> Mapping[str, str]:
        headers = {"Authorization": f"Bearer {OAUTH_TOKEN}"}
        if beta:
            headers["anthropic-beta"] = beta
        return headers

    return auth


async def test_is_an_llm_provider(make_provider: MakeProvider) -> None:
    provider = make_provider()
    assert isinstance(provider, LlmProvider)
    assert (provider.name, provider.model) == ("anthropic", "claude-sonnet-4-5")


async def test_the_exact_request_system_extracted_results_merged_names_sanitized(
    server: FakeAnthropicServer, make_provider: MakeProvider
) -> None:
    server.queue_text("All done.")
    history = [
        Message(role="system", content="You are openpista."),
        Message(role="system", content="Be brief."),
        Message(role="user", content="List /tmp and open example.org"),
        Message(
            role="assistant",
            content="On it.",
            tool_calls=[
                ToolCall("toolu_01", "system.run", '{"command": "ls /tmp"}'),
                ToolCall("toolu_02", "browser.navigate", '{"url": "https://example.org"}'),
            ],
        ),
        Message(role="tool", content="a.txt\nexit code: 0", tool_call_id="toolu_01"),
        Message(role="tool", content="Example Domain", tool_call_id="toolu_02"),
        Message(role="user", content="And then?"),
        Message(role="user", content="Quickly."),
    ]

    response = await make_provider().complete(
        ChatRequest(messages=history, tools=[SYSTEM_RUN, BROWSER_NAVIGATE])
    )

    assert response.message.content == "All done."
    (record,) = server.recorded
    assert record.path == "/v1/messages"
    assert record.headers["x-api-key"] == API_KEY
    assert record.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in record.headers
    assert record.body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 16384,
        "system": "You are openpista.\n\nBe brief.",
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "List /tmp and open example.org"}],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "On it."},
                    {
                        "type": "tool_use",
                        "id": "toolu_01",
                        "name": "system_run",
                        "input": {"command": "ls /tmp"},
                    },
                    {
                        "type": "tool_use",
                        "id": "toolu_02",
                        "name": "browser_navigate",
                        "input": {"url": "https://example.org"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01",
                        "content": "a.txt\nexit code: 0",
                    },
                    {"type": "tool_result", "tool_use_id": "toolu_02", "content": "Example Domain"},
                    {"type": "text", "text": "And then?"},
                    {"type": "text", "text": "Quickly."},
                ],
            },
        ],
        "tools": [
            {
                "name": "system_run",
                "input_schema": SYSTEM_RUN.parameters,
                "description": "Run a shell command",
            },
            {
                "name": "browser_navigate",
                "input_schema": BROWSER_NAVIGATE.parameters,
                "description": "Open a URL",
            },
        ],
        "tool_choice": {"type": "auto"},
    }


async def test_signed_in_requests_send_the_bearer_and_beta_and_no_api_key(
    server: FakeAnthropicServer, make_provider: MakeProvider
) -> None:
    server.queue_text("Hello, subscriber.")

    response = await make_provider(api_key="", auth=oauth_headers()).complete(ask("hi"))

    assert response.message.content == "Hello, subscriber."
    headers = server.headers[-1]
    assert headers["authorization"] == f"Bearer {OAUTH_TOKEN}"
    assert headers["anthropic-beta"] == "oauth-2025-04-20"
    assert headers["anthropic-version"] == "2023-06-01"
    assert "x-api-key" not in headers


async def test_a_bearer_without_the_oauth_beta_is_refused_in_one_line_naming_auth_login(
    make_provider: MakeProvider,
) -> None:
    with pytest.raises(ProviderError) as caught:
        await make_provider(api_key="", auth=oauth_headers(beta="")).complete(ask("hi"))

    message = str(caught.value)
    assert "\n" not in message
    assert "HTTP 401" in message
    assert "OAuth authentication is currently not supported" in message
    assert "openpista auth login anthropic" in message
    assert OAUTH_TOKEN not in message


async def test_a_wrong_api_key_is_one_line_naming_the_setting_never_the_key(
    make_provider: MakeProvider,
) -> None:
    wrong = "sk-ant-wrong-key-456"
    with pytest.raises(ProviderError) as caught:
        await make_provider(
            api_key=wrong, key_setting="ANTHROPIC_API_KEY or providers.anthropic.api_key"
        ).complete(ask("hi"))

    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("anthropic: authentication failed (HTTP 401: invalid x-api-key)")
    assert "ANTHROPIC_API_KEY" in message
    assert wrong not in message


async def test_streamed_text_arrives_in_pieces_with_usage_including_cache_reads(
    server: FakeAnthropicServer, make_provider: MakeProvider
) -> None:
    server.queue(FakeAnthropicReply(text="The quick brown fox jumps", cache_read_input_tokens=2))
    deltas = Deltas()

    response = await make_provider().complete(ask("tell me a story"), on_delta=deltas)

    assert deltas.pieces == ["The ", "quick ", "brown ", "fox ", "jumps"]
    assert response.message.content == "The quick brown fox jumps"
    assert response.finish_reason == "stop"
    assert response.model == "claude-sonnet-4-5"
    assert response.usage is not None
    # Four words in; two of them "read from the cache" still count as input.
    assert (response.usage.input_tokens, response.usage.output_tokens) == (4, 5)
    assert server.requests[-1]["stream"] is True


async def test_streamed_tool_use_is_assembled_from_json_deltas_and_mapped_back(
    server: FakeAnthropicServer, make_provider: MakeProvider
) -> None:
    server.queue_tool_calls(
        [
            ("system_run", {"command": "ls -la /tmp", "timeout_s": 5}),
            ("browser_navigate", {"url": "https://example.org/a?b=c"}),
        ],
        text="Let me look.",
    )
    deltas = Deltas()

    response = await make_provider().complete(
        ask("look around", tools=[SYSTEM_RUN, BROWSER_NAVIGATE]), on_delta=deltas
    )

    assert "".join(deltas.pieces) == "Let me look."
    assert response.finish_reason == "tool_calls"
    first, second = response.message.tool_calls
    assert first.name == "system.run"
    assert json.loads(first.arguments) == {"command": "ls -la /tmp", "timeout_s": 5}
    assert second.name == "browser.navigate"
    assert json.loads(second.arguments) == {"url": "https://example.org/a?b=c"}
    assert first.id.startswith("toolu_") and first.id != second.id


async def test_a_whole_message_reply_without_streaming(
    server: FakeAnthropicServer, make_provider: MakeProvider
) -> None:
    server.queue_tool_calls([("system_run", {"command": "date"})], text="Checking.")

    response = await make_provider().complete(ask("what time is it", tools=[SYSTEM_RUN]))

    assert "stream" not in server.requests[-1]
    assert response.message.content == "Checking."
    (call,) = response.message.tool_calls
    assert (call.name, json.loads(call.arguments)) == ("system.run", {"command": "date"})
    assert response.finish_reason == "tool_calls"
    assert response.usage is not None and response.usage.input_tokens == 4


@pytest.mark.parametrize("stream", [True, False])
async def test_a_tool_round_with_thinking_sends_the_signed_blocks_back_first(
    make_provider: MakeProvider, stream: bool
) -> None:
    with FakeAnthropicServer(thinking=True) as thinker:
        thinker.queue_tool_calls([("system_run", {"command": "echo hi"})])
        thinker.queue_text("It printed hi.")
        provider = make_provider(base_url=thinker.base_url)
        on_delta = Deltas() if stream else None
        history = [Message(role="user", content="run echo hi")]

        first = await provider.complete(ChatRequest(history, [SYSTEM_RUN]), on_delta=on_delta)
        (state,) = first.message.parts
        assert isinstance(state, ProviderStatePart) and state.provider == "anthropic"
        (thinking,) = state.data["blocks"]
        assert thinking["type"] == "thinking" and thinking["signature"]
        # Thinking is not reply text: nothing of it was streamed to the user.
        assert on_delta is None or on_delta.pieces == []
        (call,) = first.message.tool_calls
        history += [first.message, Message(role="tool", content="hi", tool_call_id=call.id)]

        second = await provider.complete(ChatRequest(history, [SYSTEM_RUN]), on_delta=on_delta)

        assert second.message.content == "It printed hi."
        assistant_turn = thinker.requests[1]["messages"][1]
        assert assistant_turn["content"][0] == thinking
        assert assistant_turn["content"][1]["type"] == "tool_use"


async def test_the_fake_refuses_a_tool_round_without_its_thinking_block_like_the_real_api(
    make_provider: MakeProvider,
) -> None:
    """The check the previous test passes is real: leave the state out and the API says 400."""
    with FakeAnthropicServer(thinking=True) as thinker:
        thinker.queue_tool_calls([("system_run", {"command": "echo hi"})])
        provider = make_provider(base_url=thinker.base_url)
        first = await provider.complete(ask("run echo hi", tools=[SYSTEM_RUN]))
        stripped = first.message.copy()
        stripped.parts = []
        (call,) = first.message.tool_calls
        history = [
            Message(role="user", content="run echo hi"),
            stripped,
            Message(role="tool", content="hi", tool_call_id=call.id),
        ]

        with pytest.raises(ProviderError) as caught:
            await provider.complete(ChatRequest(history, [SYSTEM_RUN]))
        assert "Expected `thinking` or `redacted_thinking`, but found `tool_use`" in str(
            caught.value
        )

        tampered = first.message.copy()
        (part,) = tampered.parts
        assert isinstance(part, ProviderStatePart)
        part.data["blocks"][0]["thinking"] += " (edited)"
        history[1] = tampered
        with pytest.raises(ProviderError) as caught:
            await provider.complete(ChatRequest(history, [SYSTEM_RUN]))
        assert "Invalid `signature` in `thinking` block" in str(caught.value)
        assert "\n" not in str(caught.value)


async def test_redacted_thinking_is_kept_and_sent_back_unchanged(
    server: FakeAnthropicServer, make_provider: MakeProvider
) -> None:
    server.queue(
        FakeAnthropicReply(tool_calls=[("system_run", {"command": "id"})], redacted_thinking=True)
    )
    server.queue_text("You are root.")
    provider = make_provider()
    history = [Message(role="user", content="who am I")]

    first = await provider.complete(ChatRequest(history, [SYSTEM_RUN]), on_delta=Deltas())
    (state,) = first.message.parts
    assert isinstance(state, ProviderStatePart)
    (redacted,) = state.data["blocks"]
    assert redacted["type"] == "redacted_thinking" and redacted["data"]
    (call,) = first.message.tool_calls
    history += [first.message, Message(role="tool", content="uid=0", tool_call_id=call.id)]
    await provider.complete(ChatRequest(history, [SYSTEM_RUN]), on_delta=Deltas())

    assert server.requests[1]["messages"][1]["content"][0] == redacted


async def test_state_of_other_protocols_is_not_sent(
    server: FakeAnthropicServer, make_provider: MakeProvider
) -> None:
    server.queue_text("ok")
    earlier = Message(
        role="assistant",
        content="Earlier answer.",
        parts=[ProviderStatePart("responses", {"items": [{"type": "reasoning", "id": "rs_1"}]})],
    )

    await make_provider().complete(
        ChatRequest([Message(role="user", content="a"), earlier, Message(role="user", content="b")])
    )

    assert server.requests[-1]["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "Earlier answer."}],
    }


async def test_a_reply_cut_at_max_tokens_is_finish_reason_length(
    server: FakeAnthropicServer, make_provider: MakeProvider
) -> None:
    server.queue(FakeAnthropicReply(text="The answer is a long", stop_reason="max_tokens"))

    response = await make_provider(max_tokens=5).complete(ask("explain"), on_delta=Deltas())

    assert server.requests[-1]["max_tokens"] == 5
    assert response.message.content == "The answer is a long"
    assert response.finish_reason == "length"


async def test_a_refusal_is_finish_reason_content_filter(
    server: FakeAnthropicServer, make_provider: MakeProvider
) -> None:
    server.queue(FakeAnthropicReply(text="I can't help with that.", stop_reason="refusal"))

    response = await make_provider().complete(ask("something bad"))

    assert response.finish_reason == "content_filter"


async def test_an_invalid_request_error_is_one_line_with_the_api_message(
    server: FakeAnthropicServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    server.queue_error(400, "messages.0.content: something is off\nsecond line")

    with pytest.raises(ProviderError) as caught:
        await make_provider().complete(ask("hi"))

    assert str(caught.value) == (
        "anthropic: the API rejected the request (HTTP 400): "
        "messages.0.content: something is off second line"
    )
    assert delays == []  # a 400 is never retried


async def test_overloaded_529_is_retried(
    server: FakeAnthropicServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    server.queue_error(529, "Overloaded")
    server.queue_text("Made it.")

    response = await make_provider().complete(ask("hi"), on_delta=Deltas())

    assert response.message.content == "Made it."
    assert len(delays) == 1
    assert len(server.requests) == 2


async def test_overloaded_to_the_end_is_one_line_naming_the_status(
    server: FakeAnthropicServer, make_provider: MakeProvider
) -> None:
    for _ in range(3):
        server.queue_error(529, "Overloaded")

    with pytest.raises(ProviderError) as caught:
        await make_provider().complete(ask("hi"))

    assert str(caught.value) == (
        "anthropic: server error (HTTP 529: Overloaded), gave up after 3 attempts; try again later"
    )
    assert caught.value.retryable


async def test_an_overloaded_error_event_before_any_text_is_retried(
    server: FakeAnthropicServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    server.queue(FakeAnthropicReply(text="never shown", error_after_events=2))
    server.queue_text("Second try.")
    deltas = Deltas()

    response = await make_provider().complete(ask("hi"), on_delta=deltas)

    assert response.message.content == "Second try."
    assert "".join(deltas.pieces) == "Second try."
    assert len(delays) == 1


async def test_an_error_event_after_text_keeps_the_text_as_interrupted(
    server: FakeAnthropicServer, make_provider: MakeProvider
) -> None:
    # message_start, ping, block start, "One ", "two " and then the error event.
    server.queue(FakeAnthropicReply(text="One two three four", error_after_events=5))
    deltas = Deltas()

    response = await make_provider().complete(ask("count"), on_delta=deltas)

    assert response.message.content == "One two " == "".join(deltas.pieces)
    assert response.finish_reason == "interrupted"
    assert len(server.requests) == 1


async def test_a_stream_cut_after_text_is_kept_as_interrupted_without_tool_calls(
    server: FakeAnthropicServer, make_provider: MakeProvider
) -> None:
    server.queue(
        FakeAnthropicReply(
            text="Let me check that for you.",
            tool_calls=[("system_run", {"command": "ls"})],
            cut_after_events=10,
        )
    )
    deltas = Deltas()

    response = await make_provider().complete(ask("check", tools=[SYSTEM_RUN]), on_delta=deltas)

    assert response.message.content == "Let me check that for you." == "".join(deltas.pieces)
    assert response.message.tool_calls == []
    assert response.finish_reason == "interrupted"
    assert len(server.requests) == 1  # shown text is never asked for twice


async def test_a_stream_cut_before_text_is_retried(
    server: FakeAnthropicServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    server.queue(FakeAnthropicReply(text="lost", cut_after_events=2))
    server.queue_text("Whole.")

    response = await make_provider().complete(ask("hi"), on_delta=Deltas())

    assert response.message.content == "Whole."
    assert len(delays) == 1


async def test_ids_and_names_from_other_providers_are_made_acceptable_consistently(
    server: FakeAnthropicServer, make_provider: MakeProvider
) -> None:
    server.queue_text("ok")
    history = [
        Message(role="user", content="go"),
        Message(
            role="assistant",
            tool_calls=[
                ToolCall("functions.system.run:0", "system.run", '{"command": "ls"}'),
                ToolCall("functions.system.run:1", "mcp.files.read", '{"path": "/a"}'),
            ],
        ),
        Message(role="tool", content="x", tool_call_id="functions.system.run:0"),
        Message(role="tool", content="y", tool_call_id="functions.system.run:1"),
    ]

    response = await make_provider().complete(ChatRequest(history, [SYSTEM_RUN]))

    assert response.message.content == "ok"  # the fake checked every id and pairing
    turns = server.requests[-1]["messages"]
    use_ids = [block["id"] for block in turns[1]["content"]]
    result_ids = [block["tool_use_id"] for block in turns[2]["content"]]
    assert use_ids == result_ids
    assert len(set(use_ids)) == 2
    assert all(i.startswith("functions_system_run_") for i in use_ids)
    # A tool no longer offered still goes under an acceptable name.
    assert turns[1]["content"][1]["name"] == "mcp_files_read"


async def test_empty_messages_are_left_out_and_invalid_arguments_kept_visible(
    server: FakeAnthropicServer, make_provider: MakeProvider
) -> None:
    server.queue_text("ok")
    history = [
        Message(role="user", content="first"),
        Message(role="assistant", content=""),  # e.g. a reply that was only thinking elsewhere
        Message(role="user", content="   "),
        Message(role="user", content="second"),
        Message(role="assistant", tool_calls=[ToolCall("call_1", "system.run", '{"command": ')]),
        Message(role="tool", content="", tool_call_id="call_1"),
    ]

    await make_provider().complete(ChatRequest(history, [SYSTEM_RUN]))

    assert server.requests[-1]["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}],
        },
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "system_run",
                    "input": {"_invalid_arguments": '{"command": '},
                }
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1"}]},
    ]


async def test_a_history_starting_with_the_assistant_gets_a_user_turn_first(
    server: FakeAnthropicServer, make_provider: MakeProvider
) -> None:
    server.queue_text("ok")

    await make_provider().complete(
        ChatRequest(
            [Message(role="assistant", content="Earlier."), Message(role="user", content="Hi")]
        )
    )

    first = server.requests[-1]["messages"][0]
    assert first["role"] == "user"


async def test_tools_that_collide_on_the_wire_are_refused_before_any_request(
    server: FakeAnthropicServer, make_provider: MakeProvider
) -> None:
    clash = ToolSpec("system_run", "system_run", "another", {"type": "object"})

    with pytest.raises(ProviderError, match="both go on the wire as 'system_run'"):
        await make_provider().complete(ask("hi", tools=[SYSTEM_RUN, clash]))

    assert server.requests == []


async def test_a_wrong_model_is_a_404_naming_the_model(make_provider: MakeProvider) -> None:
    with (
        FakeAnthropicServer(models=["claude-haiku-4-5"]) as picky,
        pytest.raises(ProviderError) as caught,
    ):
        await make_provider(base_url=picky.base_url).complete(ask("hi"))

    message = str(caught.value)
    assert "model 'claude-sonnet-4-5'" in message and "HTTP 404" in message
    assert "\n" not in message


def test_default_max_tokens_by_model_family() -> None:
    assert default_max_tokens("claude-3-haiku-20240307") == 4096
    assert default_max_tokens("claude-3-opus-latest") == 4096
    assert default_max_tokens("claude-3-5-haiku-latest") == 8192
    assert default_max_tokens("claude-3-7-sonnet-latest") == 16384
    assert default_max_tokens("claude-sonnet-4-5") == 16384
    assert default_max_tokens("claude-opus-4-1-20250805") == 16384
    assert default_max_tokens("some-other-model") == 8192


def test_max_tokens_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        AnthropicProvider(name="anthropic", model="m", base_url="http://x", max_tokens=0)
