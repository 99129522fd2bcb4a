"""`mode: container` skills through skill.run: in their image on a real engine, and without an
engine either as subprocesses with a warning or refused (`[sandbox] require_container`)."""

from __future__ import annotations

import getpass
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from openpista.core import plugins
from openpista.core.config import Config, SandboxConfig, SkillsConfig
from openpista.core.errors import ToolError
from openpista.core.skills import SkillLoader, SkillRunTool
from openpista.core.tool import ToolContext
from openpista.sandbox.container_skills import ContainerSkillRunner
from openpista.sandbox.testing import IMAGE, IMAGE_UID, TestEngine

from .conftest import needs_engine

CONTEXT = ToolContext(session_id="s1", channel_id="cli:local")
ECHO_SKILL = """\
read -r args
echo "stdin: $args"
echo "env: $OPENPISTA_SKILL_ARGS"
echo "uid: $(id -u) dir: $(pwd)"
touch /skill/new 2>/dev/null || echo "skill folder: read-only"
"""


def _skill(workspace: Path, name: str, script: str, front: str = "") -> Path:
    folder = workspace / name
    folder.mkdir(parents=True)
    (folder / "SKILL.md").write_text(
        f"---\nname: {name}\ndescription: test\nmode: container\nimage: {IMAGE}\n{front}---\n"
    )
    (folder / "run.sh").write_text(script)
    return folder


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "workspace"
    _skill(folder, "echo", ECHO_SKILL)
    _skill(folder, "sleepy", "sleep 30\n", front="timeout_s: 1\n")
    _skill(folder, "broken", "echo 'disk on fire' >&2\nexit 7\n")
    return folder


SkillRunFactory = Callable[..., SkillRunTool]


@pytest.fixture
async def skill_run(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[SkillRunFactory]:
    """Makes skill.run as openpista does: runners from the entry points, for a config and
    DOCKER_HOST; closes them afterwards."""
    made: list[SkillRunTool] = []

    def make(docker_host: str, *, require_container: bool = False) -> SkillRunTool:
        monkeypatch.setenv("DOCKER_HOST", docker_host)
        config = Config(
            sandbox=SandboxConfig(require_container=require_container, memory_mb=64),
            skills=SkillsConfig(workspace=str(workspace)),
        )
        runners = {
            mode: plugins.load(plugins.SKILL_RUNNERS_GROUP, mode)(config)
            for mode in ("subprocess", "container")
        }
        tool = SkillRunTool(SkillLoader(workspace), runners=runners)
        made.append(tool)
        return tool

    yield make
    for tool in made:
        await tool.aclose()


@needs_engine
async def test_a_container_skill_runs_in_its_image_with_its_args(
    skill_run: SkillRunFactory, engine: TestEngine
) -> None:
    tool = skill_run(engine.address)

    output = await tool.run({"name": "echo", "args": {"who": "Ada"}}, CONTEXT)

    assert output.text.splitlines() == [
        'stdin: {"who": "Ada"}',
        'env: {"who": "Ada"}',
        f"uid: {IMAGE_UID} dir: /skill",
        "skill folder: read-only",
    ]
    assert engine.containers() == []


@needs_engine
async def test_a_container_skill_timeout_and_failure_are_tool_errors(
    skill_run: SkillRunFactory, engine: TestEngine
) -> None:
    tool = skill_run(engine.address)

    with pytest.raises(ToolError, match=r"^skill sleepy timed out after 1 s, container removed$"):
        await tool.run({"name": "sleepy"}, CONTEXT)
    with pytest.raises(ToolError, match=r"^skill broken exited with code 7: disk on fire$"):
        await tool.run({"name": "broken"}, CONTEXT)
    assert engine.containers() == []


async def test_without_an_engine_the_skill_runs_as_a_subprocess_with_a_warning(
    skill_run: SkillRunFactory, dead_socket: str, workspace: Path
) -> None:
    tool = skill_run(dead_socket)

    output = await tool.run({"name": "echo", "args": {"who": "Ada"}}, CONTEXT)

    warning, *lines = output.text.splitlines()
    assert warning == (
        f"warning: no Docker engine at {dead_socket} (Connection refused), so container skill "
        "echo ran as a subprocess on this machine, without the container's isolation or "
        f"limits: no /workspace or /skill mounts, as the user {getpass.getuser()} in the skill "
        f"folder {workspace / 'echo'}"
    )
    assert lines[:2] == ['stdin: {"who": "Ada"}', 'env: {"who": "Ada"}']


async def test_a_failing_fallback_run_carries_the_warning_too(
    skill_run: SkillRunFactory, dead_socket: str
) -> None:
    tool = skill_run(dead_socket)

    with pytest.raises(ToolError) as timed_out:
        await tool.run({"name": "sleepy"}, CONTEXT)
    with pytest.raises(ToolError) as broken:
        await tool.run({"name": "broken"}, CONTEXT)

    warning, end = str(timed_out.value).split("\n")
    assert warning.startswith(f"warning: no Docker engine at {dead_socket} (Connection refused)")
    assert "container skill sleepy ran as a subprocess" in warning
    assert end == "skill sleepy timed out after 1 s"
    assert str(broken.value).startswith("warning: no Docker engine at ")
    assert "disk on fire" in str(broken.value)


async def test_require_container_refuses_without_an_engine(
    skill_run: SkillRunFactory, dead_socket: str, workspace: Path
) -> None:
    tool = skill_run(dead_socket, require_container=True)

    with pytest.raises(ToolError) as raised:
        await tool.run({"name": "echo"}, CONTEXT)

    assert str(raised.value) == (
        f"skill echo needs a container and no Docker engine at {dead_socket} (Connection "
        "refused); it was not run (sandbox.require_container = true: start the Docker engine, "
        "or set it to false to let container skills run as subprocesses)"
    )


@needs_engine
async def test_availability_says_what_is_missing(
    skill_run: SkillRunFactory, engine: TestEngine, dead_socket: str, workspace: Path
) -> None:
    runner = skill_run(engine.address).runners["container"]
    assert isinstance(runner, ContainerSkillRunner)
    skills = {skill.name: skill for skill in SkillLoader(workspace).discover()}
    _skill(workspace, "absent", "true\n", front="")
    (workspace / "absent" / "SKILL.md").write_text(
        "---\nname: absent\nmode: container\nimage: openpista/absent:none\n---\n"
    )
    absent = next(s for s in SkillLoader(workspace).discover() if s.name == "absent")

    assert runner.availability() is None
    assert runner.skill_availability(skills["echo"]) is None
    assert runner.skill_availability(absent) == (
        "image openpista/absent:none is not on the engine yet (pulled on first use)"
    )

    down = skill_run(dead_socket).runners["container"]
    strict = skill_run(dead_socket, require_container=True).runners["container"]
    assert isinstance(down, ContainerSkillRunner) and isinstance(strict, ContainerSkillRunner)
    assert down.availability() == (
        f"no Docker engine at {dead_socket} (Connection refused); "
        "container skills run as subprocesses instead"
    )
    assert strict.skill_availability(skills["echo"]) == (
        f"no Docker engine at {dead_socket} (Connection refused); "
        "container skills refuse to run (sandbox.require_container)"
    )
