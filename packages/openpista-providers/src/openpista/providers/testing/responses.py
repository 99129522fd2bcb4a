"""A fake OpenAI Responses API server on 127.0.0.1, for tests and manual tries.

A real HTTP server in a background thread (like `FakeChatCompletionsServer`), answering
`POST {base_url}/responses` as the real API does where that matters to a client: a response
object, or the event stream (`event:` and `data:` lines with sequence numbers, no `[DONE]`);
function calls streamed in argument fragments; usage; `response.incomplete` at the output
limit; `response.failed` and `error` events; and the real 400s for bad input items, tool
names, unanswered calls, outputs without their call, and (in reasoning mode) a function call
sent back without the reasoning item it came with.

    with FakeResponsesServer(reasoning=True) as server:
        server.queue_tool_calls([("system_run", {"command": "ls"})])
        server.queue_text("Done.")
        ...  # point a ResponsesProvider at server.base_url

To play the ChatGPT subscription backend: `base_path="/backend-api/codex"`,
`require_headers={"chatgpt-account-id": ...}`, `require_stream=True`.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openpista.providers.testing._server import (
    IMAGE_URL,
    ScriptedFakeServer,
    serve_from_shell,
    shell_parser,
)
from openpista.providers.testing.chat_completions import (
    TOOL_NAME_PATTERN,
    RecordedRequest,
    ToolCallScript,
    _ApiError,  # pyright: ignore[reportPrivateUsage]
    _arguments_json,  # pyright: ignore[reportPrivateUsage]
    _OpenAIHandler,  # pyright: ignore[reportPrivateUsage]
    _split_fragments,  # pyright: ignore[reportPrivateUsage]
    _split_text,  # pyright: ignore[reportPrivateUsage]
)

INCLUDE_ENCRYPTED_REASONING = "reasoning.encrypted_content"


@dataclass(frozen=True, slots=True)
class ResponsesReply:
    """One scripted answer of the fake Responses server.

    Text and/or function calls (wire names), or an HTTP error (`status` >= 400). In a stream:
    `cut_after_events` hangs up after that many events; `incomplete_reason` ends with
    `response.incomplete` ("max_output_tokens"); `failure` ends with `response.failed`
    carrying (code, message) after the text; `error_event` sends an `error` event (code,
    message) instead of the reply. `reasoning` overrides the server's reasoning mode for this
    reply. `raw_body` is sent verbatim, to play a server that answers nonsense.
    """

    text: str = ""
    tool_calls: Sequence[ToolCallScript] = ()
    status: int = 200
    error_message: str = ""
    retry_after: float | str | None = None
    cut_after_events: int | None = None
    incomplete_reason: str | None = None
    failure: tuple[str, str] | None = None
    error_event: tuple[str, str] | None = None
    reasoning: bool | None = None
    raw_body: str | None = None


ResponsesResponder = Callable[[dict[str, Any]], ResponsesReply]
"""Answers a request body (parsed JSON) when the script queue is empty."""


def input_items(request: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A request's input as items (a string input is one user message)."""
    raw = request.get("input")
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    if not isinstance(raw, list):
        return []
    return [item for item in raw if isinstance(item, dict)]  # pyright: ignore[reportUnknownVariableType]


