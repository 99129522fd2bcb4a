"""openpista's configuration: the TOML file of CONTRACT section 4, with environment overrides.

The dataclasses below describe every key core reads itself; the `[channels.NAME]` and
`[tools.NAME]` sections are described by the libraries that read them, through the
`openpista.settings` entry points (see openpista.core.settings). The loader validates against
both and docs/configuration.md is checked against both.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from openpista.core.config_checks import CHECKS, mcp_server_name
from openpista.core.config_schema import (
    KeyPath,
    Schema,
    TableReader,
    closest,
    field_type,
    schema_keys,
)
from openpista.core.errors import ConfigError
from openpista.core.settings import SECTION_TABLES, SettingsDeclaration, declared_sections

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from openpista.core.approval import ApprovalPolicy
    from openpista.core.provider import ProviderSettings

S = TypeVar("S")

__all__ = [
    "ENVIRONMENT_VARIABLES",
    "PROVIDER_ALIASES",
    "AgentConfig",
    "Config",
    "ConfigError",
    "CronJobConfig",
    "DatabaseConfig",
    "McpConfig",
    "McpServerConfig",
    "ProviderConfig",
    "SandboxConfig",
    "SkillsConfig",
    "approval_mode",
    "channel_names",
    "channel_setting",
    "config_file",
    "config_keys",
    "env_value",
    "environment_variables",
    "expand_path",
    "load_config",
    "normalise_provider",
    "openpista_home",
    "provider_settings",
]


def env_value(env: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """(spelling found, value) of an environment variable, or None when unset or empty.

    OPENPISTA_* variables are also found under the original design's lower-case prefix
    (`openpista_MODEL`); the upper-case spelling wins when both are set.
    """
    spellings = [name]
    if name.startswith("OPENPISTA_"):
        spellings.append("openpista_" + name.removeprefix("OPENPISTA_"))
    for spelling in spellings:
        value = env.get(spelling, "").strip()
        if value:
            return spelling, value
    return None


def openpista_home(env: Mapping[str, str] | None = None) -> Path:
    """OPENPISTA_HOME (or the legacy lower-case spelling), default ~/.openpista."""
    env = os.environ if env is None else env
    found = env_value(env, "OPENPISTA_HOME")
    raw = found[1] if found else "~/.openpista"
    return Path(raw).expanduser().absolute()


@dataclass(slots=True)
class AgentConfig:
    provider: str = "openai"
    model: str = "gpt-4.1-mini"
    max_tool_rounds: int = 30
    timeout_s: float = 120.0
    approval: str = ""
    approval_timeout_s: float = 300.0
    context_tokens: int = 0
    fallback_models: list[str] = field(default_factory=lambda: [])
    system_prompt: str = ""


@dataclass(slots=True)
class ProviderConfig:
    base_url: str = ""
    api_key: str = ""
    api: str = ""


@dataclass(slots=True)
class DatabaseConfig:
    url: str = "~/.openpista/memory.db"


@dataclass(slots=True)
class SkillsConfig:
    workspace: str = "~/.openpista/workspace"


@dataclass(slots=True)
class SandboxConfig:
    """`[sandbox]`: containers (openpista-sandbox reads it; core only holds the keys)."""

    require_container: bool = False
    image: str = "python:3.12-slim"
    timeout_s: float = 60.0
    memory_mb: int = 512
    cpus: float = 1.0


@dataclass(slots=True)
class CronJobConfig:
    schedule: str
    channel_id: str
    message: str


@dataclass(slots=True)
class McpServerConfig:
    command: list[str] = field(default_factory=lambda: [])
    url: str = ""


@dataclass(slots=True)
class McpConfig:
    servers: dict[str, McpServerConfig] = field(default_factory=lambda: {})


@dataclass(slots=True)
class Config:
    agent: AgentConfig = field(default_factory=AgentConfig)
    providers: dict[str, ProviderConfig] = field(default_factory=lambda: {})
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    tools: dict[str, object] = field(default_factory=lambda: {})
    """`[tools.NAME]` by NAME: the settings object its declaration reads it into (every
    declared section is here once loaded), or the plain table of a section nothing declares."""
    skills: SkillsConfig = field(default_factory=SkillsConfig)
    channels: dict[str, object] = field(default_factory=lambda: {})
    """`[channels.NAME]` by NAME, as `tools` holds `[tools.NAME]`."""
    cron: list[CronJobConfig] = field(default_factory=lambda: [])
    mcp: McpConfig = field(default_factory=McpConfig)
    home: Path = field(default_factory=openpista_home)
    """OPENPISTA_HOME: not a file key; where everything openpista writes lives."""
    source: Path | None = None
    """The config file that was read, or None when defaults applied."""

    def section(self, name: str, settings: type[S]) -> S:
        """Section `name` (`channels.NAME`, `tools.NAME`) as `settings`, the dataclass its
        library declares; all defaults when this Config does not hold it (one made in code).
        """
        table, _, member = name.partition(".")
        if table not in SECTION_TABLES or not member:
            raise ValueError(f"{name!r} is no section name; expected channels.NAME or tools.NAME")
        value = cast(dict[str, object], getattr(self, table)).get(member)
        if value is None:
            return settings()
        if isinstance(value, settings):
            return value
        read_as = "a plain table" if isinstance(value, dict) else type(value).__name__
        raise TypeError(
            f"[{name}] was read as {read_as}, not {settings.__name__}: no installed "
            f"distribution declares it as {settings.__name__} (openpista.settings entry points)"
        )


# ---------------------------------------------------------------------------------------------
# Loading: which file, validation, OPENPISTA_HOME-relative defaults, environment overrides.
# ---------------------------------------------------------------------------------------------

PROVIDER_ALIASES: dict[str, str] = {"claude": "anthropic"}
"""Provider names accepted in place of another (`provider = "claude"` means anthropic)."""

_HOME_RELATIVE_DEFAULTS: dict[str, str] = {
    # Without a value in the file these follow OPENPISTA_HOME, so pointing OPENPISTA_HOME
    # somewhere else moves everything openpista writes.
    "database.url": "memory.db",
    "skills.workspace": "workspace",
}

_VARIABLE_KEYS: tuple[tuple[str, str], ...] = (
    ("OPENPISTA_PROVIDER", "agent.provider"),
    ("OPENPISTA_MODEL", "agent.model"),
    ("OPENPISTA_DATABASE_URL", "database.url"),
    ("OPENPISTA_WORKSPACE", "skills.workspace"),
)

_PRESET_VARIABLES: tuple[tuple[str, str, str], ...] = (
    ("OPENAI_API_KEY", "openai", "api_key"),
    ("ANTHROPIC_API_KEY", "anthropic", "api_key"),
    ("OPENROUTER_API_KEY", "openrouter", "api_key"),
    ("TOGETHER_API_KEY", "together", "api_key"),
    ("OLLAMA_BASE_URL", "ollama", "base_url"),
)

_ACTIVE_PROVIDER_VARIABLES: tuple[tuple[str, str], ...] = (
    ("OPENPISTA_BASE_URL", "base_url"),
    ("OPENPISTA_API_KEY", "api_key"),
)

# Relative paths given in the environment mean the current directory, as on any command line
# (relative paths in the file mean OPENPISTA_HOME; see expand_path).
_PATH_VARIABLES = frozenset(
    {
        "OPENPISTA_DATABASE_URL",
        "OPENPISTA_WORKSPACE",
    }
)

ENVIRONMENT_VARIABLES: tuple[str, ...] = (
    "OPENPISTA_HOME",
    "OPENPISTA_CONFIG",
    *(name for name, _ in _VARIABLE_KEYS),
    *(name for name, _ in _ACTIVE_PROVIDER_VARIABLES),
    *(name for name, _, _ in _PRESET_VARIABLES),
)
"""The environment variables core's own keys read (OPENPISTA_* also as openpista_*); the
declared sections add theirs: see environment_variables()."""


def environment_variables() -> list[str]:
    """Every environment variable the configuration reads, declared sections' included."""
    declared = [
        variable
        for declaration in declared_sections().values()
        for variable in declaration.environment
    ]
    return [*ENVIRONMENT_VARIABLES, *declared]


