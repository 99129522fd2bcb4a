"""The wasm skill runner against real WASI modules (C sources and builds in wasm/)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from openpista.core.config import load_config
from openpista.core.errors import ToolError
from openpista.core.skills import Skill, SkillLoader, SkillRunTool
from openpista.core.tool import ToolContext
from openpista.sandbox.wasm import WasmSkillRunner
from openpista.sandbox.wasm.module_file import MAX_MODULE_BYTES

from .wasm_skills import install_wasm_skill, install_wat_skill

CONTEXT = ToolContext(session_id="s", channel_id="test:local")


def make_runner(workspace: Path, tmp_path: Path, **options: int) -> WasmSkillRunner:
    return WasmSkillRunner(workspace, tmp_path / "home-cache", **options)


def skill_named(workspace: Path, name: str) -> Skill:
    return next(skill for skill in SkillLoader(workspace).discover() if skill.name == name)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "workspace"
    folder.mkdir()
    return folder


async def test_args_arrive_as_json_on_stdin_and_stdout_is_the_result(
    workspace: Path, tmp_path: Path
) -> None:
    install_wasm_skill(workspace, "echo")
    args = {"name": "Zoë ☃", "nested": {"list": [1, 2.5, None, True]}, "quote": 'a "b" \\ c'}
    output = await make_runner(workspace, tmp_path).run(
        skill_named(workspace, "echo"), args, CONTEXT
    )
    assert json.loads(output.text) == args
    assert not output.is_error


async def test_skill_run_reaches_the_runner_through_its_mode(
    workspace: Path, tmp_path: Path
) -> None:
    install_wasm_skill(workspace, "echo")
    tool = SkillRunTool(SkillLoader(workspace), runners={"wasm": make_runner(workspace, tmp_path)})
    output = await tool.run({"name": "echo", "args": {"x": 1}}, CONTEXT)
    assert json.loads(output.text) == {"x": 1}


async def test_the_workspace_is_readable_but_no_write_of_any_kind_gets_through(
    workspace: Path, tmp_path: Path
) -> None:
    install_wasm_skill(workspace, "confined")
    (workspace / "inside.txt").write_text("keep me")

    output = await make_runner(workspace, tmp_path).run(
        skill_named(workspace, "confined"), {}, CONTEXT
    )

    lines = output.text.splitlines()
    assert "read /workspace/inside.txt: ok" in lines
    assert "list /workspace: ok" in lines
    for attempt in (
        "create /workspace/new.txt",
        "append to /workspace/inside.txt",
        "truncate /workspace/inside.txt",
        "mkdir /workspace/newdir",
        "unlink /workspace/inside.txt",
        "rename /workspace/inside.txt",
    ):
        assert any(line.startswith(f"{attempt}: denied") for line in lines), (attempt, lines)
    assert (workspace / "inside.txt").read_text() == "keep me"
    assert sorted(os.listdir(workspace)) == ["inside.txt", "skills"]


async def test_nothing_outside_the_workspace_is_reachable(workspace: Path, tmp_path: Path) -> None:
    install_wasm_skill(workspace, "confined")
    (workspace / "inside.txt").write_text("x")
    (tmp_path / "outside.txt").write_text("secret")
    (workspace / "link-out").symlink_to(tmp_path)

    output = await make_runner(workspace, tmp_path).run(
        skill_named(workspace, "confined"), {}, CONTEXT
    )

    lines = output.text.splitlines()
    for attempt in (
        "read /workspace/../outside.txt",
        "read /workspace/link-out/outside.txt",
        "read /etc/passwd",
        "list /",
        "list /tmp",
    ):
        assert any(line.startswith(f"{attempt}: denied") for line in lines), (attempt, lines)
    assert "environment variables: 0" in lines


async def test_an_endless_loop_is_stopped_at_the_skills_time_limit(
    workspace: Path, tmp_path: Path
) -> None:
    install_wasm_skill(workspace, "spin", front_matter="timeout_s: 0.5\n")
    with pytest.raises(ToolError, match=r"^skill spin timed out after 0\.5 s$"):
        await make_runner(workspace, tmp_path).run(skill_named(workspace, "spin"), {}, CONTEXT)


async def test_the_default_time_limit_applies_when_the_skill_sets_none(
    workspace: Path, tmp_path: Path
) -> None:
    install_wasm_skill(workspace, "spin")
    runner = WasmSkillRunner(workspace, tmp_path / "cache", default_timeout_s=0.3)
    with pytest.raises(ToolError, match=r"timed out after 0\.3 s"):
        await runner.run(skill_named(workspace, "spin"), {}, CONTEXT)
    assert WasmSkillRunner(workspace, tmp_path).default_timeout_s == 30


def guest_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"wasm skill {name}"]


async def test_a_guest_asleep_in_a_host_call_is_really_stopped(
    workspace: Path, tmp_path: Path
) -> None:
    # sleep() blocks in WASI's poll_oneoff, where the epoch is not checked; the guest holds
    # 60 MB. At the limit it is woken and ended: no thread (and no memory) is left behind.
    install_wasm_skill(workspace, "stuck", front_matter="timeout_s: 0.3\n")
    runner = make_runner(workspace, tmp_path)
    for _ in range(8):
        with pytest.raises(ToolError, match=r"^skill stuck timed out after 0\.3 s$"):
            await runner.run(skill_named(workspace, "stuck"), {}, CONTEXT)
    for thread in guest_threads("stuck"):
        thread.join(timeout=30)
    assert guest_threads("stuck") == []


async def test_sleeps_and_polls_that_end_by_themselves_still_work(
    workspace: Path, tmp_path: Path
) -> None:
    install_wasm_skill(workspace, "naps")
    output = await make_runner(workspace, tmp_path).run(
        skill_named(workspace, "naps"), {"a": 1}, CONTEXT
    )
    assert output.text.splitlines() == [
        "nanosleep 50 ms: returned 0, took at least 50 ms: yes",
        "poll stdin: 1 ready, readable: yes, waited under 60 s: yes",
        'stdin: 8 bytes: {"a": 1}',
    ]


async def test_the_event_loop_runs_on_while_a_guest_spins(workspace: Path, tmp_path: Path) -> None:
    install_wasm_skill(workspace, "spin", front_matter="timeout_s: 3\n")
    install_wasm_skill(workspace, "echo")
    runner = make_runner(workspace, tmp_path)
    finished: list[str] = []

    async def call(name: str) -> None:
        with contextlib.suppress(ToolError):
            await runner.run(skill_named(workspace, name), {"n": 1}, CONTEXT)
        finished.append(name)

    spinning = asyncio.create_task(call("spin"))
    await asyncio.sleep(0)  # the spinning guest is started first
    await call("echo")
    assert finished == ["echo"], "the echo call completed while the other guest spun"
    await spinning
    assert finished == ["echo", "spin"]


async def test_a_cancelled_call_stops_its_guest(workspace: Path, tmp_path: Path) -> None:
    install_wasm_skill(workspace, "spin", name="spin-cancelled", front_matter="timeout_s: 600\n")
    task = asyncio.create_task(
        make_runner(workspace, tmp_path).run(skill_named(workspace, "spin-cancelled"), {}, CONTEXT)
    )

    def wait_until_spinning() -> None:
        while not guest_threads("spin-cancelled"):
            time.sleep(0.01)
        time.sleep(0.3)  # time to compile and enter the loop; stopped earlier, it never starts

    await asyncio.to_thread(wait_until_spinning)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for thread in guest_threads("spin-cancelled"):
        thread.join(timeout=30)
        assert not thread.is_alive(), "the guest went on spinning after its call was cancelled"


async def test_a_module_taking_more_than_64_mb_is_stopped_out_of_memory(
    workspace: Path, tmp_path: Path
) -> None:
    install_wasm_skill(workspace, "hog")
    with pytest.raises(ToolError) as raised:
        await make_runner(workspace, tmp_path).run(skill_named(workspace, "hog"), {}, CONTEXT)
    message = str(raised.value)
    assert message.startswith("skill hog ran out of memory (64 MB limit)")
    assert "exited with code 1: malloc failed after 6" in message  # 63 or 64 MB in


async def test_a_trap_is_a_tool_error_saying_which(workspace: Path, tmp_path: Path) -> None:
    install_wasm_skill(workspace, "crash")
    with pytest.raises(ToolError) as raised:
        await make_runner(workspace, tmp_path).run(skill_named(workspace, "crash"), {}, CONTEXT)
    assert str(raised.value) == (
        "skill crash trapped: wasm `unreachable` instruction executed; stderr: about to crash"
    )


async def test_a_non_zero_exit_is_a_tool_error_with_the_stderr(
    workspace: Path, tmp_path: Path
) -> None:
    install_wasm_skill(workspace, "echo")
    with pytest.raises(ToolError, match=r"^skill echo exited with code 3: asked to fail$"):
        await make_runner(workspace, tmp_path).run(
            skill_named(workspace, "echo"), {"exit": 3}, CONTEXT
        )


async def test_output_past_the_limit_is_cut_visibly(workspace: Path, tmp_path: Path) -> None:
    install_wasm_skill(workspace, "echo")
    runner = WasmSkillRunner(workspace, tmp_path / "cache", max_output_chars=100)
    output = await runner.run(skill_named(workspace, "echo"), {"repeat": 50}, CONTEXT)
    shown, marker = output.text.split("\n[... output truncated: ")
    assert shown == ('{"repeat": 50}' * 8)[:100]
    assert marker == f"{50 * 14 - 100} more characters not shown ...]"


async def test_a_wasm_skill_without_a_module_says_so(workspace: Path, tmp_path: Path) -> None:
    folder = install_wasm_skill(workspace, "echo")
    (folder / "skill.wasm").unlink()
    runner = make_runner(workspace, tmp_path)
    with pytest.raises(ToolError) as raised:
        await runner.run(skill_named(workspace, "echo"), {}, CONTEXT)
    assert str(raised.value) == (
        f"skill echo cannot run: there is no skill.wasm in {folder} "
        "(see skills/README.md for how to build a wasm skill)"
    )
    assert runner.skill_availability(skill_named(workspace, "echo")) == (
        f"there is no skill.wasm in {folder}"
    )


async def test_a_directory_named_skill_wasm_cannot_run(workspace: Path, tmp_path: Path) -> None:
    folder = install_wasm_skill(workspace, "echo")
    (folder / "skill.wasm").unlink()
    (folder / "skill.wasm").mkdir()
    runner = make_runner(workspace, tmp_path)
    expected = f"{folder / 'skill.wasm'} is a directory, not a module file"
    assert runner.skill_availability(skill_named(workspace, "echo")) == expected
    with pytest.raises(ToolError, match=f"^skill echo cannot run: {re.escape(expected)} "):
        await runner.run(skill_named(workspace, "echo"), {}, CONTEXT)


@pytest.mark.parametrize(
    "content",
    [b"#!/bin/sh\necho not wasm\n", b'(module (func (export "_start")))', b""],
    ids=["script", "wat-text", "empty"],
)
async def test_a_file_that_is_no_binary_module_is_refused_saying_so(
    workspace: Path, tmp_path: Path, content: bytes
) -> None:
    folder = install_wasm_skill(workspace, "echo")
    (folder / "skill.wasm").write_bytes(content)
    runner = make_runner(workspace, tmp_path)
    problem = runner.skill_availability(skill_named(workspace, "echo"))
    assert problem == (
        f"{folder / 'skill.wasm'} is not a WebAssembly binary module (it does not start with "
        "\\0asm); build it with a compiler targeting wasm32-wasi (the text format, WAT, is "
        "not accepted)"
    )
    with pytest.raises(ToolError) as raised:
        await runner.run(skill_named(workspace, "echo"), {}, CONTEXT)
    assert str(raised.value).startswith(f"skill echo cannot run: {problem}")


async def test_a_module_over_the_size_limit_is_refused(workspace: Path, tmp_path: Path) -> None:
    folder = install_wasm_skill(workspace, "echo")
    with (folder / "skill.wasm").open("ab") as file:
        file.truncate(MAX_MODULE_BYTES + 1)  # sparse: costs no disk
    runner = make_runner(workspace, tmp_path)
    assert runner.skill_availability(skill_named(workspace, "echo")) == (
        f"{folder / 'skill.wasm'} is 64.0 MB, over the 64 MB limit for a skill module"
    )
    with pytest.raises(ToolError, match=r"^skill echo cannot run: .* over the 64 MB limit"):
        await runner.run(skill_named(workspace, "echo"), {}, CONTEXT)


async def test_a_runnable_skill_is_available(workspace: Path, tmp_path: Path) -> None:
    install_wasm_skill(workspace, "echo")
    assert (
        make_runner(workspace, tmp_path).skill_availability(skill_named(workspace, "echo")) is None
    )


def test_the_runner_comes_from_the_config_and_says_it_can_run(tmp_path: Path) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        f'[skills]\nworkspace = "{tmp_path / "ws"}"\n[tools.shell]\nmax_output_chars = 321\n'
    )
    runner = WasmSkillRunner.from_config(
        load_config(config_file, {"OPENPISTA_HOME": str(tmp_path)})
    )
    assert (runner.workspace, runner.max_output_chars) == (tmp_path / "ws", 321)
    assert runner.cache.folder == tmp_path / "cache" / "wasm"
    assert runner.availability() is None


def test_registering_the_runner_loads_no_wasmtime(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from openpista.core import plugins\n"
        "from openpista.core.config import load_config\n"
        "config = load_config(None, {'OPENPISTA_HOME': sys.argv[1]})\n"
        "plugins.load(plugins.SKILL_RUNNERS_GROUP, 'wasm')(config)\n"
        "print('wasmtime' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


# Eleven 60 MB memories, every page written: 64 MB each would be 660 MB of host memory.
MANY_MEMORIES = """
(module
  (memory $small 1)
  (memory $big 960)
  (func (export "_start") (local $at i32)
    (loop $touch
      (i32.store $big (local.get $at) (i32.const 1))
      (local.set $at (i32.add (local.get $at) (i32.const 65536)))
      (br_if $touch (i32.lt_u (local.get $at) (i32.const 62914560))))))
