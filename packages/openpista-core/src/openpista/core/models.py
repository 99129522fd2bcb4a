"""The messages, tool calls and events that travel between channels, the agent and providers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the LLM asked for. `name` is the internal dotted name (`system.run`).

    `arguments` is the JSON text exactly as the model produced it, so a conversation
    round-trips byte for byte even when the model wrote invalid JSON.
    """

    id: str
    name: str
    arguments: str = "{}"

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as an object; raises ValueError when they are not a JSON object."""
        text = self.arguments.strip() or "{}"
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"arguments are not valid JSON: {exc.msg} at position {exc.pos}"
            ) from exc
        if not isinstance(value, dict):
            raise ValueError(f"arguments must be a JSON object, got {type(value).__name__}")
        return value  # pyright: ignore[reportUnknownVariableType]

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToolCall:
        return cls(
            id=str(data["id"]), name=str(data["name"]), arguments=str(data.get("arguments", "{}"))
        )


@dataclass(slots=True)
class Message:
    """One entry of a conversation, as stored in memory and sent to providers."""

    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=lambda: [])
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class Image:
    """Picture data a tool produced: shown by channels, never sent to the LLM as base64."""

    mime_type: str
    data_b64: str


@dataclass(slots=True)
class ToolResult:
    """What one tool call produced. `output` is the text the LLM sees."""

    call_id: str
    name: str
    output: str
    is_error: bool = False
    images: list[Image] = field(default_factory=lambda: [])

    def to_message(self) -> Message:
        return Message(role="tool", content=self.output, tool_call_id=self.call_id)


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """A summary of one tool call made during a turn, for channels and `run --json`."""

    name: str
    arguments: dict[str, Any] | str
    ok: bool


@dataclass(slots=True)
class ChannelEvent:
    """An incoming message from a channel.

    `channel_id` names the conversation (`cli:local`, `telegram:42`); `session_id`, when set,
    asks for that session explicitly instead of the channel's current one.
    """

    channel_id: str
    text: str
    session_id: str | None = None
    sender: str | None = None
    metadata: dict[str, Any] = field(default_factory=lambda: {})


@dataclass(slots=True)
class AgentResponse:
    """The agent's answer to one ChannelEvent, routed back to the channel it came from."""

    channel_id: str
    session_id: str
    content: str
    is_error: bool = False
    tool_calls: list[ToolCallRecord] = field(default_factory=lambda: [])
    images: list[Image] = field(default_factory=lambda: [])


@dataclass(frozen=True, slots=True)
class Session:
    """A stored conversation."""

    id: str
    channel_id: str
    created_at: datetime
    updated_at: datetime
    message_count: int = 0
