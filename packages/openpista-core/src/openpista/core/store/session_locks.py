"""Session locks: one turn per session at a time, across every process sharing the database.

Two layers. Tasks of one process queue on an asyncio.Lock per session (cheap, no polling).
The task at the front then takes the cross-process lock, which depends on the database:

- a SQLite file: `fcntl.flock` on a lock file beside it, `<db>.locks/<sha256(id)[:32]>.lock`
  (folder 0700, files 0600). The kernel drops the lock when its holder exits or dies, so a
  crashed process never leaves a session locked.
- PostgreSQL: `pg_advisory_lock(key)` on a dedicated connection held for the turn, the key a
  64-bit integer from the SHA-256 of the session id. The server drops it when that
  connection closes, so a crashed process never leaves a session locked either.
- anything else (another server database, SQLite in memory): the in-process lock alone,
  which serializes the turns of this process only.

The locks are not re-entrant: a task holding a session must not ask for it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import AsyncGenerator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from openpista.core.errors import OpenpistaError
from openpista.core.memory import LockWaitHandler

if TYPE_CHECKING:
    from sqlalchemy.engine import URL
    from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.05
"""How often a waiting process tries a taken lock file again."""


class CrossProcessLocks(Protocol):
    """The part of a session lock that other processes respect."""

    def hold(
        self, session_id: str, on_wait: LockWaitHandler | None
    ) -> AbstractAsyncContextManager[None]:
        """Hold the session's lock; `on_wait` is awaited once if it is taken."""
        ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class _LocalLock:
    lock: asyncio.Lock
    users: int = 0
    """Tasks holding or waiting for it: the entry goes when the last one leaves."""


class SessionLocks:
    """Hands out session locks: in-process queueing first, then the cross-process lock."""

    def __init__(self, cross_process: CrossProcessLocks | None) -> None:
        self._cross_process = cross_process
        self._local: dict[str, _LocalLock] = {}

    @contextlib.asynccontextmanager
    async def hold(
        self, session_id: str, on_wait: LockWaitHandler | None = None
    ) -> AsyncGenerator[None]:
        local = self._local.setdefault(session_id, _LocalLock(asyncio.Lock()))
        local.users += 1
        try:
            if local.users > 1 and on_wait is not None:  # another task holds it or waits
                await on_wait()
                on_wait = None  # awaited once, whichever layer made us wait
            async with local.lock:
                if self._cross_process is None:
                    yield
                else:
                    async with self._cross_process.hold(session_id, on_wait):
                        yield
        finally:
            local.users -= 1
            if local.users == 0:
                del self._local[session_id]

    async def aclose(self) -> None:
        if self._cross_process is not None:
            await self._cross_process.aclose()


def lock_file_name(session_id: str) -> str:
    """The lock file's name for a session: safe for any id, whatever characters it holds."""
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()[:32] + ".lock"


def advisory_lock_key(session_id: str) -> int:
    """The PostgreSQL advisory lock key for a session: a signed 64-bit integer (bigint)."""
    digest = hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class FileLocks:
    """Cross-process session locks as `flock`ed files in a folder beside a SQLite database."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def beside(cls, database: Path) -> FileLocks:
        return cls(database.with_name(database.name + ".locks"))

    @contextlib.asynccontextmanager
    async def hold(self, session_id: str, on_wait: LockWaitHandler | None) -> AsyncGenerator[None]:
        import fcntl

        fd = self._open(session_id)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    pass
                if on_wait is not None:
                    await on_wait()
                    on_wait = None
                # Polling keeps the event loop free and a cancelled waiter leaves at once.
                await asyncio.sleep(POLL_INTERVAL_S)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            # The file stays: removing it could let two processes lock two different files.
            os.close(fd)

    def _open(self, session_id: str) -> int:
        path = self.folder / lock_file_name(session_id)
        try:
            self.folder.mkdir(mode=0o700, exist_ok=True)
            return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise OpenpistaError(
                f"cannot open the session lock file {path}: {exc.strerror or exc}; make sure "
                f"the folder {self.folder} beside the database is writable by this user"
            ) from exc

    async def aclose(self) -> None:
        pass


class PostgresAdvisoryLocks:
    """Cross-process session locks as PostgreSQL session-level advisory locks.

    Each held lock has a connection of its own, opened for the turn and closed after it, so
    it never takes a connection from the store's pool and closing it always releases the
    lock, even when unlocking was cut short by a cancellation.
    """

    def __init__(self, url: URL) -> None:
        self._url = url
        self._engine: AsyncEngine | None = None

    @contextlib.asynccontextmanager
    async def hold(self, session_id: str, on_wait: LockWaitHandler | None) -> AsyncGenerator[None]:
        from sqlalchemy import text

        key = {"key": advisory_lock_key(session_id)}
        async with self._lock_engine().connect() as connection:
            got = (
                await connection.execute(text("SELECT pg_try_advisory_lock(:key)"), key)
            ).scalar()
            if not got:
                if on_wait is not None:
                    await on_wait()
                await connection.execute(text("SELECT pg_advisory_lock(:key)"), key)
            try:
                yield
            finally:
                await connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)

    def _lock_engine(self) -> AsyncEngine:
        if self._engine is None:
            from sqlalchemy.ext.asyncio import create_async_engine
            from sqlalchemy.pool import NullPool

            # NullPool: every lock gets a fresh connection, closed (and unlocked) after use.
            self._engine = create_async_engine(
                self._url, poolclass=NullPool, isolation_level="AUTOCOMMIT"
            )
        return self._engine

    async def aclose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()


def cross_process_locks(
    url: URL, sqlite_file: Path | None, display: str
) -> CrossProcessLocks | None:
    """The cross-process lock for a database, or None when only in-process locking is possible."""
    if sqlite_file is not None:
        return FileLocks.beside(sqlite_file)
    backend = url.get_backend_name()
    if backend == "postgresql":
        return PostgresAdvisoryLocks(url)
    if backend != "sqlite":
        logger.warning(
            "session locks for %s hold within this process only: openpista knows no "
            "cross-process lock for %s databases, so two processes could run turns of one "
            "session at once; use SQLite or PostgreSQL to prevent that",
            display,
            backend,
        )
    return None
