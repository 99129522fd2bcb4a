"""The store's Alembic migrations: applied to new databases, skipped (Alembic never imported)
on up-to-date ones, and in step with the tables the code queries."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from openpista.core.errors import OpenpistaError
from openpista.core.models import ImagePart, Message, ToolCall
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
    assert (MIGRATIONS_DIR / "versions" / "0002_parts_audit_summaries.py").is_file()


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
    assert {"alembic_version", "sessions", "messages", "tool_calls_audit", "summaries"} <= tables
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


def build_spine_database(db_path: Path) -> None:
    """A database as openpista 0.1 (the spine) left it: revision 0001, rows written as its
    store wrote them (naive UTC timestamps, tool calls as ASCII-escaped JSON)."""
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", str(db_path))
    command.upgrade(config, "0001")
    with sqlite3.connect(db_path) as setup:
        setup.executemany(
            "INSERT INTO sessions (id, channel_id, created_at, updated_at) VALUES (?, ?, ?, ?)",
            [
                ("spine-1", "telegram:42", "2025-06-01 08:00:00.000001", "2025-06-01 08:05:00"),
                ("spine-2", "cli:local", "2025-06-02 09:00:00.500000", "2025-06-02 09:00:00.5"),
            ],
        )
        setup.executemany(
            "INSERT INTO messages (session_id, position, role, content, tool_calls, "
            "tool_call_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                ("spine-1", 0, "user", "list my files 🐍 — héllo\r\n", None, None, STAMP),
                ("spine-1", 1, "assistant", "", SPINE_TOOL_CALLS, None, STAMP),
                ("spine-1", 2, "tool", "a.txt\nb.txt\n", None, "call_1", STAMP),
                ("spine-1", 3, "tool", "", None, "call_2", STAMP),
                ("spine-1", 4, "assistant", "Two files: a.txt, b.txt.", None, None, STAMP),
                ("spine-2", 0, "user", "nul\x00inside 'q' \"dq\" \\", None, None, STAMP),
            ],
        )


STAMP = "2025-06-01 08:05:00"
SPINE_TOOL_CALLS = (
    '[{"id": "call_1", "name": "system.run", "arguments": "{\\"command\\": \\"ls \\u00fc\\"}"},'
    ' {"id": "call_2", "name": "x", "arguments": "\\"lone \\ud800 surrogate\\"\\n"}]'
)
SPINE_MESSAGES = {
    "spine-1": [
        Message("user", "list my files 🐍 — héllo\r\n"),
        Message(
            "assistant",
            "",
            [
                ToolCall("call_1", "system.run", '{"command": "ls ü"}'),
                ToolCall("call_2", "x", '"lone \ud800 surrogate"\n'),
            ],
        ),
        Message("tool", "a.txt\nb.txt\n", tool_call_id="call_1"),
        Message("tool", "", tool_call_id="call_2"),
        Message("assistant", "Two files: a.txt, b.txt."),
    ],
    "spine-2": [Message("user", "nul\x00inside 'q' \"dq\" \\")],
}


async def test_a_spine_database_migrates_and_reads_back_exactly(tmp_path: Path) -> None:
    db_path = tmp_path / "spine.db"
    await asyncio.to_thread(build_spine_database, db_path)
    with sqlite3.connect(db_path) as before:
        old_rows = before.execute(
            "SELECT id, session_id, position, role, content, tool_calls, tool_call_id, "
            "created_at FROM messages ORDER BY id"
        ).fetchall()
        old_sessions = before.execute("SELECT * FROM sessions ORDER BY id").fetchall()

    async with await open_store(str(db_path)) as store:
        for session_id, expected in SPINE_MESSAGES.items():
            assert await store.load_messages(session_id) == expected
        listed = await store.list_sessions()
        assert [(s.id, s.message_count) for s in listed] == [("spine-2", 1), ("spine-1", 5)]
        assert listed[1].created_at == datetime(2025, 6, 1, 8, 0, 0, 1, tzinfo=UTC)
        assert await store.load_summary("spine-1") is None
        assert await store.list_tool_calls() == []

        added = [
            Message("user", "and now a picture", sender="alice", parts=[ImagePart("p.png", "x")]),
            Message("assistant", "Nice.", input_tokens=10, output_tokens=2),
        ]
        await store.append_messages("spine-1", added)

    async with await open_store(str(db_path)) as reopened:
        assert await reopened.load_messages("spine-1") == SPINE_MESSAGES["spine-1"] + added
        assert await reopened.load_messages("spine-2") == SPINE_MESSAGES["spine-2"]

    with sqlite3.connect(db_path) as after:
        assert after.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (HEAD_REVISION,)
        ]
        # The old rows kept every column as the spine wrote it; the new ones are NULL.
        assert (
            after.execute(
                "SELECT id, session_id, position, role, content, tool_calls, tool_call_id, "
                "created_at FROM messages WHERE id <= ? ORDER BY id",
                (len(old_rows),),
            ).fetchall()
            == old_rows
        )
        assert after.execute(
            "SELECT count(*) FROM messages WHERE parts IS NULL AND sender IS NULL "
            "AND input_tokens IS NULL AND output_tokens IS NULL AND id <= ?",
            (len(old_rows),),
        ).fetchone() == (len(old_rows),)
        assert after.execute("SELECT * FROM sessions WHERE id = 'spine-2'").fetchall() == [
            old_sessions[1]
        ]
