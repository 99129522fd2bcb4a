"""Composition: builds memory, provider, tools and the agent from the config via entry points.

Every library plugs in through an entry point group, so a third-party distribution that
declares `openpista.providers`, `openpista.tools`, `openpista.channels` or
`openpista.skill_runners` entries is wired exactly like ours.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncIterator
from dataclasses import dataclass

from openpista.core import plugins
from openpista.core.agent import Agent
from openpista.core.approval import ApprovalGate, ApprovalPolicy
from openpista.core.channel import ChannelAdapter
from openpista.core.config import (
    Config,
    ConfigError,
    approval_mode,
    channel_names,
    channel_setting,
    expand_path,
    normalise_provider,
    provider_settings,
)
from openpista.core.context import ContextBudget, resolve_budget
from openpista.core.errors import OpenpistaError
from openpista.core.fallback import FallbackModel, FallbackProvider
from openpista.core.gateway import Gateway
from openpista.core.media import MediaStore
from openpista.core.memory import MemoryStore
from openpista.core.models import Session
from openpista.core.provider import LlmProvider
from openpista.core.registry import ToolRegistry, close_tools
from openpista.core.skills import SkillLoader, SkillRunner, SkillRunTool
from openpista.core.tool import Tool, ToolFactory


def _config_file(config: Config) -> str:
    return str(config.source) if config.source else "configuration"


def create_provider(config: Config, provider: str | None, model: str | None) -> LlmProvider:
    """The provider for a turn: the chosen one (`--provider`/`--model` over the config),
    wrapped with `[agent] fallback_models` when there are any (each built only when needed).

    `--provider` naming another provider than the config's, without `--model`, gets that
    provider's first known model: the config's model belongs to the config's provider.
    """
    # Listing entry points scans every installed distribution: once per start, not per use.
    installed = plugins.available(plugins.PROVIDERS_GROUP)
    _check_provider_sections(config, installed)
    source, key = ("command line", "--provider") if provider else (_config_file(config), "")
    if provider and model is None and normalise_provider(provider) != config.agent.provider:
        model = default_model(normalise_provider(provider))
    primary = build_provider(
        config, provider, model, source=source, key=key or "agent.provider", installed=installed
    )
    if not config.agent.fallback_models:
        return primary
    fallbacks: list[FallbackModel] = []
    for entry in config.agent.fallback_models:
        name, _, entry_model = entry.partition("/")
        if name not in installed:
            # Said now, not in the middle of an outage when the entry is first needed.
            raise ConfigError(
                _config_file(config),
                "agent.fallback_models",
                f"{entry!r}: no provider named {name!r} is installed; installed: "
                f"{', '.join(installed)}",
            )
        build = functools.partial(
            build_provider,
            config,
            name,
            entry_model,
            source=_config_file(config),
            key="agent.fallback_models",
            active=False,
            installed=installed,
        )
        fallbacks.append(FallbackModel(entry, build))
    return FallbackProvider(primary, fallbacks)


def _check_provider_sections(config: Config, installed: list[str]) -> None:
    """A `[providers.NAME]` naming no installed provider but close to one is a typo whose keys
    would be ignored without a word: refused, as a mistyped channel section is."""
    import difflib

    for name in config.providers:
        if name in installed:
            continue
        close = difflib.get_close_matches(name, installed, n=1)
        if close:
            raise ConfigError(
                _config_file(config),
                f"providers.{name}",
                f"no provider named {name!r} is installed (did you mean providers.{close[0]}?); "
                f"installed: {', '.join(installed)}",
            )


def default_model(provider: str) -> str | None:
    """The model to use with `provider` when none is named: its first known one (None when
    openpista knows none, e.g. custom: the config's model is kept)."""
    from openpista.providers.catalog import known_models

    known = known_models(provider)
    return known[0] if known else None


def build_provider(
    config: Config,
    provider: str | None,
    model: str | None,
    *,
    source: str = "command line",
    key: str = "--provider",
    active: bool = True,
    installed: list[str] | None = None,
) -> LlmProvider:
    """One provider, through its `openpista.providers` entry point; `source` and `key` say
    where an unknown provider name came from; `active=False` for a fallback entry;
    `installed`, the provider names already listed (listed here when None)."""
    settings = provider_settings(config, provider, model, active=active)
    if installed is None:
        installed = plugins.available(plugins.PROVIDERS_GROUP)
    if settings.name not in installed:
        raise ConfigError(
            source,
            key,
            f"no provider named {settings.name!r} is installed; installed: {', '.join(installed)}",
        )
    factory = plugins.load(plugins.PROVIDERS_GROUP, settings.name)
    return factory(settings)


async def create_tools(config: Config, skills: SkillLoader) -> ToolRegistry:
    """Every installed tool set's tools, then skill.run; a factory may be async.

    If a factory or a registration fails, the tools made so far are closed before the error
    propagates, so a browser opened by one tool set does not outlive a failed start.
    """
    registry = ToolRegistry()
    made: list[Tool] = []
    try:
        for name in plugins.available(plugins.TOOLS_GROUP):
            factory: ToolFactory = plugins.load(plugins.TOOLS_GROUP, name)
            produced = factory(config)
            tools = await produced if inspect.isawaitable(produced) else produced
            made.extend(tools)
            for tool in tools:
                registry.register(tool)
        registry.register(SkillRunTool(skills, runners=create_skill_runners(config)))
    except BaseException:
        await close_tools(reversed(made))
        raise
    return registry


def create_skill_runners(config: Config) -> dict[str, SkillRunner]:
    """A runner for every skill mode an installed distribution provides, keyed by mode."""
    return {
        mode: plugins.load(plugins.SKILL_RUNNERS_GROUP, mode)(config)
        for mode in plugins.available(plugins.SKILL_RUNNERS_GROUP)
    }


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
    try:
        tools = await create_tools(config, skills)
    except BaseException:
        await llm.aclose()
        raise
    try:
        memory = await open_memory(config)
    except BaseException:
        await tools.aclose()
        await llm.aclose()
        raise
    agent = Agent(
        llm,
        tools,
        memory,
        system_prompt=config.agent.system_prompt,
        skills_context=skills.context,
        max_tool_rounds=config.agent.max_tool_rounds,
        approval=ApprovalGate(config.agent.approval_timeout_s, memory),
        media=MediaStore.in_home(config.home),
        context=ContextBudget(resolve_budget(config.agent.context_tokens, llm.model)),
    )
    try:
        yield Runtime(config, memory, llm, tools, skills, agent)
    finally:
        await tools.aclose()
        with contextlib.suppress(OpenpistaError):
            await llm.aclose()
        await memory.aclose()


def create_gateway(runtime: Runtime, channels: dict[str, ChannelAdapter]) -> Gateway:
    """The gateway every turn goes through, with each channel's approval policy."""
    config = runtime.config

    def policy(channel_id: str) -> ApprovalPolicy:
        return approval_mode(config, channel_id)

    return Gateway(
        runtime.agent,
        runtime.memory,
        channels,
        timeout_s=config.agent.timeout_s,
        approval=policy,
    )
