"""The providers openpista keeps credentials for, and how each one can be signed in to.

The picker of `openpista auth login`, `auth status` and the docs read this table.
Extension slots (gemini, vercel, azure, bedrock) hold keys for providers served through
litellm; what each `extra` field is named follows litellm's parameter names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from openpista.providers.credentials import AuthMethod


@dataclass(frozen=True, slots=True)
class KeyField:
    """One value asked for when an API key is entered."""

    name: str
    """"api_key": the key itself (Credential.access_token); else a Credential.extra key."""
    prompt: str
    secret: bool = True
    """Read without echo, never shown again."""
    optional: bool = False
    url: bool = False
    """An http(s) URL (an endpoint), not a value sent in a header."""


@dataclass(frozen=True, slots=True)
class SigninMethod:
    """One way to sign in to a provider."""

    kind: AuthMethod
    """"oauth": a browser or device sign-in; "api_key": the user types a key."""
    label: str
    """Shown in the picker and after "Signed in to PROVIDER: " (no parentheses: it follows
    the display name in running text)."""
    fields: tuple[KeyField, ...] = ()
    """For "api_key": what to ask, in order."""


@dataclass(frozen=True, slots=True)
class CredentialSlot:
    """A provider credentials can be stored for."""

    name: str
    display_name: str
    methods: tuple[SigninMethod, ...]
    key_env: str = ""
    """The environment variable that can hold this provider's key instead (its preset's, or
    litellm's for the extension slots); `auth status` says when it is set."""

    def method(self, kind: str) -> SigninMethod | None:
        return next((method for method in self.methods if method.kind == kind), None)


def _key(prompt: str = "API key") -> SigninMethod:
    return SigninMethod("api_key", "API key", (KeyField("api_key", prompt),))


CREDENTIAL_SLOTS: Mapping[str, CredentialSlot] = MappingProxyType(
    {
        "openai": CredentialSlot(
            "openai",
            "OpenAI",
            (SigninMethod("oauth", "ChatGPT Plus/Pro subscription, browser sign-in"), _key()),
            key_env="OPENAI_API_KEY",
        ),
        "anthropic": CredentialSlot(
            "anthropic",
            "Anthropic",
            (SigninMethod("oauth", "Claude Pro/Max subscription, paste a code"), _key()),
            key_env="ANTHROPIC_API_KEY",
        ),
        "openrouter": CredentialSlot(
            "openrouter",
            "OpenRouter",
            (SigninMethod("oauth", "Browser sign-in that creates an API key"), _key()),
            key_env="OPENROUTER_API_KEY",
        ),
        "copilot": CredentialSlot(
            "copilot",
            "GitHub Copilot",
            (SigninMethod("oauth", "GitHub sign-in with a device code"),),
        ),
        "together": CredentialSlot(
            "together", "Together AI", (_key(),), key_env="TOGETHER_API_KEY"
        ),
        "ollama": CredentialSlot(
            "ollama",
            "Ollama",
            (_key("API key (only for an Ollama behind an authenticating proxy)"),),
        ),
        "custom": CredentialSlot("custom", "Custom OpenAI-compatible server", (_key(),)),
        "gemini": CredentialSlot("gemini", "Google Gemini", (_key(),), key_env="GEMINI_API_KEY"),
        "vercel": CredentialSlot(
            "vercel", "Vercel AI Gateway", (_key(),), key_env="VERCEL_AI_GATEWAY_API_KEY"
        ),
        "azure": CredentialSlot(
            "azure",
            "Azure OpenAI",
            (
                SigninMethod(
                    "api_key",
                    "API key and endpoint",
                    (
                        KeyField("api_key", "API key"),
                        KeyField(
                            "api_base",
                            "Endpoint (https://NAME.openai.azure.com)",
                            secret=False,
                            url=True,
                        ),
                        KeyField(
                            "api_version",
                            "API version (empty: the default)",
                            secret=False,
                            optional=True,
                        ),
                    ),
                ),
            ),
            key_env="AZURE_API_KEY",
        ),
        "bedrock": CredentialSlot(
            "bedrock",
            "AWS Bedrock",
            (
                SigninMethod(
                    "api_key",
                    "AWS access key",
                    (
                        KeyField("api_key", "AWS access key id", secret=False),
                        KeyField("aws_secret_access_key", "AWS secret access key"),
                        KeyField("aws_region_name", "AWS region (e.g. us-east-1)", secret=False),
                    ),
                ),
            ),
            key_env="AWS_ACCESS_KEY_ID",
        ),
    }
)
"""Every slot, in the order the picker and `auth status` show them."""

SLOT_ALIASES: Mapping[str, str] = MappingProxyType(
    {"claude": "anthropic", "github-copilot": "copilot", "google": "gemini"}
)


def find_slot(name: str) -> CredentialSlot | None:
    """The slot called `name` (case-insensitive, aliases such as `claude` accepted)."""
    key = name.strip().lower()
    return CREDENTIAL_SLOTS.get(SLOT_ALIASES.get(key, key))
