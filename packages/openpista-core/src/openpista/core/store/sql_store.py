"""SqlMemoryStore: the MemoryStore on SQLAlchemy Core (async), and open_store to get one."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import uuid
from collections.abc import AsyncGenerator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, InvalidRequestError, NoSuchModuleError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from openpista.core.errors import OpenpistaError, SessionNotFoundError
from openpista.core.memory import LockWaitHandler
from openpista.core.models import (
    AuditEntry,
    Message,
    Part,
    Role,
    Session,
    Summary,
    ToolCall,
    part_from_dict,
    part_to_dict,
)
from openpista.core.store.engine import create_store_engine, ensure_wal, write_engine
from openpista.core.store.location import WHAT_TO_DO, DatabaseLocation, resolve_location
from openpista.core.store.migrate import SchemaTooNewError, migrate_to_head
from openpista.core.store.session_locks import SessionLocks, cross_process_locks
from openpista.core.store.tables import messages as messages_table
from openpista.core.store.tables import sessions as sessions_table
from openpista.core.store.tables import summaries as summaries_table
from openpista.core.store.tables import tool_calls_audit as audit_table


async def open_store(url: str) -> SqlMemoryStore:
    """Open the conversation database at `url` (a path or an async URL), migrating it if needed.

    Raises OpenpistaError, naming the database (password masked), when it cannot be opened.
    """
    location = resolve_location(url)
    if location.sqlite_file is not None:
        _prepare_sqlite_file(location.sqlite_file, location.display)
    engine = _create_engine(location)
    try:
        if location.sqlite_file is not None:
            await ensure_wal(engine)
        await migrate_to_head(engine)
    except SchemaTooNewError as exc:
        await engine.dispose()
        raise OpenpistaError(
            f"cannot open the conversation database {location.display}: {exc}; upgrade "
            f"openpista, or {WHAT_TO_DO}"
        ) from exc
    except BaseException as exc:
        await engine.dispose()
        if isinstance(exc, DBAPIError | OSError | sqlite3.Error) or _is_alembic_error(exc):
            raise _open_failure(location, exc) from exc
        raise
    return SqlMemoryStore(engine, location)


class SqlMemoryStore:
    """Conversations kept in a SQL database: SQLite by default, or any SQLAlchemy async URL.

    Build it with open_store(), which also brings the schema up to date. Besides sessions and
    their messages it keeps the tool-call audit trail and compaction summaries, and hands out
    session locks that hold across processes (see session_locks).
    """

    def __init__(self, engine: AsyncEngine, location: DatabaseLocation) -> None:
        self._engine = engine
        self._writer = write_engine(engine)
        self._location = location
        self._last_timestamp = datetime.min.replace(tzinfo=UTC)
        self._locks = SessionLocks(
            cross_process_locks(location.url, location.sqlite_file, location.display)
        )

    @property
    def display_name(self) -> str:
        """The database's file path, or its URL with the password masked."""
        return self._location.display

    async def create_session(self, channel_id: str, session_id: str | None = None) -> Session:
        """Create a session (a new uuid4 id unless `session_id` is given).

        Raises OpenpistaError when a session with that id already exists.
        """
        new_id = str(uuid.uuid4()) if session_id is None else session_id
        now = self._now()
        async with self._transaction("creating a session", write=True) as connection:
            try:
                await connection.execute(
                    insert(sessions_table).values(
                        id=new_id, channel_id=channel_id, created_at=now, updated_at=now
                    )
                )
            except IntegrityError as exc:
                raise OpenpistaError(
                    f"a session with id {new_id!r} already exists in {self.display_name}; "
                    "continue it, or choose another id"
                ) from exc
        return Session(id=new_id, channel_id=channel_id, created_at=now, updated_at=now)

    async def get_session(self, session_id: str) -> Session | None:
        query = _select_sessions().where(sessions_table.c.id == session_id)
        async with self._transaction("reading a session") as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else _session_from_row(row)

    async def latest_session_for_channel(self, channel_id: str) -> Session | None:
        """The most recently updated session of a channel, if any."""
        query = (
            _select_sessions()
            .where(sessions_table.c.channel_id == channel_id)
            .order_by(sessions_table.c.updated_at.desc(), sessions_table.c.created_at.desc())
            .limit(1)
        )
        async with self._transaction("finding the channel's session") as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else _session_from_row(row)

    async def touch_session(self, session_id: str) -> None:
        """Mark the session as updated now; SessionNotFoundError when there is none."""
        async with self._transaction("updating a session", write=True) as connection:
            await self._touch(connection, session_id)

    async def list_sessions(self, limit: int | None = None) -> list[Session]:
        """Sessions, most recently updated first, each with its message count."""
        query = _select_sessions().order_by(
            sessions_table.c.updated_at.desc(),
            sessions_table.c.created_at.desc(),
            sessions_table.c.id,
        )
        if limit is not None:
            query = query.limit(max(limit, 0))
        async with self._transaction("listing sessions") as connection:
            rows = (await connection.execute(query)).all()
        return [_session_from_row(row) for row in rows]

    async def delete_session(self, session_id: str) -> bool:
        """Delete a session, its messages and its summary; False when there was none.

        Its tool calls stay in the audit trail.
        """
        async with self._transaction("deleting a session", write=True) as connection:
            # Explicitly, not only by ON DELETE CASCADE: foreign keys may not be enforced.
            await connection.execute(
                delete(messages_table).where(messages_table.c.session_id == session_id)
            )
            await connection.execute(
                delete(summaries_table).where(summaries_table.c.session_id == session_id)
            )
            result = await connection.execute(
                delete(sessions_table).where(sessions_table.c.id == session_id)
            )
        return result.rowcount > 0

    async def append_messages(self, session_id: str, messages: Sequence[Message]) -> None:
        """Store messages at the end of the session and mark it updated, in one transaction.

        Committed before this returns. SessionNotFoundError when the session does not exist.
        """
        async with self._transaction("saving messages", write=True) as connection:
            # Touch first: on a server database that locks the session's row, so concurrent
            # appends to one session queue up here and each reads the true last position.
            now = await self._touch(connection, session_id)
            if not messages:
                return
            last = (
                await connection.execute(
                    select(func.max(messages_table.c.position)).where(
                        messages_table.c.session_id == session_id
                    )
                )
            ).scalar()
            first = 0 if last is None else int(last) + 1
            await connection.execute(
                insert(messages_table),
                [
                    {
                        "session_id": session_id,
                        "position": first + offset,
                        "role": message.role,
                        "content": message.content,
                        "tool_calls": _encode_tool_calls(message.tool_calls),
                        "tool_call_id": message.tool_call_id,
                        "created_at": now,
                        "parts": _encode_parts(message.parts),
                        "sender": message.sender,
                        "input_tokens": message.input_tokens,
                        "output_tokens": message.output_tokens,
                    }
                    for offset, message in enumerate(messages)
                ],
            )

    async def load_messages(self, session_id: str) -> list[Message]:
        """The session's messages in order, exactly as stored; [] for an unknown session."""
        query = (
            select(
                messages_table.c.role,
                messages_table.c.content,
                messages_table.c.tool_calls,
                messages_table.c.tool_call_id,
                messages_table.c.parts,
                messages_table.c.sender,
                messages_table.c.input_tokens,
                messages_table.c.output_tokens,
            )
            .where(messages_table.c.session_id == session_id)
            .order_by(messages_table.c.position)
        )
        async with self._transaction("loading messages") as connection:
            rows = (await connection.execute(query)).all()
        return [
            Message(
                role=cast(Role, row.role),
                content=row.content,
                tool_calls=_decode_tool_calls(row.tool_calls),
                tool_call_id=row.tool_call_id,
                parts=_decode_parts(row.parts),
                sender=row.sender,
                input_tokens=row.input_tokens,
                output_tokens=row.output_tokens,
            )
            for row in rows
        ]

    async def record_tool_call(self, entry: AuditEntry) -> None:
        """Add one tool call to the audit trail, committed before this returns.

        The session need not exist (any more): the audit trail outlives conversations.
        """
        async with self._transaction("recording a tool call", write=True) as connection:
            await connection.execute(
                insert(audit_table).values(
                    at=entry.at,
                    session_id=entry.session_id,
                    channel_id=entry.channel_id,
                    sender=entry.sender,
                    tool=entry.tool,
                    arguments=entry.arguments,
                    decision=entry.decision,
                    decided_by=entry.decided_by,
                    ok=entry.ok,
                    duration_ms=entry.duration_ms,
                    call_id=entry.call_id,
                    error=entry.error,
                )
            )

    async def list_tool_calls(
        self, session_id: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        """Audit entries, newest first (by `at`, then the order they were recorded in);
        only `session_id`'s when given; at most `limit` of them."""
        query = select(audit_table).order_by(audit_table.c.at.desc(), audit_table.c.id.desc())
        if session_id is not None:
            query = query.where(audit_table.c.session_id == session_id)
        if limit is not None:
            query = query.limit(max(limit, 0))
        async with self._transaction("reading the audit trail") as connection:
            rows = (await connection.execute(query)).all()
        return [
            AuditEntry(
                at=row.at,
                session_id=row.session_id,
                channel_id=row.channel_id,
                sender=row.sender,
                tool=row.tool,
                arguments=row.arguments,
                decision=row.decision,
                decided_by=row.decided_by,
                ok=bool(row.ok),
                duration_ms=float(row.duration_ms),
                call_id=row.call_id,
                error=row.error,
            )
            for row in rows
        ]

    async def save_summary(self, session_id: str, summary: Summary) -> None:
        """Keep the session's compaction summary, replacing an older one.

        SessionNotFoundError when the session does not exist.
        """
        async with self._transaction("saving a summary", write=True) as connection:
            found = (
                await connection.execute(
                    select(sessions_table.c.id).where(sessions_table.c.id == session_id)
                )
            ).first()
            if found is None:
                raise self._not_found(session_id)
            await connection.execute(
                delete(summaries_table).where(summaries_table.c.session_id == session_id)
            )
            await connection.execute(
                insert(summaries_table).values(
                    session_id=session_id,
                    covers=summary.covers,
                    text=summary.text,
                    created_at=summary.created_at,
                )
            )

    async def load_summary(self, session_id: str) -> Summary | None:
        """The session's latest compaction summary; None if none was made (or no session)."""
        query = select(summaries_table).where(summaries_table.c.session_id == session_id)
        async with self._transaction("loading a summary") as connection:
            row = (await connection.execute(query)).first()
        if row is None:
            return None
        return Summary(covers=int(row.covers), text=row.text, created_at=row.created_at)

    def lock_session(
        self, session_id: str, on_wait: LockWaitHandler | None = None
    ) -> AbstractAsyncContextManager[None]:
        """Hold the session for one turn, against this process's other tasks and against
        other processes on the same database; `on_wait` is awaited once if it must wait.

        SQLite: an flock on `<db>.locks/<hash>.lock`; PostgreSQL: pg_advisory_lock on a
        connection of its own; other databases: this process only (a warning says so).
        Released when the block is left, also by an exception or a cancellation. Not
        re-entrant: a task holding a session must not lock it again.
        """
        return self._locks.hold(session_id, on_wait)

    async def aclose(self) -> None:
        """Close every pooled connection. Safe to call more than once."""
        await self._locks.aclose()
        await self._engine.dispose()

    async def __aenter__(self) -> SqlMemoryStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _touch(self, connection: AsyncConnection, session_id: str) -> datetime:
        now = self._now()
        result = await connection.execute(
            update(sessions_table).where(sessions_table.c.id == session_id).values(updated_at=now)
        )
        if result.rowcount == 0:
            raise self._not_found(session_id)
        return now

    def _not_found(self, session_id: str) -> SessionNotFoundError:
        return SessionNotFoundError(
            f"no session {session_id!r} in {self.display_name}; "
            "create it first, or list the sessions with `openpista session list`"
        )

    def _now(self) -> datetime:
        # Strictly increasing within this store, so "most recently updated" never ties and
        # never goes backwards when the clock is adjusted.
        now = datetime.now(UTC)
        if now <= self._last_timestamp:
            now = self._last_timestamp + timedelta(microseconds=1)
        self._last_timestamp = now
        return now

    @asynccontextmanager
    async def _transaction(
        self, action: str, *, write: bool = False
    ) -> AsyncGenerator[AsyncConnection, None]:
        """A connection in a transaction, committed on success; database errors become
        OpenpistaError saying what was being done."""
        try:
            async with (self._writer if write else self._engine).begin() as connection:
                yield connection
        except DBAPIError as exc:
            detail = self._location.scrub(_one_line(exc.orig))
            raise OpenpistaError(
                f"the conversation database {self.display_name} failed while {action}: "
                f"{detail}; check that it is reachable and not full, then retry"
            ) from exc


def _select_sessions() -> Select[str, str, datetime, datetime, int]:
    message_count = (
        select(func.count())
        .where(messages_table.c.session_id == sessions_table.c.id)
        .correlate(sessions_table)
        .scalar_subquery()
    )
    return select(
        sessions_table.c.id,
        sessions_table.c.channel_id,
        sessions_table.c.created_at,
        sessions_table.c.updated_at,
        message_count.label("message_count"),
    )


def _session_from_row(row: Any) -> Session:
    return Session(
        id=row.id,
        channel_id=row.channel_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        message_count=int(row.message_count),
    )


def _encode_tool_calls(tool_calls: Sequence[ToolCall]) -> str | None:
    if not tool_calls:
        return None
    # ensure_ascii (the default) keeps even lone surrogates representable, so any str
    # the model produced comes back identical.
    return json.dumps([call.to_dict() for call in tool_calls])


def _decode_tool_calls(stored: str | None) -> list[ToolCall]:
    if not stored:
        return []
    return [ToolCall.from_dict(item) for item in json.loads(stored)]


def _encode_parts(parts: Sequence[Part]) -> str | None:
    if not parts:
        return None
    # ensure_ascii, as for tool calls: lone surrogates survive the round trip.
    return json.dumps([part_to_dict(part) for part in parts])


def _decode_parts(stored: str | None) -> list[Part]:
    # NULL in every row written before revision 0002.
    if not stored:
        return []
    return [part_from_dict(item) for item in json.loads(stored)]


def _prepare_sqlite_file(path: Path, display: str) -> None:
    """Create the file's folder, and catch what would make SQLite fail to open it.

    Caught here rather than left to the driver: aiosqlite, failing to open a file, leaves its
    worker thread to report back to the event loop later, which may be closed by then.
    """
    folder = path.parent
    try:
        # Conversations hold whatever the owner told the agent: private to the owner.
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        # mkdir says "File exists" when the folder's name is taken by a file: say that.
        problem = "a file is in the way" if folder.exists() else exc.strerror or str(exc)
        raise OpenpistaError(
            f"cannot create the folder {folder} for the conversation database {display}: "
            f"{problem}; choose a writable location: {WHAT_TO_DO}"
        ) from exc
    if path.is_dir():
        problem = "it is a folder, not a database file"
    elif not path.exists() and not os.access(folder, os.W_OK | os.X_OK):
        problem = f"its folder {folder} is not writable"
    else:
        if not path.exists():
            # SQLite gives its -wal and -shm files the database file's mode: start at 0600.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        # A database made by an older version or copied in may be readable by others: no more.
        for private in (path, *(path.with_name(path.name + end) for end in ("-wal", "-shm"))):
            with contextlib.suppress(OSError):
                if private.stat().st_mode & 0o077:
                    private.chmod(0o600)
        return
    raise OpenpistaError(
        f"cannot open the conversation database {display}: {problem}; {WHAT_TO_DO}"
    )


def _create_engine(location: DatabaseLocation) -> AsyncEngine:
    try:
        return create_store_engine(location.url)
    except NoSuchModuleError as exc:
        raise OpenpistaError(
            f"cannot open the conversation database {location.display}: unknown database "
            f"kind {location.url.drivername!r}; {WHAT_TO_DO}"
        ) from exc
    except ModuleNotFoundError as exc:
        driver = (exc.name or location.url.get_driver_name()).split(".")[0]
        raise OpenpistaError(
            f"cannot open the conversation database {location.display}: its driver {driver!r} "
            f"is not installed; install it (pip install {driver}) or use a SQLite path"
        ) from exc
    except InvalidRequestError as exc:
        # A synchronous driver (postgresql:// means psycopg2) cannot serve the async engine.
        raise OpenpistaError(
            f"cannot open the conversation database {location.display}: "
            f"{location.url.get_driver_name()!r} is not an async driver; name one in the URL, "
            f"e.g. postgresql+asyncpg:// or mysql+aiomysql://"
        ) from exc


def _open_failure(location: DatabaseLocation, exc: BaseException) -> OpenpistaError:
    detail = _one_line(exc.orig if isinstance(exc, DBAPIError) else exc)
    what = (
        "check that its folder is writable and the file is an openpista database"
        if location.sqlite_file is not None
        else "check that the server is running and reachable and the credentials are right"
    )
    return OpenpistaError(
        f"cannot open the conversation database {location.display}: "
        f"{location.scrub(detail)}; {what}, or {WHAT_TO_DO}"
    )


def _is_alembic_error(exc: BaseException) -> bool:
    # Alembic is imported only when migrations ran, so recognise its errors without importing it.
    return type(exc).__module__.startswith("alembic.")


def _one_line(exc: BaseException | None) -> str:
    text = str(exc) if exc is not None else ""
    return " ".join(text.split()) or type(exc).__name__
