"""Where each sign-in flow talks to: the real services by default, anything by override.

Overrides from the environment, one flow at a time:

- `OPENPISTA_OAUTH_<FLOW>_BASE` (FLOW: OPENAI, ANTHROPIC, OPENROUTER, COPILOT) replaces the
  scheme and host of every URL of that flow and keeps its path, after any path the base
  itself has: with `OPENPISTA_OAUTH_OPENAI_BASE=http://127.0.0.1:8900/openai` the token
  endpoint becomes `http://127.0.0.1:8900/openai/oauth/token`. This is how tests point a
  flow at a local fake authorization server (openpista.providers.testing.oauth).
- `OPENPISTA_OAUTH_OPENAI_CALLBACK_PORT`, `OPENPISTA_OAUTH_OPENROUTER_CALLBACK_PORT`: the
  port of the local callback server on 127.0.0.1 (0: any free port). OpenAI's is 1455 by
  default: the redirect URI registered for the public client names it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

from openpista.core.errors import ConfigError

FLOWS = ("openai", "anthropic", "openrouter", "copilot")
"""The providers with a sign-in flow (the rest take an API key)."""

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class OpenAIEndpoints:
    """ChatGPT sign-in as the Codex CLI does it: browser, callback on localhost:1455."""

    authorize_url: str = "https://auth.openai.com/oauth/authorize"
    token_url: str = "https://auth.openai.com/oauth/token"
    client_id: str = "app_EMoamEEZ73f0CkXaXp7hrann"
    """The Codex CLI's public client."""
    scope: str = "openid profile email offline_access"
    callback_port: int = 1455
    callback_path: str = "/auth/callback"

    def redirect_uri(self, port: int) -> str:
        # The registered redirect URI says localhost; the server listens on 127.0.0.1.
        return f"http://localhost:{port}{self.callback_path}"


@dataclass(frozen=True, slots=True)
class AnthropicEndpoints:
    """Claude Pro/Max sign-in as Claude Code does it: the code is shown, the user pastes it."""

    authorize_url: str = "https://claude.ai/oauth/authorize"
    token_url: str = "https://console.anthropic.com/v1/oauth/token"
    redirect_uri: str = "https://console.anthropic.com/oauth/code/callback"
    client_id: str = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
    """Claude Code's public client."""
    scope: str = "org:create_api_key user:profile user:inference"


@dataclass(frozen=True, slots=True)
class OpenRouterEndpoints:
    """OpenRouter's PKCE flow: the browser comes back with a code, exchanged for an API key."""

    authorize_url: str = "https://openrouter.ai/auth"
    keys_url: str = "https://openrouter.ai/api/v1/auth/keys"
    callback_port: int = 3000
    callback_path: str = "/callback"

    def callback_url(self, port: int) -> str:
        return f"http://localhost:{port}{self.callback_path}"


@dataclass(frozen=True, slots=True)
class CopilotEndpoints:
    """GitHub's device flow (as Copilot's editor plugins use it), then Copilot's token."""

    device_code_url: str = "https://github.com/login/device/code"
    access_token_url: str = "https://github.com/login/oauth/access_token"
    copilot_token_url: str = "https://api.github.com/copilot_internal/v2/token"
    client_id: str = "Iv1.b507a08c87ecfe98"
    """The public client of GitHub Copilot's editor plugins."""
    scope: str = "read:user"


@dataclass(frozen=True, slots=True)
class SigninEndpoints:
    """The endpoints of every flow; `from_env` applies the OPENPISTA_OAUTH_* overrides."""

    openai: OpenAIEndpoints = field(default_factory=OpenAIEndpoints)
    anthropic: AnthropicEndpoints = field(default_factory=AnthropicEndpoints)
    openrouter: OpenRouterEndpoints = field(default_factory=OpenRouterEndpoints)
    copilot: CopilotEndpoints = field(default_factory=CopilotEndpoints)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SigninEndpoints:
        """The real endpoints with the OPENPISTA_OAUTH_* overrides of `env` (default: os.environ).

        Raises ConfigError naming the variable when a value is not a URL or a port.
        """
        env = os.environ if env is None else env
        defaults = cls()
        return cls(
            openai=_overridden(defaults.openai, "OPENAI", env),
            anthropic=_overridden(defaults.anthropic, "ANTHROPIC", env),
            openrouter=_overridden(defaults.openrouter, "OPENROUTER", env),
            copilot=_overridden(defaults.copilot, "COPILOT", env),
        )


def base_variable(flow: str) -> str:
    return f"OPENPISTA_OAUTH_{flow.upper()}_BASE"


def callback_port_variable(flow: str) -> str:
    return f"OPENPISTA_OAUTH_{flow.upper()}_CALLBACK_PORT"


def _overridden(endpoints: E, flow: str, env: Mapping[str, str]) -> E:
    changes: dict[str, Any] = {}
    base_name = base_variable(flow)
    base = env.get(base_name, "").strip().rstrip("/")
    if base:
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                "environment",
                base_name,
                f'expected an http(s) URL such as "http://127.0.0.1:8900", got "{base}"',
            )
        for spec in fields(endpoints):  # type: ignore[arg-type]
            value = getattr(endpoints, spec.name)
            if isinstance(value, str) and value.startswith("https://"):
                changes[spec.name] = base + urlsplit(value).path
    port_name = callback_port_variable(flow)
    port = env.get(port_name, "").strip()
    if port and hasattr(endpoints, "callback_port"):
        if not port.isdigit() or int(port) > 65535:
            raise ConfigError(
                "environment", port_name, f'expected a port number (0-65535), got "{port}"'
            )
        changes["callback_port"] = int(port)
    return replace(endpoints, **changes) if changes else endpoints  # type: ignore[type-var]