def item_text(item: Mapping[str, Any]) -> str:
    """The text of a message item (string content or its text parts)."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "".join(
        str(part.get("text", ""))  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
        for part in content  # pyright: ignore[reportUnknownVariableType]
        if isinstance(part, dict)
    )


def last_user_input_text(request: Mapping[str, Any]) -> str:
    """The text of the last user message in a Responses request ("" when there is none)."""
    for item in reversed(input_items(request)):
        if _is_message(item) and item.get("role") == "user":
            return item_text(item)
    return ""


def responses_echo_responder(request: dict[str, Any]) -> ResponsesReply:
    """The default answer: `Echo: ` and the last user message."""
    return ResponsesReply(text=f"Echo: {last_user_input_text(request)}")


def responses_run_command_responder(request: dict[str, Any]) -> ResponsesReply:
    """Plays a minimal agent model: "run: CMD" -> a system_run call, function call outputs
    -> "Tool said: <outputs>", anything else -> the echo."""
    items = input_items(request)
    outputs: list[str] = []
    for item in reversed(items):
        if item.get("type") != "function_call_output":
            break
        outputs.insert(0, str(item.get("output", "")))
    if outputs:
        return ResponsesReply(text="Tool said: " + "\n".join(outputs))
    text = last_user_input_text(request)
    last = items[-1] if items else {}
    if _is_message(last) and last.get("role") == "user" and text.startswith("run: "):
        return ResponsesReply(tool_calls=[("system_run", {"command": text.removeprefix("run: ")})])
    return responses_echo_responder(request)


@dataclass(slots=True)
class _Issued:
    """A reasoning item the server produced: what must come back before its calls."""

    id: str
    encrypted_content: str
    call_ids: list[str] = field(default_factory=lambda: [])


class FakeResponsesServer(ScriptedFakeServer[ResponsesReply, RecordedRequest]):
    """A Responses API server on 127.0.0.1 (a free port unless told) in a background thread.

    Replies come from the script queue (`queue_text`, `queue_tool_calls`, `queue_error`,
    `queue_incomplete`, `queue`), then from `responder`, then from the echo. Every request
    to /responses is recorded (`requests`, `headers`, `recorded`).
    """

    def __init__(
        self,
        *,
        responder: ResponsesResponder | None = None,
        require_api_key: str | None = None,
        require_headers: Mapping[str, str] | None = None,
        require_stream: bool = False,
        reasoning: bool = False,
        models: Sequence[str] | None = None,
        models_without_reasoning: Sequence[str] = (),
        base_path: str = "/v1",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """`reasoning`: every reply starts with a reasoning item (encrypted content only
        when the request includes it), and a function call it led to must come back after
        it. `models`, when given, are the only ones served (others get the API's 404);
        `models_without_reasoning` refuse `include: reasoning.encrypted_content` as the API
        does for models that do not reason. `require_api_key`: `Authorization: Bearer <it>`
        or 401; `require_headers`: these headers with these values or 403 (the ChatGPT
        backend's `chatgpt-account-id`); `require_stream`: `stream: true` or 400 (the
        ChatGPT backend streams only)."""
        self.base_path = "/" + base_path.strip("/") if base_path.strip("/") else ""
        super().__init__(
            _Handler,
            responder=responder,
            fallback=responses_echo_responder,
            host=host,
            port=port,
            thread_name="fake-responses",
            url_path=self.base_path,
        )
        self.require_api_key = require_api_key
        self.require_headers = {k.lower(): v for k, v in (require_headers or {}).items()}
        self.require_stream = require_stream
        self.reasoning = reasoning
        self.models = list(models) if models is not None else None
        self.models_without_reasoning = set(models_without_reasoning)
        self._issued: dict[str, _Issued] = {}
        """Reasoning items produced, by encrypted content."""
        self._reasoning_of_call: dict[str, _Issued] = {}
        self._call_item_ids: dict[str, str] = {}

    # -- script ----------------------------------------------------------------------------

    def queue_text(self, text: str) -> None:
        self.queue(ResponsesReply(text=text))

    def queue_tool_calls(self, calls: Sequence[ToolCallScript], text: str = "") -> None:
        """Answer with these function calls (wire names), optionally after some text."""
        self.queue(ResponsesReply(text=text, tool_calls=list(calls)))

    def queue_error(
        self, status: int, message: str, retry_after: float | str | None = None
    ) -> None:
        """Answer with an API error; `retry_after` becomes the Retry-After header."""
        self.queue(ResponsesReply(status=status, error_message=message, retry_after=retry_after))

    def queue_incomplete(self, text: str, reason: str = "max_output_tokens") -> None:
        """Answer with `text` cut short: status incomplete for `reason`."""
        self.queue(ResponsesReply(text=text, incomplete_reason=reason))

    # -- serving (called from handler threads) -----------------------------------------------

    def _prefixed_id(self, prefix: str) -> str:
        return f"{prefix}_fake{self._next_id()}"

    def _issue_reasoning(self, encrypted: bool) -> tuple[str, str | None]:
        """A new reasoning item's id and encrypted content (None when not asked for)."""
        item_id = self._prefixed_id("rs")
        if not encrypted:
            return item_id, None
        token = base64.b64encode(b"fake-reasoning:" + secrets.token_bytes(12)).decode()
        with self._lock:
            self._issued[token] = _Issued(item_id, token)
        return item_id, token

    def _link_call(self, token: str | None, call_id: str, item_id: str) -> None:
        with self._lock:
            self._call_item_ids[call_id] = item_id
            issued = self._issued.get(token) if token else None
            if issued is not None:
                issued.call_ids.append(call_id)
                self._reasoning_of_call[call_id] = issued

    def _reasoning_for(self, encrypted_content: str) -> _Issued | None:
        with self._lock:
            return self._issued.get(encrypted_content)

    def _required_reasoning(self, call_id: str) -> tuple[_Issued, str] | None:
        """The reasoning item a function call came with, and the call's item id."""
        with self._lock:
            issued = self._reasoning_of_call.get(call_id)
            return (issued, self._call_item_ids[call_id]) if issued is not None else None


class _Handler(_OpenAIHandler[FakeResponsesServer]):
    def do_GET(self) -> None:
        if self.path.rstrip("/") == f"{self.fake.base_path}/models":
            self._send_models(self.fake.models)
            return
        self._send_error(_ApiError(404, f"Invalid URL (GET {self.path})"))

    def do_POST(self) -> None:
        parsed, body, headers = self._read_json_request()
        if self.path.rstrip("/") != f"{self.fake.base_path}/responses":
            self._send_error(_ApiError(404, f"Invalid URL (POST {self.path})"))
            return
        self.fake._record(RecordedRequest("POST", self.path, headers, body))

        def check() -> None:
            self._check_headers(headers)
            _validate_request(body, self.fake)

        self._answer_scripted(
            parsed,
            check,
            lambda: self.fake._next_reply(body),
            lambda reply: self._send_stream(body, reply),
            lambda reply: self._response_object(body, reply, self._output(body, reply)),
            body,
        )

    # -- API checks -----------------------------------------------------------------------

    def _check_headers(self, headers: Mapping[str, str]) -> None:
        expected = self.fake.require_api_key
        if expected is not None:
            authorization = headers.get("authorization", "")
            if not authorization:
                raise _ApiError(
                    401,
                    "You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth (i.e. Authorization: Bearer "
                    "YOUR_KEY).",
                )
            if not hmac.compare_digest(authorization.encode(), f"Bearer {expected}".encode()):
                raise _ApiError(401, "Incorrect API key provided.", code="invalid_api_key")
        for name, value in self.fake.require_headers.items():
            sent = headers.get(name)
            if sent is None or not hmac.compare_digest(sent.encode(), value.encode()):
                raise _ApiError(403, f"Missing or wrong {name} header.", code="forbidden")

    # -- replies ----------------------------------------------------------------------------

    def _output(self, body: dict[str, Any], reply: ResponsesReply) -> list[dict[str, Any]]:
        """The reply's output items, complete, in the order a model produces them."""
        fake = self.fake
        output: list[dict[str, Any]] = []
        token: str | None = None
        if reply.reasoning if reply.reasoning is not None else fake.reasoning:
            include = body.get("include")
            encrypted = isinstance(include, list) and INCLUDE_ENCRYPTED_REASONING in include
            item_id, token = fake._issue_reasoning(encrypted)
            reasoning: dict[str, Any] = {
                "id": item_id,
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": "Thinking it over."}],
            }
            if token is not None:
                reasoning["encrypted_content"] = token
            output.append(reasoning)
        if reply.text:
            output.append(
                {
                    "id": fake._prefixed_id("msg"),
                    "type": "message",
                    "status": "incomplete" if reply.incomplete_reason else "completed",
                    "role": "assistant",
                    "content": [
                        {
                            "type": "output_text",
                            "text": reply.text,
                            "annotations": [],
                            "logprobs": [],
                        }
                    ],
                }
            )
        if not reply.incomplete_reason:
            for name, arguments in reply.tool_calls:
                item_id = fake._prefixed_id("fc")
                call_id = fake._prefixed_id("call")
                fake._link_call(token, call_id, item_id)
                output.append(
                    {
                        "id": item_id,
                        "type": "function_call",
                        "status": "completed",
                        "arguments": _arguments_json(arguments),
                        "call_id": call_id,
                        "name": name,
                    }
                )
        return output

    def _response_object(
        self,
        body: dict[str, Any],
        reply: ResponsesReply,
        output: list[dict[str, Any]],
        *,
        status: str | None = None,
        response_id: str = "",
    ) -> dict[str, Any]:
        if status is None:
            status = "incomplete" if reply.incomplete_reason else "completed"
        done = status != "in_progress"
        return {
            "id": response_id or self.fake._prefixed_id("resp"),
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "background": False,
            "error": (
                {"code": reply.failure[0], "message": reply.failure[1]}
                if status == "failed" and reply.failure
                else None
            ),
            "incomplete_details": (
                {"reason": reply.incomplete_reason} if status == "incomplete" else None
            ),
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": body.get("model"),
            "output": output if done else [],
            "parallel_tool_calls": True,
            "store": body.get("store", True),
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools", []),
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": _usage(body, output) if done else None,
        }

    def _send_stream(self, body: dict[str, Any], reply: ResponsesReply) -> None:
        self._start_event_stream()
        for sent, (kind, data) in enumerate(self._stream_events(body, reply)):
            if reply.cut_after_events is not None and sent >= reply.cut_after_events:
                self._hang_up()
                return
            data = {"type": kind, "sequence_number": sent, **data}
            self._write_chunk(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode())
        self._write_chunk(b"")

    def _stream_events(
        self, body: dict[str, Any], reply: ResponsesReply
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        response_id = self.fake._prefixed_id("resp")
        created = self._response_object(
            body, reply, [], status="in_progress", response_id=response_id
        )
        yield "response.created", {"response": created}
        yield "response.in_progress", {"response": created}
        if reply.error_event is not None:
            code, message = reply.error_event
            yield "error", {"code": code, "message": message, "param": None}
            return
        output = self._output(body, reply)
        for index, item in enumerate(output):
            yield from self._item_events(index, item)
        if reply.failure is not None:
            failed = self._response_object(
                body, reply, output, status="failed", response_id=response_id
            )
            yield "response.failed", {"response": failed}
            return
        final = self._response_object(body, reply, output, response_id=response_id)
        terminal = "response.incomplete" if reply.incomplete_reason else "response.completed"
        yield terminal, {"response": final}

    def _item_events(
        self, index: int, item: dict[str, Any]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        kind = item["type"]
        item_id = item["id"]
        if kind == "message":
            text = item_text(item)
            yield (
                "response.output_item.added",
                {
                    "output_index": index,
                    "item": {**item, "status": "in_progress", "content": []},
                },
            )
            empty_part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            where = {"item_id": item_id, "output_index": index, "content_index": 0}
            yield "response.content_part.added", {**where, "part": empty_part}
            for piece in _split_text(text):
                yield "response.output_text.delta", {**where, "delta": piece, "logprobs": []}
            yield "response.output_text.done", {**where, "text": text, "logprobs": []}
            yield "response.content_part.done", {**where, "part": item["content"][0]}
        elif kind == "function_call":
            yield (
                "response.output_item.added",
                {
                    "output_index": index,
                    "item": {**item, "status": "in_progress", "arguments": ""},
                },
            )
            where = {"item_id": item_id, "output_index": index}
            for fragment in _split_fragments(item["arguments"], 3):
                yield "response.function_call_arguments.delta", {**where, "delta": fragment}
            yield (
                "response.function_call_arguments.done",
                {
                    **where,
                    "arguments": item["arguments"],
                },
            )
        else:
            yield (
                "response.output_item.added",
                {
                    "output_index": index,
                    "item": {"id": item_id, "type": kind, "summary": []},
                },
            )
        yield "response.output_item.done", {"output_index": index, "item": item}


# -- validation, with the real API's wording -------------------------------------------------


def _validate_request(body: dict[str, Any], fake: FakeResponsesServer) -> None:
    model = body.get("model")
    if not model:
        raise _ApiError(400, "Missing required parameter: 'model'.", param="model")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _invalid_type("stream", "a boolean", stream)
    if fake.require_stream and not stream:
        raise _ApiError(400, "Stream must be set to true", param="stream")
    include = body.get("include") or []
    if not isinstance(include, list):
        raise _invalid_type("include", "an array", include)
    if INCLUDE_ENCRYPTED_REASONING in include and model in fake.models_without_reasoning:
        raise _ApiError(400, "Encrypted content is not supported with this model.", param="include")
    _validate_tools(body)
    raw_input = body.get("input")
    if not isinstance(raw_input, str | list):
        raise _ApiError(400, "Missing required parameter: 'input'.", param="input")
    if isinstance(raw_input, list):
        _validate_items(raw_input, store=body.get("store", True) is not False, fake=fake)  # pyright: ignore[reportUnknownArgumentType]
    if fake.models is not None and model not in fake.models:
        raise _ApiError(
            400,
            f"The requested model '{model}' does not exist.",
            param="model",
            code="model_not_found",
        )


def _validate_tools(body: dict[str, Any]) -> None:
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise _invalid_type("tools", "an array", tools)
    for index, tool in enumerate(tools):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        if not isinstance(tool, dict) or tool.get("type") != "function":  # pyright: ignore[reportUnknownMemberType]
            raise _ApiError(
                400, f"Invalid value for 'tools[{index}].type'.", param=f"tools[{index}].type"
            )
        name = tool.get("name")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if name is None:
            # The chat-completions shape nests the name under "function".
            raise _ApiError(
                400,
                f"Missing required parameter: 'tools[{index}].name'.",
                param=f"tools[{index}].name",
                code="missing_required_parameter",
            )
        if not isinstance(name, str) or not TOOL_NAME_PATTERN.match(name):
            param = f"tools[{index}].name"
            raise _ApiError(
                400,
                f"Invalid '{param}': string does not match pattern. Expected a string that "
                "matches the pattern '^[a-zA-Z0-9_-]+$'.",
                param=param,
                code="invalid_value",
            )
    choice = body.get("tool_choice")
    if (
        choice is not None
        and not isinstance(choice, dict)
        and choice
        not in (
            "auto",
            "none",
            "required",
        )
    ):
        raise _ApiError(
            400,
            f"Invalid value: '{choice}'. Supported values are: 'none', 'auto', and 'required'.",
            param="tool_choice",
        )


_INPUT_PARTS = {"input_text", "input_image", "input_file"}
_OUTPUT_PARTS = {"output_text", "refusal"}


def _validate_items(items: list[Any], *, store: bool, fake: FakeResponsesServer) -> None:
    calls: dict[str, int] = {}
    answered: set[str] = set()
    # Reasoning items sent since the last item that was not the model's own output.
    turn_reasoning: set[str] = set()
    for index, item in enumerate(items):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise _invalid_type(where, "an object", item)
        kind = item.get("type", "message")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if kind == "message":
            _validate_message(item, where)  # pyright: ignore[reportUnknownArgumentType]
            if item.get("role") != "assistant":  # pyright: ignore[reportUnknownMemberType]
                turn_reasoning = set()
        elif kind == "function_call":
            for key in ("call_id", "name", "arguments"):
                if not isinstance(item.get(key), str):  # pyright: ignore[reportUnknownMemberType]
                    raise _ApiError(
                        400, f"Missing required parameter: '{where}.{key}'.", param=f"{where}.{key}"
                    )
            call_id: str = item["call_id"]
            calls[call_id] = index
            required = fake._required_reasoning(call_id)
            if required is not None and required[0].encrypted_content not in turn_reasoning:
                issued, item_id = required
                raise _ApiError(
                    400,
                    f"Item '{item_id}' of type 'function_call' was provided without its "
                    f"required 'reasoning' item: '{issued.id}'.",
                    param="input",
                )
        elif kind == "function_call_output":
            answer_id: Any = item.get("call_id")  # pyright: ignore[reportUnknownMemberType]
            if not isinstance(answer_id, str) or "output" not in item:
                raise _ApiError(
                    400, f"Missing required parameter: '{where}.output'.", param=f"{where}.output"
                )
            if answer_id not in calls:
                raise _ApiError(
                    400,
                    f"No tool call found for function call output with call_id {answer_id}.",
                    param="input",
                )
            answered.add(answer_id)
            turn_reasoning = set()
        elif kind == "reasoning":
            turn_reasoning.add(_validate_reasoning(items, index, store=store, fake=fake))
        else:
            raise _ApiError(
                400, f"Invalid value: '{kind}'. Unsupported input item type.", param=f"{where}.type"
            )
    for call_id in calls:
        if call_id not in answered:
            raise _ApiError(
                400, f"No tool output found for function call {call_id}.", param="input"
            )


def _validate_message(item: dict[str, Any], where: str) -> None:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise _ApiError(
            400,
            f"Invalid value: '{role}'. Supported values are: 'assistant', 'system', "
            "'developer', and 'user'.",
            param=f"{where}.role",
        )
    content = item.get("content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _invalid_type(f"{where}.content", "a string or an array", content)
    allowed = _OUTPUT_PARTS if role == "assistant" else _INPUT_PARTS
    for number, part in enumerate(content):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        kind = part.get("type") if isinstance(part, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if kind not in allowed:
            supported = " and ".join(f"'{k}'" for k in sorted(allowed))
            raise _ApiError(
                400,
                f"Invalid value: '{kind}'. Supported values are: {supported}.",
                param=f"{where}.content[{number}]",
                code="invalid_value",
            )
        if kind in ("input_text", "output_text") and not isinstance(part.get("text"), str):  # pyright: ignore[reportUnknownMemberType, reportOptionalMemberAccess]
            raise _ApiError(
                400,
                f"Missing required parameter: '{where}.content[{number}].text'.",
                param=f"{where}.content[{number}].text",
            )
        if kind == "input_image":
            url = part.get("image_url")  # pyright: ignore[reportUnknownMemberType, reportOptionalMemberAccess, reportUnknownVariableType]
            if not isinstance(url, str) or not IMAGE_URL.match(url):
                raise _ApiError(
                    400,
                    "Invalid 'image_url': expected a base64-encoded data URL with an image MIME "
                    "type (e.g. 'data:image/png;base64,...') or an http(s) URL.",
                    param=f"{where}.content[{number}].image_url",
                    code="invalid_value",
                )


def _validate_reasoning(
    items: list[Any], index: int, *, store: bool, fake: FakeResponsesServer
) -> str:
    """Check a reasoning input item; returns its encrypted content."""
    item: dict[str, Any] = items[index]
    item_id = item.get("id")
    label = item_id if isinstance(item_id, str) else f"input[{index}]"
    if not isinstance(item.get("summary"), list):
        raise _ApiError(
            400, f"Missing required parameter: 'input[{index}].summary'.", param="input"
        )
    encrypted = item.get("encrypted_content")
    if not isinstance(encrypted, str):
        if isinstance(item_id, str) and not store:
            raise _ApiError(
                404,
                f"Item with id '{item_id}' not found. Items are not persisted when `store` is "
                "set to false. Try again with `store` set to true, or remove this item from "
                "your input.",
                param="input",
            )
        raise _ApiError(
            400,
            f"Missing required parameter: 'input[{index}].encrypted_content'.",
            param="input",
        )
    if fake._reasoning_for(encrypted) is None:
        raise _ApiError(
            400,
            f"The encrypted content for item {label} could not be verified.",
            param="input",
            code="invalid_encrypted_content",
        )
    following = items[index + 1] if index + 1 < len(items) else None
    follows = isinstance(following, dict) and (
        following.get("type") in ("function_call", "reasoning")  # pyright: ignore[reportUnknownMemberType]
        or (following.get("type", "message") == "message" and following.get("role") == "assistant")  # pyright: ignore[reportUnknownMemberType]
    )
    if not follows:
        raise _ApiError(
            400,
            f"Item '{label}' of type 'reasoning' was provided without its required following item.",
            param="input",
        )
    return encrypted


def _invalid_type(param: str, expected: str, value: Any) -> _ApiError:
    return _ApiError(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {type(value).__name__} instead.",
        param=param,
        code="invalid_type",
    )


def _is_message(item: Mapping[str, Any]) -> bool:
    return item.get("type", "message") == "message"


def _usage(body: dict[str, Any], output: list[dict[str, Any]]) -> dict[str, Any]:
    """Token counts that are deterministic: one token per word, eight per reasoning item."""
    instructions = body.get("instructions")
    prompt = len(instructions.split()) if isinstance(instructions, str) else 0
    for item in input_items(body):
        if _is_message(item):
            prompt += len(item_text(item).split())
        elif item.get("type") == "function_call_output":
            prompt += len(str(item.get("output", "")).split())
        elif item.get("type") == "function_call":
            prompt += len(str(item.get("arguments", "")).split())
    reasoning = 8 * sum(1 for item in output if item["type"] == "reasoning")
    completion = reasoning
    for item in output:
        if item["type"] == "message":
            completion += len(item_text(item).split())
        elif item["type"] == "function_call":
            completion += len(str(item["arguments"]).split())
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + completion,
    }


def serve(argv: Sequence[str] | None = None) -> int:
    """Serve the fake from a shell: prints its base URL on the first stdout line."""
    parser = shell_parser(
        "python -m openpista.providers.testing --api responses",
        "A fake OpenAI Responses API server: echoes, and answers 'run: CMD' with a system_run "
        "function call.",
    )
    parser.add_argument(
        "--require-header",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="refuse requests without this header (repeatable)",
    )
    parser.add_argument(
        "--reasoning", action="store_true", help="start every reply with a reasoning item"
    )
    parser.add_argument("--base-path", default="/v1", help="where the API lives (default /v1)")
    args = parser.parse_args(argv)
    required: dict[str, str] = {}
    for pair in args.require_header:
        name, sep, value = str(pair).partition(":")
        if not sep or not name.strip():
            parser.error(f"--require-header wants NAME:VALUE, got {pair!r}")
        required[name.strip()] = value.strip()
    server = FakeResponsesServer(
        responder=responses_run_command_responder,
        require_api_key=args.require_api_key,
        require_headers=required,
        reasoning=args.reasoning,
        models=args.models,
        base_path=args.base_path,
        host=args.host,
        port=args.port,
    )
    return serve_from_shell(server, "Responses API")
