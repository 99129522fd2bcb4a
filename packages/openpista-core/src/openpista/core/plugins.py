"""Finding the providers, tools, channels, skill runners and settings installed as entry points,
ours and third parties'.

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
SETTINGS_GROUP = "openpista.settings"
"""Entry names are config sections (`channels.NAME`, `tools.NAME`); see openpista.core.settings."""

_KINDS = {
    PROVIDERS_GROUP: "provider",
    TOOLS_GROUP: "tool set",
    CHANNELS_GROUP: "channel",
    SKILL_RUNNERS_GROUP: "skill runner",
    SETTINGS_GROUP: "settings declaration",
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
    return _load_entry(matches[0], kind)


def load_all(group: str) -> list[tuple[EntryPoint, Any]]:
    """Every entry point of `group` with the object it names, sorted by name; of two entry
    points with one name (two distributions claiming it) the first found is kept."""
    from importlib.metadata import entry_points

    kind = _KINDS.get(group, f"'{group}' plugin")
    seen: set[str] = set()
    loaded: list[tuple[EntryPoint, Any]] = []
    for entry in sorted(entry_points(group=group), key=lambda entry: entry.name):
        if entry.name not in seen:
            seen.add(entry.name)
            loaded.append((entry, _load_entry(entry, kind)))
    return loaded


def distribution_name(entry: EntryPoint) -> str:
    return entry.dist.name if entry.dist is not None else "the distribution that provides it"


def _load_entry(entry: EntryPoint, kind: str) -> Any:
    try:
        return entry.load()
    except Exception as exc:
        raise OpenpistaError(
            f"the openpista {kind} '{entry.name}' ({entry.value}) failed to load: "
            f"{type(exc).__name__}: {exc}; reinstall {distribution_name(entry)}"
        ) from exc
