"""`openpista session list | show | delete`: the stored conversations."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from openpista.cli.runtime import open_memory
from openpista.core.activity import printable
from openpista.core.config import Config, load_config
from openpista.core.errors import SessionNotFoundError
from openpista.core.media import MediaStore
from openpista.core.memory import MemoryStore
from openpista.core.models import (
    FilePart,
    ImagePart,
    Message,
    ProviderStatePart,
    Session,
    TextPart,
    part_to_dict,
)

T = TypeVar("T")


def _with_memory(config: Config, work: Callable[[MemoryStore], Awaitable[T]]) -> T:
    async def go() -> T:
        memory = await open_memory(config)
        try:
            return await work(memory)
        finally:
            await memory.aclose()

    return asyncio.run(go())


def _session_json(session: Session) -> dict[str, Any]:
    return {
        "id": session.id,
        "channel_id": session.channel_id,
        "created_at": session.created_at.isoformat(),
        "updated_at": session.updated_at.isoformat(),
        "message_count": session.message_count,
    }


def message_json(message: Message) -> dict[str, Any]:
    """A message as `session show --json` prints it: the contract's keys, then ours."""
    return {
        "role": message.role,
        "content": message.content,
        "tool_calls": [call.to_dict() for call in message.tool_calls],
        "tool_call_id": message.tool_call_id,
        "sender": message.sender,
        "parts": [part_to_dict(part) for part in message.parts],
        "input_tokens": message.input_tokens,
        "output_tokens": message.output_tokens,
    }


def _describe_part(part: ImagePart | FilePart | TextPart, media: MediaStore) -> str:
    """A picture, file or text part on a line of its own (provider state is only noted on
    the message's first line)."""
    if isinstance(part, TextPart):
        return part.text
    label = part.name or part.kind
    where = media.root / part.path
    return f"[{part.kind}: {printable(label)}, {part.mime_type}, {part.size} bytes: {where}]"


def list_sessions(config_path: Path | None, *, as_json: bool, limit: int | None = None) -> None:
    sessions = _with_memory(load_config(config_path), lambda memory: memory.list_sessions(limit))
    if as_json:
        sys.stdout.write(json.dumps([_session_json(s) for s in sessions]) + "\n")
        return
    if not sessions:
        sys.stdout.write('No sessions yet. Start one with: openpista run -e "hello"\n')
        return
    rows = [(printable(s.id), printable(s.channel_id), s) for s in sessions]
    width = max(len(session_id) for session_id, _, _ in rows)
    sys.stdout.write(f"{'SESSION':<{width}}  {'CHANNEL':<16}  {'UPDATED':<19}  MESSAGES\n")
    for session_id, channel_id, s in rows:
        updated = s.updated_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        sys.stdout.write(
            f"{session_id:<{width}}  {channel_id:<16}  {updated:<19}  {s.message_count}\n"
        )


def show_session(config_path: Path | None, session_id: str, *, as_json: bool) -> None:
    async def load(memory: MemoryStore) -> tuple[Session, list[Message]]:
        session = await memory.get_session(session_id)
        if session is None:
            raise SessionNotFoundError(f"no session {session_id!r}; see `openpista session list`")
        return session, await memory.load_messages(session_id)

    config = load_config(config_path)
    session, messages = _with_memory(config, load)
    if as_json:
        payload = {
            "id": session.id,
            "channel_id": session.channel_id,
            "messages": [message_json(m) for m in messages],
        }
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
        return
    title = f"session {printable(session.id)} ({printable(session.channel_id)})"
    sys.stdout.write(f"{title}, {len(messages)} messages\n\n")
    media = MediaStore.in_home(config.home)
    for message in messages:
        extras = "".join(
            f"{_describe_part(part, media)}\n"
            for part in message.parts
            if not isinstance(part, ProviderStatePart)
        )
        if message.role == "tool":
            sys.stdout.write(f"[tool result {message.tool_call_id}]\n{message.content}\n{extras}\n")
            continue
        # A model reply's token counts go on its first line: the header, else its first call.
        usage = ""
        if message.input_tokens is not None or message.output_tokens is not None:
            usage = " " + _tokens(message.input_tokens, message.output_tokens)
        # Reasoning or thinking kept for the provider: noted on the first line, so a tool
        # call that came with it stays one entry.
        for part in message.parts:
            if isinstance(part, ProviderStatePart):
                usage += f" [{printable(part.provider)} state]"
        if message.content or extras:
            who = f" {printable(message.sender)}" if message.sender else ""
            sys.stdout.write(f"[{message.role}{who}]{usage}\n{message.content}\n{extras}\n")
            usage = ""
        for call in message.tool_calls:
            line = f"[{message.role} → {call.name} {call.id}]{usage} {call.arguments}"
            sys.stdout.write(f"{line}\n\n")
            usage = ""
    replies = [m for m in messages if m.input_tokens is not None or m.output_tokens is not None]
    if replies:
        total_in = sum(m.input_tokens or 0 for m in replies)
        total_out = sum(m.output_tokens or 0 for m in replies)
        counted = f"{len(replies)} model repl{'y' if len(replies) == 1 else 'ies'}"
        sys.stdout.write(f"[total tokens: {total_in:,} in / {total_out:,} out, {counted}]\n")


def _tokens(input_tokens: int | None, output_tokens: int | None) -> str:
    """`[tokens: 1,234 in / 56 out]`; a count the provider did not report shows as ?."""

    def count(value: int | None) -> str:
        return "?" if value is None else f"{value:,}"

    return f"[tokens: {count(input_tokens)} in / {count(output_tokens)} out]"


def delete_session(config_path: Path | None, session_id: str) -> None:
    deleted = _with_memory(
        load_config(config_path), lambda memory: memory.delete_session(session_id)
    )
    if not deleted:
        raise SessionNotFoundError(f"no session {session_id!r}; see `openpista session list`")
    sys.stdout.write(f"Deleted session {printable(session_id)}.\n")
