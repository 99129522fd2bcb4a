"""ResponsesProvider against the fake Responses API server over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import httpx
import pytest

from openpista.core.errors import ProviderError
from openpista.core.models import ImagePart, Message, ProviderStatePart, ToolCall
from openpista.core.provider import ChatRequest, ChatResponse, LlmProvider, ToolSpec
from openpista.providers.responses import (
    CHATGPT_BASE_URL,
    ResponsesProvider,
    chatgpt_account_id,
)
from openpista.providers.testing import FakeResponsesServer, ResponsesReply

from .conftest import BROWSER_NAVIGATE, SYSTEM_RUN, Deltas, ask, providers_made

MakeProvider = Callable[..., ResponsesProvider]


def user_item(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


@pytest.fixture
def server() -> Iterator[FakeResponsesServer]:
    with FakeResponsesServer() as fake:
        yield fake


@pytest.fixture
async def make_provider(
    server: FakeResponsesServer, delays: list[float]
) -> AsyncIterator[MakeProvider]:
    """Providers aimed at the fake server by default; backoff recorded, not waited for."""
    async with providers_made(
        ResponsesProvider,
        delays,
        name="openai",
        model="fake-model",
        base_url=server.base_url,
        api_key="sk-test-key",
    ) as make:
        yield make


def state_items(response: ChatResponse) -> list[dict[str, Any]]:
    (state,) = [p for p in response.message.parts if isinstance(p, ProviderStatePart)]
    assert state.provider == "responses"
    return state.data["items"]


# -- requests ------------------------------------------------------------------------------


async def test_is_an_llm_provider(make_provider: MakeProvider) -> None:
    provider = make_provider()
    assert isinstance(provider, LlmProvider)
    assert (provider.name, provider.model) == ("openai", "fake-model")


async def test_the_request_body_and_headers_are_what_the_api_expects(
    server: FakeResponsesServer, make_provider: MakeProvider
) -> None:
    history = [
        Message(role="system", content="be brief"),
        Message(role="system", content="you are openpista"),
        Message(role="user", content="list files"),
        Message(
            role="assistant",
            content="Looking.",
            tool_calls=[ToolCall(id="call_1", name="system.run", arguments='{"command":"ls"}')],
        ),
        Message(role="tool", content="a.txt", tool_call_id="call_1"),
        Message(role="assistant", content="There is a.txt."),
        Message(role="user", content="thanks", parts=[ImagePart("x/cat.png", "image/png")]),
    ]

    await make_provider().complete(ChatRequest(messages=history, tools=[SYSTEM_RUN]))

    (record,) = server.recorded
    assert record.path == "/v1/responses"
    assert record.headers["authorization"] == "Bearer sk-test-key"
    assert record.headers["content-type"] == "application/json"
    assert record.headers["user-agent"] == "openpista"
    assert record.body == {
        "model": "fake-model",
        "instructions": "be brief\n\nyou are openpista",
        "input": [
            user_item("list files"),
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Looking."}],
            },
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "system_run",
                "arguments": '{"command":"ls"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "There is a.txt."}],
            },
            # The picture is left out (sending images is not supported yet); the text stays.
            user_item("thanks\n[picture cat.png: PNG; the user has it, it is not shown to you]"),
        ],
        "tools": [
            {
                "type": "function",
                "name": "system_run",
                "description": "Run a shell command",
                "parameters": SYSTEM_RUN.parameters,
            }
        ],
        "tool_choice": "auto",
        "stream": False,
        "store": False,
        "include": ["reasoning.encrypted_content"],
    }


async def test_a_later_system_message_stays_in_place_as_a_developer_message(
    server: FakeResponsesServer, make_provider: MakeProvider
) -> None:
    history = [
        Message(role="user", content="hello"),
        Message(role="assistant", content="hi"),
        Message(role="system", content="Summarise the above."),
    ]

    await make_provider().complete(ChatRequest(messages=history))

    sent = server.requests[-1]
    assert "instructions" not in sent
    assert sent["input"][-1] == {
        "type": "message",
        "role": "developer",
        "content": [{"type": "input_text", "text": "Summarise the above."}],
    }


async def test_tools_whose_wire_names_collide_are_refused_before_any_request(
    server: FakeResponsesServer, make_provider: MakeProvider
) -> None:
    clash = ToolSpec("system_run", "system_run", "another", {"type": "object"})

    with pytest.raises(ProviderError) as caught:
        await make_provider().complete(ask("hi", [SYSTEM_RUN, clash]))

    assert str(caught.value) == (
        "openai: tools 'system.run' and 'system_run' both go on the wire as 'system_run'; "
        "rename one of them"
    )
    assert server.requests == []


# -- answers -------------------------------------------------------------------------------


async def test_a_non_streamed_reply_with_usage(
    server: FakeResponsesServer, make_provider: MakeProvider
) -> None:
    server.queue_text("Hello from the fake")

    response = await make_provider().complete(ask("hi there"))

    assert response.message.role == "assistant"
    assert response.message.content == "Hello from the fake"
    assert response.message.tool_calls == []
    assert response.message.parts == []  # nothing to replay without reasoning
    assert response.finish_reason == "stop"
    assert response.model == "fake-model"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (2, 4)


async def test_streamed_text_arrives_in_order_with_usage(
    server: FakeResponsesServer, make_provider: MakeProvider
) -> None:
    server.queue_text("The quick brown fox jumps")
    deltas = Deltas()

    response = await make_provider().complete(ask("go now"), on_delta=deltas)

    assert deltas.pieces == ["The ", "quick ", "brown ", "fox ", "jumps"]
    assert response.message.content == "The quick brown fox jumps"
    assert response.finish_reason == "stop"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (2, 5)
    assert server.requests[-1]["stream"] is True


async def test_a_streamed_tool_call_is_assembled_and_mapped_back(
    server: FakeResponsesServer, make_provider: MakeProvider
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
    assert calls[0].id.startswith("call_") and calls[0].id != calls[1].id
    assert response.finish_reason == "tool_calls"
    assert "".join(deltas.pieces) == response.message.content == "Let me look."


async def test_a_tool_round_with_a_reasoning_model_sends_the_reasoning_back(
    make_provider: MakeProvider,
) -> None:
    with FakeResponsesServer(reasoning=True) as server:
        provider = make_provider(base_url=server.base_url)
        server.queue_tool_calls([("system_run", {"command": "ls"})])
        server.queue_text("There is a.txt.")
        conversation = [Message(role="user", content="list files")]

        first = await provider.complete(ChatRequest(conversation, [SYSTEM_RUN]), Deltas())
        (call,) = first.message.tool_calls
        conversation += [first.message, Message("tool", "a.txt", tool_call_id=call.id)]
        second = await provider.complete(ChatRequest(conversation, [SYSTEM_RUN]), Deltas())

        assert second.message.content == "There is a.txt."
        reasoning, function_call = state_items(first)
        assert reasoning["type"] == "reasoning" and reasoning["encrypted_content"]
        assert function_call["call_id"] == call.id
        # The reasoning went back where it came: after the question, before its call.
        assert server.requests[1]["input"] == [
            user_item("list files"),
            {
                "type": "reasoning",
                "summary": reasoning["summary"],
                "encrypted_content": reasoning["encrypted_content"],
            },
            {
                "type": "function_call",
                "call_id": call.id,
                "name": "system_run",
                "arguments": '{"command": "ls"}',
            },
            {"type": "function_call_output", "call_id": call.id, "output": "a.txt"},
        ]
        # Without it, the API refuses the round's second request, as the real one does.
        first.message.parts = []
        with pytest.raises(ProviderError) as caught:
            await provider.complete(ChatRequest(conversation, [SYSTEM_RUN]))
        assert "provided without its required 'reasoning' item" in str(caught.value)


async def test_stored_items_yield_to_the_message_when_a_call_was_stripped_since(
    make_provider: MakeProvider,
) -> None:
    with FakeResponsesServer(reasoning=True) as server:
        provider = make_provider(base_url=server.base_url)
        server.queue_tool_calls([("system_run", {"command": "ls"})])
        first = await provider.complete(ask("list files", [SYSTEM_RUN]))
        # A repaired history dropped the unanswered call but kept the message.
        first.message.tool_calls = []
        first.message.content = "I was going to list them."
        conversation = [Message("user", "list files"), first.message, Message("user", "well?")]

        await provider.complete(ChatRequest(conversation, [SYSTEM_RUN]))

        sent = server.requests[-1]["input"]
        assert [item["type"] for item in sent] == ["message", "reasoning", "message", "message"]
        assert sent[2]["content"] == [{"type": "output_text", "text": "I was going to list them."}]


async def test_state_of_another_protocol_is_not_sent(
    server: FakeResponsesServer, make_provider: MakeProvider
) -> None:
    thinking = ProviderStatePart("anthropic", {"blocks": [{"type": "thinking"}]})
    conversation = [
        Message("user", "hi"),
        Message("assistant", "hello", parts=[thinking]),
        Message("user", "again"),
    ]

    await make_provider().complete(ChatRequest(conversation))

    assert [item["type"] for item in server.requests[-1]["input"]] == ["message"] * 3


async def test_a_reply_cut_at_the_output_limit_says_length(
    server: FakeResponsesServer, make_provider: MakeProvider
) -> None:
    server.queue_incomplete("The answer is long and")
    server.queue_incomplete("Cut here")
    provider = make_provider()

    streamed = await provider.complete(ask("tell me"), Deltas())
    whole = await provider.complete(ask("tell me"))

    assert (streamed.message.content, streamed.finish_reason) == (
        "The answer is long and",
        "length",
    )
    assert (whole.message.content, whole.finish_reason) == ("Cut here", "length")
    assert streamed.usage is not None and streamed.usage.output_tokens == 5


async def test_a_model_that_does_not_reason_is_asked_again_without_encrypted_reasoning(
    make_provider: MakeProvider,
) -> None:
    with FakeResponsesServer(models_without_reasoning=["gpt-4.1"]) as server:
        provider = make_provider(base_url=server.base_url, model="gpt-4.1")

        first = await provider.complete(ask("one"))
        second = await provider.complete(ask("two"))

        assert (first.message.content, second.message.content) == ("Echo: one", "Echo: two")
        assert ["include" in body for body in server.requests] == [True, False, False]


# -- a ChatGPT subscription ------------------------------------------------------------------


def id_token(claims: Mapping[str, Any]) -> str:
    def part(data: Mapping[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


def test_chatgpt_account_id_is_read_from_the_id_token_claims() -> None:
    token = id_token(
        {"email": "a@b.c", "https://api.openai.com/auth": {"chatgpt_account_id": "acc-123"}}
    )

    assert chatgpt_account_id(token) == "acc-123"


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("not-a-jwt", "the id_token is not a JWT (expected three dot-separated parts)"),
        ("a.%%%%.c", "the id_token's claims are not base64url-encoded JSON"),
        (
            id_token({"https://api.openai.com/auth": {"chatgpt_plan_type": "plus"}}),
            "the id_token has no https://api.openai.com/auth chatgpt_account_id claim "
            "(was it issued for a ChatGPT sign-in?)",
        ),
    ],
)
def test_a_token_without_an_account_id_is_a_clear_error_that_does_not_quote_it(
    token: str, expected: str
) -> None:
    with pytest.raises(ValueError) as caught:
        chatgpt_account_id(token)

    assert str(caught.value) == expected
    assert token not in str(caught.value)


def test_the_chatgpt_backend_lives_under_backend_api_codex() -> None:
    assert CHATGPT_BASE_URL == "https://chatgpt.com/backend-api/codex"


async def test_a_signed_in_provider_sends_the_auth_headers_and_always_streams(
    make_provider: MakeProvider,
) -> None:
    token = id_token({"https://api.openai.com/auth": {"chatgpt_account_id": "acc-9"}})

    async def auth() -> Mapping[str, str]:
        return {
            "Authorization": "Bearer access-token-1",
            "chatgpt-account-id": chatgpt_account_id(token),
        }

    with FakeResponsesServer(
        base_path="/backend-api/codex",
        require_api_key="access-token-1",
        require_headers={"chatgpt-account-id": "acc-9"},
        require_stream=True,
    ) as server:
        provider = make_provider(base_url=server.base_url, api_key="", auth=auth)

        response = await provider.complete(ask("hi"))  # no on_delta: streamed all the same

        assert response.message.content == "Echo: hi"
        (record,) = server.recorded
        assert record.path == "/backend-api/codex/responses"
        assert record.headers["chatgpt-account-id"] == "acc-9"
        assert record.body["stream"] is True and record.body["store"] is False


async def test_a_missing_account_header_is_refused_in_one_line(
    make_provider: MakeProvider,
) -> None:
    async def auth() -> Mapping[str, str]:
        return {"Authorization": "Bearer access-token-1"}

    with FakeResponsesServer(require_headers={"chatgpt-account-id": "acc-9"}) as server:
        provider = make_provider(base_url=server.base_url, api_key="", auth=auth)
        with pytest.raises(ProviderError) as caught:
            await provider.complete(ask("hi"))

    message = str(caught.value)
    assert message.startswith("openai: authentication failed (HTTP 403: Missing or wrong ")
    assert "openpista auth login openai" in message
    assert "access-token-1" not in message and "\n" not in message


# -- failures ------------------------------------------------------------------------------


async def test_a_refused_key_is_one_line_naming_the_setting_without_the_key(
    make_provider: MakeProvider,
) -> None:
    with FakeResponsesServer(require_api_key="the-right-key") as server:
        provider = make_provider(base_url=server.base_url, key_setting="OPENAI_API_KEY")
        with pytest.raises(ProviderError) as caught:
            await provider.complete(ask("hi"))

    assert str(caught.value) == (
        "openai: authentication failed (HTTP 401: Incorrect API key provided.); the API key "
        "was refused: check OPENAI_API_KEY"
    )
    assert caught.value.status_code == 401


async def test_an_unknown_model_is_named(make_provider: MakeProvider) -> None:
    with FakeResponsesServer(models=["gpt-5"]) as server, pytest.raises(ProviderError) as caught:
        await make_provider(base_url=server.base_url, model="gpt-6").complete(ask("hi"))

    assert str(caught.value).startswith(
        "openai: the API rejected the request (HTTP 400): The requested model 'gpt-6' does "
        "not exist; known models for openai: gpt-5, "
    )


async def test_rate_limits_and_server_errors_are_retried(
    server: FakeResponsesServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    server.queue_error(429, "Rate limit reached", retry_after=2)
    server.queue_error(500, "The server had an error")
    server.queue_text("finally")

    response = await make_provider().complete(ask("hi"), Deltas())

    assert response.message.content == "finally"
    assert len(server.requests) == 3
    assert delays[0] == 2


async def test_a_failed_response_with_a_server_error_is_retried(
    server: FakeResponsesServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    server.queue(ResponsesReply(failure=("server_error", "The model had a hiccup")))
    server.queue_text("second time lucky")

    response = await make_provider().complete(ask("hi"), Deltas())

    assert response.message.content == "second time lucky"
    assert len(delays) == 1


async def test_an_error_event_that_will_not_pass_is_one_line(
    server: FakeResponsesServer, make_provider: MakeProvider
) -> None:
    server.queue(
        ResponsesReply(error_event=("context_length_exceeded", "Your input exceeds the window."))
    )

    with pytest.raises(ProviderError) as caught:
        await make_provider().complete(ask("hi"), Deltas())

    assert str(caught.value) == (
        "openai: the API reported an error: Your input exceeds the window. "
        "(context_length_exceeded)"
    )
    assert len(server.requests) == 1


async def test_server_errors_that_never_pass_give_up_saying_so(
    server: FakeResponsesServer, make_provider: MakeProvider
) -> None:
    for _ in range(3):
        server.queue(ResponsesReply(failure=("server_error", "overloaded")))

    with pytest.raises(ProviderError) as caught:
        await make_provider().complete(ask("hi"), Deltas())

    message = str(caught.value)
    assert "overloaded (server_error)" in message and "gave up after 3 attempts" in message
    assert caught.value.retryable


async def test_a_stream_cut_after_text_is_kept_and_marked_interrupted(
    server: FakeResponsesServer, make_provider: MakeProvider
) -> None:
    # created, in_progress, item added, part added, then two of four text deltas.
    server.queue(
        ResponsesReply(
            text="one two three four", tool_calls=[("system_run", {})], cut_after_events=6
        )
    )
    deltas = Deltas()

    response = await make_provider().complete(ask("count", [SYSTEM_RUN]), deltas)

    assert deltas.pieces == ["one ", "two "]
    assert response.message.content == "one two "
    assert response.message.tool_calls == []
    assert response.finish_reason == "interrupted"
    assert len(server.requests) == 1  # not retried: the user would see it twice


async def test_a_stream_cut_before_any_text_is_retried(
    server: FakeResponsesServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    server.queue(ResponsesReply(text="lost", cut_after_events=2))
    server.queue_text("kept")

    response = await make_provider().complete(ask("hi"), Deltas())

    assert response.message.content == "kept"
    assert len(delays) == 1


async def test_an_answer_that_is_no_response_object_names_the_api(
    server: FakeResponsesServer, make_provider: MakeProvider
) -> None:
    server.queue(ResponsesReply(raw_body='{"choices": []}'))

    with pytest.raises(ProviderError) as caught:
        await make_provider().complete(ask("hi"))

    assert str(caught.value) == (
        f"openai: {server.base_url}/responses answered with JSON that is not a response "
        "object; check that providers.openai.base_url points at the OpenAI Responses API"
    )


async def test_a_chat_completions_stream_is_named_the_wrong_api(
    server: FakeResponsesServer, make_provider: MakeProvider
) -> None:
    server.queue(ResponsesReply(raw_body='data: {"id": "c1", "choices": []}\n\ndata: [DONE]\n\n'))

    with pytest.raises(ProviderError) as caught:
        await make_provider().complete(ask("hi"), Deltas())

    assert str(caught.value) == (
        f"openai: {server.base_url}/responses answered with no Responses API events to the "
        "streaming request; check that providers.openai.base_url points at the OpenAI "
        "Responses API"
    )
    assert len(server.requests) == 1


async def test_a_stream_that_ends_before_the_response_is_complete_is_retried(
    server: FakeResponsesServer, make_provider: MakeProvider
) -> None:
    unfinished = 'event: response.created\ndata: {"type": "response.created", "response": {}}\n\n'
    for _ in range(3):
        server.queue(ResponsesReply(raw_body=unfinished))

    with pytest.raises(ProviderError) as caught:
        await make_provider().complete(ask("hi"), Deltas())

    assert str(caught.value) == (
        f"openai: {server.base_url}: the stream ended before the response was complete "
        "(gave up after 3 attempts); try again later"
    )


# -- the fake refuses what the real API refuses ----------------------------------------------


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (
            [user_item("hi"), {"type": "function_call_output", "call_id": "c1", "output": "x"}],
            "No tool call found for function call output with call_id c1.",
        ),
        (
            [
                user_item("hi"),
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            ],
            "No tool output found for function call c1.",
        ),
        (
            [
                user_item("hi"),
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "input_text", "text": "x"}],
                },
            ],
            "Invalid value: 'input_text'. Supported values are: 'output_text' and 'refusal'.",
        ),
        (
            [user_item("hi"), {"type": "reasoning", "id": "rs_1", "summary": []}],
            "Item with id 'rs_1' not found. Items are not persisted when `store` is set to "
            "false. Try again with `store` set to true, or remove this item from your input.",
        ),
    ],
)
def test_the_fake_refuses_bad_input_items(
    server: FakeResponsesServer, items: list[dict[str, Any]], message: str
) -> None:
    body = {"model": "m", "input": items, "store": False}

    answer = httpx.post(f"{server.base_url}/responses", json=body)

    assert answer.status_code in (400, 404)
    assert answer.json()["error"]["message"] == message


def test_the_fake_refuses_tools_in_the_chat_completions_shape(server: FakeResponsesServer) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {}}}

    answer = httpx.post(
        f"{server.base_url}/responses", json={"model": "m", "input": "hi", "tools": [tool]}
    )

    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "Missing required parameter: 'tools[0].name'."


def test_the_fake_streams_named_events_with_sequence_numbers(server: FakeResponsesServer) -> None:
    server.queue_tool_calls([("f", {"a": 1})], text="hi")
    events: list[tuple[str, dict[str, Any]]] = []
    with httpx.stream(
        "POST", f"{server.base_url}/responses", json={"model": "m", "input": "x", "stream": True}
    ) as answer:
        name = ""
        for line in answer.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))

    assert all(name == data["type"] for name, data in events)
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    kinds = [name for name, _ in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert "response.function_call_arguments.done" in kinds
    assert events[-1][1]["response"]["usage"]["output_tokens"] == 3


@pytest.fixture
def served_from_a_shell() -> Iterator[str]:
    """The fake Responses server from `python -m openpista.providers.testing --api responses`
    in reasoning mode, requiring a chatgpt-account-id header; yields its base URL."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openpista.providers.testing",
            "--api",
            "responses",
            "--reasoning",
            "--require-header",
            "chatgpt-account-id:acc-1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        assert process.stdout is not None
        process.stdout.close()


async def test_the_fake_serves_a_tool_round_from_a_shell(served_from_a_shell: str) -> None:
    provider = ResponsesProvider(
        name="openai",
        model="m",
        base_url=served_from_a_shell,
        headers={"chatgpt-account-id": "acc-1"},
    )
    async with provider:
        conversation = [Message(role="user", content="run: echo hi")]
        first = await provider.complete(ChatRequest(conversation, [SYSTEM_RUN]))
        (call,) = first.message.tool_calls
        conversation += [first.message, Message("tool", "hi\n", tool_call_id=call.id)]
        second = await provider.complete(ChatRequest(conversation, [SYSTEM_RUN]))

    assert served_from_a_shell.endswith("/v1")
    assert (call.name, call.arguments) == ("system.run", '{"command": "echo hi"}')
    assert state_items(first)[0]["type"] == "reasoning"
    assert second.message.content == "Tool said: hi\n"
