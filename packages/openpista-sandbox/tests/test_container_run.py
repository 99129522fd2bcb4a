"""container.run on a real Docker engine: what the command gets, what it cannot do, and that no
container outlives its call."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from openpista.core import plugins
from openpista.core.config import Config, SandboxConfig, SkillsConfig
from openpista.core.errors import ToolError
from openpista.core.tool import ToolContext
from openpista.sandbox.container_tool import ContainerRunTool
from openpista.sandbox.containers import ContainerEngine, ContainerSpec
from openpista.sandbox.credentials import TASK_CREDENTIALS, TASK_TOKEN_ENV
from openpista.sandbox.testing import IMAGE, IMAGE_UID, ROOT_IMAGE, TestEngine

from .conftest import needs_engine

pytestmark = needs_engine
CONTEXT = ToolContext(session_id="s1", channel_id="cli:local")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "workspace"
    folder.mkdir()
    (folder / "notes.txt").write_text("read me\n")
    return folder


@pytest.fixture
async def tool(engine: TestEngine, workspace: Path) -> AsyncIterator[ContainerRunTool]:
    made = ContainerRunTool(
        ContainerEngine(engine.address), image=IMAGE, timeout_s=20, workspace=workspace
    )
    yield made
    await made.aclose()


async def _wait_for(predicate: Callable[[], bool], within: float = 20.0) -> bool:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return False


def _contents(folder: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in folder.iterdir()}


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has ended."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


async def test_output_and_exit_code_come_back_and_no_container_is_left(
    tool: ContainerRunTool, engine: TestEngine
) -> None:
    output = await tool.run({"command": "echo out; echo err >&2; exit 3"}, CONTEXT)

    assert output.is_error
    assert output.text == "exit code: 3\n--- stdout ---\nout\n--- stderr ---\nerr"
    assert engine.containers() == []


async def test_a_successful_command(tool: ContainerRunTool) -> None:
    output = await tool.run({"command": "cat /workspace/notes.txt"}, CONTEXT)

    assert not output.is_error
    assert output.text == "exit code: 0\n--- stdout ---\nread me"


async def test_a_memory_hog_is_killed_and_reported(
    tool: ContainerRunTool, engine: TestEngine
) -> None:
    # Doubling a string until the limit: memory really touched, nothing to optimise away.
    hog = """awk 'BEGIN { s = "x"; while (1) s = s s }'"""

    output = await tool.run({"command": hog, "memory_mb": 32}, CONTEXT)

    assert output.is_error
    assert output.text.startswith("killed: out of memory (limit 32 MB)"), output.text
    assert engine.containers() == []


async def test_a_timeout_is_reported_and_the_container_removed(
    tool: ContainerRunTool, engine: TestEngine
) -> None:
    output = await tool.run({"command": "echo started; sleep 60", "timeout_s": 1}, CONTEXT)

    assert output.is_error
    assert output.text.startswith("timed out after 1 s, container removed")
    assert "started" in output.text  # what it printed before the timeout is kept
    assert engine.containers() == []


async def test_there_is_no_network(tool: ContainerRunTool) -> None:
    output = await tool.run(
        {"command": "ls /sys/class/net; nc -w 2 192.0.2.1 80 </dev/null; echo nc=$?"}, CONTEXT
    )

    lines = output.text.splitlines()
    assert lines[2] == "lo"  # the only interface
    assert "nc=1" in lines
    assert "Network is unreachable" in output.text


async def test_root_and_workspace_are_read_only_and_tmp_is_writable(
    tool: ContainerRunTool, workspace: Path
) -> None:
    output = await tool.run(
        {
            "command": (
                "touch /newfile || echo root=ro; "
                "touch /workspace/new || echo workspace=ro; "
                "echo hi > /workspace/notes.txt || echo notes=ro; "
                "echo kept > /tmp/t && cat /tmp/t"
            )
        },
        CONTEXT,
    )

    assert output.text.splitlines()[2:6] == ["root=ro", "workspace=ro", "notes=ro", "kept"]
    assert "Read-only file system" in output.text
    assert _contents(workspace) == {"notes.txt": "read me\n"}


async def test_the_user_is_not_root(tool: ContainerRunTool) -> None:
    own_user = await tool.run({"command": "id -u"}, CONTEXT)
    root_image = await tool.run({"command": "id -u; id -g", "image": ROOT_IMAGE}, CONTEXT)

    assert own_user.text.splitlines()[-1] == str(IMAGE_UID)  # the image's USER
    assert root_image.text.splitlines()[-2:] == ["65534", "65534"]  # root images: nobody


async def test_capabilities_are_dropped_and_privileges_cannot_grow(tool: ContainerRunTool) -> None:
    output = await tool.run(
        {"command": "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status"}, CONTEXT
    )

    fields = dict(line.split(":\t") for line in output.text.splitlines()[2:])
    assert fields == {"CapEff": "0000000000000000", "CapBnd": "0000000000000000", "NoNewPrivs": "1"}


async def test_processes_are_limited(tool: ContainerRunTool) -> None:
    output = await tool.run(
        {"command": "for i in $(seq 400); do sleep 30 & done; echo done"}, CONTEXT
    )

    assert "can't fork" in output.text


async def test_the_task_token_is_there_during_the_run_only(
    tool: ContainerRunTool, engine: TestEngine, workspace: Path
) -> None:
    # The container waits for a file the test creates, so the test can look at it running.
    command = (
        "until [ -e /workspace/go ]; do sleep 0.05; done; "
        # Hex gets through redaction (docs/tools.md says so): it shows what the container had.
        f'printf %s "${TASK_TOKEN_ENV}" | od -An -tx1 | tr -d " \\n"; echo; '
        f'echo "${TASK_TOKEN_ENV}"; echo "$OPENPISTA_TASK_ID"; '
        f'echo "${TASK_TOKEN_ENV}" | rev; echo "${TASK_TOKEN_ENV}" | base64; '
        f'echo "${TASK_TOKEN_ENV}" | cut -c1-16; echo "${TASK_TOKEN_ENV}" | cut -c20-'
    )
    run = asyncio.create_task(tool.run({"command": command}, CONTEXT))
    assert await _wait_for(lambda: len(engine.containers()) == 1)
    (container,) = engine.containers()
    env = json.loads(engine.docker("inspect", "--format", "{{json .Config.Env}}", container))
    token = next(item.split("=", 1)[1] for item in env if item.startswith(f"{TASK_TOKEN_ENV}="))
    (task_id,) = TASK_CREDENTIALS.active_tasks()
    assert TASK_CREDENTIALS.verify(task_id, token)

    (workspace / "go").touch()
    output = await run

    hex_token, shown, printed_task, *transformed = output.text.splitlines()[2:]
    assert bytes.fromhex(hex_token).decode() == token  # it was in the container's environment
    assert shown == "[task token]"  # printed as is, it never reaches the model
    assert token not in output.text
    assert printed_task == task_id
    # Reversed, in base64 (a few characters mixing in the newline stay), 16+ character pieces.
    assert transformed[0] == "[task token]"
    assert transformed[1].startswith("[task token]") and len(transformed[1]) <= 16
    assert transformed[2:] == ["[task token]", "[task token]"]
    assert not TASK_CREDENTIALS.verify(task_id, token)
    assert TASK_CREDENTIALS.active_tasks() == []


async def test_a_worker_result_comes_back_as_json(tool: ContainerRunTool) -> None:
    command = """echo working >&2; echo '{"sum": 3, "items": ["a", "b"]}'"""

    output = await tool.run({"command": command, "result": "json"}, CONTEXT)

    assert not output.is_error
    assert json.loads(output.text) == {"sum": 3, "items": ["a", "b"]}


async def test_a_worker_printing_no_json_is_an_error(tool: ContainerRunTool) -> None:
    with pytest.raises(
        ToolError, match=r"the worker printed no valid JSON on stdout .*stdout: done"
    ):
        await tool.run({"command": "echo done", "result": "json"}, CONTEXT)


async def test_a_failed_worker_reports_how_it_failed(tool: ContainerRunTool) -> None:
    output = await tool.run({"command": "echo broken >&2; exit 2", "result": "json"}, CONTEXT)

    assert output.is_error
    assert output.text == "exit code: 2\n--- stderr ---\nbroken"


async def test_output_is_bounded(engine: TestEngine, workspace: Path) -> None:
    tool = ContainerRunTool(
        ContainerEngine(engine.address), image=IMAGE, workspace=workspace, max_output_chars=500
    )
    try:
        output = await tool.run({"command": "yes | head -c 3000000"}, CONTEXT)
    finally:
        await tool.aclose()

    assert "(stdout went on for 1,951,424 more bytes than are kept here)" in output.text
    assert "more characters not shown" in output.text
    assert len(output.text) < 700


async def test_a_cancelled_call_removes_its_container(
    tool: ContainerRunTool, engine: TestEngine
) -> None:
    run = asyncio.create_task(tool.run({"command": "sleep 60"}, CONTEXT))
    assert await _wait_for(lambda: len(engine.containers()) == 1)

    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run

    assert engine.containers() == []
    assert TASK_CREDENTIALS.active_tasks() == []


async def test_a_container_left_by_a_dead_process_is_removed(
    tool: ContainerRunTool, engine: TestEngine, dead_pid: int
) -> None:
    labels = {"openpista.task": "stale", "openpista.pid": str(dead_pid)}
    labels["openpista.host"] = socket.gethostname()
    flags = [item for key, value in labels.items() for item in ("--label", f"{key}={value}")]
    stale = engine.docker("create", *flags, IMAGE, "sleep", "60").strip()
    alive = {"openpista.task": "alive", "openpista.pid": str(os.getpid())}
    alive["openpista.host"] = socket.gethostname()
    flags = [item for key, value in alive.items() for item in ("--label", f"{key}={value}")]
    kept = engine.docker("create", *flags, IMAGE, "sleep", "60").strip()

    await tool.run({"command": "true"}, CONTEXT)  # the first run on this engine cleans up

    remaining = engine.containers()
    assert stale[:12] not in remaining
    assert kept[:12] in remaining  # its process (this one) still lives
    engine.docker("rm", "-f", kept)


async def test_limits_above_the_caps_run_at_the_cap(tool: ContainerRunTool) -> None:
    output = await tool.run({"command": "true", "timeout_s": 10000}, CONTEXT)

    assert output.text.splitlines()[0] == "note: timeout_s 10000 is above the limit; ran with 200"


async def test_bad_arguments_are_refused(tool: ContainerRunTool) -> None:
    with pytest.raises(ToolError, match="needs `command`"):
        await tool.run({"command": " "}, CONTEXT)
    with pytest.raises(ToolError, match="`memory_mb` must be at least 16, got 8"):
        await tool.run({"command": "true", "memory_mb": 8}, CONTEXT)
    with pytest.raises(ToolError, match="`timeout_s` must be a finite number, got inf"):
        await tool.run({"command": "true", "timeout_s": float("inf")}, CONTEXT)
    with pytest.raises(ToolError, match="`cpus` must be a finite number, got nan"):
        await tool.run({"command": "true", "cpus": float("nan")}, CONTEXT)
    with pytest.raises(ToolError, match='`result` must be "text" or "json"'):
        await tool.run({"command": "true", "result": "xml"}, CONTEXT)


async def test_a_container_skill_lends_its_image_and_folder(
    tool: ContainerRunTool, workspace: Path
) -> None:
    skill = workspace / "rooted"
    skill.mkdir()
    (skill / "SKILL.md").write_text(
        f"---\nname: rooted\nmode: container\nimage: {ROOT_IMAGE}\n---\n"
    )
    (skill / "data.txt").write_text("skill data\n")

    output = await tool.run({"command": "pwd; cat data.txt; id -u", "skill": "rooted"}, CONTEXT)

    assert output.text.splitlines()[2:] == ["/skill", "skill data", "65534"]


async def test_without_an_engine_the_call_says_where_it_looked(
    dead_socket: str, workspace: Path
) -> None:
    tool = ContainerRunTool(ContainerEngine(dead_socket), image=IMAGE, workspace=workspace)
    try:
        with pytest.raises(ToolError, match=f"no Docker engine at {dead_socket}"):
            await tool.run({"command": "true"}, CONTEXT)
    finally:
        await tool.aclose()


async def test_the_entry_point_builds_the_tool_from_the_sandbox_section(
    engine: TestEngine, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", engine.address)
    config = Config(
        sandbox=SandboxConfig(image=IMAGE, memory_mb=64, timeout_s=5),
        skills=SkillsConfig(workspace=str(workspace)),
    )
    (tool,) = plugins.load(plugins.TOOLS_GROUP, "container")(config)
    assert isinstance(tool, ContainerRunTool)
    # cgroup v1 (these machines) or v2.
    limit = (
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null"
        " || cat /sys/fs/cgroup/memory.max"
    )
    try:
        assert tool.name == "container.run"
        assert tool.requires_approval is True
        output = await tool.run({"command": limit}, CONTEXT)
    finally:
        await tool.aclose()

    assert str(64 * 1024 * 1024) in output.text


async def test_a_tiny_cpu_limit_is_refused_and_the_smallest_one_is_a_real_quota(
    tool: ContainerRunTool, engine: TestEngine
) -> None:
    # cgroup v1 (these machines) or v2: 1 ms of CPU per 100 ms period.
    quota = "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max"

    with pytest.raises(ToolError, match=r"^container.run `cpus` must be at least 0.01, got 1e-09$"):
        await tool.run({"command": "true", "cpus": 1e-9}, CONTEXT)
    smallest = await tool.run({"command": quota, "cpus": 0.01}, CONTEXT)
    with pytest.raises(ToolError, match=r"CPU limit must be at least 0.01: 1e-06"):
        await tool.engine.run(
            ContainerSpec(image=IMAGE, command=["true"], timeout_s=5, memory_mb=64, cpus=1e-6)
        )

    assert smallest.text.splitlines()[2] in ("1000", "1000 100000")
    assert engine.containers() == []


async def test_skill_takes_only_container_skills(tool: ContainerRunTool, workspace: Path) -> None:
    for folder, front in (
        ("wasm-skill", "name: ../../etc\nmode: wasm\n"),
        ("plain", "name: plain\nmode: subprocess\n"),
        ("boxed", f"name: boxed\nmode: container\nimage: {IMAGE}\n"),
    ):
        (workspace / folder).mkdir()
        (workspace / folder / "SKILL.md").write_text(f"---\n{front}---\n")

    with pytest.raises(ToolError) as wasm:
        await tool.run({"command": "true", "skill": "../../etc"}, CONTEXT)
    with pytest.raises(ToolError) as plain:
        await tool.run({"command": "true", "skill": "plain"}, CONTEXT)

    assert str(wasm.value) == (
        "skill '../../etc' is a wasm skill, and container.run `skill` takes only container "
        "skills (mode: container): boxed"
    )
    assert str(plain.value).startswith("skill 'plain' is a subprocess skill, and container.run")


async def test_a_worker_printing_nan_or_too_much_is_refused_saying_why(
    tool: ContainerRunTool,
) -> None:
    with pytest.raises(ToolError) as nan:
        await tool.run({"command": """echo '{"a": NaN}'""", "result": "json"}, CONTEXT)
    # Valid JSON, a string of 2 MiB: over the 1 MiB of stdout kept.
    big = """printf '"'; head -c 2097152 /dev/zero | tr '\\0' x; printf '"'"""
    with pytest.raises(ToolError) as too_big:
        await tool.run({"command": big, "result": "json"}, CONTEXT)

    assert str(nan.value) == (
        "the worker printed no valid JSON on stdout: NaN is no JSON value "
        "(JSON has no NaN or Infinity)"
    )
    assert str(too_big.value) == (
        "the worker's stdout was over the 1 MiB a result may hold (1,048,578 bytes more); "
        "have it print a smaller one"
    )
