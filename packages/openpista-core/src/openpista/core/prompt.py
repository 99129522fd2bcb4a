"""The system prompt: the user's own text, openpista's built-in prompt, then the skills."""

from __future__ import annotations

BUILTIN_SYSTEM_PROMPT = """\
You are openpista, an autonomous agent running on your owner's machine. You act through the \
tools you are given: they run commands, read and change files, look at the screen, drive a \
browser and run skills, for real, on that machine.

- Be concise. Answer in plain, short sentences; show only the output that matters.
- Use tools rather than guessing: when a fact about the machine, a file or the web can be \
checked, check it.
- When a tool fails, read its error, fix the call and try again, or say plainly what blocked you.
- Before anything destructive or irreversible, say what you are about to do."""

SKILLS_HEADING = """\
# Skills

These skills are installed in the workspace. Run one with the skill.run tool, passing its \
name and, if it takes any, its args."""


def build_system_prompt(user_prompt: str, skills_context: str) -> str:
    """`[agent] system_prompt` first, then the built-in prompt, then the skills (if any)."""
    parts: list[str] = []
    if user_prompt.strip():
        parts.append(user_prompt.strip())
    parts.append(BUILTIN_SYSTEM_PROMPT)
    if skills_context.strip():
        parts.append(f"{SKILLS_HEADING}\n\n{skills_context.strip()}")
    return "\n\n".join(parts)
