"""`openpista audit`: every tool call the agent made or was refused, newest first."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC
from pathlib import Path
from typing import Any

from openpista.cli.runtime import open_memory
from openpista.core.activity import printable
from openpista.core.config import load_config
from openpista.core.models import AuditEntry

DEFAULT_LIMIT = 50
ARGUMENTS_WIDTH = 80


def show_audit(
    config_path: Path | None, *, session_id: str | None, limit: int, as_json: bool
) -> None:
    """Print the audit trail (at most `limit` calls, only `session_id`'s when given)."""

    async def load() -> list[AuditEntry]:
        memory = await open_memory(load_config(config_path))
        try:
            return await memory.list_tool_calls(session_id=session_id, limit=limit)
        finally:
            await memory.aclose()

    entries = asyncio.run(load())
    if as_json:
        sys.stdout.write(json.dumps([entry_json(entry) for entry in entries]) + "\n")
        return
    if not entries:
        where = f" for session {printable(session_id)}" if session_id is not None else ""
        sys.stdout.write(f"No tool calls recorded{where}.\n")
        return
    for entry in entries:
        sys.stdout.write(entry_line(entry) + "\n")


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    """One entry for `--json`: `arguments` is the parsed object when the model wrote valid JSON
    for one, else the text exactly as written."""
    return {
        "at": entry.at.astimezone(UTC).isoformat(),
        "session_id": entry.session_id,
        "channel_id": entry.channel_id,
        "sender": entry.sender,
        "tool": entry.tool,
        "arguments": _parsed_arguments(entry.arguments),
        "decision": entry.decision,
        "decided_by": entry.decided_by,
        "ok": entry.ok,
        "duration_ms": entry.duration_ms,
        "call_id": entry.call_id,
        "error": entry.error,
    }


def entry_line(entry: AuditEntry) -> str:
    """One entry as a line: local time, session, channel, sender, tool, decision, outcome,
    duration, the arguments squeezed, and the error of a failed call."""
    decision = entry.decision
    if entry.decided_by != "policy":
        decision += f" by {entry.decided_by}"
    fields = [
        entry.at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
        entry.session_id,
        entry.channel_id,
        entry.sender or "-",
        entry.tool,
        decision,
        "ok" if entry.ok else "failed",
        format_duration(entry.duration_ms),
    ]
    line = "  ".join(printable(field) for field in fields)
    line += "  " + squeeze(entry.arguments, ARGUMENTS_WIDTH)
    if entry.error:
        line += "  error: " + squeeze(entry.error, ARGUMENTS_WIDTH)
    return line


def format_duration(duration_ms: float) -> str:
    if duration_ms < 1000:
        return f"{duration_ms:.0f}ms"
    if duration_ms < 60_000:
        return f"{duration_ms / 1000:.1f}s"
    minutes, seconds = divmod(round(duration_ms / 1000), 60)
    return f"{minutes}m{seconds:02d}s"


def squeeze(text: str, width: int) -> str:
    """`text` on one line: whitespace runs made one space, control characters escaped, and
    cut to `width` characters with an ellipsis."""
    shown = printable(" ".join(text.split()))
    return shown if len(shown) <= width else shown[: width - 1] + "…"


def _parsed_arguments(arguments: str) -> Any:
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return arguments
    return parsed if isinstance(parsed, dict) else arguments
