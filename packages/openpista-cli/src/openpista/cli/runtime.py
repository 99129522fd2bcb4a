"""Composition: builds memory, provider, tools and the agent from the config via entry points.

Every library plugs in through an entry point group, so a third-party distribution that
declares `openpista.providers`, `openpista.tools` or `openpista.channels` entries is wired
exactly like ours.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from openpista.core import plugins
from openpista.core.agent import Agent
from openpista.core.channel import ChannelAdapter
from openpista.core.config import (
    Config,
    ConfigError,
    channel_names,
    channel_setting,
    expand_path,
    provider_settings,
)
from openpista.core.errors import OpenpistaError
from openpista.core.memory import MemoryStore
from openpista.core.models import Session
from openpista.core.provider import LlmProvider
from openpista.core.registry import ToolRegistry
from openpista.core.skills import SkillLoader, SkillRunTool
from openpista.tools.settings import ShellSettings


def _config_file(config: Config) -> str:
    return str(config.source) if config.source else "configuration"


def create_provider(config: Config, provider: str | None, model: str | None) -> LlmProvider:
    settings = provider_settings(config, provider, model)
    installed = plugins.available(plugins.PROVIDERS_GROUP)
    if settings.name not in installed:
        source, key = (
            ("command line", "--provider")
            if provider
            else (
                _config_file(config),
                "agent.provider",
            )
        )
        raise ConfigError(
            source,
            key,
            f"no provider named {settings.name!r} is installed; installed: {', '.join(installed)}",
        )
    factory = plugins.load(plugins.PROVIDERS_GROUP, settings.name)
    return factory(settings)


def create_tools(config: Config, skills: SkillLoader) -> ToolRegistry:
    registry = ToolRegistry()
    for name in plugins.available(plugins.TOOLS_GROUP):
        factory = plugins.load(plugins.TOOLS_GROUP, name)
        for tool in factory(config):
            registry.register(tool)
    shell = config.section("tools.shell", ShellSettings)
    registry.register(SkillRunTool(skills, default_timeout_s=shell.timeout_s))
    return registry


def create_channels(config: Config, names: list[str] | None = None) -> dict[str, ChannelAdapter]:
    """The adapters of every enabled channel (or just `names`), keyed by channel name."""
    channels: dict[str, ChannelAdapter] = {}
    for name in plugins.available(plugins.CHANNELS_GROUP):
        if names is not None and name not in names:
            continue
        if names is None and not channel_enabled(config, name):
            continue
        factory = plugins.load(plugins.CHANNELS_GROUP, name)
        channels[name] = factory(config)
    return channels


def enabled_but_missing_channels(config: Config) -> list[str]:
    """Channels switched on in the config that no installed distribution provides."""
    installed = set(plugins.available(plugins.CHANNELS_GROUP))
    return [
        name
        for name in channel_names(config)
        if channel_enabled(config, name) and name not in installed
    ]


def channel_enabled(config: Config, name: str) -> bool:
    return bool(channel_setting(config, name, "enabled", False))


async def open_memory(config: Config) -> MemoryStore:
    from openpista.core.store import open_store

    return await open_store(config.database.url)


async def open_session(memory: MemoryStore, session_id: str | None, channel_id: str) -> Session:
    """The session `session_id` (created under that id when new), or a new one when None."""
    if session_id is None:
        return await memory.create_session(channel_id)
    existing = await memory.get_session(session_id)
    return existing or await memory.create_session(channel_id, session_id)


@dataclass(slots=True)
class Runtime:
    config: Config
    memory: MemoryStore
    provider: LlmProvider
    tools: ToolRegistry
    skills: SkillLoader
    agent: Agent


@contextlib.asynccontextmanager
async def open_runtime(
    config: Config, *, provider: str | None = None, model: str | None = None
) -> AsyncIterator[Runtime]:
    """Everything a turn needs, closed again on exit."""
    llm = create_provider(config, provider, model)
    skills = SkillLoader(expand_path(config.skills.workspace, config.home))
    tools = create_tools(config, skills)
    try:
        memory = await open_memory(config)
    except BaseException:
        await llm.aclose()
        raise
    agent = Agent(
        llm,
        tools,
        memory,
        system_prompt=config.agent.system_prompt,
        skills_context=skills.context,
        max_tool_rounds=config.agent.max_tool_rounds,
    )
    try:
        yield Runtime(config, memory, llm, tools, skills, agent)
    finally:
        with contextlib.suppress(OpenpistaError):
            await llm.aclose()
        await memory.aclose()
