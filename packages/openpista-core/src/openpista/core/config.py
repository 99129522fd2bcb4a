"""openpista's configuration: the TOML file of CONTRACT section 4, with environment overrides.

The dataclasses below are the single description of every key: the loader validates against
them and docs/configuration.md is checked against them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def openpista_home(env: dict[str, str] | None = None) -> Path:
    """OPENPISTA_HOME (or the legacy lower-case spelling), default ~/.openpista."""
    env = dict(os.environ) if env is None else env
    raw = env.get("OPENPISTA_HOME") or env.get("openpista_HOME") or "~/.openpista"
    return Path(raw).expanduser()


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
