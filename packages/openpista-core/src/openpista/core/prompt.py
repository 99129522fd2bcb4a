"""The system prompt: the user's own text, openpista's built-in prompt, its tools, then skills."""

from __future__ import annotations

from collections.abc import Sequence

from openpista.core.provider import ToolSpec

BUILTIN_SYSTEM_PROMPT = """\
You are openpista, an autonomous agent running on your owner's machine. You act through the \
tools you are given, and they act for real on that machine.

- Be concise. Answer in plain, short sentences; show only the output that matters.
- Use tools rather than guessing: when a fact can be checked with one of your tools, check it.
- When a tool fails, read its error, fix the call and try again, or say plainly what blocked you.
- Before anything destructive or irreversible, say what you are about to do."""

TOOLS_HEADING = """\
# Tools

These are all the tools you have; you cannot do what none of them does."""

SKILLS_HEADING = """\
# Skills

These skills are installed in the workspace. Run one with the skill.run tool, passing its \
name and, if it takes any, its args."""

_SUMMARY_MAX_CHARS = 200


def build_system_prompt(
    user_prompt: str, skills_context: str, *, tools: Sequence[ToolSpec] = ()
) -> str:
    """`[agent] system_prompt` first, then the built-in prompt, the tools, the skills (if any).

    The tools section names only `tools`, the ones actually registered, each with the first
    sentence of its description, so the model is never promised a browser it does not have.
    """
    parts: list[str] = []
    if user_prompt.strip():
        parts.append(user_prompt.strip())
    parts.append(BUILTIN_SYSTEM_PROMPT)
    if tools:
        lines = [_tool_line(spec) for spec in sorted(tools, key=lambda spec: spec.name)]
        parts.append(f"{TOOLS_HEADING}\n\n" + "\n".join(lines))
    if skills_context.strip():
        parts.append(f"{SKILLS_HEADING}\n\n{skills_context.strip()}")
    return "\n\n".join(parts)


def _tool_line(spec: ToolSpec) -> str:
    summary = first_sentence(spec.description)
    return f"- {spec.name}: {summary}" if summary else f"- {spec.name}"


def first_sentence(text: str) -> str:
    """The first sentence of `text` (up to its first '. ' or line break), at most 200 chars."""
    line = text.strip().split("\n", 1)[0].strip()
    end = line.find(". ")
    sentence = line[: end + 1] if end >= 0 else line
    if len(sentence) > _SUMMARY_MAX_CHARS:
        sentence = sentence[: _SUMMARY_MAX_CHARS - 3].rstrip() + "..."
    return sentence
