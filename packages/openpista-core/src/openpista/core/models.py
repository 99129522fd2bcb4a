"""The messages, tool calls and events that travel between channels, the agent and providers."""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


def valid_text(text: str) -> str:
    """`text` as storable Unicode: bytes that were not UTF-8 (which Python decodes from argv,
    environment and files as lone surrogates) become U+FFFD, as a terminal would show them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")  # the bytes as they came
        except UnicodeEncodeError:
            raw = text.encode("utf-8", "surrogatepass")  # lone surrogates of other origins
        return raw.decode("utf-8", "replace")
    return text


def new_id() -> str:
    """A fresh random id (32 hex digits) for events, approval requests and the like."""
    return uuid.uuid4().hex


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


@dataclass(frozen=True, slots=True)
class TextPart:
    """Text beyond a message's `content`, kept as its own part (e.g. a file's extracted text)."""

    text: str
    kind: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class ImagePart:
    """A picture in a conversation. The bytes live in a file under OPENPISTA_HOME/media/;
    `path` is that file's path relative to the media folder, never the data itself."""

    path: str
    mime_type: str
    name: str = ""
    size: int = 0
    kind: Literal["image"] = "image"


@dataclass(frozen=True, slots=True)
class FilePart:
    """A file in a conversation (a document the user sent, a file a tool made): like
    ImagePart, a reference to a file under OPENPISTA_HOME/media/."""

    path: str
    mime_type: str
    name: str = ""
    size: int = 0
    kind: Literal["file"] = "file"


@dataclass(frozen=True, slots=True)
class ProviderStatePart:
    """Opaque state a provider needs back on later requests (reasoning items, thinking blocks
    with their signatures). Only the provider named by `provider` reads `data`; others skip it."""

    provider: str
    data: dict[str, Any]
    kind: Literal["provider_state"] = "provider_state"


Part = TextPart | ImagePart | FilePart | ProviderStatePart
"""A typed piece of a message beyond its plain `content` text."""


def _copy_part(part: Part) -> Part:
    if isinstance(part, ProviderStatePart):
        return ProviderStatePart(part.provider, copy.deepcopy(part.data))
    return part  # frozen, holding only immutable values


def part_to_dict(part: Part) -> dict[str, Any]:
    """A part as JSON-ready data (`{"kind": ..., ...}`), as the store keeps it."""
    if isinstance(part, TextPart):
        return {"kind": "text", "text": part.text}
    if isinstance(part, ProviderStatePart):
        return {"kind": "provider_state", "provider": part.provider, "data": part.data}
    return {
        "kind": part.kind,
        "path": part.path,
        "mime_type": part.mime_type,
        "name": part.name,
        "size": part.size,
    }


def part_from_dict(data: dict[str, Any]) -> Part:
    """The part `part_to_dict` made; ValueError for an unknown kind."""
    kind = data.get("kind")
    if kind == "text":
        return TextPart(str(data.get("text", "")))
    if kind == "provider_state":
        state: dict[str, Any] = dict(data.get("data") or {})
        return ProviderStatePart(str(data.get("provider", "")), state)
    if kind in ("image", "file"):
        cls = ImagePart if kind == "image" else FilePart
        return cls(
            path=str(data["path"]),
            mime_type=str(data.get("mime_type", "application/octet-stream")),
            name=str(data.get("name", "")),
            size=int(data.get("size", 0)),
        )
    raise ValueError(f"unknown message part kind {kind!r}")


@dataclass(slots=True)
class Message:
    """One entry of a conversation, as stored in memory and sent to providers.

    `content` is the message's text; `parts` carries what text alone cannot (pictures, files,
    provider state), in order. `sender` names who wrote a user message (in a group chat the
    model needs to know who spoke). `usage` is what the provider reported for an assistant
    message: the tokens its request took in, and the tokens of the reply.
    """

    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=lambda: [])
    tool_call_id: str | None = None
    parts: list[Part] = field(default_factory=lambda: [])
    sender: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None

    def copy(self) -> Message:
        """A copy that can be changed without touching this message: its lists are new, and
        so is provider state (the one part that holds mutable data)."""
        return Message(
            self.role,
            self.content,
            list(self.tool_calls),
            self.tool_call_id,
            [_copy_part(part) for part in self.parts],
            self.sender,
            self.input_tokens,
            self.output_tokens,
        )


