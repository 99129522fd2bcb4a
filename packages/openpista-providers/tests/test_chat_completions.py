"""ChatCompletionsProvider against the fake server over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from openpista.core.errors import ProviderError
from openpista.core.models import Message, ToolCall
from openpista.core.provider import ChatRequest, LlmProvider, ToolSpec
from openpista.providers.chat_completions import ChatCompletionsProvider
from openpista.providers.testing import FakeChatCompletionsServer, FakeReply

from .conftest import BROWSER_NAVIGATE, SYSTEM_RUN, Deltas, ask

MakeProvider = Callable[..., ChatCompletionsProvider]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_is_an_llm_provider(make_provider: MakeProvider) -> None:
    provider = make_provider()
    assert isinstance(provider, LlmProvider)
    assert provider.name == "openai"
    assert provider.model == "fake-model"


async def test_non_streaming_text_reply(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    server.queue_text("Hello from the fake")

    response = await make_provider().complete(ask("hi there"))

    assert response.message.role == "assistant"
    assert response.message.content == "Hello from the fake"
    assert response.message.tool_calls == []
    assert response.finish_reason == "stop"
    assert response.model == "fake-model"
    assert response.usage is not None
    assert response.usage.input_tokens == 2
    assert response.usage.output_tokens == 4
    sent = server.requests[-1]
    assert sent["model"] == "fake-model"
    assert sent["messages"] == [{"role": "user", "content": "hi there"}]
    assert "stream" not in sent
    assert "tools" not in sent


async def test_streaming_text_arrives_in_order_and_joins_to_the_reply(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    server.queue_text("The quick brown fox jumps")
    deltas = Deltas()

    response = await make_provider().complete(ask("go"), on_delta=deltas)

    assert len(deltas.pieces) > 1
    assert deltas.pieces == ["The ", "quick ", "brown ", "fox ", "jumps"]
    assert "".join(deltas.pieces) == response.message.content == "The quick brown fox jumps"
    assert response.finish_reason == "stop"
    assert response.usage is not None and response.usage.output_tokens == 5
    assert server.requests[-1]["stream"] is True


async def test_request_model_overrides_the_configured_one(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    request = ask("hi")
    request.model = "other-model"

    response = await make_provider().complete(request)

    assert server.requests[-1]["model"] == "other-model"
    assert response.model == "other-model"


async def test_streamed_tool_calls_are_assembled_and_mapped_back_to_internal_names(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
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
        ask("look around", [SYSTEM_RUN, BROWSER_NAVIGATE]), on_delta=deltas
    )

    calls = response.message.tool_calls
    assert [call.name for call in calls] == ["system.run", "browser.navigate"]
    assert calls[0].parsed_arguments() == {"command": "ls -la /tmp", "timeout_s": 5}
    assert calls[1].parsed_arguments() == {"url": "https://example.org/a?b=c"}
    assert all(call.id.startswith("call_") for call in calls)
    assert calls[0].id != calls[1].id
    assert response.finish_reason == "tool_calls"
    assert "".join(deltas.pieces) == response.message.content == "Let me look."


async def test_non_streamed_tool_calls_are_mapped_back_and_unknown_names_pass_through(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    server.queue_tool_calls([("system_run", {"command": "date"}), ("not_offered", {})])

    response = await make_provider().complete(ask("time?", [SYSTEM_RUN]))

    assert [call.name for call in response.message.tool_calls] == ["system.run", "not_offered"]
    assert response.message.tool_calls[0].arguments == '{"command": "date"}'
    assert response.message.content == ""


async def test_tools_and_history_go_out_under_wire_names(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    history = [
        Message(role="system", content="be brief"),
        Message(role="user", content="list files"),
        Message(
            role="assistant",
            tool_calls=[ToolCall(id="call_1", name="system.run", arguments='{"command":"ls"}')],
        ),
        Message(role="tool", content="a.txt", tool_call_id="call_1"),
    ]

    await make_provider().complete(ChatRequest(messages=history, tools=[SYSTEM_RUN]))

    sent = server.requests[-1]
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "system_run",
                "description": "Run a shell command",
                "parameters": SYSTEM_RUN.parameters,
            },
        }
    ]
    # llama.cpp's server ignores tools unless told to use them.
    assert sent["tool_choice"] == "auto"
    assert sent["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "list files"},
        {
            "role": "assistant",
            # "" rather than null: llama.cpp's server refuses null with an HTTP 500.
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "system_run", "arguments": '{"command":"ls"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "a.txt"},
    ]


async def test_an_invalid_wire_name_is_refused_with_the_api_message(
    server: FakeChatCompletionsServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    bad = ToolSpec(name="bad.name", wire_name="bad.name", description="", parameters={})

    with pytest.raises(ProviderError) as caught:
        await make_provider().complete(ask("hi", [bad]))

    message = str(caught.value)
    assert message.startswith("openai: the API rejected the request (HTTP 400): ")
    assert "Invalid 'tools[0].function.name': string does not match pattern" in message
    assert caught.value.status_code == 400
    assert not caught.value.retryable
    assert len(server.requests) == 1, "a 400 is not retried"
    assert delays == []


async def test_an_orphan_tool_result_is_refused_with_the_api_message(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    request = ChatRequest(
        messages=[
            Message(role="user", content="hi"),
            Message(role="tool", content="out", tool_call_id="call_nobody_made"),
        ]
    )

    with pytest.raises(ProviderError, match="must be a response to a preceeding message"):
        await make_provider().complete(request)


async def test_retries_429_honouring_retry_after_then_succeeds(
    server: FakeChatCompletionsServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    server.queue_error(429, "Rate limit reached", retry_after=2)
    server.queue_text("finally")

    response = await make_provider().complete(ask("hi"))

    assert response.message.content == "finally"
    assert delays == [2.0]
    assert len(server.requests) == 2


async def test_retry_after_as_an_http_date_is_honoured(
    server: FakeChatCompletionsServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    in_a_few_seconds = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    server.queue_error(503, "overloaded", retry_after=in_a_few_seconds)
    server.queue_text("ok")

    response = await make_provider(backoff_cap_s=7.0).complete(ask("hi"))

    assert response.message.content == "ok"
    assert len(delays) == 1 and 3 <= delays[0] <= 5


async def test_a_retry_after_past_the_cap_is_not_waited_for(
    server: FakeChatCompletionsServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    in_an_hour = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    server.queue_error(429, "Rate limit reached", retry_after=in_an_hour)
    server.queue_text("not asked for")

    with pytest.raises(ProviderError) as caught:
        await make_provider(backoff_cap_s=7.0).complete(ask("hi"))

    # Waiting 7 s for a server that asked for an hour helps nobody: said at once (and a
    # fallback model, when configured, answers instead).
    assert "the server asks to wait 3600 s" in str(caught.value) or "wait 3599 s" in str(
        caught.value
    )
    assert delays == []


async def test_retries_a_server_error_with_backoff_then_succeeds_when_streaming(
    server: FakeChatCompletionsServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    server.queue_error(500, "The server had an error")
    server.queue_text("recovered")
    deltas = Deltas()

    response = await make_provider().complete(ask("hi"), on_delta=deltas)

    assert response.message.content == "recovered"
    assert "".join(deltas.pieces) == "recovered"
    assert delays == [0.5]


async def test_gives_up_after_three_attempts_with_the_status_and_api_message(
    server: FakeChatCompletionsServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    for _ in range(3):
        server.queue_error(502, "Bad gateway upstream")
    server.queue_text("never reached")

    with pytest.raises(ProviderError) as caught:
        await make_provider().complete(ask("hi"))

    assert str(caught.value) == (
        "openai: server error (HTTP 502: Bad gateway upstream), gave up after 3 attempts; "
        "try again later"
    )
    assert caught.value.status_code == 502
    assert caught.value.retryable
    assert delays == [0.5, 1.0]
    assert server.pending == 1


async def test_rate_limit_that_never_lifts_says_so(
    server: FakeChatCompletionsServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    server.queue_error(429, "Rate limit reached for gpt-4.1-mini")
    server.queue_error(429, "Rate limit reached for gpt-4.1-mini")

    with pytest.raises(ProviderError) as caught:
        await make_provider(max_attempts=2).complete(ask("hi"))

    message = str(caught.value)
    assert message.startswith(
        "openai: rate limited (HTTP 429: Rate limit reached for gpt-4.1-mini), "
        "gave up after 2 attempts"
    )
    assert caught.value.status_code == 429
    assert delays == [0.5]


async def test_unreachable_server_is_one_line_without_the_key(
    make_provider: MakeProvider, delays: list[float]
) -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    provider = make_provider(base_url=base_url, api_key="sk-very-secret-123")

    with pytest.raises(ProviderError) as caught:
        await provider.complete(ask("hi"))

    message = str(caught.value)
    assert message == (
        f"openai: cannot reach {base_url} (connection refused); "
        "check providers.openai.base_url or your network"
    )
    assert "sk-very-secret-123" not in message
    assert caught.value.retryable
    assert delays == [0.5, 1.0], "connection failures are retried"


async def test_authorization_header_carries_the_key(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    await make_provider(api_key="sk-abc").complete(ask("hi"))
    await make_provider(api_key="").complete(ask("hi"))

    assert server.headers[0]["authorization"] == "Bearer sk-abc"
    assert "authorization" not in server.headers[1]


async def test_a_refused_key_names_where_to_set_it_and_is_not_echoed(
    make_provider: MakeProvider,
) -> None:
    with FakeChatCompletionsServer(require_api_key="right-key") as guarded:
        provider = make_provider(
            base_url=guarded.base_url,
            api_key="wrong-key-42",
            key_setting="OPENAI_API_KEY or providers.openai.api_key in config.toml",
        )
        with pytest.raises(ProviderError) as caught:
            await provider.complete(ask("hi"))

    message = str(caught.value)
    assert message.startswith("openai: authentication failed (HTTP 401: ")
    assert message.endswith(
        "the API key was refused: check OPENAI_API_KEY or providers.openai.api_key in config.toml"
    )
    assert "wrong-key-42" not in message
    assert caught.value.status_code == 401
    assert not caught.value.retryable


async def test_a_missing_key_on_a_guarded_server_says_none_was_sent(
    make_provider: MakeProvider,
) -> None:
    with FakeChatCompletionsServer(require_api_key="right-key") as guarded:
        provider = make_provider(base_url=guarded.base_url, api_key="")
        with pytest.raises(ProviderError, match=r"no API key was sent: set providers\.openai"):
            await provider.complete(ask("hi"))


async def test_an_unknown_model_names_the_model(make_provider: MakeProvider) -> None:
    with FakeChatCompletionsServer(models=["real-model"]) as picky:
        provider = make_provider(base_url=picky.base_url, model="no-such-model")
        with pytest.raises(ProviderError) as caught:
            await provider.complete(ask("hi"))

    message = str(caught.value)
    assert message.startswith("openai: model 'no-such-model' or URL ")
    assert "not found (HTTP 404" in message
    assert caught.value.status_code == 404


async def test_a_wrong_base_url_path_is_a_404_that_hints_at_v1(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    provider = make_provider(base_url=server.base_url.removesuffix("/v1"))

    with pytest.raises(ProviderError, match=r"\(it usually ends in /v1\)$"):
        await provider.complete(ask("hi"))


async def test_a_body_that_is_not_json_is_a_clear_error(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    server.queue(FakeReply(raw_body="<html>Welcome to nginx</html>"))

    with pytest.raises(ProviderError) as caught:
        await make_provider().complete(ask("hi"))

    message = str(caught.value)
    assert "answered with something that is not JSON" in message
    assert "Welcome to nginx" in message
    assert "\n" not in message
    assert not caught.value.retryable


async def test_a_stream_cut_before_any_text_is_retried(
    server: FakeChatCompletionsServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    # One event (the role chunk, no text) and then the connection drops.
    server.queue(FakeReply(text="lost reply", cut_after_chunks=1))
    server.queue_text("second try")
    deltas = Deltas()

    response = await make_provider().complete(ask("hi"), on_delta=deltas)

    assert response.message.content == "second try"
    assert "".join(deltas.pieces) == "second try"
    assert delays == [0.5]


async def test_a_stream_cut_after_text_was_shown_is_kept_as_far_as_it_went(
    server: FakeChatCompletionsServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    server.queue(FakeReply(text="one two three four", cut_after_chunks=3))
    server.queue_text("must not be asked for")
    deltas = Deltas()

    response = await make_provider().complete(ask("hi"), on_delta=deltas)

    # Not retried (the user would read it twice), not lost: returned and marked as cut.
    assert deltas.pieces == ["one ", "two "]
    assert response.message.content == "one two "
    assert response.finish_reason == "interrupted"
    assert delays == []
    assert server.pending == 1


async def test_no_model_anywhere_is_a_clear_error(make_provider: MakeProvider) -> None:
    with pytest.raises(ProviderError, match=r"no model chosen; set \[agent\] model"):
        await make_provider(model="").complete(ask("hi"))


async def test_one_connection_serves_many_requests(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    provider = make_provider()

    for turn in range(3):
        await provider.complete(ask(f"turn {turn}"))
        await provider.complete(ask(f"streamed turn {turn}"), on_delta=Deltas())

    assert len(server.requests) == 6
    assert server.connection_count == 1


async def test_aclose_releases_the_connection_and_a_later_request_opens_another(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    provider = make_provider()
    await provider.complete(ask("one"))
    await provider.aclose()

    response = await provider.complete(ask("two"))

    assert response.message.content == "Echo: two"
    assert server.connection_count == 2


async def test_a_key_with_a_newline_is_refused_without_quoting_it() -> None:
    with pytest.raises(ProviderError) as caught:
        ChatCompletionsProvider(
            name="openai", model="m", base_url="http://127.0.0.1:1/v1", api_key="sk-a\nb"
        )
    assert "sk-a" not in str(caught.value)


def test_a_base_url_without_scheme_is_refused() -> None:
    with pytest.raises(ProviderError, match=r"'localhost:11434/v1' is not an http\(s\) URL"):
        ChatCompletionsProvider(name="ollama", model="m", base_url="localhost:11434/v1")


async def test_arguments_are_sent_back_byte_for_byte(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    server.queue_tool_calls([("system_run", '{"command":  "echo  spaced"}')])
    first = await make_provider().complete(ask("x", [SYSTEM_RUN]))
    call = first.message.tool_calls[0]

    history = [
        Message(role="user", content="x"),
        first.message,
        Message(role="tool", content="spaced", tool_call_id=call.id),
    ]
    await make_provider().complete(ChatRequest(messages=history, tools=[SYSTEM_RUN]))

    sent_call = server.requests[-1]["messages"][1]["tool_calls"][0]
    assert sent_call["function"]["arguments"] == '{"command":  "echo  spaced"}'
    assert json.loads(sent_call["function"]["arguments"]) == {"command": "echo  spaced"}
