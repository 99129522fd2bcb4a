"""`openpista model list | test [MODEL]`: the model catalog, and one prompt to a model."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from openpista.cli.runtime import build_provider
from openpista.core import plugins
from openpista.core.activity import printable
from openpista.core.config import Config, load_config, normalise_provider
from openpista.core.errors import ConfigError, ProviderError
from openpista.core.models import Message
from openpista.core.provider import ChatRequest, ChatResponse
from openpista.providers.catalog import (
    catalog,
    catalog_providers,
    known_models,
    unknown_model_hint,
)
from openpista.providers.presets import PRESETS, key_setting, resolve_api_key
from openpista.providers.signin.slots import find_slot
from openpista.providers.via_litellm import ROUTES, credentials_found
from openpista.providers.via_litellm import how_to_authenticate as litellm_how_to_authenticate

TEST_PROMPT = "Reply with one short sentence saying that you are working."


def how_to_authenticate(name: str) -> str:
    """How the user gives provider `name` its credentials, in the words errors use:
    litellm's routes say it themselves; a preset names its key's variable and setting, and
    `auth login` where that command knows the provider."""
    if name in ROUTES:
        return litellm_how_to_authenticate(name)
    if name == "copilot":  # a GitHub sign-in; there is no key to set
        return "run `openpista auth login copilot`"
    login = f", or run `openpista auth login {name}`" if find_slot(name) is not None else ""
    return f"set {key_setting(name)}{login}"


def provider_is_authenticated(config: Config, name: str) -> bool | None:
    """Whether openpista can talk to provider `name` as configured: a key in the config or
    in a variable it is read from, a stored sign-in (`openpista auth login`), or a provider
    that needs none (ollama, custom). None when that cannot be told (`litellm` reads each
    vendor's own variable)."""
    section = config.providers.get(name)
    configured = section.api_key if section is not None else ""
    found: bool | None
    if name in ROUTES:
        found = credentials_found(name, configured)
    else:
        found = bool(resolve_api_key(name, configured))
    if found:
        return True
    from openpista.providers.credentials import CredentialStore

    store = CredentialStore.open_if_used(name)
    if store is not None and store.get(name) is not None:
        return True
    if name in ROUTES:
        return found
    preset = PRESETS.get(name)
    return preset is not None and not preset.needs_key


def _status(config: Config, name: str, installed: list[str]) -> str:
    if name not in installed:
        return "not installed"
    authenticated = provider_is_authenticated(config, name)
    if authenticated is None:
        return f"key not checked: {how_to_authenticate(name)}"
    if not authenticated:
        return f"not authenticated: {how_to_authenticate(name)}"
    preset = PRESETS.get(name)
    return "✓ no key needed" if preset is not None and not preset.needs_key else "✓ authenticated"


def list_models(config_path: Path | None) -> None:
    """Every provider of the catalog and every installed one, with its known models and
    context windows; the active model and the `[agent] fallback_models` entries marked."""
    config = load_config(config_path)
    installed = plugins.available(plugins.PROVIDERS_GROUP)
    active_provider, active_model = config.agent.provider, config.agent.model
    names = list(catalog_providers())
    names += [name for name in [*installed, active_provider] if name not in names]
    fallbacks = set(config.agent.fallback_models)
    out: list[str] = []
    for name in names:
        active = name == active_provider
        header = f"{name} ({_status(config, name, installed)})"
        out.append(f"{header}{'  [active provider]' if active else ''}")
        models = [(model.name, model.context_window) for model in catalog(name)]
        if active and active_model not in [model for model, _ in models]:
            models.insert(0, (active_model, None))
        if not models:
            out.append("    any model the server serves: name it in [agent] model or --model")
        width = max((len(model) for model, _ in models), default=0)
        for model, window in models:
            marks = []
            if active and model == active_model:
                marks.append("active")
            if f"{name}/{model}" in fallbacks:
                marks.append("fallback")
            size = f"{window:>11,} tokens" if window else " " * 18
            note = f"  ({', '.join(marks)})" if marks else ""
            out.append(f"  {printable(model):<{width}}  {size}{note}".rstrip())
        out.append("")
    out.append("Use one with --model NAME (or [agent] model); try it with `openpista model test`.")
    sys.stdout.write("\n".join(out) + "\n")


def parse_model(config: Config, text: str | None) -> tuple[str, str]:
    """(provider, model) for `model test [MODEL]`: "provider/model" when the part before the
    first slash names a provider openpista knows, else a model of the active provider (so
    OpenRouter's "openai/gpt-4.1-mini" is written "openrouter/openai/gpt-4.1-mini").

    A slash name for an active provider whose models have no slashes (openai, ollama) is
    taken for an unknown provider: ConfigError listing the installed ones.
    """
    active = config.agent.provider
    if not text:
        return active, config.agent.model
    prefix, slash, rest = text.partition("/")
    provider = normalise_provider(prefix)
    installed = plugins.available(plugins.PROVIDERS_GROUP)
    known_providers = {*installed, *catalog_providers()}
    if slash and rest and provider in known_providers:
        return provider, rest
    if provider in known_providers and not rest and provider != active:
        # `model test anthropic` or `anthropic/`: that provider's own model.
        models = known_models(provider)
        if not models:
            raise ConfigError("command line", "MODEL", f'name a model: "{provider}/MODEL"')
        return provider, models[0]
    known = known_models(active)
    if slash and known and not any("/" in name for name in known):
        raise ConfigError(
            "command line",
            "MODEL",
            f"no provider named {prefix!r} is installed; installed: {', '.join(installed)} "
            f'(write "provider/model", or a model of the active provider {active})',
        )
    return active, text


def test_model(config_path: Path | None, text: str | None) -> int:
    """Send TEST_PROMPT through the normal provider path (streamed, as turns are) and print
    the reply, the model, the latency and the tokens. A failure raises ProviderError, whose
    one line the command prints (naming the known models when the model was not found)."""
    config = load_config(config_path)
    provider, model = parse_model(config, text)
    key = "MODEL" if text else "agent.provider"
    source = "command line" if text else str(config.source or "configuration")
    started, response = asyncio.run(_ask(config, provider, model, source, key))
    label = f"{provider}/{model}"
    answered_as = response.model
    reply = response.message.content.strip() or "(an empty reply)"
    usage = response.usage
    tokens = (
        f"{usage.input_tokens:,} in / {usage.output_tokens:,} out"
        if usage is not None
        else "not reported"
    )
    model_line = label
    if answered_as and answered_as != model:
        model_line += f" (answered as {printable(answered_as)})"
    finish = f" (finish reason: {response.finish_reason})" if response.finish_reason else ""
    sys.stdout.write(
        f"reply:   {printable(reply, keep_lines=True)}\n"
        f"model:   {printable(model_line)}\n"
        f"latency: {started:.2f} s{finish}\n"
        f"tokens:  {tokens}\n"
    )
    return 0


async def _ask(
    config: Config, provider: str, model: str, source: str, key: str
) -> tuple[float, ChatResponse]:
    llm = build_provider(config, provider, model, source=source, key=key)
    pieces: list[str] = []

    async def on_delta(text: str) -> None:
        pieces.append(text)

    try:
        started = time.monotonic()
        try:
            response = await llm.complete(ChatRequest([Message("user", TEST_PROMPT)]), on_delta)
        except ProviderError as exc:
            hint = unknown_model_hint(provider, model) if exc.status_code == 404 else ""
            if hint and hint not in str(exc):
                raise ProviderError(
                    f"{exc}; {hint}",
                    provider=exc.provider,
                    status_code=exc.status_code,
                    retryable=exc.retryable,
                ) from exc
            raise
        return time.monotonic() - started, response
    finally:
        await llm.aclose()
