"""Skills from the user's side: the bundled example found, listed, prompted and run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from openpista.providers.testing import FakeChatCompletionsServer

from .conftest import Openpista

EXAMPLE = Path(__file__).resolve().parent.parent / "skills" / "hello-shell"


def _install_example(openpista: Openpista) -> None:
    shutil.copytree(EXAMPLE, openpista.home / "workspace" / "examples" / "hello-shell")


def test_skills_list_shows_the_example(openpista: Openpista) -> None:
    empty = openpista.run("skills", "list")
    assert empty.returncode == 0
    assert "No skills in" in empty.stdout

    _install_example(openpista)
    listed = openpista.run("skills", "list")

    assert listed.returncode == 0, listed.stderr
    assert "hello-shell" in listed.stdout
    assert "subprocess" in listed.stdout
    assert "Greets someone by name" in listed.stdout


def test_run_calls_the_example_skill_with_its_arguments(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    _install_example(openpista)
    llm.queue_tool_calls([("skill_run", {"name": "hello-shell", "args": {"name": "Ada"}})])
    llm.queue_text("It greeted Ada.")

    result = openpista.run("run", "--json", "-e", "Greet Ada with hello-shell")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["tool_calls"][0] == {
        "name": "skill.run",
        "arguments": {"name": "hello-shell", "args": {"name": "Ada"}},
        "ok": True,
    }
    first, second = llm.requests
    system = first["messages"][0]["content"]
    assert "hello-shell" in system  # the skill's body is in the system prompt
    (tool_message,) = [m for m in second["messages"] if m["role"] == "tool"]
    assert tool_message["content"].strip() == "Hello, Ada!"


def test_a_failing_skill_is_a_tool_error_the_llm_sees(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    skill = openpista.home / "workspace" / "broken"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text("---\nname: broken\ndescription: always fails\n---\n")
    (skill / "run.sh").write_text("echo 'disk on fire' >&2\nexit 7\n")
    llm.queue_tool_calls([("skill_run", {"name": "broken"})])
    llm.queue_text("The skill failed.")

    result = openpista.run("run", "-e", "use broken")

    assert result.returncode == 0, result.stderr
    assert "✗ skill.run" in result.stderr
    (tool_message,) = [m for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert "exited with code 7" in tool_message["content"]
    assert "disk on fire" in tool_message["content"]
