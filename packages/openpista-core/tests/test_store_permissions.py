"""A conversation database found readable by others is made private when opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from openpista.core.store import open_store


async def test_a_database_found_with_wider_permissions_is_tightened_to_0600(
    tmp_path: Path,
) -> None:
    path = tmp_path / "memory.db"
    sqlite3.connect(path).close()
    path.chmod(0o644)
    store = await open_store(str(path))
    try:
        assert path.stat().st_mode & 0o777 == 0o600
    finally:
        await store.aclose()
