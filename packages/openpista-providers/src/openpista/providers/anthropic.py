"""The Anthropic Messages wire protocol (POST {base_url}/v1/messages), spoken on httpx.

One module, one job: translate openpista's conversation to the Messages API and the answer
back. The API is stricter than chat completions, and the translation is where that is met:

- system messages go to the top-level `system`, never into `messages`;
- `messages` alternate user and assistant: consecutive tool results become one user turn of
  `tool_result` blocks, consecutive user messages one turn, and empty text is never sent;
- tool calls are `tool_use` blocks whose `input` is an object, under the tool's wire name and
  an id the API accepts (ids made by other providers are rewritten, the same way for the
  call and its result);
- thinking blocks (and redacted ones) come back with their signatures, are kept on the
  assistant message as provider state, and are sent back first in that assistant turn, as
  the API requires in a tool round when thinking is on.

The HTTP side (pooled client, retries, one-line errors, SSE) is `HttpApi`'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from openpista.core.errors import ProviderError
from openpista.core.models import Message, ProviderStatePart, ToolCall
from openpista.core.provider import ChatRequest, ChatResponse, DeltaHandler, ToolSpec, Usage
from openpista.core.tool import wire_name
from openpista.providers._http import (
    DEFAULT_CONNECT_TIMEOUT_S,
    ApiDescription,
    AuthHeaders,
    HttpApi,
    TransientFailure,
)
from openpista.providers._provider import HttpProvider
from openpista.providers._retry import Sleep
from openpista.providers.pictures import InlinePicture, MessageForModel, PictureSender

log = logging.getLogger(__name__)

PROTOCOL = "anthropic"
"""The `provider` of the ProviderStatePart this module stores and reads."""

ANTHROPIC_VERSION = "2023-06-01"
"""The API version every request names (`anthropic-version`)."""

STATE_BLOCK_TYPES = frozenset({"thinking", "redacted_thinking"})
"""Content blocks kept as provider state and sent back unchanged."""

_DESCRIPTION = ApiDescription(
    what="the Anthropic API", base_url_example="https://api.anthropic.com", base_url_suffix=""
)

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
}

# What an error event in a stream means, as the HTTP status the same error has elsewhere:
# worth retrying when nothing was shown yet.
_RETRYABLE_STREAM_ERRORS = {"overloaded_error": 529, "api_error": 500, "rate_limit_error": 429}

_TOOL_USE_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
_NOT_ID_SAFE = re.compile(r"[^a-zA-Z0-9_-]")

# Older models cap their output lower than the API lets a request ask for; asking for more
# than a model can give is a 400.
_CLAUDE_3 = re.compile(r"claude-3-(opus|sonnet|haiku)")
_CLAUDE_3_5 = re.compile(r"claude-3-5")


def default_max_tokens(model: str) -> int:
    """The `max_tokens` sent for `model` (the API requires one): 4096 for the Claude 3
    models, 8192 for Claude 3.5 and models that are not Claude, 16384 for later Claude."""
    name = model.lower()
    if _CLAUDE_3.search(name):
        return 4096
    if _CLAUDE_3_5.search(name) or "claude" not in name:
        return 8192
    return 16384


def wire_tool_use_id(call_id: str) -> str:
    """`call_id` as the API accepts it (`^[a-zA-Z0-9_-]+$`).

    Ids from the API and from chat completions (`call_...`) pass unchanged; others (from a
    provider that puts dots or colons in them) lose the unsafe characters and gain 8 hex
    digits of the original's SHA-256, so two ids never become one and a call and its result
    always get the same id.
    """
    if _TOOL_USE_ID.match(call_id):
        return call_id
    digest = hashlib.sha256(call_id.encode("utf-8")).hexdigest()[:8]
    safe = _NOT_ID_SAFE.sub("_", call_id)
    return f"{safe}_{digest}" if safe else f"toolu_{digest}"


def tool_input(arguments: str) -> dict[str, Any]:
    """A call's JSON arguments as the `input` object a `tool_use` block must carry.

    Arguments that are not a JSON object (a model that wrote broken JSON; its tool result
    already says so) are kept under `_invalid_arguments`, so the model still sees what it
    wrote instead of an empty call.
    """
    text = arguments.strip() or "{}"
    try:
        value: Any = json.loads(text)
    except ValueError:
        return {"_invalid_arguments": arguments}
    if not isinstance(value, dict):
        return {"_invalid_arguments": arguments}
    return cast("dict[str, Any]", value)


def anthropic_body(
    request: ChatRequest,
    model: str,
    *,
    stream: bool,
    names: Mapping[str, str] | None = None,
    max_tokens: int | None = None,
    pictures: PictureSender | None = None,
) -> dict[str, Any]:
    """The JSON body of a Messages request for `request`, tools under their wire names
    (`names`: wire name by internal name; default: each spec's own). `pictures` says whether
    pictures go inline, as image blocks (default: a line each)."""
    if names is None:
        names = {spec.name: spec.wire_name for spec in request.tools}
    pictures = pictures or PictureSender()
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "system":
            if message.content.strip():
                system.append(message.content)
        elif message.role == "tool":
            _add_turn(turns, "user", [_tool_result_block(message, pictures.message(message))])
        elif message.role == "assistant":
            _add_turn(turns, "assistant", _assistant_blocks(message, names))
        else:
            sent = pictures.message(message)
            blocks = _text_blocks(sent.text)
            blocks.extend(_image_block(picture) for picture in sent.pictures)
            _add_turn(turns, "user", blocks)
    if turns and turns[0]["role"] != "user":
        # The context budget may have dropped the first user message; the API wants one.
        turns.insert(
            0, {"role": "user", "content": [{"type": "text", "text": "(earlier messages omitted)"}]}
        )
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": max_tokens or default_max_tokens(model),
        "messages": turns,
    }
    if system:
        body["system"] = "\n\n".join(system)
    if request.tools:
        body["tools"] = [_tool_to_wire(spec, names[spec.name]) for spec in request.tools]
        body["tool_choice"] = {"type": "auto"}
    if stream:
        body["stream"] = True
    return body


def _add_turn(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Append `blocks` as a `role` turn, joining the previous turn when it has that role
    (the API wants user and assistant to alternate); nothing for no blocks."""
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _text_blocks(text: str) -> list[dict[str, Any]]:
    # The API refuses text blocks that are empty or only whitespace.
    return [{"type": "text", "text": text}] if text.strip() else []


def _tool_to_wire(spec: ToolSpec, name: str) -> dict[str, Any]:
    schema = dict(spec.parameters) if spec.parameters else {}
    schema.setdefault("type", "object")
    tool: dict[str, Any] = {"name": name, "input_schema": schema}
    if spec.description:
        tool["description"] = spec.description
    return tool


def _tool_result_block(message: Message, sent: MessageForModel) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": wire_tool_use_id(message.tool_call_id or ""),
    }
    if sent.pictures:
        # A tool result may hold image blocks: the picture stays with the call that made it.
        content = _text_blocks(sent.text)
        content.extend(_image_block(picture) for picture in sent.pictures)
        block["content"] = content
    elif sent.text.strip():
        block["content"] = sent.text
    return block


