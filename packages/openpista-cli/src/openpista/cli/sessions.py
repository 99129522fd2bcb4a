"""`openpista session list | show | delete`: the stored conversations."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from openpista.cli.runtime import open_memory
from openpista.core.config import load_config
from openpista.core.errors import SessionNotFoundError
from openpista.core.memory import MemoryStore
from openpista.core.models import Message, Session

T = TypeVar("T")


def _with_memory(config_path: Path | None, work: Callable[[MemoryStore], Awaitable[T]]) -> T:
    async def go() -> T:
        memory = await open_memory(load_config(config_path))
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
    return {
        "role": message.role,
        "content": message.content,
        "tool_calls": [call.to_dict() for call in message.tool_calls],
        "tool_call_id": message.tool_call_id,
    }


def list_sessions(config_path: Path | None, *, as_json: bool) -> None:
    sessions = _with_memory(config_path, lambda memory: memory.list_sessions())
    if as_json:
        sys.stdout.write(json.dumps([_session_json(s) for s in sessions]) + "\n")
        return
    if not sessions:
        sys.stdout.write('No sessions yet. Start one with: openpista run -e "hello"\n')
        return
    width = max(len(s.id) for s in sessions)
    sys.stdout.write(f"{'SESSION':<{width}}  {'CHANNEL':<16}  {'UPDATED':<19}  MESSAGES\n")
    for s in sessions:
        updated = s.updated_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        sys.stdout.write(f"{s.id:<{width}}  {s.channel_id:<16}  {updated:<19}  {s.message_count}\n")


def show_session(config_path: Path | None, session_id: str, *, as_json: bool) -> None:
    async def load(memory: MemoryStore) -> tuple[Session, list[Message]]:
        session = await memory.get_session(session_id)
        if session is None:
            raise SessionNotFoundError(f"no session {session_id!r}; see `openpista session list`")
        return session, await memory.load_messages(session_id)

    session, messages = _with_memory(config_path, load)
    if as_json:
        payload = {
            "id": session.id,
            "channel_id": session.channel_id,
            "messages": [message_json(m) for m in messages],
        }
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
        return
    sys.stdout.write(f"session {session.id} ({session.channel_id}), {len(messages)} messages\n\n")
    for message in messages:
        if message.role == "tool":
            sys.stdout.write(f"[tool result {message.tool_call_id}]\n{message.content}\n\n")
            continue
        if message.content:
            sys.stdout.write(f"[{message.role}]\n{message.content}\n\n")
        for call in message.tool_calls:
            sys.stdout.write(f"[{message.role} → {call.name} {call.id}] {call.arguments}\n\n")


def delete_session(config_path: Path | None, session_id: str) -> None:
    deleted = _with_memory(config_path, lambda memory: memory.delete_session(session_id))
    if not deleted:
        raise SessionNotFoundError(f"no session {session_id!r}; see `openpista session list`")
    sys.stdout.write(f"Deleted session {session_id}.\n")
