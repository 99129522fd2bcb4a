"""openpista's configuration: the TOML file of CONTRACT section 4, with environment overrides.

The dataclasses below are the single description of every key: the loader validates against
them and docs/configuration.md is checked against them.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from openpista.core.config_checks import CHECKS, mcp_server_name
from openpista.core.config_schema import KeyPath, Schema, TableReader, field_type, schema_keys
from openpista.core.errors import ConfigError

if TYPE_CHECKING:
    from openpista.core.provider import ProviderSettings

__all__ = [
    "ENVIRONMENT_VARIABLES",
    "PROVIDER_ALIASES",
    "AgentConfig",
    "ChannelsConfig",
    "CliChannelConfig",
    "Config",
    "ConfigError",
    "CronJobConfig",
    "DatabaseConfig",
    "McpConfig",
    "McpServerConfig",
    "ProviderConfig",
    "ShellToolConfig",
    "SkillsConfig",
    "TelegramChannelConfig",
    "ToolsConfig",
    "WebChannelConfig",
    "WhatsAppChannelConfig",
    "approval_mode",
    "channel_names",
    "channel_setting",
    "config_file",
    "config_keys",
    "env_value",
    "expand_path",
    "load_config",
    "normalise_provider",
    "openpista_home",
    "provider_settings",
]


def env_value(env: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """(spelling found, value) of an environment variable, or None when unset or empty.

    OPENPISTA_* variables are also found under the original design's lower-case prefix
    (`openpista_WEB_PORT`); the upper-case spelling wins when both are set.
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
class ShellToolConfig:
    timeout_s: float = 30.0
    max_output_chars: int = 10000


@dataclass(slots=True)
class ToolsConfig:
    shell: ShellToolConfig = field(default_factory=ShellToolConfig)


@dataclass(slots=True)
class SkillsConfig:
    workspace: str = "~/.openpista/workspace"


@dataclass(slots=True)
class CliChannelConfig:
    enabled: bool = True
    approval: str = ""


@dataclass(slots=True)
class TelegramChannelConfig:
    enabled: bool = False
    token: str = ""
    allowed_users: list[int] = field(default_factory=lambda: [])
    api_url: str = ""
    webhook_url: str = ""
    webhook_port: int = 8443
    webhook_secret: str = ""
    confirm_actions: bool = False
    approval: str = ""


@dataclass(slots=True)
class WebChannelConfig:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 3210
    token: str = ""
    cors_origins: list[str] = field(default_factory=lambda: [])
    static_dir: str = ""
    approval: str = ""


@dataclass(slots=True)
class WhatsAppChannelConfig:
    enabled: bool = False
    session_dir: str = "~/.openpista/whatsapp"
    bridge_path: str = ""
    allowed_numbers: list[str] = field(default_factory=lambda: [])
    approval: str = ""


@dataclass(slots=True)
class ChannelsConfig:
    cli: CliChannelConfig = field(default_factory=CliChannelConfig)
    telegram: TelegramChannelConfig = field(default_factory=TelegramChannelConfig)
    web: WebChannelConfig = field(default_factory=WebChannelConfig)
    whatsapp: WhatsAppChannelConfig = field(default_factory=WhatsAppChannelConfig)
    extra: dict[str, dict[str, Any]] = field(default_factory=lambda: {})
    """Sections of third-party channels (`[channels.discord]`), passed through unvalidated."""


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
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    skills: SkillsConfig = field(default_factory=SkillsConfig)
    channels: ChannelsConfig = field(default_factory=ChannelsConfig)
    cron: list[CronJobConfig] = field(default_factory=lambda: [])
    mcp: McpConfig = field(default_factory=McpConfig)
    home: Path = field(default_factory=openpista_home)
    """OPENPISTA_HOME: not a file key; where everything openpista writes lives."""
    source: Path | None = None
    """The config file that was read, or None when defaults applied."""


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
    "channels.whatsapp.session_dir": "whatsapp",
}

_VARIABLE_KEYS: tuple[tuple[str, str], ...] = (
    ("OPENPISTA_PROVIDER", "agent.provider"),
    ("OPENPISTA_MODEL", "agent.model"),
    ("OPENPISTA_DATABASE_URL", "database.url"),
    ("OPENPISTA_WORKSPACE", "skills.workspace"),
    ("TELEGRAM_BOT_TOKEN", "channels.telegram.token"),
    ("TELEGRAM_ALLOWED_USERS", "channels.telegram.allowed_users"),
    ("TELEGRAM_API_URL", "channels.telegram.api_url"),
    ("TELEGRAM_WEBHOOK_URL", "channels.telegram.webhook_url"),
    ("TELEGRAM_WEBHOOK_PORT", "channels.telegram.webhook_port"),
    ("TELEGRAM_WEBHOOK_SECRET", "channels.telegram.webhook_secret"),
    ("OPENPISTA_WEB_TOKEN", "channels.web.token"),
    ("OPENPISTA_WEB_PORT", "channels.web.port"),
    ("OPENPISTA_WEB_HOST", "channels.web.host"),
    ("WHATSAPP_SESSION_DIR", "channels.whatsapp.session_dir"),
    ("WHATSAPP_BRIDGE_PATH", "channels.whatsapp.bridge_path"),
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
        "WHATSAPP_SESSION_DIR",
        "WHATSAPP_BRIDGE_PATH",
    }
)

