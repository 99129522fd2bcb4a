"""Anthropic's Claude Pro/Max code-display sign-in end to end against the fake server."""

from __future__ import annotations

import pytest

from openpista.providers.signin import SigninError, sign_in
from openpista.providers.signin.pkce import s256_challenge
from openpista.providers.testing import BrowserConsole, FakeAuthorizationServer


async def test_pasted_code_is_exchanged_for_tokens(auth_server: FakeAuthorizationServer) -> None:
    console = BrowserConsole()
    credential = await sign_in("anthropic", console, auth_server.endpoints())

    assert credential.method == "oauth"
    assert auth_server.is_valid_access_token(credential.access_token, "anthropic")
    assert credential.refresh_token
    assert credential.expires_at is not None
    assert console.asked == ["Code: "]
    assert "/anthropic/oauth/authorize?" in console.said[0]

    [authorize] = auth_server.requests_to("/anthropic/oauth/authorize")
    assert authorize.query["code"] == "true"
    assert authorize.query["client_id"] == "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
    assert authorize.query["scope"] == "org:create_api_key user:profile user:inference"
    assert authorize.query["redirect_uri"].endswith("/oauth/code/callback")
    [exchange] = auth_server.requests_to("/anthropic/v1/oauth/token")
    assert exchange.content_type == "application/json"
    assert exchange.body["grant_type"] == "authorization_code"
    assert exchange.body["state"] == authorize.query["state"]
    assert s256_challenge(exchange.body["code_verifier"]) == authorize.query["code_challenge"]


class _PastesAnotherState(BrowserConsole):
    def ask(self, prompt: str) -> str:
        code, _, _ = super().ask(prompt).partition("#")
        return f"{code}#someone-elses-state"


async def test_a_code_from_another_sign_in_is_refused(auth_server: FakeAuthorizationServer) -> None:
    with pytest.raises(SigninError, match="belongs to another sign-in"):
        await sign_in("anthropic", _PastesAnotherState(), auth_server.endpoints())
    assert auth_server.requests_to("/anthropic/v1/oauth/token") == []


async def test_nothing_pasted_cancels(auth_server: FakeAuthorizationServer) -> None:
    with pytest.raises(SigninError, match=r"^anthropic: no code was pasted; sign-in cancelled$"):
        await sign_in("anthropic", BrowserConsole(open_browser=False), auth_server.endpoints())


class _PastesGarbage(BrowserConsole):
    def ask(self, prompt: str) -> str:
        super().ask(prompt)
        return "not-a-code-at-all"


async def test_a_wrong_code_gives_the_servers_reason_without_the_code(
    auth_server: FakeAuthorizationServer,
) -> None:
    with pytest.raises(SigninError) as caught:
        await sign_in("anthropic", _PastesGarbage(), auth_server.endpoints())
    message = str(caught.value)
    assert message.startswith("anthropic: exchanging the pasted code failed (HTTP 400: ")
    assert "unknown or already used code" in message
    assert "not-a-code-at-all" not in message
