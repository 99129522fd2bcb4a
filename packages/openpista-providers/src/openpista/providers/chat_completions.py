"""The OpenAI chat-completions wire protocol (POST {base_url}/chat/completions), spoken on httpx.

One module, one job: translate openpista's messages and tools to the wire and the answer
back, retry what is worth retrying, and turn every failure into one clear ProviderError.
Any OpenAI-compatible server works: OpenAI, Together, Ollama, OpenRouter, vLLM, llama.cpp.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openpista.core.errors import ProviderError
from openpista.core.models import Message, ToolCall
from openpista.core.provider import ChatRequest, ChatResponse, DeltaHandler, ToolSpec, Usage
from openpista.core.tool import wire_name
from openpista.providers._http import (
    DEFAULT_CONNECT_TIMEOUT_S,
    AuthHeaders,
    HttpApi,
    TransientFailure,
)
from openpista.providers._provider import HttpProvider
from openpista.providers._retry import RETRYABLE_STATUS_CODES, Sleep
from openpista.providers.pictures import (
    InlinePicture,
    MessageForModel,
    PictureSender,
    tool_pictures_note,
)

log = logging.getLogger(__name__)

_FINISH_REASONS = {
    "stop": "stop",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "length": "length",
    "content_filter": "content_filter",
}

# Small local models sometimes decorate a tool name (`system_run:`, `system_run()`).
_NAME_JUNK = re.compile(r"[^a-zA-Z0-9_-]+$")


def chat_completions_body(
    request: ChatRequest,
    model: str,
    *,
    stream: bool,
    names: Mapping[str, str] | None = None,
    pictures: PictureSender | None = None,
) -> dict[str, Any]:
    """The JSON body of a chat-completions request for `request`, tools under their wire
    names (`names`: wire name by internal name; default: each spec's own). `pictures` says
    whether pictures go inline (default: described in a line each)."""
    if names is None:
        names = {spec.name: spec.wire_name for spec in request.tools}
    body: dict[str, Any] = {
        "model": model,
        "messages": _messages_to_wire(request.messages, names, pictures or PictureSender()),
    }
    if request.tools:
        body["tools"] = [_tool_to_wire(spec) for spec in request.tools]
        # The reference API defaults to "auto" when tools are offered; llama.cpp's server
        # treats the tools as absent unless told.
        body["tool_choice"] = "auto"
    if stream:
        body["stream"] = True
        # Without this, streamed replies carry no token counts.
        body["stream_options"] = {"include_usage": True}
    return body


def _tool_to_wire(spec: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": spec.wire_name,
            "description": spec.description,
            "parameters": spec.parameters,
        },
    }


def _messages_to_wire(
    messages: Sequence[Message], wire_names: Mapping[str, str], pictures: PictureSender
) -> list[dict[str, Any]]:
    wire: list[dict[str, Any]] = []
    for item in pictures.messages(messages):
        if isinstance(item, list):  # pictures of tool results: only a user message takes them
            content = [{"type": "text", "text": tool_pictures_note(item)}]
            content.extend(_image_part(picture) for picture in item)
            wire.append({"role": "user", "content": content})
        else:
            wire.append(_message_to_wire(*item, wire_names))
    return wire


def _image_part(picture: InlinePicture) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": picture.data_url}}


def _message_to_wire(
    message: Message, sent: MessageForModel, wire_names: Mapping[str, str]
) -> dict[str, Any]:
    if message.role == "tool":
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id or "",
            "content": sent.text,
        }
    if message.role == "assistant" and message.tool_calls:
        return {
            "role": "assistant",
            # The reference API takes null or ""; llama.cpp's server refuses null (HTTP 500),
            # so "" it is.
            "content": message.content,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {
                        # A call from history whose tool is no longer offered still needs a
                        # name the API accepts.
                        "name": wire_names.get(call.name) or wire_name(call.name),
                        "arguments": call.arguments,
                    },
                }
                for call in message.tool_calls
            ],
        }
    if message.role == "user" and sent.pictures:
        content: list[dict[str, Any]] = [{"type": "text", "text": sent.text}] if sent.text else []
        content.extend(_image_part(picture) for picture in sent.pictures)
        return {"role": "user", "content": content}
    return {"role": message.role, "content": sent.text}


def _new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _text_of(content: Any) -> str:
    """Message content as text: a string, null, or (some servers) a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    return ""


def _arguments_text(arguments: Any) -> str:
    """Tool-call arguments as JSON text; a few servers send an object instead of a string."""
    if isinstance(arguments, str):
        return arguments or "{}"
    if arguments is None:
        return "{}"
    return json.dumps(arguments)


def _finish_reason(raw: Any) -> str | None:
    """The API's finish reason in the core's words (see ChatResponse.finish_reason)."""
    if not isinstance(raw, str):
        return None
    return _FINISH_REASONS.get(raw, raw)


def _internal_name(wire: str, internal_names: Mapping[str, str]) -> str:
    """The internal name of a called tool, forgiving junk a small model put after the name."""
    if wire in internal_names:
        return internal_names[wire]
    trimmed = _NAME_JUNK.sub("", wire.strip())
    return internal_names.get(trimmed, trimmed or wire)


def _usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    prompt = data.get("prompt_tokens")
    completion = data.get("completion_tokens")
    return Usage(
        input_tokens=prompt if isinstance(prompt, int) else 0,
        output_tokens=completion if isinstance(completion, int) else 0,
    )


@dataclass(slots=True)
class _PartialToolCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=lambda: [])


