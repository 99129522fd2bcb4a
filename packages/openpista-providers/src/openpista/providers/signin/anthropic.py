"""Anthropic: sign in with a Claude Pro/Max subscription, the way Claude Code does.

The code-display flow: the user opens the authorize URL, approves, and Anthropic's page
shows `CODE#STATE`, which the user pastes here; it is exchanged (JSON body) for tokens.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from openpista.providers.credentials import Credential
from openpista.providers.signin._http import SigninError, SigninHttp
from openpista.providers.signin._time import expiry, required_text
from openpista.providers.signin.console import SigninConsole
from openpista.providers.signin.endpoints import AnthropicEndpoints
from openpista.providers.signin.pkce import new_pkce, new_state

PROVIDER = "anthropic"


async def sign_in(
    console: SigninConsole, endpoints: AnthropicEndpoints, *, now: float | None = None
) -> Credential:
    """Show the URL, read the pasted code, and return the credential (not stored yet)."""
    pkce = new_pkce()
    state = new_state()
    query = {
        "code": "true",
        "client_id": endpoints.client_id,
        "response_type": "code",
        "redirect_uri": endpoints.redirect_uri,
        "scope": endpoints.scope,
        "code_challenge": pkce.challenge,
        "code_challenge_method": pkce.method,
        "state": state,
    }
    url = f"{endpoints.authorize_url}?{urlencode(query)}"
    console.say(
        "Sign in with your Claude Pro/Max account: open this URL in any browser, approve,\n"
        f"then paste the code the page shows:\n\n  {url}\n"
    )
    console.open_browser(url)
    pasted = (await asyncio.to_thread(console.ask, "Code: ")).strip()
    code, pasted_state = _split_pasted(pasted)
    if not code:
        raise SigninError(f"{PROVIDER}: no code was pasted; sign-in cancelled", provider=PROVIDER)
    if pasted_state and not hmac.compare_digest(pasted_state.encode(), state.encode()):
        raise SigninError(
            f"{PROVIDER}: the pasted code belongs to another sign-in (its state does not "
            "match); paste the code shown for the URL above",
            provider=PROVIDER,
        )
    async with SigninHttp(PROVIDER, secrets=[pkce.verifier, code]) as http:
        answer = await http.post_json(
            endpoints.token_url,
            {
                "grant_type": "authorization_code",
                "code": code,
                "state": state,
                "client_id": endpoints.client_id,
                "redirect_uri": endpoints.redirect_uri,
                "code_verifier": pkce.verifier,
            },
            "exchanging the pasted code",
        )
        return _credential(http, answer, now, previous=None)


def _split_pasted(text: str) -> tuple[str, str]:
    """(code, state) from `CODE#STATE`, a bare code, or the whole callback URL."""
    if text.startswith(("http://", "https://")):
        query = parse_qs(urlsplit(text).query)
        return query.get("code", [""])[0], query.get("state", [""])[0]
    code, _, state = text.partition("#")
    return code.strip(), state.strip()


async def refresh(
    credential: Credential, endpoints: AnthropicEndpoints, now: float | None
) -> Credential:
    """The credential with new tokens from the refresh_token grant (raises SigninError)."""
    async with SigninHttp(PROVIDER, secrets=credential.secrets()) as http:
        answer = await http.post_json(
            endpoints.token_url,
            {
                "grant_type": "refresh_token",
                "refresh_token": credential.refresh_token,
                "client_id": endpoints.client_id,
            },
            "refreshing the token",
        )
        return _credential(http, answer, now, previous=credential)


def _credential(
    http: SigninHttp, answer: dict[str, Any], now: float | None, previous: Credential | None
) -> Credential:
    access_token = required_text(answer, "access_token")
    if not access_token:
        raise http.error("the token endpoint answered without an access_token")
    refresh_token = required_text(answer, "refresh_token")
    return Credential(
        provider=PROVIDER,
        method="oauth",
        access_token=access_token,
        refresh_token=refresh_token or (previous.refresh_token if previous else ""),
        expires_at=expiry(answer, access_token, now),
        extra=dict(previous.extra) if previous else {},
    )
