"""Finding the providers, tools, channels and skill runners installed as entry points.

Third parties' entry points are found exactly like ours. An entry point is only imported when
it is loaded, so listing what is installed stays cheap; importlib.metadata itself (tens of
milliseconds) is imported on first use, not at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openpista.core.errors import OpenpistaError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

PROVIDERS_GROUP = "openpista.providers"
TOOLS_GROUP = "openpista.tools"
CHANNELS_GROUP = "openpista.channels"
SKILL_RUNNERS_GROUP = "openpista.skill_runners"
"""Entry name: a skill mode (`subprocess`, `wasm`, `container`); object: a SkillRunnerFactory."""

_KINDS = {
    PROVIDERS_GROUP: "provider",
    TOOLS_GROUP: "tool set",
    CHANNELS_GROUP: "channel",
    SKILL_RUNNERS_GROUP: "skill runner",
}


def available(group: str) -> list[str]:
    """The names of the entry points installed in `group`, sorted."""
    from importlib.metadata import entry_points

    return sorted({entry.name for entry in entry_points(group=group)})


def load(group: str, name: str) -> Any:
    """The object entry point `name` of `group` names; OpenpistaError when missing or broken."""
    from importlib.metadata import entry_points

    found = entry_points(group=group)
    matches: list[EntryPoint] = [entry for entry in found if entry.name == name]
    kind = _KINDS.get(group, f"'{group}' plugin")
    if not matches:
        installed = ", ".join(sorted({entry.name for entry in found})) or "none"
        raise OpenpistaError(
            f"no openpista {kind} named '{name}' is installed; installed: {installed}"
        )
    entry = matches[0]
    try:
        return entry.load()
    except Exception as exc:
        dist = entry.dist.name if entry.dist is not None else "the distribution that provides it"
        raise OpenpistaError(
            f"the openpista {kind} '{name}' ({entry.value}) failed to load: "
            f"{type(exc).__name__}: {exc}; reinstall {dist}"
        ) from exc
