"""SqlMemoryStore on real SQLite files: exact round trips, sessions, ordering and durability."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openpista.core.errors import OpenpistaError, SessionNotFoundError
from openpista.core.memory import MemoryStore
from openpista.core.models import Message, ToolCall
from openpista.core.store import HEAD_REVISION, SqlMemoryStore, open_store


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


TRICKY_MESSAGES = [
    Message(role="system", content="You are openpista.\n\nBe brief."),
    Message(role="user", content=""),
    Message(role="user", content="héllo wörld — 你好 🐍🇫🇷 e\u0301 \u200f עברית \u00a0 "),
    Message(role="user", content="line1\nline2\r\nline3\rtabs\there  trailing  \n\n"),
    Message(role="user", content="nul\x00inside and \\backslash\\ and 'quotes' \"double\""),
    Message(
        role="assistant",
        content="",
        tool_calls=[
            ToolCall(id="call_1", name="system.run", arguments='{"command": "ls -la"}'),
            ToolCall(id="call_2", name="mcp.fs.read", arguments='{ "path" : "ü/🐍" ,"x":1 }'),
            ToolCall(id="call_3", name="screen.capture", arguments='{"oops": unterminated'),
            ToolCall(id="call_4", name="skill.run", arguments=""),
            ToolCall(id="call_5", name="x", arguments='"lone \ud800 surrogate"\n'),
        ],
    ),
    Message(role="tool", content="total 0\n", tool_call_id="call_1"),
    Message(role="tool", content="", tool_call_id=""),
    Message(role="assistant", content="Done.", tool_calls=[], tool_call_id=None),
]


async def test_messages_round_trip_exactly(store: SqlMemoryStore, db_path: Path) -> None:
    session = await store.create_session("cli:local")
    await store.append_messages(session.id, TRICKY_MESSAGES)

    assert await store.load_messages(session.id) == TRICKY_MESSAGES

    # And from a fresh store on the same file, so nothing came from memory.
    async with await open_store(str(db_path)) as reopened:
        loaded = await reopened.load_messages(session.id)
    assert loaded == TRICKY_MESSAGES
    assert [call.arguments for call in loaded[5].tool_calls] == [
        '{"command": "ls -la"}',
        '{ "path" : "ü/🐍" ,"x":1 }',
        '{"oops": unterminated',
        "",
        '"lone \ud800 surrogate"\n',
    ]


async def test_the_store_is_a_memory_store(store: SqlMemoryStore) -> None:
    as_interface: MemoryStore = store
    assert isinstance(as_interface, MemoryStore)


async def test_appends_continue_where_the_session_left_off(store: SqlMemoryStore) -> None:
    session = await store.create_session("cli:local")
    await store.append_messages(session.id, [Message(role="user", content="1")])
    await store.append_messages(session.id, [])
    await store.append_messages(
        session.id, [Message(role="assistant", content="2"), Message(role="user", content="3")]
    )
    assert [m.content for m in await store.load_messages(session.id)] == ["1", "2", "3"]


async def test_new_sessions_get_uuid4_ids_unless_one_is_given(store: SqlMemoryStore) -> None:
    first = await store.create_session("telegram:42")
    second = await store.create_session("telegram:42")
    named = await store.create_session("web:abc", session_id="my-session")

    assert uuid.UUID(first.id).version == 4
    assert first.id != second.id
    assert named.id == "my-session"
    assert (first.channel_id, first.message_count) == ("telegram:42", 0)
    assert first.created_at.utcoffset() is not None
    assert first.created_at == first.updated_at


async def test_creating_an_existing_session_id_is_refused(store: SqlMemoryStore) -> None:
    await store.create_session("cli:local", session_id="taken")
    with pytest.raises(OpenpistaError, match="'taken' already exists"):
        await store.create_session("cli:other", session_id="taken")
    kept = await store.get_session("taken")
    assert kept is not None and kept.channel_id == "cli:local"


async def test_get_session_returns_what_was_stored(store: SqlMemoryStore) -> None:
    created = await store.create_session("cli:local")
    await store.append_messages(created.id, TRICKY_MESSAGES[:3])

    found = await store.get_session(created.id)

    assert found is not None
    assert (found.id, found.channel_id, found.message_count) == (created.id, "cli:local", 3)
    assert found.created_at == created.created_at
    assert found.updated_at > created.updated_at
    assert await store.get_session("no-such-session") is None


async def test_touch_moves_a_session_to_the_front(store: SqlMemoryStore) -> None:
    older = await store.create_session("cli:local")
    newer = await store.create_session("cli:local")
    assert [s.id for s in await store.list_sessions()] == [newer.id, older.id]

    await store.touch_session(older.id)

    touched = await store.get_session(older.id)
    assert touched is not None and touched.updated_at > older.updated_at
    assert touched.created_at == older.created_at
    assert [s.id for s in await store.list_sessions()] == [older.id, newer.id]


async def test_touching_an_unknown_session_says_so(store: SqlMemoryStore) -> None:
    with pytest.raises(SessionNotFoundError, match="'ghost'"):
        await store.touch_session("ghost")


async def test_list_sessions_newest_first_with_counts_and_limit(store: SqlMemoryStore) -> None:
    a = await store.create_session("cli:a")
    b = await store.create_session("cli:b")
    c = await store.create_session("cli:c")
    await store.append_messages(a.id, [Message(role="user", content="x")] * 2)

    listed = await store.list_sessions()

    assert [(s.id, s.message_count) for s in listed] == [(a.id, 2), (c.id, 0), (b.id, 0)]
    assert [s.id for s in await store.list_sessions(limit=2)] == [a.id, c.id]
    assert await store.list_sessions(limit=0) == []


async def test_appending_touches_the_session(store: SqlMemoryStore) -> None:
    first = await store.create_session("cli:local")
    second = await store.create_session("cli:local")

    await store.append_messages(first.id, [Message(role="user", content="hi")])

    assert [s.id for s in await store.list_sessions()] == [first.id, second.id]
    latest = await store.latest_session_for_channel("cli:local")
    assert latest is not None and latest.id == first.id and latest.message_count == 1


async def test_latest_session_for_channel(store: SqlMemoryStore) -> None:
    assert await store.latest_session_for_channel("telegram:1") is None
    old = await store.create_session("telegram:1")
    other_channel = await store.create_session("telegram:2")
    new = await store.create_session("telegram:1")

    latest = await store.latest_session_for_channel("telegram:1")
    assert latest is not None and latest.id == new.id

    await store.touch_session(old.id)
    latest = await store.latest_session_for_channel("telegram:1")
    assert latest is not None and latest.id == old.id
    latest_other = await store.latest_session_for_channel("telegram:2")
    assert latest_other is not None and latest_other.id == other_channel.id


async def test_delete_session_removes_it_and_its_messages(
    store: SqlMemoryStore, db_path: Path
) -> None:
    doomed = await store.create_session("cli:local")
    kept = await store.create_session("cli:local")
    await store.append_messages(doomed.id, TRICKY_MESSAGES)
    await store.append_messages(kept.id, [Message(role="user", content="stay")])

    assert await store.delete_session(doomed.id) is True

    assert await store.get_session(doomed.id) is None
    assert await store.load_messages(doomed.id) == []
    assert await store.delete_session(doomed.id) is False
    assert [m.content for m in await store.load_messages(kept.id)] == ["stay"]
    with sqlite3.connect(db_path) as check:
        rows = check.execute("SELECT session_id FROM messages").fetchall()
    assert rows == [(kept.id,)]


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
