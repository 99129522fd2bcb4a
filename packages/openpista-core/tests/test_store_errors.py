"""What a user sees when the conversation database cannot be opened, and what is not imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from openpista.core.errors import OpenpistaError
from openpista.core.store import open_store


async def open_failure(url: str) -> str:
    with pytest.raises(OpenpistaError) as raised:
        await open_store(url)
    message = str(raised.value)
    assert "\n" not in message
    return message


async def test_unknown_database_kind_names_the_url_with_password_masked() -> None:
    message = await open_failure("nosuchdb+driver://alice:hunter2@db.invalid/chat")
    assert "hunter2" not in message
    assert "nosuchdb+driver://alice:***@db.invalid/chat" in message
    assert "unknown database kind" in message
    assert "OPENPISTA_DATABASE_URL" in message


async def test_a_missing_or_unreachable_server_names_the_url_with_password_masked() -> None:
    # Port 1 on loopback refuses connections; without asyncpg installed the driver is missing.
    # Either way the user gets one line naming the database, without the password.
    message = await open_failure("postgresql+asyncpg://alice:hunter2@127.0.0.1:1/chat")
    assert "hunter2" not in message
    assert "postgresql+asyncpg://alice:***@127.0.0.1:1/chat" in message


async def test_a_synchronous_driver_is_refused_with_the_async_alternative(tmp_path: Path) -> None:
    message = await open_failure(f"sqlite+pysqlite:///{tmp_path / 'sync.db'}")
    assert "'pysqlite' is not an async driver" in message
    assert "postgresql+asyncpg://" in message


async def test_an_unparsable_url_is_reported() -> None:
    message = await open_failure("postgresql+asyncpg://alice:hunter2@host:notaport/chat")
    assert "hunter2" not in message
    assert "not a valid database URL" in message


async def test_an_empty_url_is_reported() -> None:
    message = await open_failure("   ")
    assert "database URL is empty" in message


async def test_a_folder_that_cannot_be_created_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    target = blocker / "memory.db"
    message = await open_failure(str(target))
    assert f"cannot create the folder {blocker}" in message
    assert str(target) in message


async def test_a_path_that_is_a_folder_is_reported(tmp_path: Path) -> None:
    message = await open_failure(str(tmp_path))
    assert f"cannot open the conversation database {tmp_path}:" in message
    assert "it is a folder, not a database file" in message


async def test_a_file_that_is_not_a_database_is_reported(tmp_path: Path) -> None:
    impostor = tmp_path / "notes.txt"
    impostor.write_bytes(b"these are my notes, not a database\n" * 200)
    message = await open_failure(str(impostor))
    assert f"cannot open the conversation database {impostor}:" in message
    assert "not a database" in message
    assert impostor.read_bytes() == b"these are my notes, not a database\n" * 200


def test_importing_core_or_the_store_package_loads_no_sqlalchemy() -> None:
    probe = (
        "import sys, openpista.core, openpista.core.memory, openpista.core.store;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic')))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert completed.stdout.strip() == "[]"
