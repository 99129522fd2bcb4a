"""Settings that libraries declare for their own sections: `[channels.NAME]` and `[tools.NAME]`.

A distribution that adds a channel or a group of tools describes its section beside its entry
point, and names it under the `openpista.settings` entry point group:

    # pyproject.toml
    [project.entry-points."openpista.settings"]
    "channels.discord" = "openpista_discord.settings:DISCORD"

    # openpista_discord/settings.py: imports nothing heavy, it is loaded with every config
    @dataclass(slots=True)
    class DiscordSettings:
        enabled: bool = False
        token: str = ""
        guilds: list[int] = field(default_factory=lambda: [])
        approval: str = ""

    DISCORD = SettingsDeclaration(
        DiscordSettings,
        checks={"approval": APPROVAL, "guilds[]": at_least(1)},
        environment={"DISCORD_TOKEN": "token"},
    )

`openpista.core.config.load_config` then reads `[channels.discord]` into a DiscordSettings
with the same type conversion, checks and "did you mean" errors as its own sections; the
channel reads it back with `config.section("channels.discord", DiscordSettings)`. The
declarations are loaded when a configuration is, never at import.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from openpista.core.config_checks import (
    APPROVAL,
    at_least,
    http_url,
    not_empty,
    one_of,
    origin,
    port,
    positive_seconds,
)
from openpista.core.config_schema import Check, describe_value
from openpista.core.errors import OpenpistaError

__all__ = [
    "APPROVAL",
    "SECTION_TABLES",
    "Check",
    "SettingsDeclaration",
    "at_least",
    "declared_sections",
    "describe_value",
    "http_url",
    "not_empty",
    "one_of",
    "origin",
    "port",
    "positive_seconds",
]

S = TypeVar("S")

SECTION_TABLES = ("channels", "tools")
"""The tables whose sections libraries declare: entry names are `channels.NAME`, `tools.NAME`."""

# What an environment variable's text can be turned into (see TableReader.parse_text).
_TEXT_TYPES: tuple[object, ...] = (str, int, float, list[int])


@dataclass(frozen=True, slots=True)
class SettingsDeclaration(Generic[S]):
    """One section of the config file, as the library that reads it describes it.

    Keys are given relative to the section: `port`, `allowed_users[]` (each item of an
    array), `accounts.*.dm_policy` (every entry of a table whose names the user chooses).
    """

    settings: type[S]
    """A dataclass: its fields are the keys, their types drive conversion, their defaults are
    the defaults (every field needs one: a section left out of the file is all defaults)."""
    checks: Mapping[str, Check] = field(default_factory=lambda: {})
    """Key -> a check on the converted value, returning what is wrong with it or None."""
    environment: Mapping[str, str] = field(default_factory=lambda: {})
    """Environment variable -> the key it overrides. Strings, integers, numbers and
    comma-separated integers (`11,22`) can come from the environment."""
    paths: frozenset[str] = frozenset()
    """Keys holding paths: a relative path from the environment means the current directory."""
    home_defaults: Mapping[str, str] = field(default_factory=lambda: {})
    """Key -> a path under OPENPISTA_HOME it takes when the file does not set it; `{name}` is
    the name of the entry the key is in (`accounts.*.session_dir`: `accounts/{name}`)."""
    secrets: frozenset[str] = frozenset()
    """Keys whose values never appear in error messages (`api_key`, `token`, `secret`,
    `password` and keys ending in `_token`, `_secret`, ... never do, in any section)."""
    check_section: Callable[[S], tuple[str, str] | None] | None = None
    """A check across keys, run on the whole section: (key, problem) when something is wrong."""

    def __post_init__(self) -> None:
        # Mistakes here are the declaring library's, so they surface in its own tests.
        cls: Any = self.settings
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise TypeError(f"SettingsDeclaration: {cls!r} is not a dataclass type")
        hints = typing.get_type_hints(cls)
        for item in dataclasses.fields(cls):
            if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
                raise TypeError(f"SettingsDeclaration: {cls.__name__}.{item.name} needs a default")
        for variable, key in self.environment.items():
            if hints.get(key) not in _TEXT_TYPES:
                raise TypeError(
                    f"SettingsDeclaration: {variable} names {cls.__name__}.{key}, which is not "
                    "a str, int, float or list[int] field"
                )


def declared_sections() -> dict[str, SettingsDeclaration[Any]]:
    """Every section the installed distributions declare, by name (`channels.cli`), sorted.

    Raises OpenpistaError naming the distribution when a declaration cannot be loaded, is not
    a SettingsDeclaration, or names no `channels.NAME` or `tools.NAME` section.
    """
    from openpista.core import plugins

    declared: dict[str, SettingsDeclaration[Any]] = {}
    for entry, value in plugins.load_all(plugins.SETTINGS_GROUP):
        table, _, name = entry.name.partition(".")
        where = (
            f"the openpista settings declaration '{entry.name}' ({entry.value}) of "
            f"{plugins.distribution_name(entry)}"
        )
        if table not in SECTION_TABLES or not name or "." in name:
            raise OpenpistaError(
                f"{where} names no section openpista reads; entry names are channels.NAME or "
                "tools.NAME"
            )
        if not isinstance(value, SettingsDeclaration):
            raise OpenpistaError(
                f"{where} is a {type(value).__name__}, not a SettingsDeclaration; "
                "upgrade or reinstall it"
            )
        declared[entry.name] = cast(SettingsDeclaration[Any], value)
    return declared
