"""The OpenAI Responses API (POST {base_url}/responses), spoken on httpx.

One module, one job: translate openpista's conversation to Responses input items and the
answer (a JSON response object, or its server-sent events) back. The HTTP side is `HttpApi`'s.

Requests are stateless (`store: false`): every request carries the whole conversation, and
reasoning models' reasoning items come back with `include: ["reasoning.encrypted_content"]`,
are stored on the assistant message as `ProviderStatePart("responses", {"items": [...]})` and
sent back before that message's function calls, as the API requires of a tool round. Items
are replayed without their `id`s, as the Codex CLI does: with nothing stored server-side an
id refers to nothing, and the encrypted content carries the reasoning.

The same code serves a ChatGPT subscription: base URL `CHATGPT_BASE_URL`, a signed-in token
and the `chatgpt-account-id` header from the `auth` callable (see `chatgpt_account_id`).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
from openpista.providers._sse import ServerSentEvent
from openpista.providers.pictures import (
    InlinePicture,
    MessageForModel,
    PictureSender,
    tool_pictures_note,
)
from openpista.providers.presets import CHATGPT_BASE_URL

__all__ = ["CHATGPT_BASE_URL", "ResponsesProvider", "chatgpt_account_id"]

log = logging.getLogger(__name__)

STATE_PROVIDER = "responses"
"""`ProviderStatePart.provider` of the state this protocol stores (any provider speaking it
reads it back, so a switch between two Responses providers keeps the reasoning)."""

ENCRYPTED_REASONING = "reasoning.encrypted_content"

# Error codes of `response.failed` and `error` events worth another attempt.
_RETRYABLE_CODES = frozenset({"server_error", "rate_limit_exceeded", "server_is_overloaded"})

# Terminal statuses of a response object.
_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}


def chatgpt_account_id(id_token: str) -> str:
    """The ChatGPT account id in an OpenAI sign-in's id_token (the JWT's
    `https://api.openai.com/auth` claim, `chatgpt_account_id`), for the `chatgpt-account-id`
    header the ChatGPT backend requires.

    The token is decoded, not verified: it came straight from OpenAI's token endpoint over
    TLS, and only OpenAI's servers act on the header. Raises ValueError (never quoting the
    token) when it is not a JWT or carries no account id.
    """
    from openpista.providers.signin.jwt import OPENAI_AUTH_CLAIM, account_id_in, jwt_payload

    account = account_id_in(jwt_payload(id_token))
    if not account:
        raise ValueError(
            f"the id_token has no {OPENAI_AUTH_CLAIM} chatgpt_account_id claim "
            "(was it issued for a ChatGPT sign-in?)"
        )
    return account


def responses_body(
    request: ChatRequest,
    model: str,
    *,
    stream: bool,
    names: Mapping[str, str] | None = None,
    encrypted_reasoning: bool = True,
    pictures: PictureSender | None = None,
) -> dict[str, Any]:
    """The JSON body of a Responses request for `request`, tools under their wire names
    (`names`: wire name by internal name; default: each spec's own).

    Leading system messages become `instructions`; a system message later in the
    conversation (a summarising instruction) stays in place as a `developer` message.
    `encrypted_reasoning` asks for reasoning items to replay (models that do not reason
    refuse it). `pictures` says whether pictures go inline (default: a line each); those of
    a round's tool results follow its last result as one user message.
    """
    if names is None:
        names = {spec.name: spec.wire_name for spec in request.tools}
    messages = request.messages
    leading = 0
    while leading < len(messages) and messages[leading].role == "system":
        leading += 1
    instructions = "\n\n".join(m.content for m in messages[:leading] if m.content)
    pictures = pictures or PictureSender()
    items: list[dict[str, Any]] = []
    for item in pictures.messages(messages[leading:]):
        if isinstance(item, list):  # pictures of tool results: only a user message takes them
            message_item = _text_message("user", tool_pictures_note(item))
            message_item["content"].extend(_image_input(picture) for picture in item)
            items.append(message_item)
        else:
            items.extend(_message_items(*item, names))
    body: dict[str, Any] = {"model": model}
    if instructions:
        body["instructions"] = instructions
    body["input"] = items
    if request.tools:
        body["tools"] = [_tool_to_wire(spec) for spec in request.tools]
        body["tool_choice"] = "auto"
    body["stream"] = stream
    # Nothing is kept server-side; the ChatGPT backend refuses requests that would be.
    body["store"] = False
    if encrypted_reasoning:
        body["include"] = [ENCRYPTED_REASONING]
    return body


def _tool_to_wire(spec: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "name": spec.wire_name,
        "description": spec.description,
        "parameters": spec.parameters,
    }


def _text_message(role: str, text: str) -> dict[str, Any]:
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


def _message_items(
    message: Message, sent: MessageForModel, names: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The input items for one message (`sent`: its text and inline pictures)."""
    if message.role == "tool":
        return [
            {
                "type": "function_call_output",
                "call_id": message.tool_call_id or "",
                "output": sent.text,
            }
        ]
    if message.role == "assistant":
        return _assistant_items(message, names)
    role = "developer" if message.role == "system" else "user"
    item = _text_message(role, sent.text)
    if role == "user" and sent.pictures:
        if not sent.text:
            item["content"] = []
        item["content"].extend(_image_input(picture) for picture in sent.pictures)
    return [item]


def _image_input(picture: InlinePicture) -> dict[str, Any]:
    return {"type": "input_image", "image_url": picture.data_url, "detail": "auto"}


def _stored_items(message: Message) -> list[dict[str, Any]] | None:
    """The output items this protocol stored on `message`, if any."""
    for part in reversed(message.parts):
        if isinstance(part, ProviderStatePart) and part.provider == STATE_PROVIDER:
            raw: Any = part.data.get("items")
            if isinstance(raw, list):
                return [item for item in raw if isinstance(item, dict)]  # pyright: ignore[reportUnknownVariableType]
    return None


def _assistant_items(message: Message, names: Mapping[str, str]) -> list[dict[str, Any]]:
    """An assistant message as the output items the model produced, in their order.

    With stored items, reasoning is replayed where it came, before the message and calls it
    led to. The message itself wins over what was stored: a call stripped from it since (a
    history repaired for another provider) is not replayed, and a reasoning item left with
    nothing after it is dropped (the API refuses one without its following item).
    """
    calls = {call.id: call for call in message.tool_calls}

    def call_item(call: ToolCall) -> dict[str, Any]:
        return {
            "type": "function_call",
            "call_id": call.id,
            # A call from history whose tool is no longer offered still needs a valid name.
            "name": names.get(call.name) or wire_name(call.name),
            "arguments": call.arguments,
        }

    stored = _stored_items(message) or []
    items: list[dict[str, Any]] = []
    sent_calls: set[str] = set()
    text_sent = False
    for item in stored:
        kind = item.get("type")
        if kind == "reasoning":
            items.append(_replayed_reasoning(item))
        elif kind == "message" and not text_sent and message.content:
            items.append(_text_message("assistant", message.content))
            text_sent = True
        elif kind == "function_call":
            call_id = item.get("call_id")
            if isinstance(call_id, str) and call_id in calls and call_id not in sent_calls:
                items.append(call_item(calls[call_id]))
                sent_calls.add(call_id)
    if message.content and not text_sent:
        # Text comes before the calls, as a model writes it.
        first_call = next(
            (i for i, item in enumerate(items) if item["type"] == "function_call"), len(items)
        )
        items.insert(first_call, _text_message("assistant", message.content))
    items.extend(call_item(call) for call in message.tool_calls if call.id not in sent_calls)
    while items and items[-1]["type"] == "reasoning":
        items.pop()
    return items


def _replayed_reasoning(item: Mapping[str, Any]) -> dict[str, Any]:
    """A stored reasoning item as input: its summary and encrypted content, without the id
    and status that only mean something to a server that stored the response."""
    replayed: dict[str, Any] = {"type": "reasoning", "summary": item.get("summary") or []}
    if item.get("encrypted_content") is not None:
        replayed["encrypted_content"] = item["encrypted_content"]
    return replayed


def _text_of_message_item(item: Mapping[str, Any]) -> str:
    content: Any = item.get("content")
    if not isinstance(content, list):
        return ""
    pieces: list[str] = []
    for part in content:  # pyright: ignore[reportUnknownVariableType]
        if not isinstance(part, dict):
            continue
        kind: Any = part.get("type")
        text: Any = part.get("text") if kind == "output_text" else part.get("refusal")
        if kind in ("output_text", "refusal") and isinstance(text, str):
            pieces.append(text)
    return "".join(pieces)


def _usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    used_in: Any = data.get("input_tokens")
    used_out: Any = data.get("output_tokens")
    return Usage(
        input_tokens=used_in if isinstance(used_in, int) else 0,
        output_tokens=used_out if isinstance(used_out, int) else 0,
    )


def _new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _reply_from_items(
    items: list[dict[str, Any]],
    internal_names: Mapping[str, str],
    *,
    incomplete_reason: str | None,
    usage: Usage | None,
    model: str | None,
) -> ChatResponse:
    """A ChatResponse from a finished response's output items."""
    text: list[str] = []
    calls: list[ToolCall] = []
    for item in items:
        kind = item.get("type")
        if kind == "message":
            text.append(_text_of_message_item(item))
        elif kind == "function_call":
            wire: Any = item.get("name")
            wire = wire if isinstance(wire, str) else ""
            call_id: Any = item.get("call_id")
            arguments: Any = item.get("arguments")
            calls.append(
                ToolCall(
                    id=call_id if isinstance(call_id, str) and call_id else _new_call_id(),
                    name=internal_names.get(wire, wire),
                    arguments=arguments if isinstance(arguments, str) and arguments else "{}",
                )
            )
    parts: list[Any] = []
    if any(item.get("type") == "reasoning" for item in items):
        parts.append(ProviderStatePart(STATE_PROVIDER, {"items": items}))
    if incomplete_reason is not None:
        finish_reason = _INCOMPLETE_REASONS.get(incomplete_reason, incomplete_reason)
    else:
        finish_reason = "tool_calls" if calls else "stop"
    return ChatResponse(
        message=Message(role="assistant", content="".join(text), tool_calls=calls, parts=parts),
        finish_reason=finish_reason,
        usage=usage,
        model=model,
    )


def _incomplete_reason(response: Mapping[str, Any]) -> str | None:
    if response.get("status") != "incomplete":
        return None
    details: Any = response.get("incomplete_details")
    reason: Any = details.get("reason") if isinstance(details, dict) else None
    return reason if isinstance(reason, str) and reason else "max_output_tokens"


@dataclass(slots=True)
class _StreamedResponse:
    """Assembles a response from its events: items by output index, text as it arrives."""

    internal_names: Mapping[str, str]
    done: dict[int, dict[str, Any]] = field(default_factory=lambda: {})
    text: dict[int, list[str]] = field(default_factory=lambda: {})
    final: dict[str, Any] | None = None
    """The response object of the terminal event (completed or incomplete)."""
    model: str | None = None

    def add_text(self, event: Mapping[str, Any]) -> str:
        delta: Any = event.get("delta")
        if not isinstance(delta, str) or not delta:
            return ""
        index: Any = event.get("output_index")
        self.text.setdefault(index if isinstance(index, int) else 0, []).append(delta)
        return delta

    def add_done_item(self, event: Mapping[str, Any]) -> None:
        item: Any = event.get("item")
        index: Any = event.get("output_index")
        if isinstance(item, dict):
            self.done[index if isinstance(index, int) else len(self.done)] = item  # pyright: ignore[reportArgumentType]

    def shown_text(self) -> str:
        return "".join("".join(pieces) for _, pieces in sorted(self.text.items()))

    def response(self) -> ChatResponse:
        final = self.final or {}
        by_index = dict(self.done)
        for index, pieces in self.text.items():
            # A message whose item never arrived whole still said what its deltas said.
            by_index.setdefault(
                index,
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "".join(pieces)}],
                },
            )
        items = [item for _, item in sorted(by_index.items())]
        output: Any = final.get("output")
        if not self.done and isinstance(output, list) and output:
            # Some servers send the items only in the final response object.
            items = [item for item in output if isinstance(item, dict)]  # pyright: ignore[reportUnknownVariableType]
        model: Any = final.get("model")
        return _reply_from_items(
            items,
            self.internal_names,
            incomplete_reason=_incomplete_reason(final),
            usage=_usage(final.get("usage")),
            model=model if isinstance(model, str) else self.model,
        )

    def interrupted(self) -> ChatResponse:
        """What the user saw of a reply that broke off: its text, no calls, no state."""
        return ChatResponse(
            message=Message(role="assistant", content=self.shown_text()),
            finish_reason="interrupted",
            model=self.model,
        )


