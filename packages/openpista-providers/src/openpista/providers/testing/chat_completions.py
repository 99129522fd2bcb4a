"""A fake OpenAI chat-completions server on 127.0.0.1, for tests and manual tries.

It is a real HTTP server in a background thread, so it serves an `openpista` subprocess as
readily as an in-process provider, and it behaves like the real API where that matters to
a client: JSON and SSE streaming replies with usage, tool calls streamed in fragments, and
the same 400s for bad tool names, unanswered tool calls or a missing model.

    with FakeChatCompletionsServer() as server:
        server.queue_tool_calls([("system_run", {"command": "ls"})])
        server.queue_text("Done.")
        ...  # point a provider at server.base_url

Run `python -m openpista.providers.testing --port 8000` to serve it from a shell: it echoes,
answers "run: CMD" with a system_run tool call, and a tool result with "Tool said: ...".
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from openpista.providers.testing import llamacpp
from openpista.providers.testing._server import (
    IMAGE_URL,
    FakeHandler,
    FakeT,
    ScriptedFakeServer,
    serve_from_shell,
    shell_parser,
)

TOOL_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
"""What the real API accepts as a function name."""

ToolCallScript = tuple[str, Mapping[str, Any] | str]
"""A scripted tool call: its wire name and its arguments (an object, or raw JSON text)."""


@dataclass(frozen=True, slots=True)
class FakeReply:
    """One scripted answer: text and/or tool calls, or an HTTP error.

    `cut_after_chunks` makes a streamed reply break off (connection closed) after that many
    SSE events; `raw_body` is sent verbatim instead of a chat completion, to play a server
    that answers nonsense.

    For the llama.cpp dialect (see `openpista.providers.testing.llamacpp`):
    `interrupt_after_chunks` sends `data: [DONE]` after that many events and tears the
    connection down, as llama.cpp does when another request interrupts the stream;
    `empty_stream` answers 200 with no events; `stream_tool_calls` streams tool calls even
    under `tool_choice: "auto"` (the real server sends an empty stream then);
    `legacy_function_call` sends a call only as the pre-tools `function_call`.
    """

    text: str = ""
    tool_calls: Sequence[ToolCallScript] = ()
    status: int = 200
    error_message: str = ""
    retry_after: float | str | None = None
    cut_after_chunks: int | None = None
    raw_body: str | None = None
    interrupt_after_chunks: int | None = None
    empty_stream: bool = False
    stream_tool_calls: bool = False
    legacy_function_call: bool = False


Dialect = Literal["openai", "llamacpp"]
"""Which server the fake plays: OpenAI's API, or llama.cpp's (llama-cpp-python) server."""

IGNORED_TOOLS_TEXT = "I cannot run anything for you."
"""The llama.cpp dialect's answer to a scripted tool call when tools went without tool_choice
(the real server does not let the model see them)."""

Responder = Callable[[dict[str, Any]], FakeReply]
"""Answers a request body (parsed JSON) when the script queue is empty."""


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request the server received, as the client sent it."""

    method: str
    path: str
    headers: Mapping[str, str]
    """Header names lower-cased."""
    body: dict[str, Any]
    """The JSON body; {} when it was not a JSON object."""


def last_user_text(request: Mapping[str, Any]) -> str:
    """The content of the last user message in a request body ("" when there is none)."""
    for message in reversed(_messages(request)):
        if message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def echo_responder(request: dict[str, Any]) -> FakeReply:
    """The default answer: `Echo: ` and the last user message."""
    return FakeReply(text=f"Echo: {last_user_text(request)}")


def run_command_responder(request: dict[str, Any]) -> FakeReply:
    """Plays a minimal agent model: "run: CMD" -> a system_run call, a tool result ->
    "Tool said: <content>", anything else -> the echo."""
    messages = _messages(request)
    results: list[str] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.insert(0, _content_text(message.get("content")))
    if results:
        return FakeReply(text="Tool said: " + "\n".join(results))
    text = last_user_text(request)
    if messages and messages[-1].get("role") == "user" and text.startswith("run: "):
        return FakeReply(tool_calls=[("system_run", {"command": text.removeprefix("run: ")})])
    return echo_responder(request)


