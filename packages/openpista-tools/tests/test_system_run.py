"""system.run against real bash: output layout, cwd, truncation, timeouts, errors."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from pathlib import Path

import pytest

from openpista.core.config import Config
from openpista.core.errors import ToolError
from openpista.core.tool import Tool, ToolContext, wire_name
from openpista.tools.settings import ShellSettings
from openpista.tools.system import SystemRunTool, create_tools

CONTEXT = ToolContext(session_id="s1", channel_id="cli:local")


def _process_is_gone(pid: int) -> bool:
    """True once `pid` no longer runs: vanished, or a zombie waiting for a reaper."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return bool(re.search(r"^State:\s+Z", status, re.MULTILINE))


async def test_result_holds_exit_code_stdout_and_stderr() -> None:
    tool = SystemRunTool()
    out = await tool.run({"command": "echo out-line; echo err-line >&2"}, CONTEXT)
    assert out.is_error is False
    assert out.text == "exit code: 0\n--- stdout ---\nout-line\n--- stderr ---\nerr-line"


async def test_empty_sections_are_left_out() -> None:
    tool = SystemRunTool()
    only_stderr = await tool.run({"command": "echo oops >&2"}, CONTEXT)
    assert only_stderr.text == "exit code: 0\n--- stderr ---\noops"
    nothing = await tool.run({"command": "true"}, CONTEXT)
    assert nothing.text == "exit code: 0\n(no output)"


async def test_non_zero_exit_is_an_error_that_keeps_the_output() -> None:
    tool = SystemRunTool()
    out = await tool.run({"command": "echo partial; echo broken >&2; exit 3"}, CONTEXT)
    assert out.is_error is True
    assert out.text.startswith("exit code: 3\n")
    assert "partial" in out.text
    assert "broken" in out.text


@pytest.fixture
def real_tmp_path(tmp_path: Path) -> Path:
    """tmp_path with symlinks resolved, as `pwd` prints it."""
    return tmp_path.resolve()


async def test_runs_in_the_given_cwd(real_tmp_path: Path) -> None:
    (real_tmp_path / "marker.txt").write_text("here")
    expected = f"exit code: 0\n--- stdout ---\n{real_tmp_path}\nhere"
    out = await SystemRunTool().run(
        {"command": "pwd; cat marker.txt", "cwd": str(real_tmp_path)}, CONTEXT
    )
    assert out.text == expected


async def test_cwd_expands_the_home_directory(
    real_tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = real_tmp_path / "home"
    (home / "projects").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    out = await SystemRunTool().run({"command": "pwd", "cwd": "~/projects"}, CONTEXT)
    assert out.text == f"exit code: 0\n--- stdout ---\n{home / 'projects'}"


async def test_missing_cwd_is_a_tool_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ToolError, match=r"working directory does not exist: .*nowhere"):
        await SystemRunTool().run({"command": "pwd", "cwd": str(missing)}, CONTEXT)


async def test_cwd_that_is_a_file_is_a_tool_error(tmp_path: Path) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ToolError, match="not a directory"):
        await SystemRunTool().run({"command": "pwd", "cwd": str(a_file)}, CONTEXT)


async def test_missing_or_empty_command_is_a_tool_error() -> None:
    tool = SystemRunTool()
    with pytest.raises(ToolError, match="command"):
        await tool.run({}, CONTEXT)
    with pytest.raises(ToolError, match="command"):
        await tool.run({"command": "   "}, CONTEXT)


async def test_long_output_is_cut_with_a_marker_saying_how_much() -> None:
    tool = SystemRunTool(max_output_chars=100)
    out = await tool.run({"command": "printf 'x%.0s' $(seq 1 5000)"}, CONTEXT)
    full = "exit code: 0\n--- stdout ---\n" + "x" * 5000
    cut = len(full) - 100
    assert out.text.startswith(full[:100])
    assert out.text.endswith(f"[... output truncated: {cut} more characters not shown ...]")
    assert "x" * 5000 not in out.text


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    tool = SystemRunTool(timeout_s=1)
    out = await asyncio.wait_for(
        tool.run({"command": f"echo started; sleep 30 & echo $! > {pidfile}; wait"}, CONTEXT),
        timeout=20,
    )
    assert out.is_error is True
    assert out.text.startswith("timed out after 1 s (tools.shell.timeout_s)")
    assert "--- stdout ---\nstarted" in out.text
    grandchild = int(pidfile.read_text())
    for _ in range(100):
        if _process_is_gone(grandchild):
            break
        await asyncio.sleep(0.05)
    assert _process_is_gone(grandchild), f"sleep (pid {grandchild}) survived the timeout"


async def test_per_call_timeout_is_honoured() -> None:
    tool = SystemRunTool(timeout_s=60)
    out = await asyncio.wait_for(
        tool.run({"command": "sleep 30", "timeout_s": 0.5}, CONTEXT), timeout=20
    )
    assert out.is_error is True
    assert out.text.startswith("timed out after 0.5 s (the call's timeout_s)")


