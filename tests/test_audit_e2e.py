"""`openpista audit` end to end: entries recorded through the store, read by the real command."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from openpista.core.models import AuditEntry
from openpista.core.store import open_store

from .conftest import Openpista

T0 = datetime(2026, 11, 30, 12, 0, 5, 250000, tzinfo=UTC)

ENTRIES = [
    AuditEntry(
        at=T0,
        session_id="s-telegram",
        channel_id="telegram:42",
        sender="alice",
        tool="system.run",
        arguments='{"command": "ls -la ~/photos"}',
        decision="allowed",
        decided_by="alice",
        ok=True,
        duration_ms=12.4,
        call_id="call_1",
    ),
    AuditEntry(
        at=T0 + timedelta(minutes=1),
        session_id="s-cli",
        channel_id="cli:local",
        sender=None,
        tool="screen.capture",
        arguments="{}",
        decision="auto",
        decided_by="policy",
        ok=True,
        duration_ms=2500.0,
        call_id="call_2",
    ),
    AuditEntry(
        at=T0 + timedelta(minutes=2),
        session_id="s-telegram",
        channel_id="telegram:42",
        sender="mallory\x1b[31m",
        tool="system.run",
        arguments='{"command": "echo \\u001b[2J; rm -rf /tmp/x\\n" ,\n  "pad": "'
        + "y" * 200
        + '"}\x1b[2J',
        decision="denied",
        decided_by="alice",
        ok=False,
        duration_ms=0.0,
        call_id="call_3",
        error="denied by alice",
    ),
    AuditEntry(
        at=T0 + timedelta(minutes=3),
        session_id="s-cli",
        channel_id="cli:local",
        sender=None,
        tool="skill.run",
        arguments='{"name": unterminated',
        decision="expired",
        decided_by="timeout",
        ok=False,
        duration_ms=300000.0,
        call_id="call_4",
        error="nobody answered within 300 s",
    ),
]


def record(openpista: Openpista, entries: list[AuditEntry]) -> None:
    async def go() -> None:
        async with await open_store(str(openpista.home / "memory.db")) as store:
            for entry in entries:
                await store.record_tool_call(entry)

    asyncio.run(go())


def test_audit_prints_one_line_per_call_newest_first(openpista: Openpista) -> None:
    record(openpista, ENTRIES)
    openpista.env["TZ"] = "Asia/Kolkata"  # UTC+05:30, no daylight saving: times are local

    result = openpista.run("audit")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    expired, denied, auto, allowed = lines
    assert allowed == (
        "2026-11-30 17:30:05  s-telegram  telegram:42  alice  system.run  allowed by alice  ok  "
        '12ms  {"command": "ls -la ~/photos"}'
    )
    assert auto == "2026-11-30 17:31:05  s-cli  cli:local  -  screen.capture  auto  ok  2.5s  {}"
    assert expired.startswith(
        "2026-11-30 17:33:05  s-cli  cli:local  -  skill.run  expired by timeout  failed  5m00s  "
    )
    assert expired.endswith("error: nobody answered within 300 s")
    # Nothing from the model or a remote user reaches the terminal raw.
    assert "\x1b" not in result.stdout
    assert "mallory\\x1b[31m" in denied
    arguments = denied.split("  0ms  ", 1)[1].split("  error: ")[0]
    assert len(arguments) == 80 and arguments.endswith("…")
    assert arguments.startswith('{"command": "echo \\u001b[2J; rm -rf /tmp/x\\n" , "pad": "yyy')
    assert denied.endswith("error: denied by alice")


def test_audit_json_filters_by_session_and_limits(openpista: Openpista) -> None:
    record(openpista, ENTRIES)

    result = openpista.run("audit", "--session", "s-telegram", "--json")

    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    assert [e["call_id"] for e in entries] == ["call_3", "call_1"]
    assert entries[1] == {
        "at": "2026-11-30T12:00:05.250000+00:00",
        "session_id": "s-telegram",
        "channel_id": "telegram:42",
        "sender": "alice",
        "tool": "system.run",
        "arguments": {"command": "ls -la ~/photos"},
        "decision": "allowed",
        "decided_by": "alice",
        "ok": True,
        "duration_ms": 12.4,
        "call_id": "call_1",
        "error": None,
    }
    assert entries[0]["arguments"] == ENTRIES[2].arguments  # not valid JSON: the raw text
    assert entries[0]["ok"] is False and entries[0]["error"] == "denied by alice"

    limited = json.loads(openpista.run("audit", "--limit", "1", "--json").stdout)
    assert [e["call_id"] for e in limited] == ["call_4"]
    assert limited[0]["arguments"] == '{"name": unterminated'


def test_audit_with_nothing_recorded_says_so(openpista: Openpista) -> None:
    result = openpista.run("audit")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "No tool calls recorded.\n"
    assert json.loads(openpista.run("audit", "--json").stdout) == []
    other = openpista.run("audit", "--session", "ghost\n")
    assert other.stdout == "No tool calls recorded for session ghost\\n.\n"


def test_audit_defaults_to_the_newest_fifty(openpista: Openpista) -> None:
    record(
        openpista,
        [
            AuditEntry(
                T0 + timedelta(seconds=i),
                "s",
                "cli:local",
                None,
                "t",
                "{}",
                "auto",
                "policy",
                True,
                1.0,
                f"call_{i}",
            )
            for i in range(55)
        ],
    )
    result = openpista.run("audit", "--json")
    assert result.returncode == 0, result.stderr
    calls = [e["call_id"] for e in json.loads(result.stdout)]
    assert calls == [f"call_{i}" for i in range(54, 4, -1)]
    refused = openpista.run("audit", "--limit", "-1")
    assert refused.returncode == 2
    assert "--limit" in refused.stderr