@dataclass(frozen=True, slots=True)
class Image:
    """Picture data a tool produced: shown by channels, never sent to the LLM as base64.

    `width` and `height` are pixels, 0 when unknown. `path` is empty until the agent has saved
    the picture under OPENPISTA_HOME/media/; then it is that file's absolute path, which a
    channel can show or send instead of decoding the data again.
    """

    mime_type: str
    data_b64: str
    width: int = 0
    height: int = 0
    path: str = ""


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


AttachmentKind = Literal["image", "file"]


@dataclass(slots=True)
class Attachment:
    """A picture or file that came with a channel message: its bytes, or a path to them.

    The agent stores it under OPENPISTA_HOME/media/ and keeps a reference in the conversation.
    """

    kind: AttachmentKind
    mime_type: str
    name: str = ""
    size: int = 0
    data: bytes | None = None
    path: str | None = None


@dataclass(slots=True)
class ChannelEvent:
    """An incoming message from a channel.

    `channel_id` names the conversation (`cli:local`, `telegram:42`); `session_id`, when set,
    asks for that session explicitly instead of the channel's current one. `id` is unique per
    event; the response answering it carries it as `in_reply_to`, unless the event is
    `unrequested` (a cron job's: nobody on the channel asked, so the reply answers no one).
    `sender` names who wrote it (stored with the user message).
    """

    channel_id: str
    text: str
    session_id: str | None = None
    sender: str | None = None
    metadata: dict[str, Any] = field(default_factory=lambda: {})
    id: str = field(default_factory=new_id, compare=False)
    attachments: list[Attachment] = field(default_factory=lambda: [])
    unrequested: bool = False


@dataclass(slots=True)
class AgentResponse:
    """A message from the agent to a channel.

    `in_reply_to` is the id of the ChannelEvent it answers, or None for one nobody asked for
    (a cron job's result): a channel waiting for the answer to its message routes by it.
    """

    channel_id: str
    session_id: str
    content: str
    is_error: bool = False
    tool_calls: list[ToolCallRecord] = field(default_factory=lambda: [])
    images: list[Image] = field(default_factory=lambda: [])
    in_reply_to: str | None = None
    stopped_at_limit: bool = False
    """The agent stopped at max_tool_rounds without a final answer."""
    cancelled: bool = False
    """The turn was cancelled (the user's stop); `content` says so."""
    cut_off: str | None = None
    """The reply was cut short: "length" (the output limit) or "interrupted" (the connection
    broke off); `content` ends with a line saying so."""


@dataclass(frozen=True, slots=True)
class Session:
    """A stored conversation."""

    id: str
    channel_id: str
    created_at: datetime
    updated_at: datetime
    message_count: int = 0


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One tool call in the audit trail: who asked for what, who decided, and how it went.

    `decision` is one of auto, allowed, allowed_all, denied, expired (approval.AuditDecision);
    `decided_by` says who made it: `policy`, `session` (an earlier allow-all), `timeout`,
    `no-approver`, or the channel's user.
    """

    at: datetime
    session_id: str
    channel_id: str
    sender: str | None
    tool: str
    arguments: str
    """The call's arguments as JSON text, exactly as the model wrote them."""
    decision: str
    decided_by: str
    ok: bool
    duration_ms: float
    call_id: str = ""
    error: str | None = None
    """The first line of the error, when the call failed or did not run."""


@dataclass(frozen=True, slots=True)
class Summary:
    """A compaction summary: the model's summary of a session's first `covers` messages."""

    covers: int
    text: str
    created_at: datetime
