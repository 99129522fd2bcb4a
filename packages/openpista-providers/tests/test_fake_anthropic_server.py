"""The fake Anthropic server refuses what the real API refuses and streams the real events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from openpista.providers.testing import FakeAnthropicServer

HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "k"}


@pytest.fixture
def server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer(require_api_key="k") as fake:
        yield fake


def post(server: FakeAnthropicServer, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/v1/messages", json=body, headers={**HEADERS, **headers}, timeout=10
    )


def body(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "claude-fake", "max_tokens": 100, "messages": list(messages), **extra}


def user(*content: Any) -> dict[str, Any]:
    return {"role": "user", "content": list(content)}


def assistant(*content: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": list(content)}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def use(tool_use_id: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_use_id, "name": "system_run", "input": {}}


def result(tool_use_id: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tool_use_id, "content": "ok"}


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ({"model": "m", "messages": [user(text("hi"))]}, "max_tokens: Field required"),
        (body({"role": "system", "content": "x"}), "messages.0.role: Input should be"),
        (body(user(text("a")), user(text("b"))), "roles must alternate"),
        (body(assistant(text("a"))), 'first message must use the "user" role'),
        (body(user(text(""))), "text content blocks must be non-empty"),
        (body(user(text("  "))), "must contain non-whitespace text"),
        (body(user(text("a")), assistant(use("x.1")), user(result("x.1"))), "tool_use.id"),
        (body(user(result("toolu_1"))), "unexpected `tool_use_id`"),
        (body(user(text("a")), assistant(use("toolu_1"))), "without `tool_result` blocks"),
        (
            body(user(text("a")), assistant(use("toolu_1")), user(text("b"))),
            "ids were found without `tool_result` blocks immediately after: toolu_1",
        ),
        (
            body(user(text("a")), tools=[{"name": "system.run", "input_schema": {}}]),
            "tools.0.custom.name: String should match pattern",
        ),
        (body(user(text("a")), stream_options={}), "stream_options: Extra inputs"),
        (
            body(
                user(text("a")), assistant({"type": "thinking", "thinking": "t", "signature": "s"})
            ),
            "Invalid `signature` in `thinking` block",
        ),
    ],
)
def test_requests_the_real_api_refuses_are_refused_with_its_words(
    server: FakeAnthropicServer, request_body: dict[str, Any], message: str
) -> None:
    response = post(server, request_body)

    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert message in error["error"]["message"]


def test_a_valid_tool_round_is_answered(server: FakeAnthropicServer) -> None:
    server.queue_text("fine")

    response = post(
        server,
        body(user(text("a")), assistant(text("b"), use("toolu_1")), user(result("toolu_1"))),
    )

    assert response.status_code == 200, response.text
    assert response.json()["content"] == [{"type": "text", "text": "fine"}]


def test_headers_are_checked(server: FakeAnthropicServer) -> None:
    no_version = httpx.post(
        f"{server.base_url}/v1/messages", json=body(user(text("a"))), headers={"x-api-key": "k"}
    )
    wrong_key = post(server, body(user(text("a"))), **{"x-api-key": "nope"})

    assert no_version.status_code == 400
    assert "anthropic-version" in no_version.json()["error"]["message"]
    assert wrong_key.status_code == 401
    assert wrong_key.json()["error"]["type"] == "authentication_error"


def test_the_stream_is_the_real_event_sequence(server: FakeAnthropicServer) -> None:
    server.queue_tool_calls([("system_run", {"command": "ls"})], text="Hi there")

    response = post(server, body(user(text("a")), stream=True))

    events = [
        line.removeprefix("event: ")
        for line in response.text.splitlines()
        if line.startswith("event: ")
    ]
    assert events == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        *["content_block_delta"] * 4,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    data = [
        json.loads(line.removeprefix("data: "))
        for line in response.text.splitlines()
        if line.startswith("data: ")
    ]
    assert [d["type"] for d in data] == events  # the name of each event is its data's type
    assert data[-2]["delta"]["stop_reason"] == "tool_use"
    partial = "".join(
        d["delta"].get("partial_json", "") for d in data if d["type"] == "content_block_delta"
    )
    assert json.loads(partial) == {"command": "ls"}
