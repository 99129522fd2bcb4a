"""SqlMemoryStore on real SQLite files: what only a database shows (files, durability, WAL,
several stores on one file, lock files). What every MemoryStore does: test_memory_contract.py."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from openpista.core.errors import SessionNotFoundError
from openpista.core.media import MediaStore
from openpista.core.models import (
    AuditEntry,
    FilePart,
    ImagePart,
    Message,
    ProviderStatePart,
    Summary,
    TextPart,
    ToolCall,
)
from openpista.core.store import HEAD_REVISION, SqlMemoryStore, open_store
from openpista.core.store.session_locks import (
    PostgresAdvisoryLocks,
    advisory_lock_key,
    cross_process_locks,
)


def names_in(folder: Path) -> set[str]:
    return {entry.name for entry in folder.iterdir()}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "memory.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqlMemoryStore]:
    opened = await open_store(str(db_path))
    yield opened
    await opened.aclose()


# What crosses the file: text, tool calls, every kind of part, sender and usage.
TRICKY_MESSAGES = [
    Message(role="user", content="héllo 🐍\x00\r\n", sender="Zoë"),
    Message(
        role="assistant",
        content="",
        tool_calls=[
            ToolCall(id="call_1", name="system.run", arguments='{"command": "ls -la"}'),
            ToolCall(id="call_2", name="x", arguments='"lone \ud800 surrogate"\n'),
        ],
        parts=[ProviderStatePart("anthropic", {"signature": "c2ln", "n": [1, None]})],
        input_tokens=100,
        output_tokens=7,
    ),
    Message(role="tool", content="total 0\n", tool_call_id="call_1"),
    Message(
        role="user",
        content="look",
        parts=[
            ImagePart("ab/ab.png", "image/png", "shot.png", 3),
            FilePart("cd/cd.pdf", "application/pdf"),
            TextPart("a \udc80 b"),
        ],
    ),
]
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def test_messages_read_back_exactly_from_a_fresh_store_on_the_file(
    store: SqlMemoryStore, db_path: Path
) -> None:
    session = await store.create_session("cli:local")
    await store.append_messages(session.id, TRICKY_MESSAGES)

    async with await open_store(str(db_path)) as reopened:
        assert await reopened.load_messages(session.id) == TRICKY_MESSAGES
    with sqlite3.connect(db_path) as check:
        rows = check.execute(
            "SELECT parts, sender, input_tokens, output_tokens FROM messages ORDER BY position"
        ).fetchall()
    # No parts, no sender, no usage: NULL, as in rows written before these columns existed.
    assert rows[2] == (None, None, None, None)
    assert rows[0][1:] == ("Zoë", None, None)
    assert rows[1][2:] == (100, 7)


async def test_media_parts_hold_paths_and_no_base64_lands_in_the_database(
    store: SqlMemoryStore, db_path: Path, tmp_path: Path
) -> None:
    picture = bytes(range(256)) * 64  # 16 KiB that no text would contain
    media = MediaStore(tmp_path / "media")
    relative = media.save_bytes(picture, "image/png", "screen.png")
    session = await store.create_session("telegram:42")
    part = ImagePart(relative, "image/png", "screen.png", len(picture))
    await store.append_messages(session.id, [Message(role="user", content="see", parts=[part])])

    assert (await store.load_messages(session.id))[0].parts == [part]
    assert media.path_of(relative).read_bytes() == picture
    await store.aclose()
    stored = b"".join(
        path.read_bytes()
        for path in db_path.parent.iterdir()
        if path.name.startswith("memory.db") and path.is_file()
    )
    encoded = base64.b64encode(picture)
    assert relative.encode() in stored
    assert encoded[:64] not in stored
    assert base64.b64encode(picture[:48]) not in stored
    assert picture[:64] not in stored


async def test_deleting_a_session_leaves_no_rows_of_it_but_its_audit_trail(
    store: SqlMemoryStore, db_path: Path
) -> None:
    doomed = await store.create_session("cli:local")
    kept = await store.create_session("cli:local")
    await store.append_messages(doomed.id, TRICKY_MESSAGES)
    await store.append_messages(kept.id, [Message(role="user", content="stay")])
    await store.save_summary(doomed.id, Summary(2, "gone", T0))
    await store.record_tool_call(
        AuditEntry(T0, doomed.id, "cli:local", None, "system.run", "{}", "auto", "policy", True, 1)
    )

    assert await store.delete_session(doomed.id) is True

    with sqlite3.connect(db_path) as check:
        assert check.execute("SELECT session_id FROM messages").fetchall() == [(kept.id,)]
        assert check.execute("SELECT count(*) FROM summaries").fetchone() == (0,)
        assert check.execute("SELECT session_id FROM tool_calls_audit").fetchall() == [(doomed.id,)]


async def test_session_lock_files_sit_beside_the_database_private_to_the_owner(
    store: SqlMemoryStore, db_path: Path
) -> None:
    session_id = "telegram:42/../../odd id ✓"
    async with store.lock_session(session_id):
        folder = db_path.with_name("memory.db.locks")
        (lock_file,) = folder.iterdir()
    expected = hashlib.sha256(session_id.encode()).hexdigest()[:32] + ".lock"
    assert lock_file.name == expected
    assert folder.stat().st_mode & 0o777 == 0o700
    assert lock_file.stat().st_mode & 0o777 == 0o600


async def test_a_taken_lock_file_makes_a_second_store_wait(db_path: Path) -> None:
    # Two stores on one file stand for two processes (the real cross-process test runs
    # subprocesses: test_store_locks.py).
    async with await open_store(str(db_path)) as first, await open_store(str(db_path)) as second:
        waited = asyncio.Event()

        async def on_wait() -> None:
            waited.set()

        async with first.lock_session("s1"):
            entering = asyncio.create_task(second.lock_session("s1", on_wait).__aenter__())
            await asyncio.wait_for(waited.wait(), 5)
            await asyncio.sleep(0.15)
            assert not entering.done()
        await asyncio.wait_for(entering, 5)
        async with asyncio.timeout(5):
            async with first.lock_session("s2"):
                pass


async def test_memory_databases_lock_sessions_within_the_process() -> None:
    async with await open_store(":memory:") as memory_store:
        order: list[str] = []

        async def turn(name: str) -> None:
            async with memory_store.lock_session("s"):
                order.append(name)
                await asyncio.sleep(0.02)
                order.append(name)

        await asyncio.gather(turn("a"), turn("b"))
    assert order in (["a", "a", "b", "b"], ["b", "b", "a", "a"])


def test_server_databases_without_advisory_locks_warn_that_locks_are_per_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        locks = cross_process_locks(
            make_url("mysql+aiomysql://u:p@db/chat"), None, "mysql+aiomysql://u:***@db/chat"
        )
    assert locks is None
    assert "hold within this process only" in caplog.text
    assert "mysql+aiomysql://u:***@db/chat" in caplog.text
    postgres = cross_process_locks(make_url("postgresql+asyncpg://u:p@db/chat"), None, "pg")
    assert isinstance(postgres, PostgresAdvisoryLocks)


def test_advisory_lock_keys_are_stable_signed_64_bit_integers() -> None:
    keys = {advisory_lock_key(f"session-{index}") for index in range(1000)}
    assert len(keys) == 1000
    assert all(-(2**63) <= key < 2**63 for key in keys)
    assert any(key < 0 for key in keys)
    digest = hashlib.sha256(b"abc").digest()[:8]
    assert advisory_lock_key("abc") == int.from_bytes(digest, "big", signed=True)


async def test_delete_removes_messages_even_without_foreign_keys(tmp_path: Path) -> None:
    # A database whose messages table has no foreign key at all (as if created by a tool
    # that never enforced them): the store must still leave no orphaned messages behind.
    # It claims revision 0001, so opening it runs the later migrations on it too.
    db_path = tmp_path / "no-fk.db"
    with sqlite3.connect(db_path) as setup:
        setup.executescript(
            """
            CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY);
            INSERT INTO alembic_version VALUES ('0001');
            CREATE TABLE sessions (id TEXT PRIMARY KEY, channel_id TEXT NOT NULL,
                created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL);
            CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT,
                session_id TEXT NOT NULL, position INTEGER NOT NULL, role TEXT NOT NULL,
                content TEXT NOT NULL, tool_calls TEXT, tool_call_id TEXT,
                created_at DATETIME NOT NULL);
            """
        )
    async with await open_store(str(db_path)) as no_fk_store:
        session = await no_fk_store.create_session("cli:local")
        await no_fk_store.append_messages(session.id, TRICKY_MESSAGES)
        assert await no_fk_store.delete_session(session.id) is True
    with sqlite3.connect(db_path) as check:
        assert check.execute("SELECT count(*) FROM messages").fetchone() == (0,)


async def test_appending_to_an_unknown_session_stores_nothing(
    store: SqlMemoryStore, db_path: Path
) -> None:
    with pytest.raises(SessionNotFoundError, match="'ghost'"):
        await store.append_messages("ghost", [Message(role="user", content="lost")])
    with sqlite3.connect(db_path) as check:
        assert check.execute("SELECT count(*) FROM messages").fetchone() == (0,)


async def test_appended_messages_are_committed_before_append_returns(
    store: SqlMemoryStore, db_path: Path
) -> None:
    session = await store.create_session("cli:local")
    await store.append_messages(session.id, [Message(role="user", content="durable ✓")])

    # An independent connection, while the store stays open: it sees only committed data.
    with sqlite3.connect(db_path) as other:
        rows = other.execute("SELECT session_id, role, content FROM messages").fetchall()
        stamp = other.execute(
            "SELECT updated_at FROM sessions WHERE id = ?", (session.id,)
        ).fetchone()
    assert rows == [(session.id, "user", "durable ✓")]
    assert stamp[0] > session.updated_at.replace(tzinfo=None).isoformat(" ")


async def test_wal_journal_mode_is_on(store: SqlMemoryStore, db_path: Path) -> None:
    await store.create_session("cli:local")
    with sqlite3.connect(db_path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert f"{db_path.name}-wal" in names_in(db_path.parent)


async def test_concurrent_appends_keep_each_batch_in_order(store: SqlMemoryStore) -> None:
    shared = await store.create_session("web:a")
    other = await store.create_session("web:b")
    tasks, batches, batch_size = 8, 4, 3

    async def writer(task: int) -> None:
        for batch in range(batches):
            for session_id in (shared.id, other.id):
                await store.append_messages(
                    session_id,
                    [
                        Message(role="user", content=f"{task}:{batch}:{item}")
                        for item in range(batch_size)
                    ],
                )

    await asyncio.gather(*(writer(task) for task in range(tasks)))

    for session_id in (shared.id, other.id):
        contents = [m.content for m in await store.load_messages(session_id)]
        assert len(contents) == tasks * batches * batch_size
        for task in range(tasks):
            mine = [c for c in contents if c.startswith(f"{task}:")]
            assert mine == [
                f"{task}:{batch}:{item}" for batch in range(batches) for item in range(batch_size)
            ]
        # Each batch landed in one piece: no other task's message inside it.
        for start in range(0, len(contents), batch_size):
            task_batch = {c.rsplit(":", 1)[0] for c in contents[start : start + batch_size]}
            assert len(task_batch) == 1


async def test_two_stores_on_one_file_append_without_locking_errors(db_path: Path) -> None:
    # Two engines on one file behave like two openpista processes (the daemon and `run -e`).
    async with await open_store(str(db_path)) as first, await open_store(str(db_path)) as second:
        session = await first.create_session("cli:local")

        async def writer(store: SqlMemoryStore, name: str) -> None:
            for index in range(15):
                await store.append_messages(
                    session.id,
                    [Message(role="user", content=f"{name}{index}"), Message(role="assistant")],
                )
                await store.load_messages(session.id)

        await asyncio.gather(writer(first, "a"), writer(second, "b"))
        loaded = await second.load_messages(session.id)

    assert len(loaded) == 60
    users = [m.content for m in loaded if m.role == "user"]
    assert [c for c in users if c.startswith("a")] == [f"a{i}" for i in range(15)]
    assert [c for c in users if c.startswith("b")] == [f"b{i}" for i in range(15)]
    assert all(m.role == "assistant" for m in loaded[1::2])


async def test_tilde_paths_expand_to_home_and_folders_are_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    async with await open_store("~/.openpista/memory.db") as home_store:
        await home_store.create_session("cli:local")
        assert home_store.display_name == str(tmp_path / ".openpista" / "memory.db")
    async with await open_store("sqlite:///~/deeper/nested/url.db") as url_store:
        await url_store.create_session("cli:local")

    assert "memory.db" in names_in(tmp_path / ".openpista")
    assert "url.db" in names_in(tmp_path / "deeper" / "nested")
    assert "~" not in names_in(tmp_path)


@pytest.mark.parametrize(
    "spelling",
    [
        "relative/memory.db",
        "sqlite:///relative/memory.db",
        "sqlite+aiosqlite:///relative/memory.db",
    ],
)
async def test_relative_paths_and_sqlite_urls_name_a_file(
    spelling: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with await open_store(spelling) as relative_store:
        await relative_store.create_session("cli:local", session_id="here")
    with sqlite3.connect(tmp_path / "relative" / "memory.db") as check:
        assert check.execute("SELECT id FROM sessions").fetchall() == [("here",)]


async def test_absolute_sqlite_url(tmp_path: Path) -> None:
    target = tmp_path / "abs dir" / "memory.db"
    async with await open_store(f"sqlite+aiosqlite:///{target}") as absolute_store:
        await absolute_store.create_session("cli:local", session_id="abs")
        assert absolute_store.display_name == str(target)
    with sqlite3.connect(target) as check:
        assert check.execute("SELECT id FROM sessions").fetchall() == [("abs",)]


async def test_memory_database_serves_concurrent_tasks() -> None:
    async with await open_store(":memory:") as memory_store:
        session = await memory_store.create_session("cli:local")

        async def writer(task: int) -> None:
            await memory_store.append_messages(
                session.id, [Message(role="user", content=f"{task}-{i}") for i in range(3)]
            )

        await asyncio.gather(*(writer(task) for task in range(5)))
        loaded = await memory_store.load_messages(session.id)
    assert sorted(m.content for m in loaded) == sorted(
        f"{t}-{i}" for t in range(5) for i in range(3)
    )


async def test_aclose_can_be_called_twice(db_path: Path) -> None:
    closing = await open_store(str(db_path))
    await closing.aclose()
    await closing.aclose()


async def test_opening_one_new_file_from_several_stores_at_once(db_path: Path) -> None:
    # Like several openpista processes starting together on a new database: each must wait
    # for the first one's migration instead of failing or migrating twice.
    stores = await asyncio.gather(*(open_store(str(db_path)) for _ in range(4)))
    try:
        for index, each in enumerate(stores):
            await each.create_session("cli:local", session_id=f"s{index}")
        assert {s.id for s in await stores[0].list_sessions()} == {"s0", "s1", "s2", "s3"}
    finally:
        for each in stores:
            await each.aclose()
    with sqlite3.connect(db_path) as check:
        assert check.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (HEAD_REVISION,)
        ]


async def test_a_new_database_file_and_its_wal_are_private_to_the_owner(tmp_path: Path) -> None:
    path = tmp_path / "home" / "memory.db"
    store = await open_store(str(path))
    try:
        session = await store.create_session("cli:local")
        await store.append_messages(session.id, [Message(role="user", content="secret")])
        assert path.stat().st_mode & 0o777 == 0o600
        wal = path.with_name("memory.db-wal")
        assert wal.exists() and wal.stat().st_mode & 0o777 == 0o600
        assert path.parent.stat().st_mode & 0o777 == 0o700
    finally:
        await store.aclose()
