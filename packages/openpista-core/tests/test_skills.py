"""Skills: discovery in the workspace, the prompt context, and running them with skill.run."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from openpista.core.config import load_config
from openpista.core.errors import ToolError
from openpista.core.models import ToolCall
from openpista.core.registry import ToolRegistry
from openpista.core.skills import (
    Skill,
    SkillLoader,
    SkillRunTool,
    SubprocessSkillRunner,
    missing_runner_message,
)
from openpista.core.tool import Tool, ToolContext, ToolOutput

CONTEXT = ToolContext(session_id="s", channel_id="cli:local")


def write_skill(folder: Path, skill_md: str, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "SKILL.md").write_text(skill_md)
    for name, text in files.items():
        (
            folder / name.replace("_", ".", 1) if name in ("run_sh", "main_py") else folder / name
        ).write_text(text)
    return folder


ECHO_ARGS_SH = """\
#!/usr/bin/env bash
stdin=$(cat)
echo "stdin=$stdin"
echo "env=$OPENPISTA_SKILL_ARGS"
echo "cwd=$(pwd)"
"""

ECHO_ARGS_PY = """\
import json, os, sys
args = json.load(sys.stdin)
env_args = json.loads(os.environ["OPENPISTA_SKILL_ARGS"])
print(json.dumps({"stdin": args, "env": env_args, "cwd": os.getcwd()}))
"""


def test_a_missing_workspace_has_no_skills(tmp_path: Path) -> None:
    loader = SkillLoader(tmp_path / "nowhere")
    assert loader.discover() == []
    assert loader.context() == ""


def test_skills_are_found_at_any_depth_with_front_matter(tmp_path: Path) -> None:
    write_skill(
        tmp_path / "weather",
        "---\nname: weather\ndescription: Current weather.\ntimeout_s: 5\n---\nCall with city.\n",
    )
    write_skill(
        tmp_path / "deep" / "er" / "hello-wasm",
        "---\ndescription: Says hello.\nmode: wasm\n---\nNo args.\n",
    )
    skills = SkillLoader(tmp_path).discover()
    assert skills == [
        Skill(
            name="hello-wasm",
            description="Says hello.",
            mode="wasm",
            image="",
            timeout_s=None,
            body="No args.",
            path=tmp_path / "deep" / "er" / "hello-wasm",
        ),
        Skill(
            name="weather",
            description="Current weather.",
            mode="subprocess",
            image="",
            timeout_s=5.0,
            body="Call with city.",
            path=tmp_path / "weather",
        ),
    ]


def test_a_skill_without_front_matter_is_named_after_its_folder(tmp_path: Path) -> None:
    write_skill(tmp_path / "notes", "Keep notes in ~/notes.\n")
    (skill,) = SkillLoader(tmp_path).discover()
    assert (skill.name, skill.description, skill.body) == ("notes", "", "Keep notes in ~/notes.")


def test_container_skills_keep_their_image(tmp_path: Path) -> None:
    write_skill(tmp_path / "build", "---\nmode: container\nimage: python:3.12-slim\n---\n")
    (skill,) = SkillLoader(tmp_path).discover()
    assert (skill.mode, skill.image) == ("container", "python:3.12-slim")


@pytest.mark.parametrize(
    ("skill_md", "problem"),
    [
        ("---\nname: [unclosed\n---\nbody\n", "not valid YAML"),
        ("---\nname: x\nbody without end\n", "no closing '---'"),
        ("---\n- a list\n---\n", "must be a mapping"),
        ("---\nmode: docker\n---\n", "'mode' must be one of subprocess, wasm, container"),
        ("---\ntimeout_s: soon\n---\n", "'timeout_s' must be a positive number"),
        ("---\ntimeout_s: -1\n---\n", "'timeout_s' must be a positive number"),
        ("---\ntimeout_s: 0\n---\n", "'timeout_s' must be a positive number"),
        ("---\ntimeout_s: .inf\n---\n", "at most 3600, got inf"),
        ("---\ntimeout_s: .nan\n---\n", "'timeout_s' must be a positive number"),
        ("---\ntimeout_s: 3601\n---\n", "at most 3600, got 3601"),
        ("---\ndescription: {a: 1}\n---\n", "'description' must be text"),
        ("---\nmode: wasm\nsafe: maybe\n---\n", "'safe' must be true or false"),
    ],
)
def test_a_malformed_skill_is_skipped_with_a_warning(
    tmp_path: Path, skill_md: str, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    write_skill(tmp_path / "broken", skill_md)
    write_skill(tmp_path / "good", "---\ndescription: fine\n---\n")
    loader = SkillLoader(tmp_path)
    with caplog.at_level(logging.WARNING, logger="openpista.core.skills"):
        skills = loader.discover()
        loader.discover()
    assert [skill.name for skill in skills] == ["good"]
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1, "the same problem is reported once, not on every request"
    assert str(tmp_path / "broken" / "SKILL.md") in warnings[0]
    assert problem in warnings[0]


def test_a_wasm_skill_may_declare_itself_safe(tmp_path: Path) -> None:
    write_skill(tmp_path / "safe", "---\nmode: wasm\nsafe: true\n---\n")
    write_skill(tmp_path / "plain", "---\nmode: wasm\n---\n")
    safe, plain = sorted(
        SkillLoader(tmp_path).discover(), key=lambda skill: skill.name, reverse=True
    )
    assert (safe.name, safe.safe) == ("safe", True)
    assert (plain.name, plain.safe) == ("plain", False)


@pytest.mark.parametrize("mode", ["subprocess", "container"])
def test_safe_is_ignored_with_a_warning_outside_wasm(
    tmp_path: Path, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    write_skill(tmp_path / "claims", f"---\nmode: {mode}\nsafe: true\n---\n")
    with caplog.at_level(logging.WARNING, logger="openpista.core.skills"):
        (skill,) = SkillLoader(tmp_path).discover()
    assert skill.safe is False
    (warning,) = [record.getMessage() for record in caplog.records]
    assert "'safe: true' is ignored" in warning and mode in warning


def test_only_a_safe_wasm_skill_runs_without_approval(tmp_path: Path) -> None:
    write_skill(tmp_path / "safe", "---\nmode: wasm\nsafe: true\n---\n")
    write_skill(tmp_path / "plain", "---\nmode: wasm\n---\n")
    write_skill(tmp_path / "shell", "---\nsafe: true\n---\n", run_sh="echo hi\n")
    tool = SkillRunTool(SkillLoader(tmp_path))
    assert tool.requires_approval_for({"name": "safe"}) is False
    assert tool.requires_approval_for({"name": "plain"}) is True
    assert tool.requires_approval_for({"name": "shell"}) is True
    assert tool.requires_approval_for({"name": "missing"}) is True


def test_a_duplicate_skill_name_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_skill(tmp_path / "a", "---\nname: same\ndescription: first\n---\n")
    write_skill(tmp_path / "b", "---\nname: same\ndescription: second\n---\n")
    with caplog.at_level(logging.WARNING, logger="openpista.core.skills"):
        skills = SkillLoader(tmp_path).discover()
    assert [skill.description for skill in skills] == ["first"]
    assert "already used" in caplog.text


def test_hidden_folders_are_not_searched(tmp_path: Path) -> None:
    write_skill(tmp_path / ".git" / "x", "---\nname: hidden\n---\n")
    assert SkillLoader(tmp_path).discover() == []


def test_context_lists_each_skill_and_follows_changes(tmp_path: Path) -> None:
    loader = SkillLoader(tmp_path)
    folder = write_skill(tmp_path / "weather", "---\ndescription: Weather.\n---\nUse celsius.\n")
    write_skill(tmp_path / "zip", "---\ndescription: Zips files.\n---\n")
    assert loader.context() == (
        "## Skill: weather\nWeather.\nUse celsius.\n\n## Skill: zip\nZips files."
    )
    (folder / "SKILL.md").write_text("---\ndescription: Weather, updated.\n---\nUse kelvin now.\n")
    assert "## Skill: weather\nWeather, updated.\nUse kelvin now." in loader.context()
    (folder / "SKILL.md").unlink()
    assert loader.context() == "## Skill: zip\nZips files."


def test_skill_run_is_a_tool_named_skill_run(tmp_path: Path) -> None:
    tool = SkillRunTool(SkillLoader(tmp_path))
    assert isinstance(tool, Tool)
    (spec,) = ToolRegistry([tool]).specs()
    assert (spec.name, spec.wire_name) == ("skill.run", "skill_run")
    assert spec.parameters["required"] == ["name"]


async def test_a_bash_skill_gets_its_args_on_stdin_and_in_the_environment(tmp_path: Path) -> None:
    folder = write_skill(tmp_path / "echo", "---\nname: echo\n---\n", run_sh=ECHO_ARGS_SH)
    output = await SkillRunTool(SkillLoader(tmp_path)).run(
        {"name": "echo", "args": {"city": "Zürich", "days": 2}}, CONTEXT
    )
    expected_args = json.dumps({"city": "Zürich", "days": 2}, ensure_ascii=False)
    assert output.text == (f"stdin={expected_args}\nenv={expected_args}\ncwd={folder.resolve()}\n")
    assert not output.is_error


async def test_a_python_skill_runs_with_this_python(tmp_path: Path) -> None:
    folder = write_skill(tmp_path / "py", "---\nname: py\n---\n", main_py=ECHO_ARGS_PY)
    output = await SkillRunTool(SkillLoader(tmp_path)).run(
        {"name": "py", "args": {"n": 1}}, CONTEXT
    )
    assert json.loads(output.text) == {
        "stdin": {"n": 1},
        "env": {"n": 1},
        "cwd": str(folder.resolve()),
    }


async def test_args_default_to_an_empty_object(tmp_path: Path) -> None:
    write_skill(tmp_path / "py", "", main_py=ECHO_ARGS_PY)
    output = await SkillRunTool(SkillLoader(tmp_path)).run({"name": "py"}, CONTEXT)
    assert json.loads(output.text)["stdin"] == {}


async def test_a_non_zero_exit_is_a_tool_error_with_the_stderr_tail(tmp_path: Path) -> None:
    write_skill(
        tmp_path / "fails",
        "---\nname: fails\n---\n",
        run_sh="echo 'partial output'\necho 'city not found: Atlantis' >&2\nexit 3\n",
    )
    with pytest.raises(ToolError) as raised:
        await SkillRunTool(SkillLoader(tmp_path)).run({"name": "fails"}, CONTEXT)
    assert str(raised.value) == "skill fails exited with code 3: city not found: Atlantis"


async def test_a_skill_that_runs_too_long_is_killed_at_its_timeout(tmp_path: Path) -> None:
    write_skill(tmp_path / "slow", "---\nname: slow\ntimeout_s: 0.3\n---\n", run_sh="sleep 30\n")
    tool = SkillRunTool(
        SkillLoader(tmp_path), runners={"subprocess": SubprocessSkillRunner(default_timeout_s=60)}
    )
    with pytest.raises(ToolError, match=r"^skill slow timed out after 0\.3 s$"):
        await tool.run({"name": "slow"}, CONTEXT)


async def test_the_default_timeout_applies_when_the_skill_sets_none(tmp_path: Path) -> None:
    write_skill(tmp_path / "slow", "", run_sh="sleep 30\n")
    tool = SkillRunTool(
        SkillLoader(tmp_path), runners={"subprocess": SubprocessSkillRunner(default_timeout_s=0.2)}
    )
    with pytest.raises(ToolError, match=r"^skill slow timed out after 0\.2 s$"):
        await tool.run({"name": "slow"}, CONTEXT)


async def test_an_unknown_skill_lists_the_available_ones(tmp_path: Path) -> None:
    write_skill(tmp_path / "b", "", run_sh="echo b\n")
    write_skill(tmp_path / "a", "", run_sh="echo a\n")
    with pytest.raises(ToolError, match=r"^unknown skill 'c'; available skills: a, b$"):
        await SkillRunTool(SkillLoader(tmp_path)).run({"name": "c"}, CONTEXT)


async def test_an_unknown_skill_in_an_empty_workspace_says_so(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="no skills are installed in"):
        await SkillRunTool(SkillLoader(tmp_path)).run({"name": "c"}, CONTEXT)


async def test_a_subprocess_skill_without_a_program_is_a_tool_error(tmp_path: Path) -> None:
    write_skill(tmp_path / "docs-only", "Just instructions.\n")
    with pytest.raises(ToolError, match=r"has neither run\.sh nor main\.py"):
        await SkillRunTool(SkillLoader(tmp_path)).run({"name": "docs-only"}, CONTEXT)


def test_the_subprocess_runner_says_which_skills_have_no_program(tmp_path: Path) -> None:
    write_skill(tmp_path / "docs-only", "Just instructions.\n")
    write_skill(tmp_path / "shell", "", run_sh="echo hi\n")
    (tmp_path / "docs-only" / "run.sh").mkdir()  # a folder is no program
    docs_only, shell = SkillLoader(tmp_path).discover()
    runner = SubprocessSkillRunner()
    assert runner.skill_availability(docs_only) == (
        f"has neither run.sh nor main.py in {tmp_path / 'docs-only'}; "
        "a subprocess skill needs one of them"
    )
    assert runner.skill_availability(shell) is None


async def test_a_wasm_skill_without_a_runner_says_what_is_missing(tmp_path: Path) -> None:
    # openpista-sandbox is installed in the workspace but has no WASM runner yet: the message
    # must not tell the user to install it.
    write_skill(tmp_path / "hello-wasm", "---\nmode: wasm\n---\n")
    with pytest.raises(ToolError) as raised:
        await SkillRunTool(SkillLoader(tmp_path)).run({"name": "hello-wasm"}, CONTEXT)
    message = str(raised.value)
    assert message.startswith("skill hello-wasm uses mode 'wasm', which needs the WASM runtime")
    assert "the installed openpista-sandbox" in message
    assert "provides no wasm runner yet" in message
    assert "pip install" not in message


def test_every_mode_has_a_missing_runner_message_naming_it(tmp_path: Path) -> None:
    for mode in ("subprocess", "wasm", "container"):
        skill = Skill("s", "", mode, "", None, "", tmp_path)
        assert f"mode '{mode}'" in missing_runner_message(skill)


async def test_subprocess_skills_need_a_subprocess_runner_too(tmp_path: Path) -> None:
    write_skill(tmp_path / "echo", "", run_sh="echo hi\n")
    tool = SkillRunTool(SkillLoader(tmp_path), runners={})
    with pytest.raises(ToolError, match="no subprocess skill runner is registered"):
        await tool.run({"name": "echo"}, CONTEXT)


def test_the_subprocess_runner_takes_its_limits_from_tools_shell(tmp_path: Path) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text("[tools.shell]\ntimeout_s = 7\nmax_output_chars = 123\n")
    runner = SubprocessSkillRunner.from_config(
        load_config(config_file, {"OPENPISTA_HOME": str(tmp_path)})
    )
    assert (runner.default_timeout_s, runner.max_output_chars) == (7, 123)
    assert runner.availability() is None


async def test_subprocess_output_past_the_limit_is_cut_visibly(tmp_path: Path) -> None:
    write_skill(tmp_path / "loud", "", run_sh="printf 'x%.0s' $(seq 1 500)\n")
    runner = SubprocessSkillRunner(max_output_chars=100)
    output = await SkillRunTool(SkillLoader(tmp_path), runners={"subprocess": runner}).run(
        {"name": "loud"}, CONTEXT
    )
    assert output.text == "x" * 100 + (
        "\n[... output truncated: 400 more characters not shown ...]"
    )


class RecordingRunner:
    def __init__(self) -> None:
        self.runs: list[tuple[Skill, dict[str, Any], ToolContext]] = []
        self.closed = 0

    async def run(self, skill: Skill, args: dict[str, Any], context: ToolContext) -> ToolOutput:
        self.runs.append((skill, args, context))
        return ToolOutput(f"ran {skill.name} in a container")

    async def aclose(self) -> None:
        self.closed += 1


async def test_other_modes_go_to_their_runner_with_the_calls_context(tmp_path: Path) -> None:
    write_skill(tmp_path / "box", "---\nmode: container\nimage: alpine\n---\n")
    runner = RecordingRunner()
    tool = SkillRunTool(SkillLoader(tmp_path), runners={"container": runner})
    output = await tool.run({"name": "box", "args": {"x": 1}}, CONTEXT)
    assert output.text == "ran box in a container"
    assert [(skill.image, args, context) for skill, args, context in runner.runs] == [
        ("alpine", {"x": 1}, CONTEXT)
    ]


async def test_closing_skill_run_closes_the_runners_that_hold_something(tmp_path: Path) -> None:
    runner = RecordingRunner()
    registry = ToolRegistry(
        [
            SkillRunTool(
                SkillLoader(tmp_path),
                runners={"subprocess": SubprocessSkillRunner(), "container": runner},
            )
        ]
    )
    await registry.aclose()
    assert runner.closed == 1


async def test_skill_run_through_the_registry_reports_failures_to_the_llm(tmp_path: Path) -> None:
    write_skill(tmp_path / "fails", "", run_sh="echo nope >&2; exit 1\n")
    registry = ToolRegistry([SkillRunTool(SkillLoader(tmp_path))])
    result = await registry.dispatch(ToolCall("c", "skill.run", '{"name": "fails"}'), CONTEXT)
    assert result.is_error
    assert result.output == "skill fails exited with code 1: nope"
    bad = await registry.dispatch(ToolCall("d", "skill.run", '{"args": {}}'), CONTEXT)
    assert "missing required property 'name'" in bad.output


async def test_a_subprocess_skill_does_not_see_openpistas_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:should-not-leak")
    write_skill(tmp_path / "envdump", "---\nname: envdump\n---\n", run_sh="env\n")
    out = await SkillRunTool(SkillLoader(tmp_path)).run({"name": "envdump"}, CONTEXT)
    assert "OPENPISTA_SKILL_ARGS={}" in out.text
    assert "should-not-leak" not in out.text
