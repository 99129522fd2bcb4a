"""The conversation memory interface. `openpista.core.store` implements it on SQLAlchemy."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

from openpista.core.models import AuditEntry, Message, Session, Summary

LockWaitHandler = Callable[[], Awaitable[None]]
"""Called once when a session lock is held by someone else and the caller starts waiting."""


@runtime_checkable
class MemoryStore(Protocol):
    async def create_session(self, channel_id: str, session_id: str | None = None) -> Session:
        """Create a session (a new random id unless `session_id` is given)."""
        ...

    async def get_session(self, session_id: str) -> Session | None: ...

    async def latest_session_for_channel(self, channel_id: str) -> Session | None:
        """The most recently updated session of a channel, if any."""
        ...

    async def touch_session(self, session_id: str) -> None:
        """Mark the session as updated now."""
        ...

    async def list_sessions(self, limit: int | None = None) -> list[Session]:
        """Sessions, most recently updated first."""
        ...

    async def delete_session(self, session_id: str) -> bool:
        """Delete a session and its messages; False when there was none."""
        ...

    async def append_messages(self, session_id: str, messages: Sequence[Message]) -> None:
        """Store messages at the end of the session, committed before this returns."""
        ...

    async def load_messages(self, session_id: str) -> list[Message]:
        """The session's messages in order, exactly as stored."""
        ...

    async def record_tool_call(self, entry: AuditEntry) -> None:
        """Add one tool call to the audit trail, committed before this returns."""
        ...

    async def list_tool_calls(
        self, session_id: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        """Audit entries, newest first; only `session_id`'s when given."""
        ...

    async def save_summary(self, session_id: str, summary: Summary) -> None:
        """Keep the session's compaction summary (replacing an older one)."""
        ...

    async def load_summary(self, session_id: str) -> Summary | None:
        """The session's latest compaction summary, if one was made."""
        ...

    def lock_session(
        self, session_id: str, on_wait: LockWaitHandler | None = None
    ) -> AbstractAsyncContextManager[None]:
        """Hold the session for one turn: across processes sharing the database, one turn at a
        time. `on_wait` is awaited once if the lock is taken and the caller must wait."""
        ...

    async def aclose(self) -> None: ...