def _image_block(picture: InlinePicture) -> dict[str, Any]:
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": picture.mime_type, "data": picture.data_b64},
    }


def _assistant_blocks(message: Message, names: Mapping[str, str]) -> list[dict[str, Any]]:
    # Thinking first: with thinking on, the API wants the turn of a tool round to start
    # with the thinking blocks it produced, signatures untouched.
    blocks = state_blocks(message)
    blocks.extend(_text_blocks(message.content))
    for call in message.tool_calls:
        blocks.append(
            {
                "type": "tool_use",
                "id": wire_tool_use_id(call.id),
                # A call from history whose tool is no longer offered still needs a name
                # the API accepts.
                "name": names.get(call.name) or wire_name(call.name),
                "input": tool_input(call.arguments),
            }
        )
    return blocks


def state_blocks(message: Message) -> list[dict[str, Any]]:
    """The thinking blocks stored on `message` by this protocol, in order (copies)."""
    blocks: list[dict[str, Any]] = []
    for part in message.parts:
        if not isinstance(part, ProviderStatePart) or part.provider != PROTOCOL:
            continue
        for item in _list(part.data.get("blocks")):
            block = _object(item)
            if block.get("type") in STATE_BLOCK_TYPES:
                blocks.append(dict(block))
    return blocks


