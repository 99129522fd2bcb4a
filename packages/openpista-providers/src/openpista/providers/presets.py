"""The provider presets (openai, anthropic, together, ollama, openrouter, custom) and their
entry point, which picks the wire protocol a provider speaks.

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
    from openpista.providers._http import AuthHeaders
    from openpista.providers.signin.stored import StoredAuth

CHATGPT_BASE_URL = "https://chatgpt.com/backend-api/codex"
"""Where a ChatGPT subscription's Responses API lives (the Codex CLI's backend)."""

COPILOT_BASE_URL = "https://api.githubcopilot.com"


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
    protocol: str = "chat"
    """The wire protocol spoken when `[providers.NAME] api` is empty."""
    display_name: str = ""

    def normalise_base_url(self, url: str) -> str:
        """`url` as the API root this preset's service answers on."""
        url = url.strip().rstrip("/")
        if url and self.api_path and not url.endswith(self.api_path):
            return url + self.api_path
        if url and self.protocol == "anthropic" and url.endswith("/v1"):
            # The Anthropic SDKs take the host root; /v1/messages is added per request.
            return url.removesuffix("/v1")
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
        "anthropic": Preset(
            name="anthropic",
            base_url="https://api.anthropic.com",
            key_env="ANTHROPIC_API_KEY",
            needs_key=True,
            example_models=("claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"),
            protocol="anthropic",
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
        "copilot": Preset(
            name="copilot",
            base_url=COPILOT_BASE_URL,
            key_env="",
            needs_key=True,
            example_models=("gpt-4.1", "claude-sonnet-4", "gpt-4o"),
            display_name="GitHub Copilot",
        ),
        "custom": Preset(name="custom", base_url="", key_env="", needs_key=False),
    }
)
"""Every preset this distribution serves, in the order `openpista model list` shows them."""

# Tools never see the keys openpista reads (core's list holds the contract's; this keeps it
# complete as presets are added).
register_secret_variables(preset.key_env for preset in PRESETS.values())

# Each wire protocol's provider class, imported only when a provider speaks it. Every class
# takes the same keyword arguments (name, model, base_url, api_key, auth, timeout_s,
# key_setting, headers).
PROTOCOLS: Mapping[str, tuple[str, str, str]] = MappingProxyType(
    {
        "chat": (
            "openpista.providers.chat_completions",
            "ChatCompletionsProvider",
            "OpenAI chat completions",
        ),
        "responses": ("openpista.providers.responses", "ResponsesProvider", "the Responses API"),
        "anthropic": ("openpista.providers.anthropic", "AnthropicProvider", "Anthropic Messages"),
    }
)
"""Protocol name (`[providers.NAME] api`) -> (module, class, what to call it)."""

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
    """The entry point of every preset: a provider for `settings`, speaking the protocol
    `settings.api` names (empty: the preset's own).

    `settings.base_url` and `settings.api_key` win over the preset's defaults and environment
    variables. A name that is no preset is served like `custom`. Raises ProviderError when
    the settings cannot work (no key where one is needed, no base URL for custom, an unknown
    protocol).
    """
    return _create(settings, os.environ)


def protocol_for(settings: ProviderSettings) -> str:
    """The wire protocol a provider speaks: `api` when set, else its preset's."""
    name = settings.name
    api = settings.api.strip().lower()
    if api and api not in PROTOCOLS:
        raise ProviderError(
            f'{name}: providers.{name}.api = "{settings.api}" is not a known protocol; '
            f"expected one of {', '.join(repr(p) for p in PROTOCOLS)} (or leave it empty)",
            provider=name,
        )
    if api:
        return api
    preset = PRESETS.get(name)
    return preset.protocol if preset else "chat"


def _create(settings: ProviderSettings, env: Mapping[str, str]) -> LlmProvider:
    name = settings.name
    preset = PRESETS.get(name)
    # The key: one set explicitly (the config, or an environment variable, which the config
    # loader merged into it), else what `openpista auth login` stored (docs/authentication.md).
    api_key = resolve_api_key(name, settings.api_key, env)
    where = _key_source(name, api_key, env)
    auth: AuthHeaders | None = None
    stored = None if api_key else _stored_auth(name)
    if stored is not None and stored.method == "api_key":
        api_key = stored.api_key
        where = f"the key stored by `openpista auth login {name}` (run it again to replace it)"
    elif stored is not None:
        auth = stored.headers
    protocol = protocol_for(settings)
    if auth is not None and name == "openai" and not settings.api.strip():
        # A ChatGPT subscription speaks the Responses API on its own backend.
        protocol = "responses"
    base_url = resolve_base_url(name, settings.base_url, env)
    if auth is not None and not settings.base_url.strip() and stored is not None:
        if name == "openai":
            base_url = CHATGPT_BASE_URL
        elif name == "copilot":
            base_url = stored.credential.extra.get("api_base", "").rstrip("/") or base_url
    if not base_url:
        example = "http://127.0.0.1:8080" if protocol == "anthropic" else "http://127.0.0.1:8000/v1"
        raise ProviderError(
            f"no base_url for {name}: set providers.{name}.base_url in config.toml "
            f"(the API root, e.g. {example})",
            provider=name,
        )
    if preset is not None and preset.needs_key and not api_key and auth is None:
        text = (
            f"not signed in to {name}: run `openpista auth login {name}`"
            if name == "copilot"
            else f"no API key for {name}: set {key_setting(name)}, or sign in with "
            f"`openpista auth login {name}`"
        )
        raise ProviderError(text, provider=name)
    module_name, class_name, _ = PROTOCOLS[protocol]
    # Imported here so that loading the entry point object never pulls in httpx.
    import importlib

    provider_class = getattr(importlib.import_module(module_name), class_name)
    provider: LlmProvider = provider_class(
        name=name,
        model=settings.model,
        base_url=base_url,
        api_key=api_key,
        auth=auth,
        timeout_s=settings.timeout_s,
        key_setting=where,
        headers=_OPENROUTER_HEADERS if name == "openrouter" else None,
    )
    return provider


def _key_source(name: str, api_key: str, env: Mapping[str, str]) -> str:
    """Where the key in use came from, as errors about it must say (the setting to fix)."""
    preset = PRESETS.get(name)
    for variable in ("OPENPISTA_API_KEY", preset.key_env if preset else ""):
        if variable and api_key and env.get(variable, "").strip() == api_key:
            return variable
    return key_setting(name)


def _stored_auth(name: str) -> StoredAuth | None:
    """What `openpista auth login` stored for `name`, or None."""
    from openpista.providers.signin.stored import stored_auth

    return stored_auth(name)
