"""One-line descriptions of tool activity, shared by every place that shows it to a person."""

from __future__ import annotations

import re

from openpista.core.models import ToolCall, ToolResult

# What must not reach a terminal raw: C0 and C1 control characters and DEL (they drive the
# terminal: `\x1b[2J` clears it), the bidirectional overrides (they reorder what is shown,
# hiding what a command really does) and lone surrogates (they cannot be written at all).
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


_UNPRINTABLE_IN_TEXT = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def printable(text: str, *, keep_lines: bool = False) -> str:
    """`text` safe to show on a terminal: unprintable characters as backslash escapes
    (`\\x1b`, `\\n`, `\\u202e`). Model output, tool output, session ids and what remote users
    wrote all pass through this before a person sees them. `keep_lines` keeps newlines and
    tabs as they are (a reply's layout)."""
    return (_UNPRINTABLE_IN_TEXT if keep_lines else _UNPRINTABLE).sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _squeeze(text: str, limit: int) -> str:
    text = printable(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_tool_call(call: ToolCall, limit: int = 160) -> str:
    """`⚙ system.run {"command": "ls"}`: what the agent is about to run."""
    return f"⚙ {call.name} {_squeeze(call.arguments, limit)}"


def describe_tool_result(call: ToolCall, result: ToolResult, limit: int = 120) -> str:
    """`  ✓ system.run: exit code: 0`: how it went, in the first line of its output."""
    mark = "✗" if result.is_error else "✓"
    stripped = result.output.strip()
    first_line = stripped.splitlines()[0] if stripped else ""
    # Errors often name their tool already ("screen.capture: no X display"): say it once.
    first_line = first_line.removeprefix(f"{call.name}: ")
    return f"  {mark} {call.name}: {_squeeze(first_line, limit)}"


APPROVAL_CHOICES = "[y]es / [n]o / [a]ll"


def describe_approval_question(call: ToolCall, limit: int = 2000) -> str:
    """`Allow system.run {"command": "ls"}? [y]es / [n]o / [a]ll`: the question under `ask`.

    The arguments are shown whole up to a generous limit: the user approves what they see."""
    return f"Allow {call.name} {_squeeze(call.arguments, limit)}? {APPROVAL_CHOICES}"
