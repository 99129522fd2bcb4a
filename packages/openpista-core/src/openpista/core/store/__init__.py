"""Conversation memory in a SQL database (SQLite by default), with Alembic migrations.

`await open_store(url)` gives a SqlMemoryStore, which implements openpista.core.memory's
MemoryStore. Importing this package is cheap: SQLAlchemy is loaded when a store is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openpista.core.store.migrate import HEAD_REVISION

if TYPE_CHECKING:
    from openpista.core.store.sql_store import SqlMemoryStore

__all__ = ["HEAD_REVISION", "SqlMemoryStore", "open_store"]


async def open_store(url: str) -> SqlMemoryStore:
    """Open the conversation database at `url` (a path or an async URL), migrating it if needed.

    A plain path, `~/...` or `sqlite:///...` is a SQLite file (its folder is created); any
    other URL is handed to SQLAlchemy's async engine, e.g. `postgresql+asyncpg://...`.
    Raises OpenpistaError, naming the database (password masked), when it cannot be opened.
    """
    from openpista.core.store.sql_store import open_store as open_sql_store

    return await open_sql_store(url)


def __getattr__(name: str) -> Any:
    # SqlMemoryStore lives beside SQLAlchemy; load it only when someone asks for it.
    if name == "SqlMemoryStore":
        from openpista.core.store.sql_store import SqlMemoryStore

        return SqlMemoryStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
