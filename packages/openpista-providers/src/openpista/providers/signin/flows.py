"""Sign-in and refresh by provider name: the one place that knows which flow serves whom."""

from __future__ import annotations

from openpista.providers.credentials import Credential
from openpista.providers.signin import anthropic, copilot, openai, openrouter
from openpista.providers.signin._http import SigninError
from openpista.providers.signin.console import SigninConsole
from openpista.providers.signin.endpoints import FLOWS, SigninEndpoints


async def sign_in(
    provider: str,
    console: SigninConsole,
    endpoints: SigninEndpoints | None = None,
    *,
    timeout_s: float = 300.0,
    now: float | None = None,
) -> Credential:
    """Run `provider`'s sign-in flow with `console`; the credential is returned, not stored.

    `timeout_s` bounds the wait for a browser callback. Raises SigninError.
    """
    endpoints = SigninEndpoints.from_env() if endpoints is None else endpoints
    if provider == "openai":
        return await openai.sign_in(console, endpoints.openai, timeout_s=timeout_s, now=now)
    if provider == "anthropic":
        return await anthropic.sign_in(console, endpoints.anthropic, now=now)
    if provider == "openrouter":
        return await openrouter.sign_in(console, endpoints.openrouter, timeout_s=timeout_s)
    if provider == "copilot":
        return await copilot.sign_in(console, endpoints.copilot, now=now)
    raise SigninError(
        f"{provider}: no sign-in flow (providers with one: {', '.join(FLOWS)}); "
        "enter an API key instead",
        provider=provider,
    )


async def refresh_credential(
    credential: Credential, endpoints: SigninEndpoints, now: float | None = None
) -> Credential:
    """`credential` renewed by its provider's refresh (raises SigninError with `detail`)."""
    provider = credential.provider
    if not credential.refresh_token:
        raise SigninError(
            f"{provider}: no refresh token", provider=provider, detail="no refresh token stored"
        )
    if provider == "openai":
        return await openai.refresh(credential, endpoints.openai, now)
    if provider == "anthropic":
        return await anthropic.refresh(credential, endpoints.anthropic, now)
    if provider == "copilot":
        return await copilot.refresh(credential, endpoints.copilot, now)
    raise SigninError(
        f"{provider}: cannot refresh", provider=provider, detail="this provider has no refresh"
    )
