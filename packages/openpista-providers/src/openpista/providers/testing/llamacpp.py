"""The llama.cpp dialect of the fake chat-completions server.

`FakeChatCompletionsServer(dialect="llamacpp")` answers as llama-cpp-python 0.3.36's server
(`python -m llama_cpp.server --chat_format chatml-function-calling`) did when tried by hand,
so a client that copes with this copes with the real one:

- an assistant message with `"content": null` (beside tool calls) fails pydantic validation,
  and the server reports that as HTTP 500 with the validation errors in the message;
- tools offered without `tool_choice` are ignored: the model answers in text;
- a streamed request whose reply is a tool call under `tool_choice: "auto"` gets a 200 with
  no events at all (the server raises "Automatic streaming tool choice is not supported"
  after the headers went out); a forced `tool_choice` streams it, every fragment repeating
  the call's id and name, beside the same call as legacy `function_call`;
- a non-streamed tool call also comes as `function_call`, its name with a trailing colon
  (`system_run:`);
- streams start with a `: ping` comment (the real one pings every 15 s), carry explicit
  nulls, and never report usage;
- errors below 500 are FastAPI's `{"detail": ...}`, 500s `{"error": {...}}`;
- when another request interrupts a stream, the server sends `data: [DONE]` and tears the
  connection down, with no finish reason (`FakeReply(interrupt_after_chunks=N)`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openpista.providers.testing.chat_completions import FakeReply

HANG_UP = None
"""Yielded by `stream_frames` where the server tears the connection down."""


class LlamaCppError(Exception):
    """A request llama.cpp's server refuses: status and the body it answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_payload(status: int, message: str) -> dict[str, Any]:
    """The body of an error: FastAPI's `{"detail": ...}` for HTTPExceptions (401, 404),
    the server's OpenAI-style wrapper for what its route handler caught (500)."""
    if status < 500:
        return {"detail": message}
    return {
        "error": {"message": message, "type": "internal_server_error", "param": None, "code": None}
    }


def validate_request(body: Mapping[str, Any]) -> None:
    """Refuse what llama-cpp-python's request model refuses (the part clients trip over)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise LlamaCppError(500, _validation_errors([_missing(("body", "messages"), body)]))
    for index, message in enumerate(messages):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        if not isinstance(message, dict) or message.get("role") != "assistant":  # pyright: ignore[reportUnknownMemberType]
            continue
        if message.get("content", "") is None:  # pyright: ignore[reportUnknownMemberType]
            raise LlamaCppError(500, _null_assistant_content(index, message))  # pyright: ignore[reportUnknownArgumentType]


def tools_ignored(body: Mapping[str, Any]) -> bool:
    """Tools offered without a `tool_choice` (or with "none") are as good as absent."""
    choice = body.get("tool_choice")
    return not body.get("tools") or choice is None or choice == "none"


def forced_tool(body: Mapping[str, Any]) -> bool:
    return isinstance(body.get("tool_choice"), dict)


def completion(body: Mapping[str, Any], reply: FakeReply, usage: dict[str, int]) -> dict[str, Any]:
    """A non-streamed chat completion, shaped as the real server's."""
    completion_id = _completion_id()
    message: dict[str, Any]
    if reply.tool_calls:
        calls = _calls(reply, completion_id)
        message = {"content": None, "role": "assistant"}
        if not reply.legacy_function_call:
            message["tool_calls"] = [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
                for call_id, name, args in calls
            ]
        _, name, args = calls[0]
        # Under "auto" the real server names the legacy call as its grammar spelled it.
        suffix = "" if forced_tool(body) else ":"
        message["function_call"] = {"name": name + suffix, "arguments": args}
        finish_reason = "tool_calls"
    else:
        message = {"content": reply.text, "role": "assistant"}
        finish_reason = "stop"
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
        "usage": usage,
    }


