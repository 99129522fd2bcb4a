"""The LLM provider interface: one request with the conversation and tools, one assistant reply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from openpista.core.models import Message

DeltaHandler = Callable[[str], Awaitable[None]]
"""Called with each piece of streamed assistant text, in order."""


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


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(slots=True)
class ChatResponse:
    message: Message
    """The assistant message: text, tool calls (with internal names), or both."""
    finish_reason: str | None = None
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