class FakeChatCompletionsServer(ScriptedFakeServer[FakeReply, RecordedRequest]):
    """A chat-completions server on 127.0.0.1 (a free port unless told) in a background thread.

    Replies come from the script queue (`queue_text`, `queue_tool_calls`, `queue_error`,
    `queue`), then from `responder`, then from the echo. Every chat-completions request is
    recorded (`requests`, `headers`, `recorded`); `connection_count` counts TCP connections.
    """

    def __init__(
        self,
        *,
        responder: Responder | None = None,
        require_api_key: str | None = None,
        models: Sequence[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        dialect: Dialect = "openai",
    ) -> None:
        """`models`, when given, are the only ones served (others get the API's 404);
        `require_api_key` makes requests without `Authorization: Bearer <it>` fail with 401;
        `dialect="llamacpp"` answers as llama.cpp's Python server does (its module says how)."""
        super().__init__(
            _Handler,
            responder=responder,
            fallback=echo_responder,
            host=host,
            port=port,
            thread_name="fake-chat-completions",
            url_path="/v1",
        )
        self.dialect: Dialect = dialect
        self.require_api_key = require_api_key
        self.models = list(models) if models is not None else None

    # -- script ----------------------------------------------------------------------------

    def queue_text(self, text: str) -> None:
        self.queue(FakeReply(text=text))

    def queue_tool_calls(self, calls: Sequence[ToolCallScript], text: str = "") -> None:
        """Answer with these tool calls (wire names), optionally after some text."""
        self.queue(FakeReply(text=text, tool_calls=list(calls)))

    def queue_error(
        self, status: int, message: str, retry_after: float | str | None = None
    ) -> None:
        """Answer with an API error; `retry_after` becomes the Retry-After header."""
        self.queue(FakeReply(status=status, error_message=message, retry_after=retry_after))


class _ApiError(Exception):
    """A request the real API would refuse: becomes an OpenAI-shaped error response."""

    def __init__(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


class _OpenAIHandler(FakeHandler[FakeT]):
    """Answers the way OpenAI's APIs do: their error objects, their model list."""

    def _send_models(self, models: Sequence[str] | None) -> None:
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "openpista"}
            for m in models or ["fake-model"]
        ]
        self._send_json(200, {"object": "list", "data": data})

    def _send_error(self, error: _ApiError, retry_after: float | str | None = None) -> None:
        payload = {
            "error": {
                "message": error.message,
                "type": _error_type(error.status),
                "param": error.param,
                "code": error.code,
            }
        }
        extra = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self._send_json(error.status, payload, extra)

    def _answer_scripted(
        self,
        parsed: Any,
        check: Callable[[], None],
        next_reply: Callable[[], Any],
        stream: Callable[[Any], None],
        whole: Callable[[Any], dict[str, Any]],
        body: dict[str, Any],
    ) -> None:
        """What both OpenAI fakes do with a request: refuse a body that is no JSON object and
        whatever `check` refuses, then send the next scripted reply (raw, an error, streamed
        or whole)."""
        try:
            if not isinstance(parsed, dict):
                raise _ApiError(
                    400,
                    "We could not parse the JSON body of your request. (HINT: This likely means "
                    "you aren't using your HTTP library correctly.)",
                )
            check()
        except _ApiError as error:
            self._send_error(error)
            return
        reply = next_reply()
        if reply.raw_body is not None:
            self._send_bytes(reply.status, reply.raw_body.encode(), "text/plain; charset=utf-8")
        elif reply.status >= 400:
            self._send_error(
                _ApiError(reply.status, reply.error_message or "scripted error"),
                retry_after=reply.retry_after,
            )
        elif body.get("stream"):
            stream(reply)
        else:
            self._send_json(reply.status, whole(reply))


