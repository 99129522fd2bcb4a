"""The conversation memory interface. `openpista.core.store` implements it on SQLAlchemy;
`openpista.core.testing.InMemoryStore` in a dict. Both pass
packages/openpista-core/tests/test_memory_contract.py."""

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
        """The session's messages in order, exactly as stored (parts, sender and usage too);
        [] for an unknown session. Changing what is returned changes nothing stored."""
        ...

    async def record_tool_call(self, entry: AuditEntry) -> None:
        """Add one tool call to the audit trail, committed before this returns. The session
        need not exist: the trail outlives deleted sessions."""
        ...

    async def list_tool_calls(
        self, session_id: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        """Audit entries, newest first (by `at`; of equal times, the later recorded first);
        only `session_id`'s when given; at most `limit`."""
        ...

    async def save_summary(self, session_id: str, summary: Summary) -> None:
        """Keep the session's compaction summary (replacing an older one);
        SessionNotFoundError for an unknown session. Deleting the session deletes it."""
        ...

    async def load_summary(self, session_id: str) -> Summary | None:
        """The session's latest compaction summary, if one was made."""
        ...

    def lock_session(
        self, session_id: str, on_wait: LockWaitHandler | None = None
    ) -> AbstractAsyncContextManager[None]:
        """Hold the session for one turn: across processes sharing the database, one turn at a
        time. `on_wait` is awaited once if the lock is taken and the caller must wait.
        Released when the block is left, by an exception or a cancellation too. Not
        re-entrant: a task holding a session must not lock it again."""
        ...

    async def aclose(self) -> None: ...
