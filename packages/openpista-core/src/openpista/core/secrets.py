"""openpista's own secrets in the environment, and the environment tools get without them.

The variables openpista reads credentials from are never handed to the commands a model
runs (CONTRACT section 5): a model told to `env` or `cat /proc/self/environ` must not find
the user's API keys or bot tokens. Add a variable here when openpista starts reading a new
secret from the environment; a distribution with its own (a provider preset's key) declares
it with `register_secret_variables` when its module is loaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

SECRET_VARIABLES: frozenset[str] = frozenset(
    {
        "OPENPISTA_API_KEY",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "OPENROUTER_API_KEY",
        "TOGETHER_API_KEY",
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_WEBHOOK_SECRET",
        "OPENPISTA_WEB_TOKEN",
    }
)
"""The credential variables of CONTRACT section 4, in their upper-case spelling."""

_registered: set[str] = set()


def register_secret_variables(names: Iterable[str]) -> None:
    """Declare more variables holding credentials (e.g. a provider preset's `*_API_KEY`)."""
    _registered.update(name.upper() for name in names if name)


def secret_variables() -> frozenset[str]:
    """Every variable removed from tools' environment (compared ignoring case)."""
    return SECRET_VARIABLES | _registered


def is_secret_variable(name: str) -> bool:
    # Ignoring case covers the lower-case `openpista_API_KEY` spellings config accepts.
    return name.upper() in secret_variables()


def scrubbed_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (default: this process's environment) without openpista's secrets."""
    env = os.environ if env is None else env
    secrets = secret_variables()
    return {name: value for name, value in env.items() if name.upper() not in secrets}