def _stop_reason(raw: Any) -> str | None:
    """The API's stop reason in the core's words (see ChatResponse.finish_reason)."""
    if not isinstance(raw, str):
        return None
    return _STOP_REASONS.get(raw, raw)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _input_tokens(usage: Mapping[str, Any]) -> int:
    """Every input token of the request: uncached, written to the cache and read from it."""
    return (
        _int(usage.get("input_tokens"))
        + _int(usage.get("cache_creation_input_tokens"))
        + _int(usage.get("cache_read_input_tokens"))
    )


@dataclass(slots=True)
class _Block:
    """One content block of the reply as it arrives."""

    type: str
    text: list[str] = field(default_factory=lambda: [])
    """Text, thinking text, or a tool call's partial JSON, by type."""
    id: str = ""
    name: str = ""
    signature: str = ""
    data: str = ""
    """A redacted thinking block's opaque content."""
    input: Any = None
    """A tool call's input when it came whole (a reply that was not streamed)."""


class _Reply:
    """Assembles the assistant message from content blocks, streamed or whole."""

    def __init__(self, internal_names: Mapping[str, str]) -> None:
        self._internal_names = internal_names
        self._blocks: dict[int, _Block] = {}
        self.stop_reason: str | None = None
        self.model: str | None = None
        self.usage: Usage | None = None
        self.finished = False

    def start(self, index: int, block: Mapping[str, Any]) -> str:
        """A block began; return the text it already holds ("" for none)."""
        kind = str(block.get("type") or "")
        made = _Block(type=kind)
        if kind == "text":
            made.text.append(_str(block.get("text")))
        elif kind == "thinking":
            made.text.append(_str(block.get("thinking")))
            made.signature = _str(block.get("signature"))
        elif kind == "redacted_thinking":
            made.data = _str(block.get("data"))
        elif kind == "tool_use":
            made.id = _str(block.get("id"))
            made.name = _str(block.get("name"))
            given = block.get("input")
            # Streams start tool_use blocks with `input: {}` and send the JSON as deltas.
            made.input = given if isinstance(given, dict) and given else None
        self._blocks[index] = made
        return made.text[0] if kind == "text" else ""

    def delta(self, index: int, delta: Mapping[str, Any]) -> str:
        """A piece of a block arrived; return the text it adds ("" for none)."""
        block = self._blocks.get(index)
        if block is None:
            return ""
        kind = delta.get("type")
        if kind == "text_delta" and block.type == "text":
            piece = _str(delta.get("text"))
            block.text.append(piece)
            return piece
        if kind == "input_json_delta" and block.type == "tool_use":
            block.text.append(_str(delta.get("partial_json")))
        elif kind == "thinking_delta" and block.type == "thinking":
            block.text.append(_str(delta.get("thinking")))
        elif kind == "signature_delta" and block.type == "thinking":
            block.signature += _str(delta.get("signature"))
        return ""

    def message_started(self, message: Mapping[str, Any]) -> None:
        model = message.get("model")
        if isinstance(model, str):
            self.model = model
        if isinstance(message.get("usage"), dict):
            usage = _object(message.get("usage"))
            self.usage = Usage(_input_tokens(usage), _int(usage.get("output_tokens")))

    def message_delta(self, data: Mapping[str, Any]) -> None:
        reason = _stop_reason(_object(data.get("delta")).get("stop_reason"))
        if reason is not None:
            self.stop_reason = reason
        if isinstance(data.get("usage"), dict):
            usage = _object(data.get("usage"))
            # The counts here are cumulative; input counts appear here only sometimes.
            before = self.usage or Usage()
            input_tokens = _input_tokens(usage) or before.input_tokens
            output_tokens = _int(usage.get("output_tokens")) or before.output_tokens
            self.usage = Usage(input_tokens, output_tokens)

    def take_event(self, data: Mapping[str, Any]) -> str:
        """Take one streamed event's data; return the reply text it adds."""
        kind = data.get("type")
        index = data.get("index")
        if kind == "content_block_start" and isinstance(index, int):
            return self.start(index, _object(data.get("content_block")))
        if kind == "content_block_delta" and isinstance(index, int):
            return self.delta(index, _object(data.get("delta")))
        if kind == "message_start":
            self.message_started(_object(data.get("message")))
        elif kind == "message_delta":
            self.message_delta(data)
        elif kind == "message_stop":
            self.finished = True
        # ping, content_block_stop and event types added later carry nothing to keep.
        return ""

    def take_message(self, data: Mapping[str, Any]) -> None:
        """Take a whole (not streamed) message."""
        self.message_started(data)
        for index, block in enumerate(_list(data.get("content"))):
            self.start(index, _object(block))
        self.stop_reason = _stop_reason(data.get("stop_reason"))
        self.finished = True

    def response(self, *, interrupted: bool = False) -> ChatResponse:
        """The reply so far. `interrupted`: the stream broke off, so half-made tool calls and
        thinking blocks without their signature are dropped and the reply is marked as cut."""
        text: list[str] = []
        calls: list[ToolCall] = []
        state: list[dict[str, Any]] = []
        for _, block in sorted(self._blocks.items()):
            if block.type == "text":
                text.extend(block.text)
            elif block.type == "tool_use":
                calls.append(self._tool_call(block))
            elif block.type == "thinking" and block.signature:
                thinking = "".join(block.text)
                state.append(
                    {"type": "thinking", "thinking": thinking, "signature": block.signature}
                )
            elif block.type == "redacted_thinking" and block.data:
                state.append({"type": "redacted_thinking", "data": block.data})
        parts: list[Any] = [ProviderStatePart(PROTOCOL, {"blocks": state})] if state else []
        return ChatResponse(
            message=Message(
                role="assistant",
                content="".join(text),
                tool_calls=[] if interrupted else calls,
                parts=parts,
            ),
            finish_reason="interrupted" if interrupted else self.stop_reason,
            usage=self.usage,
            model=self.model,
        )

    def _tool_call(self, block: _Block) -> ToolCall:
        if block.input is not None:
            arguments = json.dumps(block.input)
        else:
            arguments = "".join(block.text).strip() or "{}"
        name = self._internal_names.get(block.name, block.name)
        return ToolCall(id=block.id or wire_tool_use_id(""), name=name, arguments=arguments)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _object(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one."""
    return cast("dict[str, Any]", value) if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return cast("list[Any]", value) if isinstance(value, list) else []


class AnthropicProvider(HttpProvider):
    """An LlmProvider speaking Anthropic Messages.

    With an API key, requests carry `x-api-key`; signed in (`auth`), they carry the bearer
    token and beta header the sign-in supplies instead. A streamed reply that breaks off after
    text was shown is returned as far as it went with finish_reason "interrupted".
    """

    def __init__(
        self,
        *,
        name: str,
        model: str,
        base_url: str,
        api_key: str = "",
        auth: AuthHeaders | None = None,
        timeout_s: float = 120.0,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        key_setting: str = "",
        headers: Mapping[str, str] | None = None,
        max_attempts: int = 3,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        sleep: Sleep | None = None,
        max_tokens: int | None = None,
    ) -> None:
        """The arguments are ChatCompletionsProvider's; `max_tokens` caps each reply
        (default: `default_max_tokens(model)`)."""
        if max_tokens is not None and max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        self._max_tokens = max_tokens
        api = HttpApi(
            name=name,
            base_url=base_url,
            api_key=api_key,
            auth=auth,
            key_headers=_api_key_headers,
            headers={"anthropic-version": ANTHROPIC_VERSION, **(headers or {})},
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            key_setting=key_setting,
            describe=_DESCRIPTION,
            max_attempts=max_attempts,
            backoff_base_s=backoff_base_s,
            backoff_cap_s=backoff_cap_s,
            sleep=sleep,
        )
        super().__init__(api, model)
        self._url = self._api.url("v1/messages")

    async def complete(
        self, request: ChatRequest, on_delta: DeltaHandler | None = None
    ) -> ChatResponse:
        """Answer `request`. With `on_delta`, stream and call it with each text piece."""
        model = self._chosen_model(request)
        names, internal_names = self._tool_names(request)
        body = anthropic_body(
            request,
            model,
            stream=on_delta is not None,
            names=names,
            max_tokens=self._max_tokens,
            pictures=PictureSender.for_model(self.name, model, request.read_media),
        )
        return await self._retried(body, model, internal_names, on_delta)

    async def _complete_once(
        self, body: dict[str, Any], model: str, internal_names: Mapping[str, str]
    ) -> ChatResponse:
        data = await self._api.post_json(self._url, body, model)
        if data.get("type") == "error":
            raise self._reported_error(data)
        if data.get("type") != "message" or not isinstance(data.get("content"), list):
            raise self._api.wrong_api_error(self._url, "JSON that is not a message")
        reply = _Reply(internal_names)
        reply.take_message(data)
        return reply.response()

    async def _stream_once(
        self,
        body: dict[str, Any],
        model: str,
        internal_names: Mapping[str, str],
        on_delta: DeltaHandler,
    ) -> ChatResponse:
        reply = _Reply(internal_names)
        saw_event = False
        text_shown = False
        try:
            async with contextlib.aclosing(
                self._api.stream_events(self._url, body, model)
            ) as events:
                async for event in events:
                    data = self._api.json_object(event.data, self._url)
                    if data.get("type") == "error" or event.event == "error":
                        raise self._reported_error(data)
                    saw_event = True
                    piece = reply.take_event(data)
                    if piece:
                        text_shown = True
                        await on_delta(piece)
            if saw_event and not reply.finished:
                await self._api.discard_connections()
                raise TransientFailure("broken", "the stream ended before message_stop")
        except (TransientFailure, ProviderError) as failure:
            if reply.finished:
                # The connection broke after message_stop: the reply is whole.
                await self._api.discard_connections()
                return reply.response()
            if not text_shown:
                raise
            # The user saw part of the reply: keep it (marked as cut) rather than lose it or
            # say it twice by retrying.
            log.warning("%s: the reply broke off after text was shown: %s", self.name, failure)
            await self._api.discard_connections()
            return reply.response(interrupted=True)
        if not saw_event:
            await self._api.discard_connections()
            raise self._api.wrong_api_error(self._url, "no events to the streaming request")
        return reply.response()

    def _reported_error(self, data: Mapping[str, Any]) -> TransientFailure | ProviderError:
        """An error the API reported in a 200 answer or as a stream's `error` event."""
        kind = _object(data.get("error")).get("type")
        message = self._api.api_reported_error(data)
        status = _RETRYABLE_STREAM_ERRORS.get(kind) if isinstance(kind, str) else None
        if status is not None:
            return TransientFailure("status", message, status_code=status)
        what = f"{kind}: {message}" if isinstance(kind, str) and kind not in message else message
        return ProviderError(f"{self.name}: the API reported an error: {what}", provider=self.name)


def _api_key_headers(api_key: str) -> Mapping[str, str]:
    return {"x-api-key": api_key}