class _StreamedReply:
    """Assembles a reply from streamed chunks: text pieces, and tool calls keyed by index."""

    def __init__(self, internal_names: Mapping[str, str]) -> None:
        self._internal_names = internal_names
        self._text: list[str] = []
        self._calls: dict[int, _PartialToolCall] = {}
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.model: str | None = None

    def add(self, chunk: dict[str, Any]) -> str:
        """Take one chunk; return the text it adds ("" when none)."""
        if isinstance(chunk.get("model"), str):
            self.model = chunk["model"]
        usage = _usage(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return ""  # The usage chunk at the end has no choices.
        choice: dict[str, Any] = choices[0]
        finish_reason = _finish_reason(choice.get("finish_reason"))
        if finish_reason is not None:
            self.finish_reason = finish_reason
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return ""
        tool_calls = delta.get("tool_calls")
        if isinstance(tool_calls, list):
            for fragment in tool_calls:
                if isinstance(fragment, dict):
                    self._add_tool_call_fragment(fragment)
        legacy = delta.get("function_call")
        if isinstance(legacy, dict) and not tool_calls:
            # The pre-tools spelling: one call, no id, no index. llama.cpp's Python server
            # sends it beside `tool_calls` in every chunk: then it is the same call twice.
            self._add_tool_call_fragment({"index": 0, "function": legacy})
        piece = _text_of(delta.get("content"))
        if piece:
            self._text.append(piece)
        return piece

    def _add_tool_call_fragment(self, fragment: dict[str, Any]) -> None:
        index = fragment.get("index")
        call_id = fragment.get("id") if isinstance(fragment.get("id"), str) else ""
        if not isinstance(index, int):
            # Servers that leave out the index send each call whole or keep its id.
            known = [i for i, call in self._calls.items() if call_id and call.id == call_id]
            index = known[0] if known else len(self._calls)
        call = self._calls.setdefault(index, _PartialToolCall())
        if call_id and not call.id:
            call.id = call_id
        function = fragment.get("function")
        if not isinstance(function, dict):
            return
        name = function.get("name")
        # OpenAI sends the name once; a few servers repeat it in every fragment.
        if isinstance(name, str) and name and name != call.name:
            call.name += name
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            call.arguments.append(arguments)
        elif arguments is not None:
            call.arguments.append(json.dumps(arguments))

    def calls_complete(self) -> bool:
        """Whether tool calls arrived and each has a name and arguments that parse as JSON:
        what a stream that ends without a finish reason must show to be taken as finished."""
        if not self._calls:
            return False
        for call in self._calls.values():
            try:
                json.loads("".join(call.arguments) or "{}")
            except ValueError:
                return False
            if not call.name:
                return False
        return True

    def response(self, *, interrupted: bool = False) -> ChatResponse:
        """The reply so far. `interrupted`: the stream broke off, so half-made tool calls are
        dropped and the reply is marked as cut."""
        calls = [
            ToolCall(
                id=call.id or _new_call_id(),
                name=_internal_name(call.name, self._internal_names),
                arguments="".join(call.arguments) or "{}",
            )
            for _, call in sorted(self._calls.items())
        ]
        return ChatResponse(
            message=Message(
                role="assistant",
                content="".join(self._text),
                tool_calls=[] if interrupted else calls,
            ),
            finish_reason="interrupted" if interrupted else self.finish_reason,
            usage=self.usage,
            model=self.model,
        )


class _EmptyStream(Exception):
    """A streaming request answered 200 with no events at all."""


class ChatCompletionsProvider(HttpProvider):
    """An LlmProvider speaking OpenAI chat completions to any compatible server.

    The HTTP side (pooled client, retries, errors, SSE) is `HttpApi`'s; this class translates.
    A streamed reply that breaks off after text was shown is returned as far as it went with
    finish_reason "interrupted", not retried (the user would see it twice) and not lost.
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
    ) -> None:
        """`key_setting` names where the key is configured, for error messages
        (`OPENAI_API_KEY or providers.openai.api_key in config.toml`); `auth` supplies
        per-request headers for a signed-in provider; `sleep` lets tests observe backoff
        without waiting for it."""
        api = HttpApi(
            name=name,
            base_url=base_url,
            api_key=api_key,
            auth=auth,
            headers=headers,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            key_setting=key_setting,
            max_attempts=max_attempts,
            backoff_base_s=backoff_base_s,
            backoff_cap_s=backoff_cap_s,
            sleep=sleep,
        )
        super().__init__(api, model)
        self._url = self._api.url("chat/completions")

    async def complete(
        self, request: ChatRequest, on_delta: DeltaHandler | None = None
    ) -> ChatResponse:
        """Answer `request`. With `on_delta`, stream and call it with each text piece."""
        model = self._chosen_model(request)
        names, internal_names = self._tool_names(request)
        pictures = PictureSender.for_model(self.name, model, request.read_media)
        body = chat_completions_body(
            request, model, stream=on_delta is not None, names=names, pictures=pictures
        )
        if on_delta is None:
            return await self._retried(body, model, internal_names, None)
        try:
            return await self._retried(body, model, internal_names, on_delta)
        except _EmptyStream:
            # llama.cpp's Python server answers with headers and no events when the request
            # fails after they went out (a tool call chosen while streaming, which its
            # function-calling format cannot stream; a prompt over the context window).
            # Nothing was shown, so asking again unstreamed costs no duplicate text, and gets
            # the reply, or the server's own error with its status.
            log.info(
                "%s: the streamed reply came back empty; asking again without streaming",
                self.name,
            )
            unstreamed = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
            response = await self._retried(unstreamed, model, internal_names, None)
            if response.message.content:
                await on_delta(response.message.content)
            return response

    async def _complete_once(
        self, body: dict[str, Any], model: str, internal_names: Mapping[str, str]
    ) -> ChatResponse:
        data = await self._api.post_json(self._url, body, model)
        self._raise_for_error_object(data)
        return self._parse_completion(data, internal_names)

    async def _stream_once(
        self,
        body: dict[str, Any],
        model: str,
        internal_names: Mapping[str, str],
        on_delta: DeltaHandler,
    ) -> ChatResponse:
        reply = _StreamedReply(internal_names)
        saw_chunk = False
        text_shown = False
        try:
            async with contextlib.aclosing(
                self._api.stream_events(self._url, body, model)
            ) as events:
                async for event in events:
                    chunk = self._api.json_object(event.data, self._url)
                    self._raise_for_error_object(chunk, streaming=True)
                    saw_chunk = True
                    piece = reply.add(chunk)
                    if piece:
                        text_shown = True
                        await on_delta(piece)
        except TransientFailure as failure:
            if not text_shown:
                raise
            # The user saw part of the reply: keep it (marked as cut) rather than lose it or
            # say it twice by retrying.
            log.warning("%s: the reply broke off after text was shown: %s", self.name, failure)
            await self._api.discard_connections()
            return reply.response(interrupted=True)
        if not saw_chunk:
            # The connection may hold the rest of a failed response: never reuse it.
            await self._api.discard_connections()
            raise _EmptyStream
        if reply.finish_reason is None and not reply.calls_complete():
            # Every server says why a reply ended in its last chunk; a stream that stops
            # without saying so was cut (llama.cpp's server sends `[DONE]` and hangs up when
            # another request interrupts it).
            await self._api.discard_connections()
            if not text_shown:
                raise TransientFailure("broken", "the stream ended before the reply was finished")
            log.warning("%s: the stream ended before the reply was finished", self.name)
            return reply.response(interrupted=True)
        return reply.response()

    def _raise_for_error_object(self, data: dict[str, Any], *, streaming: bool = False) -> None:
        """Some servers (and OpenAI mid-stream) report errors inside a 200 answer."""
        if "error" not in data or data["error"] in (None, {}, ""):
            return
        message = self._api.api_reported_error(data)
        error = data["error"]
        code = error.get("code") if isinstance(error, dict) else None
        if streaming or (isinstance(code, int) and code in RETRYABLE_STATUS_CODES):
            raise TransientFailure("broken", f"the API reported an error: {message}")
        raise ProviderError(
            f"{self.name}: the API reported an error: {message}", provider=self.name
        )

    def _parse_completion(
        self, data: dict[str, Any], internal_names: Mapping[str, str]
    ) -> ChatResponse:
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise self._api.wrong_api_error(self._url, "JSON without any choices")
        choice: dict[str, Any] = choices[0]
        wire_message: Any = choice.get("message")
        if not isinstance(wire_message, dict):
            wire_message = {}
        calls: list[ToolCall] = []
        raw_calls: Any = wire_message.get("tool_calls")
        for raw in raw_calls if isinstance(raw_calls, list) else []:
            if not isinstance(raw, dict):
                continue
            function: Any = raw.get("function")
            if not isinstance(function, dict):
                function = {}
            call_id: Any = raw.get("id")
            calls.append(
                ToolCall(
                    id=call_id if isinstance(call_id, str) and call_id else _new_call_id(),
                    name=_internal_name(str(function.get("name") or ""), internal_names),
                    arguments=_arguments_text(function.get("arguments")),
                )
            )
        legacy: Any = wire_message.get("function_call")
        if not calls and isinstance(legacy, dict):
            calls.append(
                ToolCall(
                    id=_new_call_id(),
                    name=_internal_name(str(legacy.get("name") or ""), internal_names),
                    arguments=_arguments_text(legacy.get("arguments")),
                )
            )
        model = data.get("model")
        return ChatResponse(
            message=Message(
                role="assistant",
                content=_text_of(wire_message.get("content")),
                tool_calls=calls,
            ),
            finish_reason=_finish_reason(choice.get("finish_reason")),
            usage=_usage(data.get("usage")),
            model=model if isinstance(model, str) else None,
        )
