"""Tool lifecycle across libraries: a third-party distribution's async tool factory whose tool
holds a real process from its first call until openpista stops, and its own skill runner.

The distribution is installed for real (a dist-info folder with entry points and a module on
sys.path), which is how importlib.metadata finds any third-party plugin.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from openpista.cli.runtime import create_tools, open_runtime
from openpista.core.config import Config, load_config
from openpista.core.models import ToolCall
from openpista.core.skills import SkillLoader
from openpista.core.tool import ToolContext

CONTEXT = ToolContext(session_id="s1", channel_id="test:1")

PLUGIN = '''
import asyncio

from openpista.core.tool import ToolOutput

OPENED = []  # every process a tool started, for the test to inspect
CLOSED = []  # names of tools whose aclose() ran
FAIL_FACTORY = False


class HeldProcessTool:
    """Starts a long-running process on first use and keeps it until aclose()."""

    name = "acme.hold"
    description = "Hold a process open."
    parameters = {"type": "object"}
    serial_group = "acme"

    def __init__(self):
        self.process = None

    async def run(self, arguments, context):
        if self.process is None:
            self.process = await asyncio.create_subprocess_exec("sleep", "60")
            OPENED.append(self.process)
        return ToolOutput(f"holding pid {self.process.pid}")

    async def aclose(self):
        CLOSED.append(self.name)
        if self.process is not None:
            self.process.kill()
            await self.process.wait()


async def create_tools(config):
    await asyncio.sleep(0)  # an async factory: it could connect to something here
    return [HeldProcessTool()]


def create_failing_tools(config):
    if FAIL_FACTORY:
        raise RuntimeError("the acme broken tool set failed to start")
    return []


class EchoWasmRunner:
    def __init__(self, config):
        self.timeout_s = config.tools["shell"].timeout_s

    async def run(self, skill, args, context):
        return ToolOutput(f"wasm ran {skill.name} with {args} for {context.session_id}")
'''


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The acme-openpista distribution, installed: tool sets `acme` and `zz-broken`, runner wasm."""
    site = tmp_path / "site"
    dist_info = site / "acme_openpista-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-openpista\nVersion: 1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "[openpista.tools]\n"
        "acme = acme_openpista_tools:create_tools\n"
        "zz-broken = acme_openpista_tools:create_failing_tools\n"
        "\n"
        "[openpista.skill_runners]\n"
        "wasm = acme_openpista_tools:EchoWasmRunner\n"
    )
    (site / "acme_openpista_tools.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(site))
    import acme_openpista_tools  # pyright: ignore[reportMissingImports]

    module: ModuleType = acme_openpista_tools  # pyright: ignore[reportUnknownVariableType]
    yield module
    for process in module.OPENED:
        if process.returncode is None:
            process.kill()
    sys.modules.pop("acme_openpista_tools", None)


def config_for(home: Path) -> Config:
    return load_config(
        home / "config.toml",
        {
            "OPENPISTA_HOME": str(home),
            "OPENPISTA_PROVIDER": "openai",
            "OPENAI_API_KEY": "sk-test-key",
            "OPENPISTA_BASE_URL": "http://127.0.0.1:9/v1",
            "OPENPISTA_DATABASE_URL": str(home / "memory.db"),
        },
    )


async def test_an_async_factorys_tool_keeps_its_process_until_the_runtime_closes(
    acme: Any, tmp_path: Path
) -> None:
    async with open_runtime(config_for(tmp_path)) as runtime:
        assert "acme.hold" in runtime.tools
        first = await runtime.tools.dispatch(ToolCall("c1", "acme_hold", "{}"), CONTEXT)
        second = await runtime.tools.dispatch(ToolCall("c2", "acme.hold", "{}"), CONTEXT)
        assert first.output == second.output  # one process, opened on first use
        (process,) = acme.OPENED
        assert process.returncode is None
    assert acme.CLOSED == ["acme.hold"]
    assert process.returncode is not None


async def test_a_failing_tool_set_closes_the_tools_already_made(acme: Any, tmp_path: Path) -> None:
    acme.FAIL_FACTORY = True
    with pytest.raises(RuntimeError, match="acme broken tool set failed"):
        await create_tools(config_for(tmp_path), SkillLoader(tmp_path / "workspace"))
    assert acme.CLOSED == ["acme.hold"]


async def test_a_third_party_skill_runner_runs_its_mode(acme: Any, tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    (workspace / "hello-wasm").mkdir(parents=True)
    (workspace / "hello-wasm" / "SKILL.md").write_text("---\nmode: wasm\n---\nSays hello.\n")
    (workspace / "echo").mkdir()
    (workspace / "echo" / "SKILL.md").write_text("Echoes.\n")
    (workspace / "echo" / "run.sh").write_text("echo subprocess still works\n")
    tools = await create_tools(config_for(tmp_path), SkillLoader(workspace))
    try:
        wasm = await tools.dispatch(
            ToolCall("c1", "skill.run", '{"name": "hello-wasm", "args": {"n": 1}}'), CONTEXT
        )
        assert (wasm.output, wasm.is_error) == ("wasm ran hello-wasm with {'n': 1} for s1", False)
        echo = await tools.dispatch(ToolCall("c2", "skill.run", '{"name": "echo"}'), CONTEXT)
        assert echo.output == "subprocess still works\n"
    finally:
        await tools.aclose()
