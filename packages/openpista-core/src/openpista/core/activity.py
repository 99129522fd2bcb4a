"""One-line descriptions of tool activity, shared by every place that shows it to a person."""

from __future__ import annotations

from openpista.core.models import ToolCall, ToolResult


def _squeeze(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_tool_call(call: ToolCall, limit: int = 160) -> str:
    """`⚙ system.run {"command": "ls"}`: what the agent is about to run."""
    return f"⚙ {call.name} {_squeeze(call.arguments, limit)}"


def describe_tool_result(call: ToolCall, result: ToolResult, limit: int = 120) -> str:
    """`  ✓ system.run: exit code: 0`: how it went, in the first line of its output."""
    mark = "✗" if result.is_error else "✓"
    stripped = result.output.strip()
    first_line = stripped.splitlines()[0] if stripped else ""
    return f"  {mark} {call.name}: {_squeeze(first_line, limit)}"


APPROVAL_CHOICES = "[y]es / [n]o / [a]ll"


def describe_approval_question(call: ToolCall, limit: int = 2000) -> str:
    """`Allow system.run {"command": "ls"}? [y]es / [n]o / [a]ll`: the question under `ask`.

    The arguments are shown whole up to a generous limit: the user approves what they see."""
    return f"Allow {call.name} {_squeeze(call.arguments, limit)}? {APPROVAL_CHOICES}"
