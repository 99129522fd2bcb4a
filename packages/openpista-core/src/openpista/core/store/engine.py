"""The async SQLAlchemy engine for the conversation store, with SQLite set up for a shared file.

SQLite connections run in WAL mode (readers never block the writer), enforce foreign keys,
wait on a busy database instead of failing at once, and let SQLAlchemy emit BEGIN itself so
that writes can take the write lock up front (`BEGIN IMMEDIATE`): two writers that both read
first and then write would otherwise fail with "database is locked" rather than wait.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from openpista.core.store.location import MEMORY_DATABASE

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

# How long a SQLite connection waits for another writer (this process or another) to finish.
BUSY_TIMEOUT_MS = 10_000

# Execution option carried by the write engine: its transactions begin with BEGIN IMMEDIATE.
_WRITE_OPTION = "openpista_write"


def create_store_engine(url: URL) -> AsyncEngine:
    """An async engine for `url`; SQLite gets WAL, foreign keys, a busy timeout, BEGIN control."""
    if url.get_backend_name() != "sqlite":
        # Long-lived daemons outlive server-side idle timeouts: test connections before use.
        return create_async_engine(url, pool_pre_ping=True)
    if url.database == MEMORY_DATABASE:
        # Every connection to :memory: is a new, empty database, so keep exactly one and let
        # tasks take turns with it (the default StaticPool would share it between transactions).
        engine = create_async_engine(
            url, poolclass=AsyncAdaptedQueuePool, pool_size=1, max_overflow=0
        )
    else:
        engine = create_async_engine(url)
    event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
    event.listen(engine.sync_engine, "begin", _begin_sqlite_transaction)
    return engine


def write_engine(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (and pool) whose transactions take the SQLite write lock when they begin."""
    return engine.execution_options(**{_WRITE_OPTION: True})


def _configure_sqlite_connection(dbapi_connection: Any, _connection_record: Any) -> None:
    # Stop the driver from emitting its own BEGIN (it would skip it before DDL and could not
    # be told to take the write lock); _begin_sqlite_transaction emits it instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
        except Exception as exc:
            # Switching a file to WAL fails at once, without waiting, while another connection
            # is mid-way through the same switch; ensure_wal retries it, and the mode stays.
            if not _is_busy(exc):
                raise
    finally:
        cursor.close()


async def ensure_wal(engine: AsyncEngine) -> str:
    """Put a SQLite file in WAL mode, waiting out other connections; the resulting mode.

    WAL is a property of the file, so once set it holds for every later connection.
    A file system without WAL support leaves the file in its old mode: the store still works.
    """
    delay_s, deadline = 0.005, asyncio.get_running_loop().time() + BUSY_TIMEOUT_MS / 1000
    async with engine.connect() as connection:
        # The driver connection itself, so that the pragma runs outside any transaction.
        raw = await connection.get_raw_connection()
        driver_connection: Any = raw.driver_connection
        while True:
            try:
                cursor = await driver_connection.execute("PRAGMA journal_mode = WAL")
                row = await cursor.fetchone()
                await cursor.close()
                return str(row[0]).lower()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or asyncio.get_running_loop().time() > deadline:
                    raise
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, 0.2)


def _is_busy(exc: BaseException) -> bool:
    # SQLAlchemy's adapter raises sqlite3's own exceptions inside the connect event.
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(exc)


def _begin_sqlite_transaction(connection: Connection) -> None:
    write = connection.get_execution_options().get(_WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