ENVIRONMENT_VARIABLES: tuple[str, ...] = (
    "OPENPISTA_HOME",
    "OPENPISTA_CONFIG",
    *(name for name, _ in _VARIABLE_KEYS),
    *(name for name, _ in _ACTIVE_PROVIDER_VARIABLES),
    *(name for name, _, _ in _PRESET_VARIABLES),
)
"""Every environment variable the configuration reads (OPENPISTA_* also as openpista_*)."""


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
    """
    env = os.environ if env is None else env
    home = openpista_home(env)
    file = config_file(path, env)
    table = _read_toml(file)
    reader = TableReader(str(file), _SCHEMA)
    config = reader.read(Config, table or {})
    config.home = home
    config.source = file if table is not None else None
    _normalise(config, reader)
    _check_across_keys(config, reader)
    _apply_home_defaults(config, table or {}, home)
    _apply_environment(config, env)
    return config


def provider_settings(
    config: Config, provider: str | None = None, model: str | None = None
) -> ProviderSettings:
    """The settings to build a provider from: the named (default: the active) provider's
    `[providers.NAME]` section, with `model` (default: `[agent] model`) and the agent timeout.
    """
    from openpista.core.provider import ProviderSettings

    name = normalise_provider(provider or config.agent.provider)
    section = config.providers.get(name, ProviderConfig())
    return ProviderSettings(
        name=name,
        model=model or config.agent.model,
        base_url=section.base_url,
        api_key=section.api_key,
        api=section.api,
        timeout_s=config.agent.timeout_s,
    )


def approval_mode(config: Config, channel: str, one_shot: bool = False) -> str:
    """Whether tool calls on `channel` need the user's approval: "auto" or "ask".

    `channel` is a channel name (`cli`, `telegram`, ...) or channel id (`telegram:42`); `tui`
    means the cli channel. `[channels.NAME] approval` wins, then `[agent] approval`; when both
    are empty a one-shot `run -e` is auto and everything else (TUI, remote channels) asks.
    """
    name = channel.split(":", 1)[0]
    if name == "tui":
        name = "cli"
    for mode in (_channel_approval(config, name), config.agent.approval):
        if mode in ("auto", "ask"):
            return mode
    return "auto" if one_shot else "ask"


def config_keys() -> list[tuple[str, str, str]]:
    """Every key of the file: (dotted key, type, default), as docs/configuration.md lists them.

    `[providers.NAME]` and `[mcp.servers.NAME]` show as NAME, `[[cron]]` entries as `cron[]`,
    and defaults that follow OPENPISTA_HOME as `OPENPISTA_HOME/...`.
    """
    rows = schema_keys(Config, _SCHEMA)
    return [
        (key, kind, f"OPENPISTA_HOME/{_HOME_RELATIVE_DEFAULTS[key]}")
        if key in _HOME_RELATIVE_DEFAULTS
        else (key, kind, default)
        for key, kind, default in rows
    ]


def channel_names(config: Config) -> list[str]:
    """Every channel the configuration knows: the built-in sections, then third-party ones."""
    built_in = [f.name for f in dataclasses.fields(config.channels) if f.name != "extra"]
    return [*built_in, *(name for name in config.channels.extra if name not in built_in)]


def channel_setting(config: Config, name: str, key: str, default: object = None) -> object:
    """`[channels.NAME] KEY`, from the typed section or a third-party channel's table."""
    section = None if name == "extra" else getattr(config.channels, name, None)
    if section is not None:
        return getattr(section, key, default)
    return config.channels.extra.get(name, {}).get(key, default)


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


def _check_across_keys(config: Config, reader: TableReader) -> None:
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


def _apply_home_defaults(config: Config, table: Mapping[str, Any], home: Path) -> None:
    for dotted, name in _HOME_RELATIVE_DEFAULTS.items():
        if not _file_sets(table, dotted):
            _assign(config, dotted, str(home / name))


def _file_sets(table: Mapping[str, Any], dotted: str) -> bool:
    node: object = table
    for name in dotted.split("."):
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


def _apply_environment(config: Config, env: Mapping[str, str]) -> None:
    reader = TableReader("environment", _SCHEMA)
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


_SCHEMA = Schema(
    checks=CHECKS,
    not_keys=frozenset({"home", "source", "channels.extra"}),
    open_tables={"channels": "extra"},
)