def stream_frames(body: Mapping[str, Any], reply: FakeReply) -> Iterator[str | None]:
    """The SSE body of a streamed reply, frame by frame (`HANG_UP` where the connection
    is torn down). Empty when the real server would fail after the headers."""
    if reply.empty_stream or (
        reply.tool_calls and not forced_tool(body) and not reply.stream_tool_calls
    ):
        return
    completion_id = _completion_id()
    created = int(time.time())
    model = body.get("model")

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
        data = {
            "id": completion_id,
            "model": model,
            "created": created,
            "object": "chat.completion.chunk",
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        return f"data: {json.dumps(data)}\n\n"

    events: list[str] = []
    if reply.tool_calls:
        events.append(
            chunk({"role": "assistant", "content": None, "function_call": None, "tool_calls": None})
        )
        for index, (call_id, name, args) in enumerate(_calls(reply, completion_id)):
            for piece in _pieces(args):
                events.append(chunk(_tool_call_delta(reply, index, call_id, name, piece)))
        events.append(
            chunk(
                {"role": None, "content": None, "function_call": None, "tool_calls": None},
                "tool_calls",
            )
        )
    else:
        events.append(chunk({"role": "assistant"}))
        events.extend(chunk({"content": piece}) for piece in _words(reply.text))
        events.append(chunk({}, "stop"))

    yield _ping()
    for sent, event in enumerate(events):
        if reply.interrupt_after_chunks is not None and sent >= reply.interrupt_after_chunks:
            yield "data: [DONE]\n\n"
            yield HANG_UP
            return
        yield event
        if sent == 0:
            yield _ping()
    yield "data: [DONE]\n\n"


def _tool_call_delta(
    reply: FakeReply, index: int, call_id: str, name: str, arguments: str
) -> dict[str, Any]:
    legacy = {"name": name, "arguments": arguments}
    tool_calls = [{"index": index, "id": call_id, "type": "function", "function": dict(legacy)}]
    return {
        "role": None,
        "content": None,
        "function_call": legacy if index == 0 else None,
        "tool_calls": None if reply.legacy_function_call else tool_calls,
    }


def _calls(reply: FakeReply, completion_id: str) -> list[tuple[str, str, str]]:
    """(id, name, arguments) of each scripted call, ids as the real server makes them."""
    calls: list[tuple[str, str, str]] = []
    for index, (name, arguments) in enumerate(reply.tool_calls):
        args = arguments if isinstance(arguments, str) else json.dumps(dict(arguments))
        calls.append((f"call__{index}_{name}_{completion_id.removeprefix('chat')}", name, args))
    return calls


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4()}"


def _ping() -> str:
    return f": ping - {datetime.now(UTC).isoformat(sep=' ')}\n\n"


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [word if i == 0 else f" {word}" for i, word in enumerate(words) if word or i == 0]


def _pieces(arguments: str) -> list[str]:
    """Arguments in token-sized pieces, ending with an empty one as the real server does."""
    size = 4
    return [arguments[i : i + size] for i in range(0, len(arguments), size)] + [""]


def _validation_errors(errors: list[dict[str, Any]]) -> str:
    count = len(errors)
    head = f"{count} validation error{'s' if count != 1 else ''}:"
    return "\n  ".join([head, *(repr(error) for error in errors)])


def _missing(loc: tuple[Any, ...], value: Any) -> dict[str, Any]:
    return {"type": "missing", "loc": loc, "msg": "Field required", "input": value}


def _null_assistant_content(index: int, message: dict[str, Any]) -> str:
    """The message pydantic gives when an assistant message's content is null: one error
    per member of the message union, the telling one in the middle."""

    def loc(model: str, field: str) -> tuple[Any, ...]:
        return ("body", "messages", index, f"ChatCompletionRequest{model}Message", field)

    def wrong_role(model: str, role: str) -> dict[str, Any]:
        return {
            "type": "literal_error",
            "loc": loc(model, "role"),
            "msg": f"Input should be '{role}'",
            "input": "assistant",
            "ctx": {"expected": f"'{role}'"},
        }

    return _validation_errors(
        [
            wrong_role("System", "system"),
            wrong_role("User", "user"),
            {
                "type": "string_type",
                "loc": loc("Assistant", "content"),
                "msg": "Input should be a valid string",
                "input": None,
            },
            wrong_role("Tool", "tool"),
            _missing(loc("Tool", "tool_call_id"), message),
            wrong_role("Function", "function"),
            _missing(loc("Function", "name"), message),
        ]
    )
