"""The conversation memory interface. `openpista.core.store` implements it on SQLAlchemy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from openpista.core.models import Message, Session


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

    async def aclose(self) -> None: ...
