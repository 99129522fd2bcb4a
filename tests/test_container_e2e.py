"""container.run from the user's side: `openpista run -e` on a real Docker engine."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator

import pytest

from openpista.providers.testing import FakeChatCompletionsServer
from openpista.sandbox.testing import IMAGE, TestEngine, missing_requirement

from .conftest import Openpista, wait_for

MISSING = missing_requirement()
needs_engine = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


@pytest.fixture(scope="module")
def engine() -> Iterator[TestEngine]:
    with TestEngine() as started:
        yield started


@needs_engine
def test_a_model_runs_a_command_in_a_container_that_is_gone_afterwards(
    openpista: Openpista, llm: FakeChatCompletionsServer, engine: TestEngine
) -> None:
    openpista.env["DOCKER_HOST"] = engine.address
    openpista.write_config(f'[sandbox]\nimage = "{IMAGE}"\n')
    (openpista.home / "workspace").mkdir()
    (openpista.home / "workspace" / "data.csv").write_text("a,b\n1,2\n")
    command = "wc -l < /workspace/data.csv; id -u; ls /sys/class/net"
    llm.queue_tool_calls([("container_run", {"command": command})])
    llm.queue_tool_calls(
        [("container_run", {"command": """echo '{"rows": 2}'""", "result": "json"})]
    )
    llm.queue_text("The file has 2 lines.")

    result = openpista.run("run", "--json", "-e", "Count the lines of data.csv in a container")

    assert result.returncode == 0, result.stderr
    calls = json.loads(result.stdout)["tool_calls"]
    assert [(call["name"], call["ok"]) for call in calls] == [
        ("container.run", True),
        ("container.run", True),
    ]
    tool_messages = [
        message["content"] for message in llm.requests[2]["messages"] if message["role"] == "tool"
    ]
    assert tool_messages == ["exit code: 0\n--- stdout ---\n2\n1000\nlo", '{"rows": 2}']
    assert engine.containers() == []


@needs_engine
def test_sigterm_mid_run_removes_the_container(
    openpista: Openpista, llm: FakeChatCompletionsServer, engine: TestEngine
) -> None:
    openpista.env["DOCKER_HOST"] = engine.address
    openpista.write_config(f'[sandbox]\nimage = "{IMAGE}"\n')
    llm.queue_tool_calls([("container_run", {"command": "sleep 100"})])
    llm.queue_text("never reached")

    with openpista.popen("run", "-e", "sleep in a container") as process:
        assert wait_for(lambda: len(engine.containers()) == 1), "no container started"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)

    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert engine.containers() == []
