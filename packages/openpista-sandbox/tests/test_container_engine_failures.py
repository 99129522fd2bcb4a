"""An engine that does not answer, or goes away mid-run: every request is bounded, the output
so far is kept, and the container left behind is removed by the next run."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from openpista.core.errors import ToolError
from openpista.core.tool import ToolContext
from openpista.sandbox.container_tool import ContainerRunTool
from openpista.sandbox.containers import ContainerEngine
from openpista.sandbox.testing import IMAGE, TestEngine

from .conftest import needs_engine
from .engine_proxy import EngineProxy

CONTEXT = ToolContext(session_id="s1", channel_id="cli:local")


@pytest.fixture
def silent_socket(tmp_path: Path) -> Iterator[str]:
    """A DOCKER_HOST that takes connections and never answers."""
    path = tmp_path / "docker.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(16)
    yield f"unix://{path}"
    listener.close()


@pytest.fixture
async def proxy(engine: TestEngine, tmp_path: Path) -> AsyncIterator[EngineProxy]:
    made = EngineProxy(engine.address, tmp_path / "proxy.sock")
    await made.start()
    yield made
    await made.stop()


async def test_an_engine_that_never_answers_fails_the_call_in_time(silent_socket: str) -> None:
    tool = ContainerRunTool(
        ContainerEngine(silent_socket, reply_timeout_s=0.5), image=IMAGE, timeout_s=1
    )
    try:
        with pytest.raises(ToolError) as raised:
            await tool.run({"command": "true"}, CONTEXT)
    finally:
        await tool.aclose()

    assert str(raised.value) == (
        f"no Docker engine answering at {silent_socket} (timed out after 0.5 s)"
    )


@needs_engine
async def test_a_run_whose_engine_stops_answering_ends_at_its_deadline(
    proxy: EngineProxy, engine: TestEngine
) -> None:
    # The engine takes the container but never answers the attach: a request with no read limit.
    proxy.hold = b"/attach"
    tool = ContainerRunTool(
        ContainerEngine(proxy.address, reply_timeout_s=0.5), image=IMAGE, timeout_s=1
    )
    try:
        with pytest.raises(ToolError) as raised:
            await tool.run({"command": "true"}, CONTEXT)
    finally:
        await tool.aclose()

    # The run's timeout, 1 s, plus four reply timeouts.
    assert str(raised.value) == (
        f"no Docker engine answering at {proxy.address} (timed out after 3 s)"
    )
    assert engine.containers() == []


@needs_engine
async def test_an_engine_going_away_keeps_the_output_and_the_next_run_cleans_up(
    proxy: EngineProxy, engine: TestEngine, caplog: pytest.LogCaptureFixture
) -> None:
    tool = ContainerRunTool(ContainerEngine(proxy.address), image=IMAGE, timeout_s=60)
    try:
        # Printed "part 1": the command's own text (in the engine's answers too) never matches.
        command = "echo part $((0 + 1)); sleep 60"
        run = asyncio.create_task(tool.run({"command": command}, CONTEXT))
        for _ in range(400):
            if b"part 1" in proxy.answered:
                break
            await asyncio.sleep(0.05)
        with caplog.at_level(logging.INFO, logger="openpista.sandbox"):
            await proxy.stop()
            output = await run
        left = engine.containers()

        await proxy.start()
        again = await tool.run({"command": "echo back"}, CONTEXT)
    finally:
        await tool.aclose()

    assert output.is_error
    assert output.text == (
        f"the Docker engine at {proxy.address} went away during the run; what it printed "
        "until then follows\n--- stdout ---\npart 1"
    )
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(left) == 1  # the engine could not be told to remove it then
    assert again.text == "exit code: 0\n--- stdout ---\nback"
    assert engine.containers() == []
