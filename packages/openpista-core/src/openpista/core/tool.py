"""The tool interface, a tool made from a function, and how tool names become wire names."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from openpista.core.models import Image

if TYPE_CHECKING:
    from openpista.core.config import Config

MAX_WIRE_NAME_LENGTH = 64
WIRE_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_NOT_WIRE_SAFE = re.compile(r"[^a-zA-Z0-9_-]")
_KEPT_PREFIX_CHARS = 55
_DIGEST_CHARS = 8


def wire_name(name: str) -> str:
    """The name providers put on the wire: dots (and anything else unsafe) become underscores.

    A name that would pass 64 characters (a long `mcp.<server>.<tool>`) keeps its first 55
    and ends in `_` and 8 hex digits of the full name's SHA-256: the same name always gives
    the same wire name, and two long names sharing a prefix still differ.
    """
    safe = _NOT_WIRE_SAFE.sub("_", name)
    if len(safe) <= MAX_WIRE_NAME_LENGTH:
        return safe
    import hashlib

    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:_DIGEST_CHARS]
    return f"{safe[:_KEPT_PREFIX_CHARS]}_{digest}"


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Where a call comes from, for tools that care.

    `state` belongs to the session: the same dict for every call in that session for as long
    as the process runs (a browser tool keeps the session's tab in it). Key it by tool name.
    """

    session_id: str
    channel_id: str
    sender: str | None = None
    state: dict[str, Any] = field(default_factory=lambda: {})


class ToolStates:
    """Per-session tool state: the same dict for a session id for as long as the process runs.

    The agent builds each call's context with `state=states.for_session(session_id)`, so a
    tool finds what it kept there on an earlier call of the same session.
    """

    def __init__(self) -> None:
        self._states: dict[str, dict[str, Any]] = {}

    def for_session(self, session_id: str) -> dict[str, Any]:
        """The session's state dict, created empty on first use."""
        return self._states.setdefault(session_id, {})

    def forget(self, session_id: str) -> None:
        """Drop the session's state (a deleted session); a later call starts empty."""
        self._states.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._states)


@dataclass(slots=True)
class ToolOutput:
    """What a tool returns. Raise ToolError instead of returning is_error when that reads better."""

    text: str
    is_error: bool = False
    images: list[Image] = field(default_factory=lambda: [])


@runtime_checkable
class Tool(Protocol):
    """A capability the LLM can call. `parameters` is a JSON schema for an object.

    Optional attributes a tool may define (read with getattr, so plain tools need none):

    - `requires_approval: bool` (default True): whether a call is asked about under the
      `ask` approval policy. Read-only tools (a screenshot) set it False.
    - `requires_approval_for(arguments: dict[str, Any]) -> bool`: the same question per call,
      for a tool whose calls differ (skill.run: a wasm skill declaring itself safe runs
      unasked). When defined it decides; `requires_approval` answers when the arguments are
      not known.
    - `serial_group: str | None` (default None): calls of tools sharing a group run one after
      another, in the order the model gave them, instead of concurrently (a browser's click
      then type).
    - `async aclose()`: releases what the tool opened (a browser, a connection); called once
      when the process stops. Open such resources lazily, on first use.
    """

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def parameters(self) -> dict[str, Any]: ...

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolOutput: ...


ToolFunction = Callable[[dict[str, Any], ToolContext], Awaitable["ToolOutput | str"]]
"""What FunctionTool runs: the call's arguments and context in, the output (or its text) out."""


class FunctionTool:
    """A Tool made from an async function, for tools too small to need a class of their own.

    `FunctionTool("math.add", add, parameters={...})`: `add(arguments, context)` returns a
    ToolOutput, or a str that becomes the output's text. Parameters default to any object.
    """

    def __init__(
        self,
        name: str,
        run: ToolFunction,
        *,
        description: str = "",
        parameters: dict[str, Any] | None = None,
        requires_approval: bool = True,
        serial_group: str | None = None,
    ) -> None:
        self._name = name
        self._function = run
        self._description = description
        self._parameters: dict[str, Any] = (
            parameters if parameters is not None else {"type": "object"}
        )
        self.requires_approval = requires_approval
        self.serial_group = serial_group

    @property
    def name(self) -> str:
        return self._name

    @property
    def description(self) -> str:
        return self._description

    @property
    def parameters(self) -> dict[str, Any]:
        return self._parameters

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolOutput:
        output = await self._function(arguments, context)
        return ToolOutput(output) if isinstance(output, str) else output

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name!r})"


ToolFactory = Callable[["Config"], "Sequence[Tool] | Awaitable[Sequence[Tool]]"]
"""What an `openpista.tools` entry point names: the tools to register for a configuration.

It may be async (return an awaitable); the tools it returns may hold resources, released by
their `aclose()` when the process stops."""
