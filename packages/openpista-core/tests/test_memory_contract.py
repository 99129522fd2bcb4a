"""What every MemoryStore does: the SQL store and the InMemoryStore shipped in
openpista.core.testing pass the same tests, so a test written against one holds for the other.

PostgreSQL joins the parameters in the scale-out issue, whose CI runs a server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from openpista.core.errors import OpenpistaError, SessionNotFoundError
from openpista.core.memory import LockWaitHandler, MemoryStore
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
from openpista.core.store import open_store
from openpista.core.testing import InMemoryStore


@pytest.fixture(params=["sql", "in_memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MemoryStore]:
    opened: MemoryStore
    if request.param == "sql":
        opened = await open_store(str(tmp_path / "memory.db"))
    else:
        opened = InMemoryStore()
    yield opened
    await opened.aclose()


TRICKY_MESSAGES = [
    Message(role="system", content="You are openpista.\n\nBe brief."),
    Message(role="user", content=""),
    Message(role="user", content="héllo wörld — 你好 🐍🇫🇷 e\u0301 \u200f עברית \u00a0 "),
    Message(role="user", content="line1\nline2\r\nline3\rtabs\there  trailing  \n\n"),
    Message(role="user", content="\\backslash\\ and 'quotes' \"double\" and \x7f\x1b[0m"),
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
    Message(
        role="user",
        content="what is in these?",
        sender="Zoë (telegram 42)",
        parts=[
            ImagePart("ab/abcdef.png", "image/png", name="screen shot.png", size=123_456),
            FilePart("cd/cdef.pdf", "application/pdf", name="Rechnung №7.pdf", size=9),
            FilePart("ef/ef.bin", "application/octet-stream"),
            TextPart("extracted text\nwith a lone \udc80 surrogate and 🐍"),
        ],
    ),
    Message(
        role="assistant",
        content="A screenshot and an invoice.",
        parts=[
            ProviderStatePart(
                "anthropic",
                {"type": "thinking", "signature": "c2ln", "nested": {"list": [1, 2.5, None]}},
            ),
            TextPart(""),
        ],
        input_tokens=1234,
        output_tokens=0,
    ),
]


def audit_entry(
    at: datetime, session_id: str = "s1", tool: str = "system.run", **changes: object
) -> AuditEntry:
    entry = AuditEntry(
        at=at,
        session_id=session_id,
        channel_id="telegram:42",
        sender="alice",
        tool=tool,
        arguments='{"command": "ls ~/🐍"}',
        decision="allowed",
        decided_by="alice",
        ok=True,
        duration_ms=12.5,
        call_id="call_1",
        error=None,
    )
    return dataclasses.replace(entry, **changes)


T0 = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)


def test_both_stores_implement_the_interface(store: MemoryStore) -> None:
    assert isinstance(store, MemoryStore)


# Sessions


async def test_new_sessions_get_uuid4_ids_unless_one_is_given(store: MemoryStore) -> None:
    first = await store.create_session("telegram:42")
    second = await store.create_session("telegram:42")
    named = await store.create_session("web:abc", session_id="my-session")

    assert uuid.UUID(first.id).version == 4
    assert first.id != second.id
    assert named.id == "my-session"
    assert (first.channel_id, first.message_count) == ("telegram:42", 0)
    assert first.created_at.utcoffset() is not None
    assert first.created_at == first.updated_at


async def test_creating_an_existing_session_id_is_refused(store: MemoryStore) -> None:
    await store.create_session("cli:local", session_id="taken")
    with pytest.raises(OpenpistaError, match="'taken' already exists"):
        await store.create_session("cli:other", session_id="taken")
    kept = await store.get_session("taken")
    assert kept is not None and kept.channel_id == "cli:local"


async def test_get_session_returns_what_was_stored(store: MemoryStore) -> None:
    created = await store.create_session("cli:local")
    await store.append_messages(created.id, TRICKY_MESSAGES[:3])

    found = await store.get_session(created.id)

    assert found is not None
    assert (found.id, found.channel_id, found.message_count) == (created.id, "cli:local", 3)
    assert found.created_at == created.created_at
    assert found.updated_at > created.updated_at
    assert await store.get_session("no-such-session") is None


async def test_latest_session_for_channel(store: MemoryStore) -> None:
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


async def test_touch_moves_a_session_to_the_front(store: MemoryStore) -> None:
    older = await store.create_session("cli:local")
    newer = await store.create_session("cli:local")
    assert [s.id for s in await store.list_sessions()] == [newer.id, older.id]

    await store.touch_session(older.id)

    touched = await store.get_session(older.id)
    assert touched is not None and touched.updated_at > older.updated_at
    assert touched.created_at == older.created_at
    assert [s.id for s in await store.list_sessions()] == [older.id, newer.id]


async def test_touching_an_unknown_session_says_so(store: MemoryStore) -> None:
    with pytest.raises(SessionNotFoundError, match="'ghost'"):
        await store.touch_session("ghost")


async def test_list_sessions_newest_first_with_counts_and_limit(store: MemoryStore) -> None:
    a = await store.create_session("cli:a")
    b = await store.create_session("cli:b")
    c = await store.create_session("cli:c")
    await store.append_messages(a.id, [Message(role="user", content="x")] * 2)

    listed = await store.list_sessions()

    assert [(s.id, s.message_count) for s in listed] == [(a.id, 2), (c.id, 0), (b.id, 0)]
    assert [s.id for s in await store.list_sessions(limit=2)] == [a.id, c.id]
    assert await store.list_sessions(limit=0) == []


async def test_appending_touches_the_session(store: MemoryStore) -> None:
    first = await store.create_session("cli:local")
    second = await store.create_session("cli:local")

    await store.append_messages(first.id, [Message(role="user", content="hi")])

    assert [s.id for s in await store.list_sessions()] == [first.id, second.id]
    latest = await store.latest_session_for_channel("cli:local")
    assert latest is not None and latest.id == first.id and latest.message_count == 1


async def test_delete_session_removes_it_its_messages_and_summary(store: MemoryStore) -> None:
    doomed = await store.create_session("cli:local")
    kept = await store.create_session("cli:local")
    await store.append_messages(doomed.id, TRICKY_MESSAGES)
    await store.append_messages(kept.id, [Message(role="user", content="stay")])
    await store.save_summary(doomed.id, Summary(3, "gone soon", T0))
    await store.record_tool_call(audit_entry(T0, session_id=doomed.id))

    assert await store.delete_session(doomed.id) is True

    assert await store.get_session(doomed.id) is None
    assert await store.load_messages(doomed.id) == []
    assert await store.load_summary(doomed.id) is None
    assert await store.delete_session(doomed.id) is False
    assert [m.content for m in await store.load_messages(kept.id)] == ["stay"]
    assert [s.id for s in await store.list_sessions()] == [kept.id]
    # The audit trail outlives the conversation.
    assert [e.session_id for e in await store.list_tool_calls()] == [doomed.id]


async def test_a_deleted_id_can_be_used_again(store: MemoryStore) -> None:
    await store.create_session("cli:local", session_id="again")
    await store.append_messages("again", [Message(role="user", content="old")])
    await store.delete_session("again")

    reborn = await store.create_session("web:x", session_id="again")

    assert reborn.message_count == 0
    assert await store.load_messages("again") == []


# Messages


async def test_messages_round_trip_exactly(store: MemoryStore) -> None:
    session = await store.create_session("cli:local")
    await store.append_messages(session.id, TRICKY_MESSAGES)

    loaded = await store.load_messages(session.id)

    assert loaded == TRICKY_MESSAGES
    assert [call.arguments for call in loaded[5].tool_calls] == [
        '{"command": "ls -la"}',
        '{ "path" : "ü/🐍" ,"x":1 }',
        '{"oops": unterminated',
        "",
        '"lone \ud800 surrogate"\n',
    ]
    assert loaded[9].sender == "Zoë (telegram 42)"
    assert [type(part).__name__ for part in loaded[9].parts] == [
        "ImagePart",
        "FilePart",
        "FilePart",
        "TextPart",
    ]
    assert (loaded[10].input_tokens, loaded[10].output_tokens) == (1234, 0)
    assert all(m.parts == [] and m.sender is None for m in loaded[:9])
    assert all(m.input_tokens is None and m.output_tokens is None for m in loaded[:10])


async def test_nul_characters_round_trip(store: MemoryStore) -> None:
    session = await store.create_session("cli:local")
    messages = [Message(role="user", content="nul\x00inside", sender="a\x00b")]
    await store.append_messages(session.id, messages)
    assert await store.load_messages(session.id) == messages


async def test_appends_continue_where_the_session_left_off(store: MemoryStore) -> None:
    session = await store.create_session("cli:local")
    await store.append_messages(session.id, [Message(role="user", content="1")])
    await store.append_messages(session.id, [])
    await store.append_messages(
        session.id, [Message(role="assistant", content="2"), Message(role="user", content="3")]
    )
    assert [m.content for m in await store.load_messages(session.id)] == ["1", "2", "3"]


async def test_sessions_keep_their_own_messages(store: MemoryStore) -> None:
    a = await store.create_session("cli:a")
    b = await store.create_session("cli:b")
    await store.append_messages(a.id, [Message(role="user", content="for a")])
    await store.append_messages(b.id, [Message(role="user", content="for b")])
    assert [m.content for m in await store.load_messages(a.id)] == ["for a"]
    assert [m.content for m in await store.load_messages(b.id)] == ["for b"]


async def test_an_unknown_session_has_no_messages_and_takes_none(store: MemoryStore) -> None:
    assert await store.load_messages("ghost") == []
    with pytest.raises(SessionNotFoundError, match="'ghost'"):
        await store.append_messages("ghost", [Message(role="user", content="lost")])
    assert await store.get_session("ghost") is None
    assert await store.load_messages("ghost") == []
    assert await store.list_sessions() == []


async def test_changing_what_was_stored_or_returned_changes_nothing_stored(
    store: MemoryStore,
) -> None:
    session = await store.create_session("cli:local")
    state = ProviderStatePart("openai", {"items": [{"id": "rs_1"}]})
    original = Message(
        role="assistant",
        content="kept",
        tool_calls=[ToolCall("c1", "system.run", "{}")],
        parts=[state, TextPart("kept part")],
        sender="bob",
    )
    await store.append_messages(session.id, [original])

    # The caller keeps changing the message it stored...
    original.content = "changed after storing"
    original.tool_calls.append(ToolCall("c2", "x", "{}"))
    original.parts.append(TextPart("added after storing"))
    state.data["items"].append({"id": "rs_2"})

    # ...and everything it got back.
    loaded = await store.load_messages(session.id)
    loaded[0].content = "changed after loading"
    loaded[0].tool_calls.clear()
    loaded[0].parts.pop()
    loaded_state = loaded[0].parts[0]
    assert isinstance(loaded_state, ProviderStatePart)
    loaded_state.data["items"].clear()
    loaded.append(Message(role="user", content="appended to the returned list"))
    (await store.list_sessions()).clear()
    await store.record_tool_call(audit_entry(T0))
    (await store.list_tool_calls()).clear()

    again = await store.load_messages(session.id)
    assert again == [
        Message(
            role="assistant",
            content="kept",
            tool_calls=[ToolCall("c1", "system.run", "{}")],
            parts=[
                ProviderStatePart("openai", {"items": [{"id": "rs_1"}]}),
                TextPart("kept part"),
            ],
            sender="bob",
        )
    ]
    assert len(await store.list_sessions()) == 1
    assert len(await store.list_tool_calls()) == 1


async def test_concurrent_appends_keep_each_batch_in_order(store: MemoryStore) -> None:
    shared = await store.create_session("web:a")
    tasks, batches, batch_size = 6, 3, 3

    async def writer(task: int) -> None:
        for batch in range(batches):
            await store.append_messages(
                shared.id,
                [
                    Message(role="user", content=f"{task}:{batch}:{item}")
                    for item in range(batch_size)
                ],
            )

    await asyncio.gather(*(writer(task) for task in range(tasks)))

    contents = [m.content for m in await store.load_messages(shared.id)]
    assert len(contents) == tasks * batches * batch_size
    for start in range(0, len(contents), batch_size):
        one_batch = contents[start : start + batch_size]
        prefix = one_batch[0].rsplit(":", 1)[0]
        assert one_batch == [f"{prefix}:{item}" for item in range(batch_size)]


# The audit trail


async def test_audit_entries_round_trip_exactly(store: MemoryStore) -> None:
    entries = [
        audit_entry(T0),
        audit_entry(
            T0 + timedelta(seconds=1),
            session_id="s2",
            channel_id="web:client",
            sender=None,
            tool="mcp.files.read",
            arguments='{"path": "ü/\\u0000", not json',
            decision="denied",
            decided_by="no-approver",
            ok=False,
            duration_ms=0.0,
            call_id="",
            error="denied: nobody could be asked",
        ),
        audit_entry(T0 + timedelta(seconds=2), decision="auto", decided_by="policy"),
    ]
    for entry in entries:
        await store.record_tool_call(entry)

    listed = await store.list_tool_calls()

    assert listed == entries[::-1]
    assert listed[1].at.utcoffset() == timedelta(0)


async def test_audit_lists_newest_first_by_time_filters_by_session_and_limits(
    store: MemoryStore,
) -> None:
    # Recorded out of time order, as a long call finishing after a short one started later.
    times = {"a1": 3, "b1": 1, "a2": 5, "a3": 2, "b2": 4}
    for call_id, seconds in times.items():
        await store.record_tool_call(
            audit_entry(T0 + timedelta(seconds=seconds), session_id=call_id[0], call_id=call_id)
        )
    # Two at the same instant: the one recorded later counts as newer.
    await store.record_tool_call(audit_entry(T0 + timedelta(seconds=5), "a", call_id="a4"))

    def ids(entries: list[AuditEntry]) -> list[str]:
        return [entry.call_id for entry in entries]

    assert ids(await store.list_tool_calls()) == ["a4", "a2", "b2", "a1", "a3", "b1"]
    assert ids(await store.list_tool_calls(session_id="a")) == ["a4", "a2", "a1", "a3"]
    assert ids(await store.list_tool_calls(session_id="b", limit=1)) == ["b2"]
    assert ids(await store.list_tool_calls(limit=2)) == ["a4", "a2"]
    assert await store.list_tool_calls(limit=0) == []
    assert await store.list_tool_calls(session_id="nobody") == []


# Summaries


async def test_summaries_are_kept_per_session_and_the_latest_wins(store: MemoryStore) -> None:
    a = await store.create_session("cli:a")
    b = await store.create_session("cli:b")
    assert await store.load_summary(a.id) is None

    await store.save_summary(a.id, Summary(4, "first summary", T0))
    await store.save_summary(b.id, Summary(2, "b's summary ✓", T0))
    await store.save_summary(a.id, Summary(10, "newer summary\nover two lines", T0 + timedelta(1)))

    assert await store.load_summary(a.id) == Summary(
        10, "newer summary\nover two lines", T0 + timedelta(1)
    )
    assert await store.load_summary(b.id) == Summary(2, "b's summary ✓", T0)
    assert await store.load_summary("ghost") is None


async def test_a_summary_for_an_unknown_session_is_refused(store: MemoryStore) -> None:
    with pytest.raises(SessionNotFoundError, match="'ghost'"):
        await store.save_summary("ghost", Summary(1, "lost", T0))
    assert await store.load_summary("ghost") is None


# Session locks


async def test_lock_session_lets_one_task_in_at_a_time_and_calls_on_wait(
    store: MemoryStore,
) -> None:
    events: list[str] = []
    waits: list[str] = []
    first_inside = asyncio.Event()

    def on_wait_for(name: str) -> LockWaitHandler:
        async def on_wait() -> None:
            waits.append(name)

        return on_wait

    async def turn(name: str) -> None:
        async with store.lock_session("s1", on_wait_for(name)):
            events.append(f"{name} start")
            first_inside.set()
            await asyncio.sleep(0.1)
            events.append(f"{name} end")

    first = asyncio.create_task(turn("first"))
    await first_inside.wait()
    second = asyncio.create_task(turn("second"))
    await asyncio.gather(first, second)

    assert events == ["first start", "first end", "second start", "second end"]
    assert waits == ["second"]


async def test_locks_of_different_sessions_do_not_wait_for_each_other(store: MemoryStore) -> None:
    waits: list[str] = []

    async def on_wait() -> None:
        waits.append("waited")

    async with store.lock_session("s1", on_wait):
        async with asyncio.timeout(5):
            async with store.lock_session("s2", on_wait):
                pass
    assert waits == []


async def test_a_lock_is_released_by_an_error_and_by_cancellation(store: MemoryStore) -> None:
    with pytest.raises(RuntimeError, match="turn failed"):
        async with store.lock_session("s1"):
            raise RuntimeError("turn failed")

    holding = asyncio.Event()

    async def cancelled_holder() -> None:
        async with store.lock_session("s1"):
            holding.set()
            await asyncio.sleep(60)

    holder = asyncio.create_task(cancelled_holder())
    await holding.wait()

    async def cancelled_waiter() -> None:
        async with store.lock_session("s1"):
            raise AssertionError("the waiter was cancelled before it got the lock")

    waiter = asyncio.create_task(cancelled_waiter())
    await asyncio.sleep(0.1)
    waiter.cancel()
    holder.cancel()
    for task in (holder, waiter):
        with pytest.raises(asyncio.CancelledError):
            await task

    async with asyncio.timeout(5):
        async with store.lock_session("s1"):
            pass
