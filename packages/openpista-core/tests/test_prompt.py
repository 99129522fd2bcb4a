"""The system prompt names only the tools actually registered, and keeps its order of parts."""

from __future__ import annotations

from typing import Any

from openpista.core.prompt import BUILTIN_SYSTEM_PROMPT, build_system_prompt, first_sentence
from openpista.core.provider import ToolSpec
from openpista.core.registry import ToolRegistry
from openpista.core.tool import FunctionTool, ToolContext


async def _noop(arguments: dict[str, Any], context: ToolContext) -> str:
    return ""


SYSTEM_RUN = FunctionTool(
    "system.run",
    _noop,
    description=(
        "Run a shell command with bash on the user's machine and return its stdout, stderr "
        "and exit code. Use it to inspect files, run programs and scripts."
    ),
)


def test_a_registry_with_only_system_run_promises_no_browser_or_screen() -> None:
    prompt = build_system_prompt("", "", tools=ToolRegistry([SYSTEM_RUN]).specs())
    assert "browser" not in prompt.lower()
    assert "screen" not in prompt.lower()
    assert prompt.endswith(
        "# Tools\n\nThese are all the tools you have; you cannot do what none of them does.\n\n"
        "- system.run: Run a shell command with bash on the user's machine and return its "
        "stdout, stderr and exit code."
    )


def test_tools_are_listed_by_name_between_the_builtin_prompt_and_the_skills() -> None:
    registry = ToolRegistry(
        [
            SYSTEM_RUN,
            FunctionTool("browser.click", _noop, description="Click an element.\nMore text."),
            FunctionTool("zz.bare", _noop),
        ]
    )
    prompt = build_system_prompt("Answer in French.", "## Skill: zip", tools=registry.specs())
    assert prompt.startswith(f"Answer in French.\n\n{BUILTIN_SYSTEM_PROMPT}\n\n# Tools\n")
    tools_section = prompt[prompt.index("# Tools") : prompt.index("# Skills")]
    assert [line for line in tools_section.splitlines() if line.startswith("- ")] == [
        "- browser.click: Click an element.",
        "- system.run: Run a shell command with bash on the user's machine and return its "
        "stdout, stderr and exit code.",
        "- zz.bare",
    ]
    assert prompt.endswith("## Skill: zip")


def test_without_tools_the_prompt_has_no_tools_section() -> None:
    assert build_system_prompt("", "") == BUILTIN_SYSTEM_PROMPT
    assert build_system_prompt("", "", tools=[]) == BUILTIN_SYSTEM_PROMPT


def test_the_builtin_prompt_names_no_particular_tool() -> None:
    for word in ("browser", "screen", "system.run"):
        assert word not in BUILTIN_SYSTEM_PROMPT


def test_first_sentence_stops_at_a_full_stop_or_line_break_and_stays_short() -> None:
    assert first_sentence("  Click it. Then wait.") == "Click it."
    assert first_sentence("Version 1.2 of the thing\nsecond line") == "Version 1.2 of the thing"
    assert first_sentence("") == ""
    long = first_sentence("word " * 100)
    assert len(long) == 200
    assert long.endswith("...")


def test_specs_can_be_passed_without_a_registry() -> None:
    spec = ToolSpec("mcp.files.read", "mcp_files_read", "Read a file.", {"type": "object"})
    assert build_system_prompt("", "", tools=[spec]).endswith("- mcp.files.read: Read a file.")
