"""The provider presets (openai, together, ollama, openrouter, custom) and their entry point.

Loading this module is cheap on purpose: the cli loads every `openpista.providers` entry
point object at start-up, and httpx is imported only when a provider is actually created.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from openpista.core.errors import ProviderError
from openpista.core.provider import LlmProvider, ProviderSettings
from openpista.core.secrets import register_secret_variables

if TYPE_CHECKING:
    from openpista.providers.chat_completions import ChatCompletionsProvider


@dataclass(frozen=True, slots=True)
class Preset:
    """A known OpenAI-compatible service: where it lives and where its key comes from."""

    name: str
    base_url: str
    """Default base URL; empty for `custom`, which must be given one."""
    key_env: str
    """Environment variable holding the API key; empty when there is none."""
    needs_key: bool
    example_models: tuple[str, ...] = ()
    base_url_env: str = ""
    """Environment variable overriding the default base URL; empty when there is none."""
    api_path: str = ""
    """Added to a base URL that lacks it: Ollama's tools name the host root
    (http://gpu-box:11434), its OpenAI-compatible API lives under /v1."""

    def normalise_base_url(self, url: str) -> str:
        """`url` as the API root this preset's service answers on."""
        url = url.strip().rstrip("/")
        if url and self.api_path and not url.endswith(self.api_path):
            return url + self.api_path
        return url


PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        "openai": Preset(
            name="openai",
            base_url="https://api.openai.com/v1",
            key_env="OPENAI_API_KEY",
            needs_key=True,
            example_models=("gpt-4.1-mini", "gpt-4.1", "gpt-4o-mini", "o4-mini"),
        ),
        "together": Preset(
            name="together",
            base_url="https://api.together.xyz/v1",
            key_env="TOGETHER_API_KEY",
            needs_key=True,
            example_models=(
                "meta-llama/Llama-3.3-70B-Instruct-Turbo",
                "Qwen/Qwen2.5-72B-Instruct-Turbo",
                "deepseek-ai/DeepSeek-V3",
            ),
        ),
        "ollama": Preset(
            name="ollama",
            base_url="http://localhost:11434/v1",
            key_env="",
            needs_key=False,
            example_models=("llama3.2", "qwen2.5", "mistral"),
            base_url_env="OLLAMA_BASE_URL",
            api_path="/v1",
        ),
        "openrouter": Preset(
            name="openrouter",
            base_url="https://openrouter.ai/api/v1",
            key_env="OPENROUTER_API_KEY",
            needs_key=True,
            example_models=(
                "openai/gpt-4.1-mini",
                "anthropic/claude-sonnet-4",
                "google/gemini-2.5-flash",
            ),
        ),
        "custom": Preset(name="custom", base_url="", key_env="", needs_key=False),
    }
)
"""Every preset this distribution serves, in the order `openpista model list` shows them."""

# Tools never see the keys openpista reads (core's list holds the contract's; this keeps it
# complete as presets are added).
register_secret_variables(preset.key_env for preset in PRESETS.values())

# Protocols named in `[providers.NAME] api` that this module does not speak yet.
_LATER_PROTOCOLS = {
    "responses": "the OpenAI Responses API",
    "anthropic": "the Anthropic Messages API",
}

# OpenRouter ranks apps by these; harmless anywhere else, so only sent there.
_OPENROUTER_HEADERS = {
    "HTTP-Referer": "https://github.com/openpista/openpista",
    "X-Title": "openpista",
}


def key_setting(name: str) -> str:
    """Where the key for provider `name` is configured, as error messages tell the user."""
    preset = PRESETS.get(name)
    in_config = f"providers.{name}.api_key in config.toml"
    return f"{preset.key_env} or {in_config}" if preset and preset.key_env else in_config


def resolve_api_key(
    name: str, configured_key: str = "", env: Mapping[str, str] | None = None
) -> str:
    """The key for provider `name`: the configured one, else its preset's environment variable."""
    if configured_key.strip():
        return configured_key.strip()
    preset = PRESETS.get(name)
    if preset is None or not preset.key_env:
        return ""
    env = os.environ if env is None else env
    return env.get(preset.key_env, "").strip()


def resolve_base_url(
    name: str, configured_url: str = "", env: Mapping[str, str] | None = None
) -> str:
    """The base URL for provider `name`: configured, else its environment variable, else default.

    The preset's rule applies wherever the URL came from (the file, OLLAMA_BASE_URL merged into
    it by the config loader, OPENPISTA_BASE_URL): OLLAMA_BASE_URL conventionally names Ollama's
    host root (http://host:11434), so /v1 is added when it is missing there.
    """
    preset = PRESETS.get(name)
    if configured_url.strip():
        url = configured_url.strip().rstrip("/")
        return preset.normalise_base_url(url) if preset else url
    if preset is None:
        return ""
    env = os.environ if env is None else env
    from_env = env.get(preset.base_url_env, "") if preset.base_url_env else ""
    return preset.normalise_base_url(from_env) or preset.base_url


def create_provider(settings: ProviderSettings) -> LlmProvider:
    """The entry point of every preset: a chat-completions provider for `settings`.

    `settings.base_url` and `settings.api_key` win over the preset's defaults and environment
    variables. A name that is no preset is served like `custom`. Raises ProviderError when
    the settings cannot work (no key where one is needed, no base URL for custom, a protocol
    not spoken here).
    """
    return _create_chat_completions_provider(settings, os.environ)


def _create_chat_completions_provider(
    settings: ProviderSettings, env: Mapping[str, str]
) -> ChatCompletionsProvider:
    name = settings.name
    api = settings.api.strip().lower()
    if api in _LATER_PROTOCOLS:
        raise ProviderError(
            f'{name}: providers.{name}.api = "{api}" ({_LATER_PROTOCOLS[api]}) is not supported '
            'yet; it arrives with the providers issue. Set api = "chat" or leave it empty',
            provider=name,
        )
    if api not in ("", "chat"):
        raise ProviderError(
            f'{name}: providers.{name}.api = "{settings.api}" is not a known protocol; '
            'expected "chat", "responses" or "anthropic" (or leave it empty)',
            provider=name,
        )
    preset = PRESETS.get(name)
    base_url = resolve_base_url(name, settings.base_url, env)
    if not base_url:
        raise ProviderError(
            f"no base_url for {name}: set providers.{name}.base_url in config.toml "
            "(an OpenAI-compatible API root, e.g. http://127.0.0.1:8000/v1)",
            provider=name,
        )
    api_key = resolve_api_key(name, settings.api_key, env)
    if preset is not None and preset.needs_key and not api_key:
        raise ProviderError(f"no API key for {name}: set {key_setting(name)}", provider=name)

    # Imported here so that loading the entry point object never pulls in httpx.
    from openpista.providers.chat_completions import ChatCompletionsProvider

    return ChatCompletionsProvider(
        name=name,
        model=settings.model,
        base_url=base_url,
        api_key=api_key,
        timeout_s=settings.timeout_s,
        key_setting=key_setting(name),
        headers=_OPENROUTER_HEADERS if name == "openrouter" else None,
    )
