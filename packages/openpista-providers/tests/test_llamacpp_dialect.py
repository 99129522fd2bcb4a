"""ChatCompletionsProvider against the fake server's llama.cpp dialect.

Each case is something llama-cpp-python's server (0.3.36, `--chat_format
chatml-function-calling`) did when tried by hand, and that the client once got wrong; the
fake plays it so these stay fixed without the real server (tests/test_llamacpp_real.py runs
the real one where it is installed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from openpista.core.errors import ProviderError
from openpista.core.models import Message, ToolCall
from openpista.core.provider import ChatRequest
from openpista.providers._http import HttpApi
from openpista.providers.chat_completions import ChatCompletionsProvider
from openpista.providers.testing import FakeChatCompletionsServer, FakeReply

from .conftest import SYSTEM_RUN, Deltas, ask

MakeProvider = Callable[..., ChatCompletionsProvider]


# What the real server says when a request fails its pydantic model: a 500.
VALIDATION_ERROR = (
    "1 validation error:\n  {'type': 'missing', 'loc': ('body', 'messages', 0, "
    "'ChatCompletionRequestUserMessage', 'content'), 'msg': 'Field required', 'input': {}}"
)


@pytest.fixture
def server() -> Iterator[FakeChatCompletionsServer]:
    with FakeChatCompletionsServer(dialect="llamacpp") as fake:
        yield fake


def tool_round_history() -> list[Message]:
    return [
        Message(role="user", content="List the files"),
        Message(
            role="assistant",
            content="",
            tool_calls=[ToolCall(id="call_1", name="system.run", arguments='{"command": "ls"}')],
        ),
        Message(role="tool", content="a.txt b.txt", tool_call_id="call_1"),
    ]


def test_the_fake_refuses_null_content_beside_tool_calls_as_the_real_server_does(
    server: FakeChatCompletionsServer,
) -> None:
    history = [
        {"role": "user", "content": "List the files"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "system_run", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "a.txt"},
    ]

    answer = httpx.post(
        f"{server.base_url}/chat/completions", json={"model": "m", "messages": history}
    )

    assert answer.status_code == 500
    message = answer.json()["error"]["message"]
    assert message.startswith("7 validation errors:\n")
    assert "'loc': ('body', 'messages', 1, 'ChatCompletionRequestAssistantMessage', 'content')" in (
        message
    )


async def test_its_refusal_reads_as_one_clear_line_and_is_not_retried(
    server: FakeChatCompletionsServer,
) -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "List the files"},
            {"role": "assistant", "content": None, "tool_calls": []},
        ],
    }
    api = HttpApi(name="llamacpp", base_url=server.base_url)
    try:
        with pytest.raises(ProviderError) as caught:
            await api.post_json(api.url("chat/completions"), body, "m")
    finally:
        await api.aclose()

    # Seven errors in the body, one per kind of message; the one that matters is shown.
    assert str(caught.value) == (
        "llamacpp: the server refused the request as invalid (HTTP 500: validation error: "
        "messages.1.content: Input should be a valid string); not retried, it would fail the "
        "same way"
    )
    assert len(server.requests) == 1


async def test_a_tool_rounds_second_request_is_accepted(
    server: FakeChatCompletionsServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    server.queue_text("There are two files.")

    response = await make_provider().complete(
        ChatRequest(messages=tool_round_history(), tools=[SYSTEM_RUN]), on_delta=Deltas()
    )

    assert response.message.content == "There are two files."
    assert delays == []
    assert server.requests[0]["messages"][1]["content"] == ""


async def test_offered_tools_reach_the_model_because_tool_choice_is_sent(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    # Without tool_choice this server hides the tools: the reply would be text.
    server.queue_tool_calls([("system_run", {"command": "ls"})])

    response = await make_provider().complete(ask("list files", [SYSTEM_RUN]))

    assert response.message.tool_calls == [
        ToolCall(
            id=response.message.tool_calls[0].id, name="system.run", arguments='{"command": "ls"}'
        )
    ]
    assert response.finish_reason == "tool_calls"
    assert server.requests[0]["tool_choice"] == "auto"


async def test_the_non_streamed_legacy_call_beside_tool_calls_is_not_a_second_call(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    server.queue_tool_calls([("system_run", {"command": "ls"})])

    response = await make_provider().complete(ask("list files", [SYSTEM_RUN]))

    assert [call.name for call in response.message.tool_calls] == ["system.run"]
    assert response.message.tool_calls[0].id.startswith("call__0_system_run_cmpl-")


async def test_a_streamed_tool_call_arrives_although_the_stream_comes_back_empty(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    # Under tool_choice "auto" the real server cannot stream a tool call: it answers 200 and
    # no events. Nothing was shown, so the client asks again without streaming.
    server.queue_tool_calls([("system_run", {"command": "ls -l"})])
    server.queue_tool_calls([("system_run", {"command": "ls -l"})])
    deltas = Deltas()

    response = await make_provider().complete(ask("list files", [SYSTEM_RUN]), on_delta=deltas)

    assert [(call.name, json.loads(call.arguments)) for call in response.message.tool_calls] == [
        ("system.run", {"command": "ls -l"})
    ]
    assert deltas.pieces == []
    first, second = server.requests
    assert first["stream"] is True
    assert "stream" not in second
    assert "stream_options" not in second
    # The connection that carried the empty stream was not used again.
    assert server.connection_count == 2


async def test_an_empty_stream_followed_by_a_text_reply_shows_the_text_once(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    server.queue(FakeReply(empty_stream=True))
    server.queue_text("Hello there.")
    deltas = Deltas()

    response = await make_provider().complete(ask("hi"), on_delta=deltas)

    assert deltas.pieces == ["Hello there."]
    assert response.message.content == "Hello there."
    assert response.finish_reason == "stop"


async def test_an_empty_stream_whose_request_fails_unstreamed_gives_the_servers_error(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    server.queue(FakeReply(empty_stream=True))
    server.queue_error(
        400, "This model's maximum context length is 2048 tokens. However, you requested 2100"
    )

    with pytest.raises(ProviderError) as caught:
        await make_provider().complete(ask("a very long prompt"), on_delta=Deltas())

    assert str(caught.value) == (
        "openai: the API rejected the request (HTTP 400): This model's maximum context length "
        "is 2048 tokens. However, you requested 2100"
    )


async def test_streamed_fragments_repeating_id_and_name_make_one_call(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    # Every fragment repeats the id and the name, and carries the same piece again as the
    # legacy function_call.
    arguments = '{"command": "echo one two three"}'
    server.queue(FakeReply(tool_calls=[("system_run", arguments)], stream_tool_calls=True))
    deltas = Deltas()

    response = await make_provider().complete(ask("echo", [SYSTEM_RUN]), on_delta=deltas)

    (call,) = response.message.tool_calls
    assert call.name == "system.run"
    assert call.arguments == arguments
    assert call.id.startswith("call__0_system_run_cmpl-")
    assert response.finish_reason == "tool_calls"
    assert response.usage is None  # The server never reports usage in a stream.


async def test_a_legacy_function_call_with_a_colon_after_its_name_is_mapped_back(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    server.queue(
        FakeReply(tool_calls=[("system_run", {"command": "pwd"})], legacy_function_call=True)
    )

    response = await make_provider().complete(ask("where am I", [SYSTEM_RUN]))

    (call,) = response.message.tool_calls
    assert call.name == "system.run"  # The server said "system_run:".
    assert json.loads(call.arguments) == {"command": "pwd"}


async def test_a_streamed_legacy_function_call_is_one_call(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    server.queue(
        FakeReply(
            tool_calls=[("system_run", {"command": "pwd"})],
            legacy_function_call=True,
            stream_tool_calls=True,
        )
    )

    response = await make_provider().complete(ask("where am I", [SYSTEM_RUN]), on_delta=Deltas())

    (call,) = response.message.tool_calls
    assert (call.name, json.loads(call.arguments)) == ("system.run", {"command": "pwd"})


async def test_a_tool_name_with_trailing_junk_is_trimmed(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    server.queue_tool_calls([("system_run:", {"command": "ls"})])

    response = await make_provider().complete(ask("list", [SYSTEM_RUN]))

    assert [call.name for call in response.message.tool_calls] == ["system.run"]


async def test_ping_comments_and_explicit_nulls_do_not_disturb_streamed_text(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    server.queue_text("Once upon a time.")
    deltas = Deltas()

    response = await make_provider().complete(ask("story"), on_delta=deltas)

    assert deltas.pieces == ["Once", " upon", " a", " time."]
    assert response.message.content == "Once upon a time."
    assert response.finish_reason == "stop"
    assert response.usage is None


async def test_done_then_a_torn_connection_keeps_the_text_shown_marked_as_cut(
    server: FakeChatCompletionsServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    # Another request interrupted this one: `data: [DONE]` without a finish reason, then the
    # connection is torn down.
    server.queue(FakeReply(text="Once upon a time there was a cat.", interrupt_after_chunks=3))
    server.queue_text("must not be asked for")
    deltas = Deltas()
    provider = make_provider()

    response = await provider.complete(ask("story"), on_delta=deltas)

    assert deltas.pieces == ["Once", " upon"]
    assert response.message.content == "Once upon"
    assert response.finish_reason == "interrupted"
    assert delays == []
    assert server.pending == 1
    # The provider still works afterwards.
    assert (await provider.complete(ask("again"))).message.content == "must not be asked for"


async def test_an_interruption_before_any_text_is_retried(
    server: FakeChatCompletionsServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    server.queue(FakeReply(text="lost", interrupt_after_chunks=1))
    server.queue_text("Second try.")
    deltas = Deltas()

    response = await make_provider().complete(ask("hi"), on_delta=deltas)

    assert "".join(deltas.pieces) == "Second try."
    assert response.finish_reason == "stop"
    assert delays == [0.5]


async def test_a_500_saying_the_request_is_invalid_is_not_retried(
    server: FakeChatCompletionsServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    server.queue_error(500, VALIDATION_ERROR)

    with pytest.raises(ProviderError) as caught:
        await make_provider().complete(ask("hi"))

    # The error, not the Python reprs of the server's validation errors.
    assert str(caught.value) == (
        "openai: the server refused the request as invalid (HTTP 500: validation error: "
        "messages.0.content: Field required); not retried, it would fail the same way"
    )
    assert delays == []
    assert len(server.requests) == 1


async def test_another_500_is_retried(
    server: FakeChatCompletionsServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    server.queue_error(500, "llama_decode returned -3")
    server.queue_text("Recovered.")

    response = await make_provider().complete(ask("hi"))

    assert response.message.content == "Recovered."
    assert delays == [0.5]


async def test_an_error_as_detail_is_shown(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    server.require_api_key = "sk-right"

    with pytest.raises(ProviderError) as caught:
        await make_provider(api_key="sk-wrong").complete(ask("hi"))

    message = str(caught.value)
    assert message.startswith("openai: authentication failed (HTTP 401: Invalid API key);")
    assert "sk-wrong" not in message
