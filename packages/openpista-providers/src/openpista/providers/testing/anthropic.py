"""A fake Anthropic Messages server on 127.0.0.1, for tests and manual tries.

A real HTTP server in a background thread, so it serves an `openpista` subprocess as readily
as an in-process provider. It refuses what the real API refuses, with the real API's
messages: a missing `anthropic-version` or `max_tokens`, a system role inside `messages`,
turns that do not alternate, empty text blocks, tool ids or names outside the allowed
patterns, `tool_result` blocks that answer no `tool_use` of the turn before, `tool_use`
blocks left unanswered; and in thinking mode, a tool round whose assistant turn does not
start with the thinking block it was given, signature intact. It answers with the real
event sequence (`event:` and `data:` lines: message_start, content blocks, message_delta,
message_stop, pings) or a whole message.

    with FakeAnthropicServer(require_api_key="sk-ant-test") as server:
        server.queue_tool_calls([("system_run", {"command": "ls"})])
        server.queue_text("Done.")
        ...  # point a provider at server.base_url (the host root, no /v1)

`serve(["--port", "8080"])` serves it from a shell: it echoes, answers "run: CMD" with a
system_run tool call, and tool results with "Tool said: ...".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from openpista.providers.testing._server import (
    FakeHandler,
    ScriptedFakeServer,
    serve_from_shell,
    shell_parser,
)
from openpista.providers.testing.chat_completions import (
    TOOL_NAME_PATTERN,
    RecordedRequest,
    ToolCallScript,
    _arguments_json,  # pyright: ignore[reportPrivateUsage]
    _split_fragments,  # pyright: ignore[reportPrivateUsage]
    _split_text,  # pyright: ignore[reportPrivateUsage]
)

ANTHROPIC_VERSION = "2023-06-01"
OAUTH_BETA = "oauth-2025-04-20"
"""The beta a request signed in with an OAuth token must name in `anthropic-beta`."""

TOOL_USE_ID_PATTERN = re.compile(r"^[a-zA-Z0-9_-]+$")
"""What the real API accepts as a tool_use id."""

THINKING_REQUIRED = (
    "When `thinking` is enabled, a final `assistant` message must start with a thinking block "
    "(preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you "
    "include thinking blocks from previous turns. To avoid this requirement, disable "
    "`thinking`. Please consult our documentation at "
    "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
)

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

_TOP_LEVEL_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "tools",
        "tool_choice",
        "stream",
        "metadata",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "thinking",
        "service_tier",
    }
)
_BLOCK_FIELDS = {
    "text": {"type", "text", "cache_control", "citations"},
    "image": {"type", "source", "cache_control"},
    "tool_use": {"type", "id", "name", "input", "cache_control"},
    "tool_result": {"type", "tool_use_id", "content", "is_error", "cache_control"},
    "thinking": {"type", "thinking", "signature"},
    "redacted_thinking": {"type", "data"},
}


@dataclass(frozen=True, slots=True)
class FakeAnthropicReply:
    """One scripted answer: text and/or tool calls, or an HTTP error.

    `thinking` puts a thinking block (with a signature) first; `redacted_thinking` a redacted
    one; in the server's thinking mode every reply gets a thinking block unless it names its
    own. `stop_reason` overrides the natural one (`max_tokens` plays a reply cut at the
    output limit). `cut_after_events` hangs up after that many SSE events; `error_after_events`
    sends an `error` event of type `stream_error` there instead. `raw_body` is sent verbatim.
    """

    text: str = ""
    tool_calls: Sequence[ToolCallScript] = ()
    thinking: str | None = None
    redacted_thinking: bool = False
    stop_reason: str | None = None
    status: int = 200
    error_type: str = ""
    error_message: str = ""
    retry_after: float | str | None = None
    cut_after_events: int | None = None
    error_after_events: int | None = None
    stream_error: str = "overloaded_error"
    cache_read_input_tokens: int = 0
    raw_body: str | None = None


AnthropicResponder = Callable[[dict[str, Any]], FakeAnthropicReply]
"""Answers a request body (parsed JSON) when the script queue is empty."""


@dataclass(frozen=True, slots=True)
class RecordedAnthropicRequest(RecordedRequest):
    """A request the server received, as the client sent it (fields as `RecordedRequest`'s)."""


def _turns(request: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages = request.get("messages")
    if not isinstance(messages, list):
        return []
    return [m for m in messages if isinstance(m, dict)]  # pyright: ignore[reportUnknownVariableType]


def _blocks(turn: Mapping[str, Any]) -> list[dict[str, Any]]:
    content = turn.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [b for b in content if isinstance(b, dict)]  # pyright: ignore[reportUnknownVariableType]
    return []


def _result_text(block: Mapping[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
            for part in content  # pyright: ignore[reportUnknownVariableType]
            if isinstance(part, dict)
        )
    return ""


def last_user_text(request: Mapping[str, Any]) -> str:
    """The text of the last user turn of a request body ("" when there is none)."""
    for turn in reversed(_turns(request)):
        if turn.get("role") == "user":
            return "".join(str(b.get("text", "")) for b in _blocks(turn) if b.get("type") == "text")
    return ""


def echo_responder(request: dict[str, Any]) -> FakeAnthropicReply:
    """The default answer: `Echo: ` and the last user text."""
    return FakeAnthropicReply(text=f"Echo: {last_user_text(request)}")


def run_command_responder(request: dict[str, Any]) -> FakeAnthropicReply:
    """Plays a minimal agent model: "run: CMD" -> a system_run call, tool results ->
    "Tool said: <content>", anything else -> the echo."""
    turns = _turns(request)
    last = turns[-1] if turns else {}
    results = [_result_text(b) for b in _blocks(last) if b.get("type") == "tool_result"]
    if results:
        return FakeAnthropicReply(text="Tool said: " + "\n".join(results))
    text = last_user_text(request)
    if text.startswith("run: "):
        command = text.removeprefix("run: ")
        return FakeAnthropicReply(tool_calls=[("system_run", {"command": command})])
    return echo_responder(request)


class FakeAnthropicServer(ScriptedFakeServer[FakeAnthropicReply, RecordedAnthropicRequest]):
    """An Anthropic Messages server on 127.0.0.1 (a free port unless told), in a thread.

    Replies come from the script queue (`queue_text`, `queue_tool_calls`, `queue_error`,
    `queue`), then from `responder`, then from the echo. Every `/v1/messages` request is
    recorded (`requests`, `headers`, `recorded`).
    """

    def __init__(
        self,
        *,
        responder: AnthropicResponder | None = None,
        require_api_key: str | None = None,
        require_oauth_token: str | None = None,
        thinking: bool = False,
        models: Sequence[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """`require_api_key` and `require_oauth_token`: when either is set, a request must
        carry `x-api-key: <key>`, or `Authorization: Bearer <token>` with the OAuth beta in
        `anthropic-beta`, else 401. `thinking`: every reply starts with a signed thinking
        block and requests are checked as with thinking enabled (a request that enables
        `thinking` itself is checked so anyway). `models`: the only ones served."""
        super().__init__(
            _Handler,
            responder=responder,
            fallback=echo_responder,
            host=host,
            port=port,
            thread_name="fake-anthropic",
        )
        self.require_api_key = require_api_key
        self.require_oauth_token = require_oauth_token
        self.thinking = thinking
        self.models = list(models) if models is not None else None
        self._secret = secrets.token_bytes(16)
        self._issued_thinking: dict[str, list[dict[str, Any]]] = {}

    # -- script ----------------------------------------------------------------------------

    def queue_text(self, text: str, *, thinking: str | None = None) -> None:
        self.queue(FakeAnthropicReply(text=text, thinking=thinking))

    def queue_tool_calls(
        self, calls: Sequence[ToolCallScript], text: str = "", *, thinking: str | None = None
    ) -> None:
        """Answer with these tool calls (wire names), optionally after thinking and text."""
        self.queue(FakeAnthropicReply(text=text, tool_calls=list(calls), thinking=thinking))

    def queue_error(
        self,
        status: int,
        message: str,
        *,
        error_type: str = "",
        retry_after: float | str | None = None,
    ) -> None:
        """Answer with an API error (type from the status unless given); `retry_after`
        becomes the Retry-After header."""
        self.queue(
            FakeAnthropicReply(
                status=status,
                error_type=error_type,
                error_message=message,
                retry_after=retry_after,
            )
        )

    # -- thinking signatures ------------------------------------------------------------------

    def sign(self, thinking: str) -> str:
        """The signature this server gives a thinking block holding `thinking`."""
        digest = hmac.new(self._secret, thinking.encode("utf-8"), hashlib.sha256).digest()
        return base64.b64encode(digest).decode("ascii")

    def signature_valid(self, thinking: str, signature: str) -> bool:
        return hmac.compare_digest(self.sign(thinking), signature)

    # -- serving (called from handler threads) -----------------------------------------------

    def _remember_thinking(self, tool_use_ids: list[str], blocks: list[dict[str, Any]]) -> None:
        with self._lock:
            for tool_use_id in tool_use_ids:
                self._issued_thinking[tool_use_id] = [dict(b) for b in blocks]

    def _thinking_for(self, tool_use_id: str) -> list[dict[str, Any]] | None:
        with self._lock:
            return self._issued_thinking.get(tool_use_id)


class _ApiError(Exception):
    """A request the real API would refuse: becomes an Anthropic-shaped error response."""

    def __init__(self, status: int, message: str, error_type: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or _ERROR_TYPES.get(status, "api_error")


class _Handler(FakeHandler[FakeAnthropicServer]):
    server_version = "openpista-fake-anthropic/1"

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            models = self.fake.models or ["claude-fake"]
            data = [
                {
                    "type": "model",
                    "id": m,
                    "display_name": m,
                    "created_at": "2025-01-01T00:00:00Z",
                }
                for m in models
            ]
            self._send_json(
                200,
                {"data": data, "has_more": False, "first_id": models[0], "last_id": models[-1]},
            )
            return
        self._send_error(_ApiError(404, "Not found"))

    def do_POST(self) -> None:
        parsed, body, headers = self._read_json_request()
        if self.path.split("?")[0].rstrip("/") != "/v1/messages":
            self._send_error(_ApiError(404, "Not found"))
            return
        self.fake._record(RecordedAnthropicRequest("POST", self.path, headers, body))
        try:
            self._check_headers(headers)
            if not isinstance(parsed, dict):
                raise _ApiError(400, "There was an issue with your request body: invalid JSON")
            _validate_request(body, self.fake)
        except _ApiError as error:
            self._send_error(error)
            return
        reply = self.fake._next_reply(body)
        if reply.raw_body is not None:
            self._send_bytes(reply.status, reply.raw_body.encode(), "text/plain; charset=utf-8")
        elif reply.status >= 400:
            error = _ApiError(
                reply.status, reply.error_message or "scripted error", reply.error_type
            )
            self._send_error(error, retry_after=reply.retry_after)
        else:
            thinking_on = self.fake.thinking or _thinking_enabled(body)
            blocks = self._content_blocks(reply, thinking_on)
            if body.get("stream"):
                self._send_stream(body, reply, blocks)
            else:
                self._send_json(200, self._message(body, reply, blocks))

    # -- checks --------------------------------------------------------------------------

    def _check_headers(self, headers: Mapping[str, str]) -> None:
        if not headers.get("anthropic-version"):
            raise _ApiError(400, "anthropic-version: header is required")
        fake = self.fake
        if fake.require_api_key is None and fake.require_oauth_token is None:
            return
        api_key = headers.get("x-api-key")
        if api_key is not None:
            expected = fake.require_api_key
            if expected is None or not hmac.compare_digest(api_key, expected):
                raise _ApiError(401, "invalid x-api-key")
            return
        authorization = headers.get("authorization", "")
        if authorization:
            if not authorization.startswith("Bearer "):
                raise _ApiError(401, "invalid authorization header")
            betas = [b.strip() for b in headers.get("anthropic-beta", "").split(",")]
            if OAUTH_BETA not in betas:
                raise _ApiError(401, "OAuth authentication is currently not supported.")
            token = authorization.removeprefix("Bearer ")
            expected = fake.require_oauth_token
            if expected is None or not hmac.compare_digest(token, expected):
                raise _ApiError(401, "Invalid bearer token")
            return
        raise _ApiError(401, "x-api-key header is required")

    # -- replies ----------------------------------------------------------------------------

    def _content_blocks(self, reply: FakeAnthropicReply, thinking_on: bool) -> list[dict[str, Any]]:
        """The reply's content blocks, complete, in order."""
        blocks: list[dict[str, Any]] = []
        if reply.redacted_thinking:
            data = base64.b64encode(secrets.token_bytes(24)).decode("ascii")
            blocks.append({"type": "redacted_thinking", "data": data})
        thinking = reply.thinking
        if thinking is None and thinking_on and not reply.redacted_thinking:
            thinking = f"Thought number {self.fake._next_id()}: what does the user need?"
        if thinking is not None:
            blocks.append(
                {"type": "thinking", "thinking": thinking, "signature": self.fake.sign(thinking)}
            )
        if reply.text:
            blocks.append({"type": "text", "text": reply.text})
        tool_use_ids: list[str] = []
        for name, arguments in reply.tool_calls:
            tool_use_id = f"toolu_fake{self.fake._next_id():04d}"
            tool_use_ids.append(tool_use_id)
            blocks.append(
                {
                    "type": "tool_use",
                    "id": tool_use_id,
                    "name": name,
                    "input": json.loads(_arguments_json(arguments) or "{}"),
                }
            )
        thinking_blocks = [b for b in blocks if b["type"] in ("thinking", "redacted_thinking")]
        self.fake._remember_thinking(tool_use_ids, thinking_blocks)
        return blocks

    def _message(
        self, body: dict[str, Any], reply: FakeAnthropicReply, blocks: list[dict[str, Any]]
    ) -> dict[str, Any]:
        return {
            "id": f"msg_fake{self.fake._next_id()}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": blocks,
            "stop_reason": _stop_reason(reply),
            "stop_sequence": None,
            "usage": {
                **_input_usage(body, reply),
                "output_tokens": _output_tokens(reply),
            },
        }

    def _send_stream(
        self, body: dict[str, Any], reply: FakeAnthropicReply, blocks: list[dict[str, Any]]
    ) -> None:
        self._start_event_stream()
        for sent, (name, data) in enumerate(self._events(body, reply, blocks)):
            if reply.error_after_events is not None and sent >= reply.error_after_events:
                error = {
                    "type": "error",
                    "error": {"type": reply.stream_error, "message": "Overloaded"},
                }
                self._write_chunk(f"event: error\ndata: {json.dumps(error)}\n\n".encode())
                break
            if reply.cut_after_events is not None and sent >= reply.cut_after_events:
                self._hang_up()
                return
            self._write_chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        self._write_chunk(b"")

    def _events(
        self, body: dict[str, Any], reply: FakeAnthropicReply, blocks: list[dict[str, Any]]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        message = self._message(body, reply, [])
        message["stop_reason"] = None
        message["usage"]["output_tokens"] = 1
        yield "message_start", {"type": "message_start", "message": message}
        yield "ping", {"type": "ping"}
        for index, block in enumerate(blocks):
            kind = block["type"]
            if kind == "text":
                start: dict[str, Any] = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": p} for p in _split_text(block["text"])]
            elif kind == "thinking":
                start = {"type": "thinking", "thinking": "", "signature": ""}
                deltas = [
                    {"type": "thinking_delta", "thinking": p}
                    for p in _split_text(block["thinking"])
                ]
                deltas.append({"type": "signature_delta", "signature": block["signature"]})
            elif kind == "redacted_thinking":
                start, deltas = dict(block), []
            else:
                start = {**block, "input": {}}
                arguments = json.dumps(block["input"])
                deltas = [{"type": "input_json_delta", "partial_json": ""}] + [
                    {"type": "input_json_delta", "partial_json": fragment}
                    for fragment in _split_fragments(arguments, 3)
                ]
            yield (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
            for delta in deltas:
                yield (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            yield "content_block_stop", {"type": "content_block_stop", "index": index}
        yield (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": _stop_reason(reply), "stop_sequence": None},
                "usage": {"output_tokens": _output_tokens(reply)},
            },
        )
        yield "message_stop", {"type": "message_stop"}

    # -- wire -------------------------------------------------------------------------------

    def _send_error(self, error: _ApiError, retry_after: float | str | None = None) -> None:
        request_id = f"req_fake{self.fake._next_id()}"
        payload = {
            "type": "error",
            "error": {"type": error.error_type, "message": error.message},
            "request_id": request_id,
        }
        extra = {"request-id": request_id}
        if retry_after is not None:
            extra["Retry-After"] = str(retry_after)
        self._send_json(error.status, payload, extra)


# -- request validation -----------------------------------------------------------------------


def _thinking_enabled(body: Mapping[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and cast("dict[str, Any]", thinking).get("type") == "enabled"


def _validate_request(body: dict[str, Any], fake: FakeAnthropicServer) -> None:
    """Refuse what the real API refuses, with its messages."""
    for key in body:
        if key not in _TOP_LEVEL_FIELDS:
            raise _ApiError(400, f"{key}: Extra inputs are not permitted")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _ApiError(400, "model: Field required")
    if "max_tokens" not in body:
        raise _ApiError(400, "max_tokens: Field required")
    max_tokens = body["max_tokens"]
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise _ApiError(400, "max_tokens: Input should be greater than or equal to 1")
    _validate_system(body.get("system"))
    _validate_tools(body.get("tools"), body.get("tool_choice"))
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _ApiError(
            400,
            "messages: Field required"
            if messages is None
            else "messages: at least one message is required",
        )
    _validate_messages(messages, fake)  # pyright: ignore[reportUnknownArgumentType]
    if fake.thinking or _thinking_enabled(body):
        _validate_thinking(messages, fake)  # pyright: ignore[reportUnknownArgumentType]
    if fake.models is not None and model not in fake.models:
        raise _ApiError(404, f"model: {model}")


def _validate_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise _ApiError(400, "system: Input should be a valid list")
    for index, block in enumerate(system):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        if not isinstance(block, dict) or block.get("type") != "text":  # pyright: ignore[reportUnknownMemberType]
            raise _ApiError(400, f"system.{index}.type: Input should be 'text'")
        if not str(block.get("text", "")).strip():  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
            raise _ApiError(400, "system: text content blocks must be non-empty")


def _validate_tools(tools: Any, tool_choice: Any) -> None:
    if tools is not None:
        if not isinstance(tools, list):
            raise _ApiError(400, "tools: Input should be a valid list")
        for index, tool in enumerate(tools):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
            if not isinstance(tool, dict):
                raise _ApiError(400, f"tools.{index}: Input should be a valid dictionary")
            name = tool.get("name")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            if not isinstance(name, str) or not TOOL_NAME_PATTERN.match(name):
                raise _ApiError(
                    400,
                    f"tools.{index}.custom.name: String should match pattern "
                    "'^[a-zA-Z0-9_-]{1,64}$'",
                )
            schema = tool.get("input_schema")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            if not isinstance(schema, dict):
                raise _ApiError(400, f"tools.{index}.custom.input_schema: Field required")
            if schema.get("type") != "object":  # pyright: ignore[reportUnknownMemberType]
                raise _ApiError(
                    400, f"tools.{index}.custom.input_schema.type: Input should be 'object'"
                )
    if tool_choice is not None:
        if not isinstance(tool_choice, dict):
            raise _ApiError(400, "tool_choice: Input should be a valid dictionary")
        if tool_choice.get("type") not in ("auto", "any", "tool", "none"):  # pyright: ignore[reportUnknownMemberType]
            raise _ApiError(400, "tool_choice: Input tag does not match any of the expected tags")


def _validate_messages(messages: list[Any], fake: FakeAnthropicServer) -> None:
    previous_role = ""
    previous_tool_use_ids: list[str] = []
    every_tool_use_id: set[str] = set()
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _ApiError(400, f"messages.{index}: Input should be a valid dictionary")
        for key in message:  # pyright: ignore[reportUnknownVariableType]
            if key not in ("role", "content"):
                raise _ApiError(400, f"messages.{index}.{key}: Extra inputs are not permitted")
        role = message.get("role")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if role not in ("user", "assistant"):
            hint = (
                ' (system prompts go in the top-level "system" parameter)'
                if role == "system"
                else ""
            )
            raise _ApiError(
                400, f"messages.{index}.role: Input should be 'user' or 'assistant'{hint}"
            )
        if index == 0 and role != "user":
            raise _ApiError(400, 'messages: first message must use the "user" role')
        if role == previous_role:
            raise _ApiError(
                400,
                f'messages: roles must alternate between "user" and "assistant", but found '
                f'multiple "{role}" roles in a row',
            )
        content = message.get("content")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if isinstance(content, str):
            if not content.strip():
                raise _ApiError(
                    400,
                    f"messages.{index}: all messages must have non-empty content except for "
                    "the optional final assistant message",
                )
            blocks: list[Any] = []
        elif isinstance(content, list) and content:
            blocks = content  # pyright: ignore[reportUnknownVariableType]
        else:
            raise _ApiError(
                400,
                f"messages.{index}: all messages must have non-empty content except for the "
                "optional final assistant message",
            )
        tool_use_ids: list[str] = []
        answered: list[str] = []
        for position, block in enumerate(blocks):
            where = f"messages.{index}.content.{position}"
            tool_use_id = _validate_block(block, role, where, fake)  # pyright: ignore[reportUnknownArgumentType]
            kind = block.get("type")
            if kind == "tool_use":
                if tool_use_id in every_tool_use_id:
                    # The real API's words for a conversation that repeats a call id (local
                    # models that number calls from 0 every round).
                    raise _ApiError(400, f"{where}: `tool_use` ids must be unique")
                every_tool_use_id.add(tool_use_id)
                tool_use_ids.append(tool_use_id)
            elif kind == "tool_result":
                if tool_use_id not in previous_tool_use_ids:
                    raise _ApiError(
                        400,
                        f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: "
                        f"{tool_use_id}. Each `tool_result` block must have a corresponding "
                        "`tool_use` block in the previous message.",
                    )
                answered.append(tool_use_id)
        if previous_tool_use_ids:
            missing = [i for i in previous_tool_use_ids if i not in answered]
            if missing:
                raise _unanswered(index - 1, missing)
        previous_role = role  # pyright: ignore[reportUnknownVariableType]
        previous_tool_use_ids = tool_use_ids
    if previous_tool_use_ids:
        raise _unanswered(len(messages) - 1, previous_tool_use_ids)


def _unanswered(index: int, ids: list[str]) -> _ApiError:
    return _ApiError(
        400,
        f"messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately "
        f"after: {', '.join(ids)}. Each `tool_use` block must have a corresponding "
        "`tool_result` block in the next message.",
    )


def _validate_block(block: Any, role: str, where: str, fake: FakeAnthropicServer) -> str:
    """Check one content block; return its tool_use id or tool_result's tool_use_id."""
    if not isinstance(block, dict):
        raise _ApiError(400, f"{where}: Input should be a valid dictionary")
    kind = block.get("type")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    allowed = _BLOCK_FIELDS.get(kind) if isinstance(kind, str) else None
    if allowed is None:
        raise _ApiError(400, f"{where}.type: Input tag '{kind}' does not match the expected tags")
    for key in block:  # pyright: ignore[reportUnknownVariableType]
        if key not in allowed:
            raise _ApiError(400, f"{where}.{kind}.{key}: Extra inputs are not permitted")
    if kind == "text":
        text = block.get("text")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if not isinstance(text, str) or not text:
            raise _ApiError(400, "messages: text content blocks must be non-empty")
        if not text.strip():
            raise _ApiError(400, "messages: text content blocks must contain non-whitespace text")
        return ""
    if kind in ("tool_use", "thinking", "redacted_thinking") and role != "assistant":
        raise _ApiError(400, f"{where}: `{kind}` blocks can only be in `assistant` messages")
    if kind == "tool_result" and role != "user":
        raise _ApiError(400, f"{where}: `tool_result` blocks can only be in `user` messages")
    if kind == "tool_use":
        tool_use_id = block.get("id")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if not isinstance(tool_use_id, str) or not TOOL_USE_ID_PATTERN.match(tool_use_id):
            raise _ApiError(
                400, f"{where}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'"
            )
        name = block.get("name")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if not isinstance(name, str) or not TOOL_NAME_PATTERN.match(name):
            raise _ApiError(
                400,
                f"{where}.tool_use.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'",
            )
        if not isinstance(block.get("input"), dict):  # pyright: ignore[reportUnknownMemberType]
            raise _ApiError(400, f"{where}.tool_use.input: Input should be a valid dictionary")
        return tool_use_id
    if kind == "tool_result":
        tool_use_id = block.get("tool_use_id")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if not isinstance(tool_use_id, str) or not TOOL_USE_ID_PATTERN.match(tool_use_id):
            raise _ApiError(
                400,
                f"{where}.tool_result.tool_use_id: String should match pattern '^[a-zA-Z0-9_-]+$'",
            )
        content = block.get("content")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if isinstance(content, list):
            for number, inner in enumerate(content):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
                inner_where = f"{where}.tool_result.content.{number}"
                inner_kind = inner.get("type") if isinstance(inner, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
                if inner_kind not in ("text", "image"):
                    raise _ApiError(
                        400,
                        f"{inner_where}.type: Input tag '{inner_kind}' does not match the "
                        "expected tags: 'text', 'image'",
                    )
                _validate_block(inner, role, inner_where, fake)
        return tool_use_id
    if kind == "image":
        if role != "user":
            raise _ApiError(400, f"{where}: `image` blocks can only be in `user` messages")
        _validate_image_source(block.get("source"), f"{where}.image.source")  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
    if kind == "thinking":
        thinking = block.get("thinking")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        signature = block.get("signature")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if not isinstance(signature, str) or not signature:
            raise _ApiError(400, f"{where}.thinking.signature: Field required")
        if not isinstance(thinking, str) or not fake.signature_valid(thinking, signature):
            raise _ApiError(400, f"{where}: Invalid `signature` in `thinking` block")
    if kind == "redacted_thinking" and not block.get("data"):  # pyright: ignore[reportUnknownMemberType]
        raise _ApiError(400, f"{where}.redacted_thinking.data: Field required")
    return ""


_IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def _validate_image_source(source: Any, where: str) -> None:
    """A base64 source: a known media type and data that decodes."""
    if not isinstance(source, dict) or source.get("type") != "base64":  # pyright: ignore[reportUnknownMemberType]
        raise _ApiError(400, f"{where}: Input tag does not match the expected tags: 'base64'")
    media_type = source.get("media_type")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if media_type not in _IMAGE_MEDIA_TYPES:
        raise _ApiError(
            400,
            f"{where}.base64.media_type: Input should be 'image/jpeg', 'image/png', "
            "'image/gif' or 'image/webp'",
        )
    data = source.get("data")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    try:
        base64.b64decode(data if isinstance(data, str) else "", validate=True)
    except ValueError:
        data = None
    if not data:
        raise _ApiError(400, f"{where}.base64.data: The image data is not valid base64")


def _validate_thinking(messages: list[dict[str, Any]], fake: FakeAnthropicServer) -> None:
    """With thinking on, the assistant turn of the last tool round (the one the final tool
    results answer) must start with the thinking blocks the server gave it, unchanged."""
    last = messages[-1]
    if len(messages) < 2 or not any(b.get("type") == "tool_result" for b in _blocks(last)):
        return
    index = len(messages) - 2
    blocks = _blocks(messages[index])
    first = blocks[0].get("type") if blocks else None
    if first not in ("thinking", "redacted_thinking"):
        raise _ApiError(
            400,
            f"messages.{index}.content.0.type: Expected `thinking` or `redacted_thinking`, but "
            f"found `{first}`. {THINKING_REQUIRED}",
        )
    for block in blocks:
        if block.get("type") != "tool_use":
            continue
        issued = fake._thinking_for(str(block.get("id")))  # pyright: ignore[reportPrivateUsage]
        if issued is None:
            continue  # a tool_use this server did not make: nothing to compare with
        sent = [b for b in blocks if b.get("type") in ("thinking", "redacted_thinking")]
        if sent[: len(issued)] != issued:
            raise _ApiError(
                400, f"messages.{index}.content.0: Invalid `signature` in `thinking` block"
            )


# -- usage ------------------------------------------------------------------------------------


def _stop_reason(reply: FakeAnthropicReply) -> str:
    if reply.stop_reason:
        return reply.stop_reason
    return "tool_use" if reply.tool_calls else "end_turn"


def _input_usage(body: dict[str, Any], reply: FakeAnthropicReply) -> dict[str, int]:
    """Token counts that are deterministic: one token per word of text."""
    words = 0
    system = body.get("system")
    if isinstance(system, str):
        words += len(system.split())
    for turn in _turns(body):
        for block in _blocks(turn):
            if block.get("type") == "text":
                words += len(str(block.get("text", "")).split())
            elif block.get("type") == "tool_result":
                words += len(_result_text(block).split())
    cached = min(reply.cache_read_input_tokens, words)
    return {
        "input_tokens": words - cached,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def _output_tokens(reply: FakeAnthropicReply) -> int:
    return len(reply.text.split()) + sum(
        len(_arguments_json(arguments).split()) for _, arguments in reply.tool_calls
    )


def serve(argv: Sequence[str] | None = None) -> int:
    """Serve the fake from a shell: prints its base URL on the first stdout line."""
    parser = shell_parser(
        "python -m openpista.providers.testing --api anthropic",
        "A fake Anthropic Messages server: echoes, and answers 'run: CMD' with a system_run "
        "tool call.",
    )
    parser.add_argument("--thinking", action="store_true", help="answer with thinking blocks")
    args = parser.parse_args(argv)
    server = FakeAnthropicServer(
        responder=run_command_responder,
        require_api_key=args.require_api_key,
        thinking=args.thinking,
        models=args.models,
        host=args.host,
        port=args.port,
    )
    return serve_from_shell(server, "Anthropic")