async def test_per_call_timeout_above_the_cap_is_lowered_and_says_so() -> None:
    tool = SystemRunTool(timeout_s=0.1)
    out = await asyncio.wait_for(
        tool.run({"command": "sleep 30", "timeout_s": 1000}, CONTEXT), timeout=20
    )
    assert out.is_error is True
    assert out.text.startswith("note: timeout_s 1000 is above the limit; ran with 1 s")
    assert "timed out after 1 s" in out.text


async def test_bad_per_call_timeout_is_a_tool_error() -> None:
    tool = SystemRunTool()
    with pytest.raises(ToolError, match="timeout_s"):
        await tool.run({"command": "true", "timeout_s": "soon"}, CONTEXT)
    with pytest.raises(ToolError, match="positive"):
        await tool.run({"command": "true", "timeout_s": 0}, CONTEXT)


def test_schema_describes_command_cwd_and_timeout() -> None:
    tool = SystemRunTool()
    assert isinstance(tool, Tool)
    assert tool.name == "system.run"
    assert wire_name(tool.name) == "system_run"
    assert "shell command" in tool.description
    schema = tool.parameters
    assert schema["type"] == "object"
    assert schema["required"] == ["command"]
    assert {name: spec["type"] for name, spec in schema["properties"].items()} == {
        "command": "string",
        "cwd": "string",
        "timeout_s": "number",
    }


async def test_create_tools_uses_the_shell_config() -> None:
    config = Config(tools={"shell": ShellSettings(timeout_s=7, max_output_chars=20)})
    tools = create_tools(config)
    assert [tool.name for tool in tools] == ["system.run"]
    assert "Default 7, at most 70." in tools[0].parameters["properties"]["timeout_s"]["description"]
    out = await tools[0].run({"command": "printf 'y%.0s' $(seq 1 100)"}, CONTEXT)
    assert out.text == (
        "exit code: 0\n--- std\n[... output truncated: 108 more characters not shown ...]"
    )


def test_entry_point_names_create_tools() -> None:
    from importlib.metadata import entry_points

    (entry,) = [ep for ep in entry_points(group="openpista.tools") if ep.name == "system"]
    assert entry.load() is create_tools


async def test_endless_output_is_bounded_in_memory_and_reported() -> None:
    tool = SystemRunTool(timeout_s=5, max_output_chars=2000)
    output = await tool.run({"command": "head -c 5000000 /dev/zero | tr '\\0' x"}, CONTEXT)
    assert not output.is_error
    assert "stdout went on for" in output.text
    assert "more bytes than are kept here" in output.text
    assert "output truncated" in output.text
    assert len(output.text) < 2200


@pytest.mark.parametrize(
    "command",
    [
        "(sleep 300; echo never) & echo $! > {pidfile}; echo started",
        "python3 -c 'import time; time.sleep(300)' & echo $! > {pidfile}; echo started",
    ],
)
async def test_a_background_child_is_left_running_and_the_call_returns_at_once(
    tmp_path: Path, command: str
) -> None:
    pidfile = tmp_path / "background.pid"
    tool = SystemRunTool(timeout_s=20)
    started = asyncio.get_running_loop().time()
    out = await tool.run({"command": command.format(pidfile=pidfile)}, CONTEXT)
    elapsed = asyncio.get_running_loop().time() - started
    background = int(pidfile.read_text())
    try:
        assert elapsed < 5, f"system.run waited {elapsed:.1f} s for the background child"
        assert out.is_error is False
        assert out.text.startswith("exit code: 0\n(processes it started in the background keep")
        assert out.text.endswith("--- stdout ---\nstarted")
        assert not _process_is_gone(background), "the background child was killed"
    finally:
        # The whole group: the subshell's `sleep` too.
        os.killpg(os.getpgid(background), signal.SIGKILL)


async def test_a_background_server_keeps_running_and_logging_after_the_call(
    tmp_path: Path,
) -> None:
    # The tester's case: a server whose first request log line (on stderr) killed it, because
    # the pipe it wrote into had lost its reader.
    marker = tmp_path / "marker"
    script = (
        "import sys, time; time.sleep(1); print('serving', flush=True); "
        "print('GET / 200', file=sys.stderr, flush=True); open(sys.argv[1], 'w').close()"
    )
    pidfile = tmp_path / "background.pid"
    command = f'python3 -c "{script}" {marker} & echo $! > {pidfile}; echo started'
    out = await SystemRunTool(timeout_s=20).run({"command": command}, CONTEXT)
    background = int(pidfile.read_text())
    try:
        assert out.text.startswith("exit code: 0\n(processes it started in the background keep")
        assert out.text.endswith("--- stdout ---\nstarted")
        for _ in range(100):
            if marker.exists():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the background server died writing its log")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(background), signal.SIGKILL)


async def test_a_command_without_background_children_does_not_mention_them() -> None:
    out = await SystemRunTool().run({"command": "sleep 0.1 & wait; echo done"}, CONTEXT)
    assert out.text == "exit code: 0\n--- stdout ---\ndone"
