"""The conversation store's schema as SQLAlchemy Core tables: sessions, their messages and
summaries, and the audit trail of tool calls.

This is the schema the code queries; `migrations/` builds it in the database. A change here
needs a new migration (a test compares the two).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no time zone, so values are stored as naive UTC and given UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Named constraints let future SQLite migrations (batch mode) find and alter them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Text, primary_key=True),
    Column("channel_id", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # latest_session_for_channel: one channel's sessions, newest first.
    Index(None, "channel_id", "updated_at"),
    # list_sessions: every session, newest first.
    Index(None, "updated_at"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "session_id",
        Text,
        ForeignKey("sessions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # 0, 1, 2... within a session: the conversation's order.
    Column("position", Integer, nullable=False),
    Column("role", Text, nullable=False),
    Column("content", Text, nullable=False),
    # JSON list of {"id", "name", "arguments"}; NULL when the message calls no tool.
    Column("tool_calls", Text, nullable=True),
    Column("tool_call_id", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    # Since revision 0002; NULL in every row written before it, and whenever unused.
    # JSON list of part_to_dict(...) objects; media parts hold paths, never the bytes.
    Column("parts", Text, nullable=True),
    Column("sender", Text, nullable=True),
    Column("input_tokens", Integer, nullable=True),
    Column("output_tokens", Integer, nullable=True),
    # Also the index behind loading a session in order and counting its messages.
    UniqueConstraint("session_id", "position"),
    # Ids are never reused, even after the newest messages are deleted.
    sqlite_autoincrement=True,
)

# One row per tool call, newest last. No foreign key to sessions: the trail of what the agent
# ran outlives the conversation that asked for it (deleting a session keeps its audit rows).
tool_calls_audit = Table(
    "tool_calls_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("session_id", Text, nullable=False),
    Column("channel_id", Text, nullable=False),
    Column("sender", Text, nullable=True),
    Column("tool", Text, nullable=False),
    # The arguments as JSON text, exactly as the model wrote them (not always valid JSON).
    Column("arguments", Text, nullable=False),
    Column("decision", Text, nullable=False),
    Column("decided_by", Text, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("call_id", Text, nullable=False),
    Column("error", Text, nullable=True),
    # list_tool_calls: newest first, overall and per session (ties broken by id, which SQLite
    # keeps in every index entry).
    Index(None, "at"),
    Index(None, "session_id", "at"),
    sqlite_autoincrement=True,
)

# A session's compaction summary: one per session, a newer one replaces it.
summaries = Table(
    "summaries",
    metadata,
    Column(
        "session_id",
        Text,
        ForeignKey("sessions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # The summary stands for the session's first `covers` messages.
    Column("covers", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)
