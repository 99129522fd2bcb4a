"""Sections that libraries declare: a third-party channel's `[channels.NAME]` is read, checked
and overridden from the environment exactly like openpista's own keys.

Each test installs a real distribution (a dist-info folder and a module) into a temporary
folder on sys.path, which is how importlib.metadata finds any installed distribution.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openpista.core.config import (
    Config,
    channel_names,
    channel_setting,
    config_keys,
    environment_variables,
    load_config,
)
from openpista.core.errors import ConfigError, OpenpistaError
from openpista.core.settings import SettingsDeclaration, declared_sections

MODULE = "acme_discord_settings"

DECLARATION = """
from dataclasses import dataclass, field

from openpista.core.settings import APPROVAL, SettingsDeclaration, at_least, port


@dataclass(slots=True)
class DiscordSettings:
    enabled: bool = False
    token: str = ""
    invite: str = ""
    guilds: list[int] = field(default_factory=lambda: [])
    port: int = 4000
    cache_dir: str = ""
    approval: str = ""


def _invite_needs_guilds(settings: DiscordSettings) -> tuple[str, str] | None:
    if settings.invite and not settings.guilds:
        return ("guilds", "empty; an invite needs at least one guild id")
    return None


DISCORD = SettingsDeclaration(
    DiscordSettings,
    checks={"approval": APPROVAL, "guilds[]": at_least(1), "port": port},
    environment={"DISCORD_TOKEN": "token", "DISCORD_PORT": "port", "DISCORD_CACHE": "cache_dir"},
    paths=frozenset({"cache_dir"}),
    home_defaults={"cache_dir": "discord-cache"},
    secrets=frozenset({"invite"}),
    check_section=_invite_needs_guilds,
)

NOT_A_DECLARATION = {"enabled": bool}
"""


def install(folder: Path, entry_points: str, more: str = "") -> None:
    dist_info = folder / "acme_discord-1.0.dist-info"
    dist_info.mkdir(exist_ok=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-discord\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(f"[openpista.settings]\n{entry_points}\n{more}")
    (folder / f"{MODULE}.py").write_text(DECLARATION)


@pytest.fixture
def discord(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A distribution declaring `[channels.discord]`; yields its DiscordSettings class."""
    site = tmp_path / "site"
    site.mkdir()
    install(site, f"channels.discord = {MODULE}:DISCORD\n")
    monkeypatch.syspath_prepend(str(site))
    yield importlib.import_module(MODULE).DiscordSettings
    sys.modules.pop(MODULE, None)


def load_text(tmp_path: Path, text: str, **env: str) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, {"OPENPISTA_HOME": str(tmp_path / "home"), **env})


def config_error(tmp_path: Path, text: str, **env: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text, **env)
    return caught.value


# --- a declared third-party section ------------------------------------------------------------


def test_a_declared_section_is_read_into_its_dataclass(tmp_path: Path, discord: Any) -> None:
    config = load_text(
        tmp_path, '[channels.discord]\nenabled = true\nguilds = [7, 8]\napproval = "auto"\n'
    )
    settings = config.section("channels.discord", discord)
    assert isinstance(settings, discord)
    assert (settings.enabled, settings.guilds, settings.port) == (True, [7, 8], 4000)
    assert channel_setting(config, "discord", "approval") == "auto"
    assert channel_names(config)[0] == "cli"  # declared sections come sorted


def test_a_declared_section_left_out_of_the_file_has_its_defaults(
    tmp_path: Path, discord: Any
) -> None:
    config = load_text(tmp_path, "")
    settings = config.section("channels.discord", discord)
    assert (settings.enabled, settings.token, settings.guilds) == (False, "", [])
    assert settings.cache_dir == str(tmp_path / "home" / "discord-cache")
    assert channel_names(config)[:2] == ["cli", "discord"]


def test_an_unknown_key_of_a_declared_section_suggests_the_right_one(
    tmp_path: Path, discord: Any
) -> None:
    error = config_error(tmp_path, "[channels.discord]\nguild = [1]\n")
    assert error.file == str(tmp_path / "config.toml")
    assert error.key == "channels.discord.guild"
    assert error.problem.startswith("unknown key; expected one of: enabled, token, invite, guilds")
    assert error.problem.endswith("(did you mean guilds?)")


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (
            '[channels.discord]\nguilds = [1, "x"]\n',
            "channels.discord.guilds[1]",
            "expected an integer",
        ),
        ("[channels.discord]\nguilds = [0]\n", "channels.discord.guilds[0]", "at least 1, got 0"),
        ("[channels.discord]\nport = 0\n", "channels.discord.port", "port from 1 to 65535"),
        ('[channels.discord]\napproval = "never"\n', "channels.discord.approval", '"auto", "ask"'),
        (
            '[channels.discord]\ninvite = "abc"\n',
            "channels.discord.guilds",
            "empty; an invite needs at least one guild id",
        ),
        ("[channels.discord]\nenabled = 1\n", "channels.discord.enabled", "expected a boolean"),
        ('[channels]\ndiscord = "on"\n', "channels.discord", "expected a table"),
    ],
)
def test_a_declared_section_is_checked_like_core_keys(
    tmp_path: Path, discord: Any, text: str, key: str, problem: str
) -> None:
    error = config_error(tmp_path, text)
    assert error.key == key
    assert problem in error.problem