class ResponsesProvider(HttpProvider):
    """An LlmProvider speaking the OpenAI Responses API (and a ChatGPT subscription's backend).

    Streams when given `on_delta`, and always when signed in (the ChatGPT backend accepts
    nothing else). A streamed reply that breaks off after text was shown is returned as far
    as it went with finish_reason "interrupted", not retried and not lost.
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
        """Arguments as ChatCompletionsProvider's: `auth` supplies per-request headers for a
        signed-in provider (the ChatGPT token and `chatgpt-account-id`); `sleep` lets tests
        observe backoff without waiting for it."""
        api = HttpApi(
            name=name,
            base_url=base_url,
            api_key=api_key,
            auth=auth,
            headers=headers,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            key_setting=key_setting,
            describe=ApiDescription(
                what="the OpenAI Responses API",
                base_url_example="https://api.openai.com/v1",
                base_url_suffix="",
            ),
            max_attempts=max_attempts,
            backoff_base_s=backoff_base_s,
            backoff_cap_s=backoff_cap_s,
            sleep=sleep,
        )
        super().__init__(api, model)
        self._url = self._api.url("responses")
        # Models that refused `include: reasoning.encrypted_content` (models that do not
        # reason): asked without it from then on.
        self._plain_models: set[str] = set()

    async def complete(
        self, request: ChatRequest, on_delta: DeltaHandler | None = None
    ) -> ChatResponse:
        """Answer `request`. With `on_delta`, stream and call it with each text piece."""
        model = self._chosen_model(request)
        names, internal_names = self._tool_names(request)
        stream = on_delta is not None or self._api.signed_in
        try:
            return await self._answer(request, model, names, internal_names, stream, on_delta)
        except ProviderError as error:
            if model in self._plain_models or not _refuses_encrypted_reasoning(error):
                raise
            log.info("%s: %s does not reason; asking without encrypted reasoning", self.name, model)
            self._plain_models.add(model)
            return await self._answer(request, model, names, internal_names, stream, on_delta)

    async def _answer(
        self,
        request: ChatRequest,
        model: str,
        names: Mapping[str, str],
        internal_names: Mapping[str, str],
        stream: bool,
        on_delta: DeltaHandler | None,
    ) -> ChatResponse:
        body = responses_body(
            request,
            model,
            stream=stream,
            names=names,
            encrypted_reasoning=model not in self._plain_models,
            pictures=PictureSender.for_model(self.name, model, request.read_media),
        )
        if stream and on_delta is None:
            on_delta = _show_nothing
        return await self._retried(body, model, internal_names, on_delta)

    async def _complete_once(
        self, body: dict[str, Any], model: str, internal_names: Mapping[str, str]
    ) -> ChatResponse:
        data = await self._api.post_json(self._url, body, model)
        if data.get("object") not in (None, "response") or not isinstance(data.get("output"), list):
            if data.get("error"):
                self._raise_failure(data["error"])
            raise self._api.wrong_api_error(self._url, "JSON that is not a response object")
        if data.get("status") == "failed":
            self._raise_failure(data.get("error"))
        output: list[Any] = data["output"]
        items = [item for item in output if isinstance(item, dict)]
        response_model: Any = data.get("model")
        return _reply_from_items(
            items,  # pyright: ignore[reportUnknownArgumentType]
            internal_names,
            incomplete_reason=_incomplete_reason(data),
            usage=_usage(data.get("usage")),
            model=response_model if isinstance(response_model, str) else None,
        )

    async def _stream_once(
        self,
        body: dict[str, Any],
        model: str,
        internal_names: Mapping[str, str],
        on_delta: DeltaHandler,
    ) -> ChatResponse:
        reply = _StreamedResponse(internal_names)
        text_shown = False
        spoke_responses = False
        try:
            async with contextlib.aclosing(
                self._api.stream_events(self._url, body, model)
            ) as events:
                async for event in events:
                    data = self._event_data(event)
                    kind = data.get("type")
                    if isinstance(kind, str) and (kind.startswith("response.") or kind == "error"):
                        spoke_responses = True
                    if kind == "response.output_text.delta":
                        piece = reply.add_text(data)
                        if piece:
                            text_shown = True
                            await on_delta(piece)
                    elif kind == "response.output_item.done":
                        reply.add_done_item(data)
                    elif kind in ("response.created", "response.in_progress"):
                        response: Any = data.get("response")
                        if isinstance(response, dict) and isinstance(response.get("model"), str):
                            reply.model = response["model"]  # pyright: ignore[reportUnknownMemberType]
                    elif kind in ("response.completed", "response.incomplete"):
                        final: Any = data.get("response")
                        reply.final = final if isinstance(final, dict) else {}  # pyright: ignore[reportUnknownMemberType]
                        break
                    elif kind == "response.failed":
                        failed: Any = data.get("response")
                        error: Any = failed.get("error") if isinstance(failed, dict) else None
                        self._raise_failure(error)
                    elif kind == "error":
                        self._raise_failure(data)
            if reply.final is None:
                # Whatever the connection still holds is no use to the next request.
                await self._api.discard_connections()
                if not spoke_responses:
                    raise self._api.wrong_api_error(
                        self._url, "no Responses API events to the streaming request"
                    )
                raise TransientFailure(
                    "broken", "the stream ended before the response was complete"
                )
        except TransientFailure as failure:
            if not text_shown:
                raise
            # The user saw part of the reply: keep it (marked as cut) rather than lose it or
            # say it twice by retrying.
            log.warning("%s: the reply broke off after text was shown: %s", self.name, failure)
            await self._api.discard_connections()
            return reply.interrupted()
        return reply.response()

    def _event_data(self, event: ServerSentEvent) -> dict[str, Any]:
        data = self._api.json_object(event.data, self._url)
        if "type" not in data and event.event:
            data["type"] = event.event
        return data

    def _raise_failure(self, error: Any) -> None:
        """A failed response or an `error` event: a TransientFailure when the API says it
        may pass (retried, or the shown text kept), else one clear error."""
        code: Any = error.get("code") if isinstance(error, dict) else None
        message: Any = error.get("message") if isinstance(error, dict) else None
        text = self._api.scrub(str(message) if message else "the response failed without a message")
        detail = f"{text} ({code})" if isinstance(code, str) and code else text
        if isinstance(code, str) and code in _RETRYABLE_CODES:
            raise TransientFailure("broken", f"the API reported an error: {detail}")
        raise ProviderError(f"{self.name}: the API reported an error: {detail}", provider=self.name)


async def _show_nothing(piece: str) -> None:
    """Where streamed text goes when nobody asked to see it (signed in, the ChatGPT backend
    answers only in streams)."""


def _refuses_encrypted_reasoning(error: ProviderError) -> bool:
    """Whether the API refused `include: reasoning.encrypted_content` for a model that does
    not reason (HTTP 400 "Encrypted content is not supported with this model.")."""
    return error.status_code == 400 and "encrypted content is not supported" in str(error).lower()
