"""OpenRouter's PKCE key exchange end to end against the fake server."""

from __future__ import annotations

from urllib.parse import urlsplit

from openpista.providers.signin import sign_in
from openpista.providers.signin.pkce import s256_challenge
from openpista.providers.testing import BrowserConsole, FakeAuthorizationServer


async def test_browser_sign_in_yields_an_api_key(auth_server: FakeAuthorizationServer) -> None:
    console = BrowserConsole()
    credential = await sign_in("openrouter", console, auth_server.endpoints(), timeout_s=30)

    assert credential.method == "api_key"
    assert auth_server.is_issued_api_key(credential.access_token)
    assert credential.expires_at is None
    assert console.visited[-1].status_code == 200

    [authorize] = auth_server.requests_to("/openrouter/auth")
    callback = urlsplit(authorize.query["callback_url"])
    assert (callback.hostname, callback.path) == ("localhost", "/callback")
    assert authorize.query["code_challenge_method"] == "S256"
    [exchange] = auth_server.requests_to("/openrouter/api/v1/auth/keys")
    assert exchange.content_type == "application/json"
    assert exchange.body["code_challenge_method"] == "S256"
    assert s256_challenge(exchange.body["code_verifier"]) == authorize.query["code_challenge"]