def test_secret_values_are_never_shown(tmp_path: Path, discord: Any) -> None:
    for text in ("[channels.discord]\ntoken = 918273\n", "[channels.discord]\ninvite = 918273\n"):
        error = config_error(tmp_path, text)
        assert "918273" not in str(error)
        assert "not shown: a secret" in error.problem


def test_environment_variables_of_a_declared_section_override_the_file(
    tmp_path: Path, discord: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_text(
        tmp_path,
        '[channels.discord]\ntoken = "file"\nport = 4001\n',
        DISCORD_TOKEN="env-token",
        DISCORD_PORT="4002",
        DISCORD_CACHE="cache",
    )
    settings = config.section("channels.discord", discord)
    assert (settings.token, settings.port) == ("env-token", 4002)
    assert settings.cache_dir == str(tmp_path / "cache")
    assert {"DISCORD_TOKEN", "DISCORD_PORT", "DISCORD_CACHE"} <= set(environment_variables())


def test_a_bad_environment_value_names_the_variable(tmp_path: Path, discord: Any) -> None:
    error = config_error(tmp_path, "", DISCORD_PORT="99999")
    assert str(error) == "environment: DISCORD_PORT: expected a port from 1 to 65535, got 99999"


def test_config_keys_list_the_declared_keys(discord: Any) -> None:
    keys = config_keys()
    assert ("channels.discord.guilds", "array of integers", "[]") in keys
    assert ("channels.discord.cache_dir", "string", "OPENPISTA_HOME/discord-cache") in keys


# --- sections nobody declares -------------------------------------------------------------------


def test_an_undeclared_section_is_kept_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        config = load_text(tmp_path, '[channels.matrix]\nenabled = true\nroom = "#x"\n')
    assert config.channels["matrix"] == {"enabled": True, "room": "#x"}
    assert channel_setting(config, "matrix", "enabled") is True
    assert channel_names(config)[-1] == "matrix"
    assert f"{tmp_path / 'config.toml'}: [channels.matrix]: no installed distribution" in (
        caplog.text
    )


def test_a_misspelt_section_name_is_an_error(tmp_path: Path, discord: Any) -> None:
    error = config_error(tmp_path, "[channels.discrod]\nenabled = true\n")
    assert error.key == "channels.discrod"
    assert "no installed distribution declares [channels.discrod]" in error.problem
    assert error.problem.endswith("(did you mean channels.discord?)")
    error = config_error(tmp_path, "[tools.shel]\ntimeout_s = 3\n")
    assert error.key == "tools.shel"
    assert error.problem.endswith("(did you mean tools.shell?)")


def test_a_near_miss_that_an_installed_channel_owns_is_only_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # discorb is a channel of its own (an older plugin that declares no settings), not a typo.
    install(
        tmp_path,
        f"channels.discord = {MODULE}:DISCORD\n",
        f"[openpista.channels]\ndiscorb = {MODULE}:DISCORD\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with caplog.at_level(logging.WARNING):
            config = load_text(tmp_path, "[channels.discorb]\nenabled = true\n")
    finally:
        sys.modules.pop(MODULE, None)
    assert config.channels["discorb"] == {"enabled": True}
    assert "[channels.discorb]: no installed distribution declares this section" in caplog.text


def test_section_reads_typed_settings_or_says_why_it_cannot(tmp_path: Path, discord: Any) -> None:
    assert Config().section("channels.discord", discord) == discord()
    config = load_text(tmp_path, "[channels.matrix]\nenabled = true\n")
    with pytest.raises(TypeError, match=r"\[channels.matrix\] was read as a plain table"):
        config.section("channels.matrix", discord)
    with pytest.raises(ValueError, match=r"channels\.NAME or tools\.NAME"):
        config.section("discord", discord)


# --- declarations that cannot be used ------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (f"channels.discord = {MODULE}:NOT_A_DECLARATION", "is a dict, not a SettingsDeclaration"),
        (f"discord = {MODULE}:DISCORD", "names no section openpista reads"),
        (f"channels.discord = {MODULE}:MISSING", "failed to load"),
    ],
)
def test_a_broken_declaration_names_its_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry: str, problem: str
) -> None:
    install(tmp_path, entry + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(OpenpistaError) as caught:
            declared_sections()
    finally:
        sys.modules.pop(MODULE, None)
    assert problem in str(caught.value)
    assert "acme-discord" in str(caught.value)


def test_a_declaration_needs_defaults_and_scalar_environment_keys() -> None:
    from dataclasses import dataclass

    @dataclass
    class NoDefault:
        token: str

    @dataclass
    class Listy:
        names: list[str] | None = None

    with pytest.raises(TypeError, match=r"NoDefault.token needs a default"):
        SettingsDeclaration(NoDefault)
    with pytest.raises(TypeError, match=r"X_NAMES names Listy.names, which is not"):
        SettingsDeclaration(Listy, environment={"X_NAMES": "names"})
    with pytest.raises(TypeError, match="is not a dataclass type"):
        SettingsDeclaration(dict)


# --- core names no channel ---------------------------------------------------------------------


def test_the_config_machinery_names_no_channel_of_ours() -> None:
    core = Path(importlib.import_module("openpista.core.config").__file__ or "").parent
    for module in ("config.py", "config_schema.py", "settings.py", "plugins.py"):
        text = (core / module).read_text(encoding="utf-8").lower()
        for word in ("telegram", "whatsapp", "web"):
            assert word not in text, f"core/{module} names {word}"
