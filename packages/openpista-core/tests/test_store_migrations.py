"""The store's Alembic migrations: applied to new databases, skipped (Alembic never imported)
on up-to-date ones, and in step with the tables the code queries."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from openpista.core.errors import OpenpistaError
from openpista.core.store import HEAD_REVISION, open_store
from openpista.core.store.migrate import MIGRATIONS_DIR, alembic_config
from openpista.core.store.tables import metadata

# Opens the store in a fresh interpreter and reports which heavy modules that loaded.
OPEN_IN_FRESH_PROCESS = """
import asyncio, json, sys
from openpista.core.store import open_store

async def main(path):
    store = await open_store(path)
    await store.create_session("cli:local")
    await store.aclose()

asyncio.run(main(sys.argv[1]))
print(json.dumps({"alembic": "alembic" in sys.modules}))
"""


def open_in_fresh_process(db_path: Path) -> dict[str, bool]:
    completed = subprocess.run(
        [sys.executable, "-c", OPEN_IN_FRESH_PROCESS, str(db_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_head_revision_constant_matches_the_migration_scripts() -> None:
    # Adding a migration without bumping HEAD_REVISION would make open_store skip it.
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [HEAD_REVISION]


def test_migrations_ship_inside_the_package() -> None:
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0001_initial.py").is_file()


def test_alembic_runs_only_when_the_database_is_behind(tmp_path: Path) -> None:
    db_path = tmp_path / "memory.db"

    assert open_in_fresh_process(db_path) == {"alembic": True}
    assert open_in_fresh_process(db_path) == {"alembic": False}

    with sqlite3.connect(db_path) as check:
        assert check.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (HEAD_REVISION,)
        ]
        assert check.execute("SELECT count(*) FROM sessions").fetchone() == (2,)


async def test_a_new_file_gets_every_table(tmp_path: Path) -> None:
    db_path = tmp_path / "fresh.db"
    async with await open_store(str(db_path)):
        pass
    with sqlite3.connect(db_path) as check:
        tables = {
            name for (name,) in check.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        version = check.execute("SELECT version_num FROM alembic_version").fetchall()
    assert {"alembic_version", "sessions", "messages"} <= tables
    assert version == [(HEAD_REVISION,)]


async def test_migrated_schema_matches_the_tables_the_code_uses(tmp_path: Path) -> None:
    db_path = tmp_path / "compare.db"
    async with await open_store(str(db_path)):
        pass
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_downgrade_and_upgrade_through_env_py_by_url(tmp_path: Path) -> None:
    # The way a developer runs Alembic by hand: no connection handed in, sqlalchemy.url set.
    db_path = tmp_path / "by-hand.db"
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", str(db_path))
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    with sqlite3.connect(db_path) as check:
        tables = {name for (name,) in check.execute("SELECT name FROM sqlite_master")}
    assert "sessions" not in tables and "messages" not in tables

    async def reopen() -> None:
        async with await open_store(str(db_path)) as store:
            session = await store.create_session("cli:local")
            assert await store.get_session(session.id) == session

    # A plain test function: env.py starts its own event loop, as under the alembic command.
    asyncio.run(reopen())


async def test_a_database_from_a_newer_openpista_is_refused_clearly(tmp_path: Path) -> None:
    db_path = tmp_path / "future.db"
    with sqlite3.connect(db_path) as setup:
        setup.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        setup.execute("INSERT INTO alembic_version VALUES ('9999')")

    with pytest.raises(OpenpistaError) as raised:
        await open_store(str(db_path))

    message = str(raised.value)
    assert str(db_path) in message
    assert "schema revision 9999 is newer than this openpista knows" in message
    assert "upgrade openpista" in message
    assert "\n" not in message
