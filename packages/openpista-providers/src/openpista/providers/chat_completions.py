"""The OpenAI chat-completions wire protocol (POST {base_url}/chat/completions), spoken on httpx.

One module, one job: translate openpista's messages and tools to the wire and the answer
back, retry what is worth retrying, and turn every failure into one clear ProviderError.
Any OpenAI-compatible server works: OpenAI, Together, Ollama, OpenRouter, vLLM, llama.cpp.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from openpista.core.errors import ProviderError
from openpista.core.models import Message, ToolCall
from openpista.core.provider import ChatRequest, ChatResponse, DeltaHandler, ToolSpec, Usage
from openpista.core.tool import wire_name
from openpista.providers._errors import (
    api_error_message,
    connection_failure_reason,
    one_line,
    scrub,
)
from openpista.providers._retry import (
    RETRYABLE_STATUS_CODES,
    RetryPolicy,
    Sleep,
    retry_after_s,
)
from openpista.providers._sse import ServerSentEventDecoder

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT_S = 10.0
"""A server that does not accept a connection in this long is not going to."""

_USER_AGENT = "openpista"


def chat_completions_body(request: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
    """The JSON body of a chat-completions request for `request`, tools under their wire names."""
    wire_names = {spec.name: spec.wire_name for spec in request.tools}
    body: dict[str, Any] = {
        "model": model,
        "messages": [_message_to_wire(message, wire_names) for message in request.messages],
    }
    if request.tools:
        body["tools"] = [_tool_to_wire(spec) for spec in request.tools]
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


def _message_to_wire(message: Message, wire_names: Mapping[str, str]) -> dict[str, Any]:
    if message.role == "tool":
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id or "",
            "content": message.content,
        }
    if message.role == "assistant" and message.tool_calls:
        return {
            "role": "assistant",
            # The API wants null, not "", beside tool calls when the model said nothing.
            "content": message.content or None,
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
    return {"role": message.role, "content": message.content}


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
        if isinstance(choice.get("finish_reason"), str):
            self.finish_reason = choice["finish_reason"]
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return ""
        tool_calls = delta.get("tool_calls")
        if isinstance(tool_calls, list):
            for fragment in tool_calls:
                if isinstance(fragment, dict):
                    self._add_tool_call_fragment(fragment)
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

    def response(self) -> ChatResponse:
        calls = [
            ToolCall(
                id=call.id or _new_call_id(),
                name=self._internal_names.get(call.name, call.name),
                arguments="".join(call.arguments) or "{}",
            )
            for _, call in sorted(self._calls.items())
        ]
        return ChatResponse(
            message=Message(role="assistant", content="".join(self._text), tool_calls=calls),
            finish_reason=self.finish_reason,
            usage=self.usage,
            model=self.model,
        )


FailureKind = Literal["connect", "timeout", "broken", "status"]


class _TransientFailure(Exception):
    """One attempt failed in a way worth retrying; becomes a ProviderError when retries run out."""

    def __init__(
        self,
        kind: FailureKind,
        detail: str,
        *,
        status_code: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.kind: FailureKind = kind
        self.detail = detail
        self.status_code = status_code
        self.retry_after_s = retry_after_s

    @property
    def summary(self) -> str:
        if self.status_code is not None:
            return f"HTTP {self.status_code}: {self.detail}"
        return self.detail


@dataclass(slots=True)
class _StreamProgress:
    text_shown: bool = False
    """Once the user has seen text, a retry would show it twice: no more retries."""


class ChatCompletionsProvider:
    """An LlmProvider speaking OpenAI chat completions to any compatible server.

    One pooled httpx client per provider, made on the first request; `aclose()` closes it.
    Retries 429, 5xx and connection failures with exponential backoff (honouring
    Retry-After); every failure reaches the caller as a one-line ProviderError.
    """

    def __init__(
        self,
        *,
        name: str,
        model: str,
        base_url: str,
        api_key: str = "",
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
        (`OPENAI_API_KEY or providers.openai.api_key in config.toml`); `sleep` lets tests
        observe backoff without waiting for it."""
        self._name = name
        self._model = model
        self._base_url = base_url.strip().rstrip("/")
        self._api_key = api_key.strip()
        self._timeout_s = timeout_s
        self._connect_timeout_s = min(connect_timeout_s, timeout_s)
        self._key_setting = key_setting or f"providers.{name}.api_key in config.toml"
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._retry = RetryPolicy(
            max_attempts=max_attempts,
            base_s=backoff_base_s,
            cap_s=backoff_cap_s,
            sleep=sleep or asyncio.sleep,
        )
        if not self._base_url.startswith(("http://", "https://")):
            raise ProviderError(
                f"{name}: base_url {self._base_url!r} is not an http(s) URL; set "
                f"providers.{name}.base_url to something like http://127.0.0.1:8000/v1",
                provider=name,
            )
        if self._api_key and not (self._api_key.isascii() and self._api_key.isprintable()):
            # httpx would refuse the header with an error quoting it: refuse first, key unsaid.
            raise ProviderError(
                f"{name}: the API key holds characters an HTTP header cannot carry "
                f"(a stray newline?); check {self._key_setting}",
                provider=name,
            )
        self._headers = {"User-Agent": _USER_AGENT, **(headers or {})}
        if self._api_key:
            self._headers["Authorization"] = f"Bearer {self._api_key}"
        self._url = f"{self._base_url}/chat/completions"
        self._client: httpx.AsyncClient | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def model(self) -> str:
        return self._model

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def timeout_s(self) -> float:
        return self._timeout_s

    async def __aenter__(self) -> ChatCompletionsProvider:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections. A later request opens a fresh pool."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def complete(
        self, request: ChatRequest, on_delta: DeltaHandler | None = None
    ) -> ChatResponse:
        """Answer `request`. With `on_delta`, stream and call it with each text piece."""
        model = request.model or self._model
        if not model:
            raise ProviderError(
                f"{self._name}: no model chosen; set [agent] model in config.toml or pass --model",
                provider=self._name,
            )
        body = chat_completions_body(request, model, stream=on_delta is not None)
        internal_names = {spec.wire_name: spec.name for spec in request.tools}
        attempt = 1
        while True:
            progress = _StreamProgress()
            try:
                if on_delta is None:
                    return await self._complete_once(body, model, internal_names)
                return await self._stream_once(body, model, internal_names, on_delta, progress)
            except _TransientFailure as failure:
                if progress.text_shown:
                    raise self._broken_stream_error(failure) from failure
                if attempt >= self._retry.max_attempts:
                    raise self._gave_up_error(failure, attempt) from failure
                delay = self._retry.delay_s(attempt, failure.retry_after_s)
                log.info(
                    "%s: %s; retrying in %.1f s (attempt %d of %d)",
                    self._name,
                    failure.summary,
                    delay,
                    attempt + 1,
                    self._retry.max_attempts,
                )
                await self._retry.sleep(delay)
                attempt += 1

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                headers=self._headers,
                timeout=httpx.Timeout(self._timeout_s, connect=self._connect_timeout_s),
            )
        return self._client

    async def _complete_once(
        self, body: dict[str, Any], model: str, internal_names: Mapping[str, str]
    ) -> ChatResponse:
        try:
            response = await self._http().post(self._url, json=body)
        except httpx.TransportError as exc:
            raise self._transport_failure(exc) from exc
        if not response.is_success:
            self._raise_for_status(response, model)
        data = self._json_object(response.content)
        self._raise_for_error_object(data)
        return self._parse_completion(data, internal_names)

    async def _stream_once(
        self,
        body: dict[str, Any],
        model: str,
        internal_names: Mapping[str, str],
        on_delta: DeltaHandler,
        progress: _StreamProgress,
    ) -> ChatResponse:
        reply = _StreamedReply(internal_names)
        decoder = ServerSentEventDecoder()
        done = False
        saw_chunk = False
        try:
            async with self._http().stream("POST", self._url, json=body) as response:
                if not response.is_success:
                    await response.aread()
                    self._raise_for_status(response, model)
                async for line in response.aiter_lines():
                    data = decoder.feed(line)
                    # Keep reading after [DONE] so the connection goes back to the pool clean.
                    if data is None or done:
                        continue
                    if data.strip() == "[DONE]":
                        done = True
                        continue
                    chunk = self._json_object(data.encode())
                    self._raise_for_error_object(chunk, streaming=True)
                    saw_chunk = True
                    piece = reply.add(chunk)
                    if piece:
                        progress.text_shown = True
                        await on_delta(piece)
                tail = decoder.flush()
                if tail is not None and tail.strip() != "[DONE]" and not done:
                    chunk = self._json_object(tail.encode())
                    self._raise_for_error_object(chunk, streaming=True)
                    saw_chunk = True
                    piece = reply.add(chunk)
                    if piece:
                        progress.text_shown = True
                        await on_delta(piece)
        except httpx.TransportError as exc:
            raise self._transport_failure(exc) from exc
        if not saw_chunk:
            raise ProviderError(
                f"{self._name}: {self._url} answered the streaming request with no "
                f"chat-completion chunks; check that providers.{self._name}.base_url points at "
                "an OpenAI-compatible API",
                provider=self._name,
            )
        return reply.response()

    def _transport_failure(self, exc: httpx.TransportError) -> _TransientFailure | ProviderError:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return _TransientFailure(
                "connect", connection_failure_reason(exc, self._connect_timeout_s)
            )
        if isinstance(exc, httpx.TimeoutException):
            return _TransientFailure("timeout", f"no data within {self._timeout_s:g} s")
        if isinstance(exc, httpx.UnsupportedProtocol):
            return ProviderError(
                f"{self._name}: cannot use {self._base_url} ({one_line(str(exc), 120)}); set "
                f"providers.{self._name}.base_url to an http(s) URL",
                provider=self._name,
            )
        detail = scrub(one_line(str(exc), 160), self._api_key) or type(exc).__name__
        return _TransientFailure("broken", f"connection broke off: {detail}")

    def _raise_for_status(self, response: httpx.Response, model: str) -> None:
        status = response.status_code
        message = scrub(api_error_message(response.content), self._api_key)
        name = self._name
        if status in RETRYABLE_STATUS_CODES:
            raise _TransientFailure(
                "status",
                message,
                status_code=status,
                retry_after_s=retry_after_s(response.headers),
            )
        if status in (401, 403):
            what = (
                f"the API key was refused: set a valid one in {self._key_setting}"
                if self._api_key
                else f"no API key was sent: set {self._key_setting}"
            )
            text = f"{name}: authentication failed (HTTP {status}: {message}); {what}"
        elif status == 404:
            hint = "" if self._base_url.endswith("/v1") else " (it usually ends in /v1)"
            text = (
                f"{name}: model '{model}' or URL {self._url} not found (HTTP 404: {message}); "
                f"check the model name and providers.{name}.base_url{hint}"
            )
        elif 400 <= status < 500:
            text = f"{name}: the API rejected the request (HTTP {status}): {message}"
        else:
            location = response.headers.get("location")
            moved = f" (redirect to {location})" if location else ""
            text = (
                f"{name}: unexpected HTTP {status} from {self._url}{moved}; check "
                f"providers.{name}.base_url"
            )
        raise ProviderError(text, provider=name, status_code=status)

    def _json_object(self, raw: bytes) -> dict[str, Any]:
        try:
            data: Any = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            sample = scrub(one_line(raw.decode("utf-8", errors="replace"), 80), self._api_key)
            raise ProviderError(
                f"{self._name}: {self._url} answered with something that is not a chat "
                f"completion ({sample!r}); check that providers.{self._name}.base_url points at "
                "an OpenAI-compatible API",
                provider=self._name,
            )
        return data

    def _raise_for_error_object(self, data: dict[str, Any], *, streaming: bool = False) -> None:
        """Some servers (and OpenAI mid-stream) report errors inside a 200 answer."""
        if "error" not in data or data["error"] in (None, {}, ""):
            return
        message = scrub(api_error_message(json.dumps(data).encode()), self._api_key)
        error = data["error"]
        code = error.get("code") if isinstance(error, dict) else None
        if streaming or (isinstance(code, int) and code in RETRYABLE_STATUS_CODES):
            raise _TransientFailure("broken", f"the API reported an error: {message}")
        raise ProviderError(
            f"{self._name}: the API reported an error: {message}", provider=self._name
        )

    def _parse_completion(
        self, data: dict[str, Any], internal_names: Mapping[str, str]
    ) -> ChatResponse:
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise ProviderError(
                f"{self._name}: {self._url} answered JSON without any choices; check that "
                f"providers.{self._name}.base_url points at an OpenAI-compatible API",
                provider=self._name,
            )
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
            name = str(function.get("name") or "")
            call_id: Any = raw.get("id")
            calls.append(
                ToolCall(
                    id=call_id if isinstance(call_id, str) and call_id else _new_call_id(),
                    name=internal_names.get(name, name),
                    arguments=_arguments_text(function.get("arguments")),
                )
            )
        finish_reason = choice.get("finish_reason")
        model = data.get("model")
        return ChatResponse(
            message=Message(
                role="assistant",
                content=_text_of(wire_message.get("content")),
                tool_calls=calls,
            ),
            finish_reason=finish_reason if isinstance(finish_reason, str) else None,
            usage=_usage(data.get("usage")),
            model=model if isinstance(model, str) else None,
        )

    def _gave_up_error(self, failure: _TransientFailure, attempts: int) -> ProviderError:
        name = self._name
        tries = f"gave up after {attempts} attempt{'s' if attempts != 1 else ''}"
        if failure.kind == "connect":
            text = (
                f"{name}: cannot reach {self._base_url} ({failure.detail}); check "
                f"providers.{name}.base_url or your network"
            )
        elif failure.kind == "timeout":
            text = (
                f"{name}: {self._base_url} sent no answer within {self._timeout_s:g} s "
                f"({tries}); try again later or raise [agent] timeout_s"
            )
        elif failure.status_code == 429:
            text = (
                f"{name}: rate limited (HTTP 429: {failure.detail}), {tries}; wait a minute "
                "and try again, or check your plan's rate limits"
            )
        elif failure.status_code is not None:
            text = (
                f"{name}: server error (HTTP {failure.status_code}: {failure.detail}), "
                f"{tries}; try again later"
            )
        else:
            text = f"{name}: {self._base_url}: {failure.detail} ({tries}); try again later"
        return ProviderError(text, provider=name, status_code=failure.status_code, retryable=True)

    def _broken_stream_error(self, failure: _TransientFailure) -> ProviderError:
        return ProviderError(
            f"{self._name}: the reply from {self._base_url} broke off after part of it was "
            f"shown ({failure.summary}); not retried so nothing is said twice: try again",
            provider=self._name,
            status_code=failure.status_code,
            retryable=True,
        )
