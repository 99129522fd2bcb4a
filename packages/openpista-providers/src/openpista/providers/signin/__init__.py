"""Signing in to providers: OAuth flows (OpenAI, Anthropic, OpenRouter, GitHub Copilot),
token refresh, and the hook providers authenticate with (`stored_auth`).

Importing this package is cheap: httpx is loaded only when a flow or a refresh runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openpista.providers.signin._http import SigninError
    from openpista.providers.signin.console import SigninConsole
    from openpista.providers.signin.endpoints import SigninEndpoints
    from openpista.providers.signin.flows import refresh_credential, sign_in
    from openpista.providers.signin.refresh import REFRESH_WINDOW_S, fresh_credential
    from openpista.providers.signin.slots import CREDENTIAL_SLOTS, CredentialSlot, find_slot
    from openpista.providers.signin.stored import StoredAuth, stored_auth

__all__ = [
    "CREDENTIAL_SLOTS",
    "REFRESH_WINDOW_S",
    "CredentialSlot",
    "SigninConsole",
    "SigninEndpoints",
    "SigninError",
    "StoredAuth",
    "find_slot",
    "fresh_credential",
    "refresh_credential",
    "sign_in",
    "stored_auth",
]

_LAZY = {
    "SigninError": "openpista.providers.signin._http",
    "SigninConsole": "openpista.providers.signin.console",
    "SigninEndpoints": "openpista.providers.signin.endpoints",
    "refresh_credential": "openpista.providers.signin.flows",
    "sign_in": "openpista.providers.signin.flows",
    "REFRESH_WINDOW_S": "openpista.providers.signin.refresh",
    "fresh_credential": "openpista.providers.signin.refresh",
    "CREDENTIAL_SLOTS": "openpista.providers.signin.slots",
    "CredentialSlot": "openpista.providers.signin.slots",
    "find_slot": "openpista.providers.signin.slots",
    "StoredAuth": "openpista.providers.signin.stored",
    "stored_auth": "openpista.providers.signin.stored",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
