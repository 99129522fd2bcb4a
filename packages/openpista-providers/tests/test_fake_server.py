"""The fake server speaks chat completions the way the real API does, seen from a raw client."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from openpista.core.models import Message, ToolCall
from openpista.core.provider import ChatRequest, ToolSpec
from openpista.providers.chat_completions import ChatCompletionsProvider
from openpista.providers.testing import FakeChatCompletionsServer, FakeReply

USER_HI = [{"role": "user", "content": "hi"}]


def post(server: FakeChatCompletionsServer, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(f"{server.base_url}/chat/completions", json=body, headers=headers)


def sse_chunks(response: httpx.Response) -> Iterator[Any]:
    for line in response.text.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            yield json.loads(line.removeprefix("data: "))


def test_base_url_is_local_and_ends_in_v1(server: FakeChatCompletionsServer) -> None:
    assert server.base_url == f"http://127.0.0.1:{server.port}/v1"


def test_non_streaming_reply_is_a_chat_completion(server: FakeChatCompletionsServer) -> None:
    server.queue_text("hello back")

    response = post(server, {"model": "m", "messages": USER_HI})

    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"]["content"] == "hello back"
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["usage"] == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}


def test_streamed_tool_call_comes_in_fragments_like_the_real_api(
    server: FakeChatCompletionsServer,
) -> None:
    server.queue_tool_calls([("system_run", {"command": "echo hello world"})])
    body = {
        "model": "m",
        "messages": USER_HI,
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    response = post(server, body)

    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.rstrip().endswith("data: [DONE]")
    chunks = list(sse_chunks(response))
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks if chunk["choices"]]
    tool_deltas = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    head, *fragments = tool_deltas
    assert head["id"].startswith("call_")
    assert head["type"] == "function"
    assert head["function"] == {"name": "system_run", "arguments": ""}
    assert len(fragments) > 1
    assert all("id" not in f and "name" not in f["function"] for f in fragments)
    arguments = "".join(f["function"]["arguments"] for f in fragments)
    assert json.loads(arguments) == {"command": "echo hello world"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_streamed_text_without_usage_requested_has_no_usage_chunk(
    server: FakeChatCompletionsServer,
) -> None:
    server.queue_text("a b c")

    chunks = list(sse_chunks(post(server, {"model": "m", "messages": USER_HI, "stream": True})))

    assert all(chunk["choices"] for chunk in chunks)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "a b c"


def test_a_bad_tool_name_gets_the_real_apis_400(server: FakeChatCompletionsServer) -> None:
    tool = {"type": "function", "function": {"name": "system.run", "parameters": {}}}
    server.queue_text("kept for the next valid request")

    response = post(server, {"model": "m", "messages": USER_HI, "tools": [tool]})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith(
        "Invalid 'tools[0].function.name': string does not match pattern"
    )
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "tools[0].function.name"
    assert error["code"] == "invalid_value"
    assert server.pending == 1, "a refused request does not use up a scripted reply"


def test_a_tool_result_must_answer_a_preceding_tool_call(
    server: FakeChatCompletionsServer,
) -> None:
    orphan = [*USER_HI, {"role": "tool", "tool_call_id": "call_x", "content": "out"}]
    unanswered = [
        *USER_HI,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "user", "content": "never mind"},
    ]
    answered = [*unanswered[:2], {"role": "tool", "tool_call_id": "call_a", "content": "ok"}]

    assert post(server, {"model": "m", "messages": orphan}).status_code == 400
    refused = post(server, {"model": "m", "messages": unanswered})
    assert refused.status_code == 400
    assert "did not have response messages: call_a" in refused.json()["error"]["message"]
    assert post(server, {"model": "m", "messages": answered}).status_code == 200


def test_a_missing_model_is_refused(server: FakeChatCompletionsServer) -> None:
    response = post(server, {"messages": USER_HI})

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "you must provide a model parameter"


def test_require_api_key_refuses_a_wrong_or_missing_bearer() -> None:
    with FakeChatCompletionsServer(require_api_key="k") as guarded:
        body = {"model": "m", "messages": USER_HI}
        assert post(guarded, body).status_code == 401
        assert post(guarded, body, Authorization="Bearer nope").status_code == 401
        assert post(guarded, body, Authorization="Bearer k").status_code == 200
        assert [h.get("authorization") for h in guarded.headers] == [
            None,
            "Bearer nope",
            "Bearer k",
        ]


def test_scripted_errors_carry_retry_after(server: FakeChatCompletionsServer) -> None:
    server.queue_error(429, "slow down", retry_after=3)

    response = post(server, {"model": "m", "messages": USER_HI})

    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json()["error"]["message"] == "slow down"


def test_the_responder_answers_when_the_queue_is_empty() -> None:
    seen: list[dict[str, Any]] = []

    def responder(request: dict[str, Any]) -> FakeReply:
        seen.append(request)
        return FakeReply(text=f"{len(request['messages'])} messages")

    with FakeChatCompletionsServer(responder=responder) as fake:
        fake.queue_text("scripted first")
        first = post(fake, {"model": "m", "messages": USER_HI}).json()
        second = post(fake, {"model": "m", "messages": USER_HI}).json()

    assert first["choices"][0]["message"]["content"] == "scripted first"
    assert second["choices"][0]["message"]["content"] == "1 messages"
    assert len(seen) == 1


def test_unknown_paths_get_a_404(server: FakeChatCompletionsServer) -> None:
    response = httpx.post(f"{server.base_url}/completions", json={})

    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Invalid URL (POST /v1/completions)"


def test_models_are_listed(server: FakeChatCompletionsServer) -> None:
    assert httpx.get(f"{server.base_url}/models").json()["data"][0]["id"] == "fake-model"


@pytest.fixture
def served_from_a_shell() -> Iterator[str]:
    """`python -m openpista.providers.testing` in a subprocess; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "openpista.providers.testing", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        process.stderr.close()


async def test_the_shell_server_plays_a_command_running_model(served_from_a_shell: str) -> None:
    system_run = ToolSpec("system.run", "system_run", "Run a command", {"type": "object"})
    provider = ChatCompletionsProvider(name="custom", model="m", base_url=served_from_a_shell)
    async with provider:
        conversation = [Message(role="user", content="run: echo hi")]
        first = await provider.complete(ChatRequest(messages=conversation, tools=[system_run]))
        [call] = first.message.tool_calls
        conversation += [first.message, Message("tool", "hi\n", tool_call_id=call.id)]
        second = await provider.complete(ChatRequest(conversation, [system_run]))
        echoed = await provider.complete(ChatRequest([Message(role="user", content="plain")]))

    assert call == ToolCall(id=call.id, name="system.run", arguments='{"command": "echo hi"}')
    assert second.message.content == "Tool said: hi\n"
    assert echoed.message.content == "Echo: plain"
