"""Session locks across real processes: two interpreters on one SQLite file take turns."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from openpista.core.store import open_store

# One process: wait until every process is ready, then run TURNS turns on one session, each
# appending a "start" and an "end" message with a pause between them while holding the lock.
TAKE_TURNS = """
import asyncio, json, sys, time
from pathlib import Path
from openpista.core.models import Message
from openpista.core.store import open_store

TURNS = 3

async def main(db, name, ready_dir, processes):
    store = await open_store(db)
    waits = 0

    async def on_wait():
        nonlocal waits
        waits += 1

    (Path(ready_dir) / name).touch()
    deadline = time.monotonic() + 60
    while len(list(Path(ready_dir).iterdir())) < processes:
        assert time.monotonic() < deadline, "the other process never got ready"
        await asyncio.sleep(0.01)
    for turn in range(TURNS):
        async with store.lock_session("shared", on_wait):
            await store.append_messages("shared", [Message("user", f"{name}{turn} start")])
            await asyncio.sleep(0.2)
            await store.append_messages("shared", [Message("user", f"{name}{turn} end")])
        await asyncio.sleep(0)
    await store.aclose()
    print(json.dumps({"waits": waits}))

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
"""


async def test_two_processes_never_interleave_turns_of_one_session(tmp_path: Path) -> None:
    db_path = tmp_path / "memory.db"
    ready = tmp_path / "ready"
    ready.mkdir()
    async with await open_store(str(db_path)) as store:
        await store.create_session("cli:local", session_id="shared")

    names = ["a", "b"]

    async def take_turns(name: str) -> dict[str, int]:
        process = await asyncio.create_subprocess_exec(
            *[sys.executable, "-c", TAKE_TURNS, str(db_path), name, str(ready), str(len(names))],
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode == 0, stderr.decode()
        return json.loads(stdout)

    reports = await asyncio.gather(*(take_turns(name) for name in names))

    async with await open_store(str(db_path)) as store:
        markers = [m.content for m in await store.load_messages("shared")]

    assert len(markers) == 2 * 3 * len(names)
    for start in range(0, len(markers), 2):
        turn = markers[start].removesuffix(" start")
        assert markers[start : start + 2] == [f"{turn} start", f"{turn} end"], markers
    assert {marker[0] for marker in markers} == set(names)
    # Both were ready before either began, so at least one had to wait for the other.
    assert sum(report["waits"] for report in reports) >= 1