"""

# Two grows of 200 million entries: gigabytes, allocated inside wasmtime where the epoch
# cannot interrupt. A refused grow returns -1, which this guest turns into a trap.
HUGE_TABLE = """
(module
  (table $t 1 funcref)
  (func (export "_start")
    (if (i32.eq (table.grow $t (ref.null func) (i32.const 200000000)) (i32.const -1))
      (then unreachable))
    (drop (table.grow $t (ref.null func) (i32.const 200000000)))))
"""


async def test_a_module_with_several_memories_is_refused(workspace: Path, tmp_path: Path) -> None:
    install_wat_skill(workspace, "many-memories", MANY_MEMORIES)
    with pytest.raises(ToolError) as caught:
        await make_runner(workspace, tmp_path).run(
            skill_named(workspace, "many-memories"), {}, CONTEXT
        )
    assert str(caught.value).startswith("skill many-memories could not start:")
    assert "memor" in str(caught.value)


async def test_a_table_grown_past_its_limit_fails_inside_the_guest(
    workspace: Path, tmp_path: Path
) -> None:
    install_wat_skill(workspace, "huge-table", HUGE_TABLE, front_matter="timeout_s: 20\n")
    with pytest.raises(ToolError) as caught:
        await make_runner(workspace, tmp_path).run(
            skill_named(workspace, "huge-table"), {}, CONTEXT
        )
    message = str(caught.value)
    # Refused at once, so the guest traps on its own: not stuck, not timed out.
    assert message.startswith("skill huge-table trapped"), message
    assert "timed out" not in message