class _Handler(_OpenAIHandler[FakeChatCompletionsServer]):
    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._send_models(self.fake.models)
            return
        self._send_error(_unknown_url("GET", self.path))

    def do_POST(self) -> None:
        parsed, body, headers = self._read_json_request()
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send_error(_unknown_url("POST", self.path))
            return
        self.fake._record(RecordedRequest("POST", self.path, headers, body))
        if self.fake.dialect == "llamacpp":
            self._answer_as_llamacpp(headers, body)
            return

        def check() -> None:
            self._check_api_key(headers)
            _validate_request(body, self.fake.models)

        self._answer_scripted(
            parsed,
            check,
            lambda: self.fake._next_reply(body),
            lambda reply: self._send_stream(body, reply),
            lambda reply: self._completion(body, reply),
            body,
        )

    def _answer_as_llamacpp(self, headers: Mapping[str, str], body: dict[str, Any]) -> None:
        expected = self.fake.require_api_key
        if expected is not None and headers.get("authorization") != f"Bearer {expected}":
            self._send_json(401, llamacpp.error_payload(401, "Invalid API key"))
            return
        try:
            llamacpp.validate_request(body)
        except llamacpp.LlamaCppError as error:
            self._send_json(error.status, llamacpp.error_payload(error.status, error.message))
            return
        reply = self.fake._next_reply(body)
        if reply.tool_calls and llamacpp.tools_ignored(body):
            reply = FakeReply(text=reply.text or IGNORED_TOOLS_TEXT)
        if reply.raw_body is not None:
            self._send_bytes(reply.status, reply.raw_body.encode(), "text/plain; charset=utf-8")
        elif reply.status >= 400:
            message = reply.error_message or "scripted error"
            self._send_json(reply.status, llamacpp.error_payload(reply.status, message))
        elif body.get("stream"):
            self._start_event_stream()
            for frame in llamacpp.stream_frames(body, reply):
                if frame is None:  # llamacpp.HANG_UP
                    self._hang_up()
                    return
                self._write_chunk(frame.encode())
            self._write_chunk(b"")
        else:
            self._send_json(200, llamacpp.completion(body, reply, _usage(body, reply)))

    # -- API checks -----------------------------------------------------------------------

    def _check_api_key(self, headers: Mapping[str, str]) -> None:
        expected = self.fake.require_api_key
        if expected is None:
            return
        authorization = headers.get("authorization", "")
        if not authorization:
            raise _ApiError(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if authorization != f"Bearer {expected}":
            raise _ApiError(401, "Incorrect API key provided.", code="invalid_api_key")

    # -- replies ----------------------------------------------------------------------------

    def _completion(self, body: dict[str, Any], reply: FakeReply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": self._call_id(),
                    "type": "function",
                    "function": {"name": name, "arguments": _arguments_json(arguments)},
                }
                for name, arguments in reply.tool_calls
            ]
        elif not reply.text:
            message["content"] = ""
        message["refusal"] = None
        return {
            "id": f"chatcmpl-fake{self.fake._next_id()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if reply.tool_calls else "stop",
                }
            ],
            "usage": _usage(body, reply),
        }

    def _send_stream(self, body: dict[str, Any], reply: FakeReply) -> None:
        self._start_event_stream()
        for sent, event in enumerate(self._stream_events(body, reply)):
            if reply.cut_after_chunks is not None and sent >= reply.cut_after_chunks:
                self._hang_up()
                return
            self._write_chunk(f"data: {event}\n\n".encode())
        self._write_chunk(b"")  # The terminating zero-length chunk.

    def _stream_events(self, body: dict[str, Any], reply: FakeReply) -> Iterator[str]:
        completion_id = f"chatcmpl-fake{self.fake._next_id()}"
        created = int(time.time())
        stream_options = body.get("stream_options")
        include_usage = isinstance(stream_options, dict) and bool(
            stream_options.get("include_usage")  # pyright: ignore[reportUnknownMemberType]
        )

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
            data: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body["model"],
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
            if include_usage:
                data["usage"] = None
            return json.dumps(data)

        yield chunk({"role": "assistant", "content": "", "refusal": None})
        for piece in _split_text(reply.text):
            yield chunk({"content": piece})
        for index, (name, arguments) in enumerate(reply.tool_calls):
            head = {
                "index": index,
                "id": self._call_id(),
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            yield chunk({"tool_calls": [head]})
            for fragment in _split_fragments(_arguments_json(arguments), 3):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
        yield chunk({}, "tool_calls" if reply.tool_calls else "stop")
        if include_usage:
            yield json.dumps(
                {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": body["model"],
                    "choices": [],
                    "usage": _usage(body, reply),
                }
            )
        yield "[DONE]"

    def _call_id(self) -> str:
        return f"call_fake{self.fake._next_id()}"


def _validate_request(body: dict[str, Any], models: Sequence[str] | None) -> None:
    """Refuse what the real API refuses, with its messages."""
    model = body.get("model")
    if not model:
        raise _ApiError(400, "you must provide a model parameter")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _ApiError(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            param="messages",
            code="empty_array",
        )
    tools = body.get("tools") or []
    for index, tool in enumerate(tools if isinstance(tools, list) else []):
        function = tool.get("function") if isinstance(tool, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not TOOL_NAME_PATTERN.match(name):
            param = f"tools[{index}].function.name"
            raise _ApiError(
                400,
                f"Invalid '{param}': string does not match pattern. Expected a string that "
                "matches the pattern '^[a-zA-Z0-9_-]{1,64}$'.",
                param=param,
                code="invalid_value",
            )
    _validate_tool_call_pairs(messages)  # pyright: ignore[reportUnknownArgumentType]
    _validate_content_parts(messages)  # pyright: ignore[reportUnknownArgumentType]
    if models is not None and model not in models:
        raise _ApiError(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
        )


def _validate_tool_call_pairs(messages: list[Any]) -> None:
    """Tool results must answer the assistant tool calls just before them, all of them."""
    open_ids: set[str] = set()
    in_tool_block = False
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not in_tool_block or call_id not in open_ids:
                raise _ApiError(
                    400,
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    param=f"messages.[{index}].role",
                )
            open_ids.discard(call_id)
            continue
        if open_ids:
            raise _unanswered_tool_calls(open_ids)
        in_tool_block = False
        calls = message.get("tool_calls") if role == "assistant" else None
        if isinstance(calls, list) and calls:
            open_ids = {str(call.get("id")) for call in calls if isinstance(call, dict)}
            in_tool_block = True
    if open_ids:
        raise _unanswered_tool_calls(open_ids)


def _validate_content_parts(messages: list[Any]) -> None:
    """Content given as parts: text parts anywhere, image parts in user messages only, each
    a data URL with base64 picture data or an http(s) URL."""
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        role = message.get("role")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        content = message.get("content")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if not isinstance(content, list):
            continue
        for number, part in enumerate(content):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
            kind = part.get("type") if isinstance(part, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            param = f"messages[{index}].content[{number}]"
            if kind == "text":
                continue
            if kind != "image_url":
                raise _ApiError(
                    400,
                    f"Invalid value: '{kind}'. Supported values are: 'text' and 'image_url'.",
                    param=f"{param}.type",
                    code="invalid_value",
                )
            if role != "user":
                raise _ApiError(
                    400,
                    "Image URLs are only allowed for messages with role 'user', but this "
                    f"message with role '{role}' contains an image URL.",
                    param=f"messages[{index}]",
                    code="invalid_value",
                )
            image = part.get("image_url")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            url = image.get("url") if isinstance(image, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            if not isinstance(url, str) or not IMAGE_URL.match(url):
                raise _ApiError(
                    400,
                    "Invalid image URL: expected a base64-encoded data URL with an image MIME "
                    "type (e.g. 'data:image/png;base64,...') or an http(s) URL.",
                    param=f"{param}.image_url.url",
                    code="invalid_value",
                )


def _unanswered_tool_calls(open_ids: set[str]) -> _ApiError:
    return _ApiError(
        400,
        "An assistant message with 'tool_calls' must be followed by tool messages "
        "responding to each 'tool_call_id'. The following tool_call_ids did not have "
        f"response messages: {', '.join(sorted(open_ids))}",
        param="messages",
    )


def _unknown_url(method: str, path: str) -> _ApiError:
    return _ApiError(404, f"Invalid URL ({method} {path})")


def _error_type(status: int) -> str:
    if status == 429:
        return "requests"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def _messages(request: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages = request.get("messages")
    if not isinstance(messages, list):
        return []
    return [m for m in messages if isinstance(m, dict)]  # pyright: ignore[reportUnknownVariableType]


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "")  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
            for part in content  # pyright: ignore[reportUnknownVariableType]
            if isinstance(part, dict)
        )
    return ""


def _arguments_json(arguments: Mapping[str, Any] | str) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(dict(arguments))


def _split_text(text: str) -> list[str]:
    """Text as a model streams it: word by word, and never in fewer than two pieces."""
    pieces = re.findall(r"\S+\s*|\s+", text)
    if len(pieces) < 2 and len(text) >= 2:
        return [text[: len(text) // 2], text[len(text) // 2 :]]
    return pieces


def _split_fragments(text: str, count: int) -> list[str]:
    size = max(1, math.ceil(len(text) / count))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _usage(body: dict[str, Any], reply: FakeReply) -> dict[str, int]:
    """Token counts that are deterministic: one token per word."""
    prompt = sum(len(_content_text(m.get("content")).split()) for m in _messages(body))
    completion = len(reply.text.split()) + sum(
        len(_arguments_json(arguments).split()) for _, arguments in reply.tool_calls
    )
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the fake from a shell: prints its base URL on the first stdout line."""
    parser = shell_parser(
        "python -m openpista.providers.testing",
        "A fake OpenAI chat-completions server: echoes, and answers 'run: CMD' with a "
        "system_run tool call.",
    )
    parser.add_argument(
        "--dialect",
        choices=("openai", "llamacpp"),
        default="openai",
        help="answer as OpenAI's API (the default) or as llama.cpp's Python server",
    )
    args = parser.parse_args(argv)
    server = FakeChatCompletionsServer(
        responder=run_command_responder,
        require_api_key=args.require_api_key,
        models=args.models,
        host=args.host,
        port=args.port,
        dialect=args.dialect,
    )
    return serve_from_shell(server, "chat-completions")