def config_file(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The config file to read.

    `path` (the --config option) if given, else OPENPISTA_CONFIG, else OPENPISTA_HOME/config.toml.
    """
    env = os.environ if env is None else env
    if path is not None and str(path) != "":
        return Path(path).expanduser()
    found = env_value(env, "OPENPISTA_CONFIG")
    if found:
        return Path(found[1]).expanduser()
    return openpista_home(env) / "config.toml"


def expand_path(raw: str, home: Path) -> Path:
    """A path from the configuration: `~` expanded, relative paths taken from `home`."""
    path = Path(raw).expanduser()
    return path if path.is_absolute() else home / path


def normalise_provider(name: str) -> str:
    """The provider's canonical name: aliases (`claude`) resolved."""
    return PROVIDER_ALIASES.get(name, name)


def load_config(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> Config:
    """The configuration: the file (see config_file), validated, with environment overrides.

    A missing file is not an error (defaults apply, `source` is None). A malformed one raises
    ConfigError naming the file, the key and what was expected; so does a bad environment
    value (file "environment", key the variable).

    `[channels.NAME]` and `[tools.NAME]` sections are read as the installed distributions
    declare them (openpista.core.settings); a section nothing declares is kept as a plain
    table with a warning, or refused when its name looks like a misspelt declared one.
    """
    env = os.environ if env is None else env
    home = openpista_home(env)
    file = config_file(path, env)
    table = _read_toml(file)
    declarations = declared_sections()
    schema = _schema(declarations)
    reader = TableReader(str(file), schema)
    config = reader.read(Config, table or {})
    config.home = home
    config.source = file if table is not None else None
    _complete_sections(config, declarations)
    _check_undeclared_sections(config, declarations, reader)
    _normalise(config, reader)
    _check_across_keys(config, declarations, reader)
    _apply_home_defaults(config, table or {}, home, declarations)
    _apply_environment(config, env, declarations, schema)
    return config


def provider_settings(
    config: Config,
    provider: str | None = None,
    model: str | None = None,
    *,
    active: bool = True,
    env: Mapping[str, str] | None = None,
) -> ProviderSettings:
    """The settings to build a provider from: the named (default: the active) provider's
    `[providers.NAME]` section, with `model` (default: `[agent] model`) and the agent timeout.

    `active`: the provider is the one this run talks to (chosen by `--provider`, say), so
    OPENPISTA_BASE_URL and OPENPISTA_API_KEY apply to it even when the config names another;
    False for a fallback entry, which they never touch.
    """
    from openpista.core.provider import ProviderSettings

    name = normalise_provider(provider or config.agent.provider)
    section = config.providers.get(name, ProviderConfig())
    base_url, api_key = section.base_url, section.api_key
    if active and name != config.agent.provider:
        # The loader gave these to the config's provider; this run's is another one.
        env = os.environ if env is None else env
        found_url = env_value(env, "OPENPISTA_BASE_URL")
        found_key = env_value(env, "OPENPISTA_API_KEY")
        base_url = found_url[1] if found_url else base_url
        api_key = found_key[1] if found_key else api_key
    return ProviderSettings(
        name=name,
        model=model or config.agent.model,
        base_url=base_url,
        api_key=api_key,
        api=section.api,
        timeout_s=config.agent.timeout_s,
    )


def approval_mode(config: Config, channel: str, one_shot: bool = False) -> ApprovalPolicy:
    """Whether tool calls on `channel` need the user's approval: "auto" or "ask".

    `channel` is a channel name (`cli`, ...) or channel id (`NAME:ID`); `tui` means the cli
    channel. `[channels.NAME] approval` wins, then `[agent] approval`; when both
    are empty a one-shot `run -e` is auto and everything else (TUI, remote channels) asks.
    """
    name = channel.split(":", 1)[0]
    if name == "tui":
        name = "cli"
    for mode in (_channel_approval(config, name), config.agent.approval):
        if mode == "auto" or mode == "ask":
            return mode
    return "auto" if one_shot else "ask"


def config_keys() -> list[tuple[str, str, str]]:
    """Every key of the file: (dotted key, type, default), as docs/configuration.md lists them.

    `[providers.NAME]` and `[mcp.servers.NAME]` show as NAME, `[[cron]]` entries as `cron[]`,
    and defaults that follow OPENPISTA_HOME as `OPENPISTA_HOME/...`. The sections installed
    distributions declare are included.
    """
    declarations = declared_sections()
    home_relative = dict(_HOME_RELATIVE_DEFAULTS)
    for section, declaration in declarations.items():
        for pattern, relative in declaration.home_defaults.items():
            key = f"{section}.{pattern}".replace("*", "NAME")
            home_relative[key] = relative.format(name="NAME")
    rows = schema_keys(Config, _schema(declarations))
    return [
        (key, kind, f"OPENPISTA_HOME/{home_relative[key]}")
        if key in home_relative
        else (key, kind, default)
        for key, kind, default in rows
    ]


def channel_names(config: Config) -> list[str]:
    """Every channel the configuration knows: the declared sections (sorted), then the
    sections of the file nothing declares."""
    return list(config.channels)


def channel_setting(config: Config, name: str, key: str, default: object = None) -> object:
    """`[channels.NAME] KEY` from the declared settings or an undeclared section's plain
    table; `default` when neither holds it. Typed code reads `config.section(...)` instead."""
    section = config.channels.get(name)
    if isinstance(section, dict):
        return cast(dict[str, object], section).get(key, default)
    return default if section is None else getattr(section, key, default)


def _channel_approval(config: Config, name: str) -> str:
    value = channel_setting(config, name, "approval", "")
    return value if isinstance(value, str) else ""


def _read_toml(file: Path) -> dict[str, Any] | None:
    import tomllib

    try:
        data = file.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ConfigError(
            str(file), "(file)", "is a directory; point --config or OPENPISTA_CONFIG at a file"
        ) from None
    except OSError as exc:
        raise ConfigError(
            str(file), "(file)", f"cannot be read ({exc.strerror}); check its permissions"
        ) from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            str(file), "(file)", f"is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        where, problem = _toml_error_position(str(exc))
        raise ConfigError(str(file), where, f"invalid TOML: {problem}") from None


def _toml_error_position(message: str) -> tuple[str, str]:
    """tomllib says `Problem (at line 3, column 7)`; the position becomes the error's key."""
    match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if match:
        return f"line {match[1]}, column {match[2]}", message[: match.start()]
    match = re.search(r"\s*\(at end of document\)$", message)
    if match:
        return "end of file", message[: match.start()]
    return "(file)", message


def _normalise(config: Config, reader: TableReader) -> None:
    config.agent.provider = normalise_provider(config.agent.provider)
    config.agent.fallback_models = [
        normalise_provider(entry.split("/", 1)[0]) + "/" + entry.split("/", 1)[1]
        for entry in config.agent.fallback_models
    ]
    providers: dict[str, ProviderConfig] = {}
    for name, section in config.providers.items():
        canonical = normalise_provider(name)
        if canonical in providers:
            key = KeyPath().field("providers").entry(name)
            raise reader.fail(
                key, f"both [providers.{name}] and [providers.{canonical}] are set; keep one"
            )
        providers[canonical] = section
    config.providers = providers


def _schema(declarations: Mapping[str, SettingsDeclaration[Any]]) -> Schema:
    """Core's own keys and checks, with every declared section's under its name."""
    checks = dict(CHECKS)
    secrets: set[str] = set()
    sections: dict[str, dict[str, type]] = {table: {} for table in SECTION_TABLES}
    for section, declaration in declarations.items():
        table, _, name = section.partition(".")
        sections[table][name] = declaration.settings
        checks.update({f"{section}.{key}": check for key, check in declaration.checks.items()})
        secrets.update(f"{section}.{key}" for key in declaration.secrets)
    return Schema(
        checks=checks,
        not_keys=frozenset({"home", "source"}),
        sections=sections,
        secrets=frozenset(secrets),
    )


def _split_section(section: str) -> tuple[str, str]:
    table, _, name = section.partition(".")
    return table, name


def _sections(config: Config, table: str) -> dict[str, object]:
    return cast(dict[str, object], getattr(config, table))


def _complete_sections(
    config: Config, declarations: Mapping[str, SettingsDeclaration[Any]]
) -> None:
    """Every declared section present (its defaults when the file leaves it out), declared
    ones first and sorted, then the file's undeclared ones in the file's order."""
    for table in SECTION_TABLES:
        read = _sections(config, table)
        complete: dict[str, object] = {}
        for section, declaration in declarations.items():
            section_table, name = _split_section(section)
            if section_table == table:
                complete[name] = read[name] if name in read else declaration.settings()
        complete.update((name, value) for name, value in read.items() if name not in complete)
        setattr(config, table, complete)


def _check_undeclared_sections(
    config: Config, declarations: Mapping[str, SettingsDeclaration[Any]], reader: TableReader
) -> None:
    # Kept for the channel or tools that read them without declaring them; but a name close
    # to a declared one is far more likely a typo, whose keys would otherwise be ignored,
    # unless an installed channel of that very name reads it.
    for table in SECTION_TABLES:
        declared = [
            name
            for section_table, name in map(_split_section, declarations)
            if section_table == table
        ]
        for name in _sections(config, table):
            if name in declared:
                continue
            close = closest(name, declared)
            if close is not None and not _is_installed_channel(table, name):
                raise reader.fail(
                    KeyPath().field(table).entry(name),
                    f"unknown section: no installed distribution declares [{table}.{name}]; "
                    f"declared: {', '.join(declared)} (did you mean {table}.{close}?)",
                )
            import logging  # only for this note: most files have no undeclared section

            logging.getLogger(__name__).warning(
                "%s: [%s.%s]: no installed distribution declares this section, so its keys "
                "are not checked; it is passed on as written",
                reader.file,
                table,
                name,
            )


def _is_installed_channel(table: str, name: str) -> bool:
    from openpista.core import plugins

    return table == "channels" and name in plugins.available(plugins.CHANNELS_GROUP)


def _check_across_keys(
    config: Config, declarations: Mapping[str, SettingsDeclaration[Any]], reader: TableReader
) -> None:
    for section, declaration in declarations.items():
        if declaration.check_section is None:
            continue
        table, name = _split_section(section)
        problem = declaration.check_section(_sections(config, table)[name])
        if problem is not None:
            key, message = problem
            raise reader.fail(f"{section}.{key}", message)
    for name, server in config.mcp.servers.items():
        key = KeyPath().field("mcp").field("servers").entry(name)
        problem = mcp_server_name(name)
        if problem is not None:
            raise reader.fail(key, problem)
        if bool(server.command) == bool(server.url):
            which = "both command and url are" if server.command else "neither command nor url is"
            raise reader.fail(
                key,
                f'{which} set; set exactly one: command = ["program", "arg", ...] for a stdio '
                'server, or url = "http://..." for a streamable HTTP one',
            )


def _apply_home_defaults(
    config: Config,
    table: Mapping[str, Any],
    home: Path,
    declarations: Mapping[str, SettingsDeclaration[Any]],
) -> None:
    for dotted, name in _HOME_RELATIVE_DEFAULTS.items():
        if not _file_sets(table, dotted.split(".")):
            _assign(config, dotted, str(home / name))
    for section, declaration in declarations.items():
        section_table, section_name = _split_section(section)
        settings = _sections(config, section_table)[section_name]
        for pattern, relative in declaration.home_defaults.items():
            for path, owner, key, entry in _matching(settings, pattern.split("."), section_name):
                if not _file_sets(table, [section_table, section_name, *path, key]):
                    setattr(owner, key, str(home / relative.format(name=entry)))


def _matching(
    node: object, parts: Sequence[str], entry: str, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], object, str, str]]:
    """(path, owner, key, entry) of each key a pattern (`accounts.*.session_dir`) names in a
    settings object: the owner holds `key`, `entry` is the last name `*` stood for."""
    head, *rest = parts
    if not rest:
        yield path, node, head, entry
    elif head == "*":
        for name, child in cast(dict[str, object], node).items():
            yield from _matching(child, rest, name, (*path, name))
    else:
        yield from _matching(getattr(node, head), rest, entry, (*path, head))


