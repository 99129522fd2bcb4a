"""The LLM provider interface: one request with the conversation and tools, one assistant reply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from openpista.core.models import Message

DeltaHandler = Callable[[str], Awaitable[None]]
"""Called with each piece of streamed assistant text, in order."""

NoticeHandler = Callable[[str], Awaitable[None]]
"""Called with a one-line notice the user should see about a request (a switch to a fallback
model); it must not raise."""

# The normalised `ChatResponse.finish_reason` values: every provider maps its own to these.
FINISH_STOP = "stop"
"""The model finished its reply."""
FINISH_TOOL_CALLS = "tool_calls"
"""The model asks for tool calls (Anthropic `tool_use`, a Responses reply with function calls)."""
FINISH_LENGTH = "length"
"""The reply hit the output-token limit: OpenAI `length`, Anthropic `max_tokens`, Responses
`incomplete` with reason `max_output_tokens`. The text is what came before the cut."""
FINISH_CONTENT_FILTER = "content_filter"
"""The provider's content filter stopped or withheld the reply."""
FINISH_INTERRUPTED = "interrupted"
"""A streamed reply broke off after text was already shown: the provider returns what arrived
with this reason instead of raising (raising would throw away text the user has seen). Tool
calls in such a reply may be half made; the agent does not run them."""

FINISH_REASONS = frozenset(
    {FINISH_STOP, FINISH_TOOL_CALLS, FINISH_LENGTH, FINISH_CONTENT_FILTER, FINISH_INTERRUPTED}
)
CUT_FINISH_REASONS = frozenset({FINISH_LENGTH, FINISH_INTERRUPTED})
"""Finish reasons of a reply that is not complete: the agent stores it marked as cut."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as offered to the LLM.

    `name` is the internal dotted name; `wire_name` is what providers put on the wire
    (`^[a-zA-Z0-9_-]{1,64}$`). Providers send `wire_name` and map calls back to `name`.
    """

    name: str
    wire_name: str
    description: str
    parameters: dict[str, Any]


@dataclass(slots=True)
class ChatRequest:
    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=lambda: [])
    model: str | None = None
    """Overrides the provider's configured model for this request."""
    notify: NoticeHandler | None = None
    """Where a provider reports what the user should know about this request (a fallback
    provider names the model it switched to); None: nobody is told."""
    read_media: Callable[[str], bytes] | None = None
    """Reads a picture or file of the conversation by its `path` (relative to the media
    folder), for a provider whose model takes images; None: pictures are described, not sent."""


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(slots=True)
class ChatResponse:
    message: Message
    """The assistant message: text, tool calls (with internal names), or both."""
    finish_reason: str | None = None
    """One of FINISH_REASONS (a provider maps its own values to these); None when the
    provider said nothing, which counts as complete."""
    usage: Usage | None = None
    model: str | None = None


@runtime_checkable
class LlmProvider(Protocol):
    """Something that answers a conversation. Raises ProviderError on failure."""

    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str: ...

    async def complete(
        self, request: ChatRequest, on_delta: DeltaHandler | None = None
    ) -> ChatResponse:
        """Answer `request`. With `on_delta`, stream and call it with each text piece."""
        ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class ProviderSettings:
    """What a provider factory is given: the resolved `[providers.NAME]` section."""

    name: str
    model: str
    base_url: str = ""
    api_key: str = ""
    api: str = ""
    """Wire protocol: chat | responses | anthropic; empty lets the factory choose."""
    timeout_s: float = 120.0
    extra: dict[str, Any] = field(default_factory=lambda: {})


ProviderFactory = Callable[[ProviderSettings], LlmProvider]
"""What an `openpista.providers` entry point names: the provider for some settings."""


@runtime_checkable
class TurnScopedProvider(Protocol):
    """Optional for providers: one that keeps state for the length of a turn (a fallback
    chain stays on the model it switched to until the turn ends). The agent asks it for a
    provider at the start of every turn and sends that turn's requests there."""

    def for_turn(self) -> LlmProvider: ...
