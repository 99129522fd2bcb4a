"""The tool interface, and how internal tool names become wire names."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from openpista.core.models import Image

if TYPE_CHECKING:
    from openpista.core.config import Config

WIRE_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_NOT_WIRE_SAFE = re.compile(r"[^a-zA-Z0-9_-]")


def wire_name(name: str) -> str:
    """The name providers put on the wire: dots (and anything else unsafe) become underscores."""
    return _NOT_WIRE_SAFE.sub("_", name)[:64]


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Where a call comes from, for tools that care."""

    session_id: str
    channel_id: str


@dataclass(slots=True)
class ToolOutput:
    """What a tool returns. Raise ToolError instead of returning is_error when that reads better."""

    text: str
    is_error: bool = False
    images: list[Image] = field(default_factory=lambda: [])


@runtime_checkable
class Tool(Protocol):
    """A capability the LLM can call. `parameters` is a JSON schema for an object."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def parameters(self) -> dict[str, Any]: ...

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolOutput: ...


ToolFactory = Callable[["Config"], Sequence[Tool]]
"""What an `openpista.tools` entry point names: the tools to register for a configuration."""