def _file_sets(table: Mapping[str, Any], names: Sequence[str]) -> bool:
    node: object = table
    for name in names:
        if not isinstance(node, dict) or name not in node:
            return False
        node = cast(dict[str, object], node)[name]
    return True


def _assign(config: Config, dotted: str, value: object) -> None:
    *parents, last = dotted.split(".")
    target: object = config
    for name in parents:
        target = getattr(target, name)
    setattr(target, last, value)


def _apply_environment(
    config: Config,
    env: Mapping[str, str],
    declarations: Mapping[str, SettingsDeclaration[Any]],
    schema: Schema,
) -> None:
    reader = TableReader("environment", schema)
    for variable, dotted in _VARIABLE_KEYS:
        found = env_value(env, variable)
        if found is None:
            continue
        spelling, text = found
        key = KeyPath(dotted, dotted)
        value = reader.parse_text(field_type(Config, dotted), text, key, spelling)
        if variable in _PATH_VARIABLES and isinstance(value, str) and "://" not in value:
            value = str(Path(value).expanduser().absolute())
        if dotted == "agent.provider" and isinstance(value, str):
            value = normalise_provider(value)
        _assign(config, dotted, value)
    # The preset variables first, so the more specific OPENPISTA_* ones win for the active one.
    overrides = [(variable, preset, name) for variable, preset, name in _PRESET_VARIABLES]
    overrides += [
        (variable, config.agent.provider, name) for variable, name in _ACTIVE_PROVIDER_VARIABLES
    ]
    for variable, provider, name in overrides:
        found = env_value(env, variable)
        if found is None:
            continue
        spelling, text = found
        key = KeyPath().field("providers").entry(provider).field(name)
        value = reader.parse_text(str, text, key, spelling)
        section = config.providers.setdefault(provider, ProviderConfig())
        setattr(section, name, value)
    for section, declaration in declarations.items():
        table, name = _split_section(section)
        settings = _sections(config, table)[name]
        for variable, key in declaration.environment.items():
            found = env_value(env, variable)
            if found is None:
                continue
            spelling, text = found
            dotted = f"{section}.{key}"
            hint = field_type(declaration.settings, key)
            value = reader.parse_text(hint, text, KeyPath(dotted, dotted), spelling)
            if key in declaration.paths and isinstance(value, str) and "://" not in value:
                value = str(Path(value).expanduser().absolute())
            setattr(settings, key, value)
