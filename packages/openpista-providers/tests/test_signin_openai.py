"""OpenAI's ChatGPT sign-in end to end against the fake authorization server."""

from __future__ import annotations

import socket
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from openpista.providers.signin import SigninError, sign_in
from openpista.providers.signin.endpoints import SigninEndpoints
from openpista.providers.signin.jwt import chatgpt_account_id
from openpista.providers.signin.pkce import s256_challenge
from openpista.providers.testing import BrowserConsole, FakeAuthorizationServer
from openpista.providers.testing.oauth import visit


async def test_browser_sign_in_gets_tokens_account_id_and_api_key(
    auth_server: FakeAuthorizationServer,
) -> None:
    console = BrowserConsole()
    credential = await sign_in("openai", console, auth_server.endpoints(), timeout_s=30)

    assert credential.provider == "openai"
    assert credential.method == "oauth"
    assert auth_server.is_valid_access_token(credential.access_token, "openai")
    assert credential.refresh_token
    assert credential.account_id == "acct-fake-0001"
    assert chatgpt_account_id(credential.id_token) == "acct-fake-0001"
    assert auth_server.is_issued_api_key(credential.api_key)
    assert credential.expires_at is not None
    # The browser landed on the local callback page, which sent the user back to the terminal.
    assert console.visited[-1].status_code == 200
    assert "Sign-in received" in console.visited[-1].text
    assert "Return to your terminal" in console.visited[-1].text
    # The URL was shown, for machines without a browser.
    assert "/openai/oauth/authorize?" in console.said[0]


async def test_authorize_request_and_code_exchange_are_the_codex_clis(
    auth_server: FakeAuthorizationServer,
) -> None:
    await sign_in("openai", BrowserConsole(), auth_server.endpoints(), timeout_s=30)

    [authorize] = auth_server.requests_to("/openai/oauth/authorize")
    query = authorize.query
    assert query["client_id"] == "app_EMoamEEZ73f0CkXaXp7hrann"
    assert query["scope"] == "openid profile email offline_access"
    assert query["code_challenge_method"] == "S256"
    assert query["id_token_add_organizations"] == "true"
    assert query["codex_cli_simplified_flow"] == "true"
    redirect = urlsplit(query["redirect_uri"])
    assert (redirect.scheme, redirect.hostname, redirect.path) == (
        "http",
        "localhost",
        "/auth/callback",
    )

    code_exchange, key_exchange = auth_server.requests_to("/openai/oauth/token")
    assert code_exchange.content_type == "application/x-www-form-urlencoded"
    assert code_exchange.body["grant_type"] == "authorization_code"
    verifier = code_exchange.body["code_verifier"]
    assert 43 <= len(verifier) <= 128
    assert s256_challenge(verifier) == query["code_challenge"]
    assert code_exchange.body["redirect_uri"] == query["redirect_uri"]
    assert key_exchange.body == {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "client_id": "app_EMoamEEZ73f0CkXaXp7hrann",
        "requested_token": "openai-api-key",
        "subject_token": key_exchange.body["subject_token"],
        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
    }


def test_the_fake_refuses_a_code_with_the_wrong_verifier(
    auth_server: FakeAuthorizationServer,
) -> None:
    """What makes the flow tests above meaningful: a verifier that does not match fails."""
    endpoints = auth_server.endpoints().openai
    query = {
        "response_type": "code",
        "client_id": endpoints.client_id,
        "redirect_uri": "http://localhost:1/auth/callback",
        "scope": endpoints.scope,
        "code_challenge": s256_challenge("a" * 43),
        "code_challenge_method": "S256",
        "state": "s",
    }
    response = httpx.get(f"{endpoints.authorize_url}?{urlencode(query)}")
    code = parse_qs(urlsplit(response.headers["location"]).query)["code"][0]
    answer = httpx.post(
        endpoints.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://localhost:1/auth/callback",
            "client_id": endpoints.client_id,
            "code_verifier": "b" * 43,
        },
    )
    assert answer.status_code == 400
    assert answer.json()["error_description"] == "PKCE verification failed"


async def test_account_without_api_organisation_still_signs_in() -> None:
    with FakeAuthorizationServer(api_key_exchange=False) as auth:
        console = BrowserConsole()
        credential = await sign_in("openai", console, auth.endpoints(), timeout_s=30)
    assert credential.api_key == ""
    assert credential.account_id == "acct-fake-0001"
    assert any("No API key could be made" in text for text in console.said)


class _WrongStateFirst(BrowserConsole):
    """A stray request with another state reaches the callback before the real browser."""

    def open_browser(self, url: str) -> bool:
        query = parse_qs(urlsplit(url).query)
        redirect_uri = query["redirect_uri"][0]
        port = urlsplit(redirect_uri).port
        stray = visit(f"http://127.0.0.1:{port}/auth/callback?code=forged&state=wrong")
        self.visited.append(stray)
        return super().open_browser(url)


async def test_callback_with_a_wrong_state_is_refused_and_the_sign_in_goes_on(
    auth_server: FakeAuthorizationServer,
) -> None:
    console = _WrongStateFirst()
    credential = await sign_in("openai", console, auth_server.endpoints(), timeout_s=30)
    assert console.visited[0].status_code == 400
    assert "does not belong to the sign-in" in console.visited[0].text
    assert credential.account_id == "acct-fake-0001"


class _Refusing(BrowserConsole):
    def open_browser(self, url: str) -> bool:
        query = parse_qs(urlsplit(url).query)
        callback = query["redirect_uri"][0].replace("localhost", "127.0.0.1")
        state = query["state"][0]
        self.visited.append(visit(f"{callback}?error=access_denied&state={state}"))
        return True


class _ForgedCode(BrowserConsole):
    """A callback with the right state and a code the authorization server never issued."""

    def open_browser(self, url: str) -> bool:
        query = parse_qs(urlsplit(url).query)
        callback = query["redirect_uri"][0].replace("localhost", "127.0.0.1")
        self.visited.append(visit(f"{callback}?code=bogus&state={query['state'][0]}"))
        return True


async def test_the_callback_page_claims_no_success_before_the_code_is_exchanged(
    auth_server: FakeAuthorizationServer,
) -> None:
    console = _ForgedCode()
    with pytest.raises(SigninError):
        await sign_in("openai", console, auth_server.endpoints(), timeout_s=30)

    [page] = console.visited
    assert "Signed in" not in page.text and "close this tab" not in page.text
    assert "Return to your terminal" in page.text


async def test_refused_authorization_is_one_clear_error(
    auth_server: FakeAuthorizationServer,
) -> None:
    with pytest.raises(SigninError, match=r"^openai: the sign-in was refused \(access_denied\)$"):
        await sign_in("openai", _Refusing(), auth_server.endpoints(), timeout_s=30)


async def test_no_browser_coming_back_times_out_with_advice(
    auth_server: FakeAuthorizationServer,
) -> None:
    console = BrowserConsole(open_browser=False)
    with pytest.raises(SigninError, match=r"no sign-in within 0\.2 s; run `openpista auth login"):
        await sign_in("openai", console, auth_server.endpoints(), timeout_s=0.2)


async def test_a_busy_callback_port_is_reported(auth_server: FakeAuthorizationServer) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**auth_server.env(), "OPENPISTA_OAUTH_OPENAI_CALLBACK_PORT": str(port)}
        with pytest.raises(SigninError, match=f"cannot listen on 127.0.0.1:{port}"):
            await sign_in("openai", BrowserConsole(), SigninEndpoints.from_env(env))


def test_endpoint_overrides_keep_the_real_paths() -> None:
    endpoints = SigninEndpoints.from_env(
        {
            "OPENPISTA_OAUTH_OPENAI_BASE": "http://127.0.0.1:9/o/",
            "OPENPISTA_OAUTH_COPILOT_BASE": "http://127.0.0.1:9",
        }
    )
    assert endpoints.openai.authorize_url == "http://127.0.0.1:9/o/oauth/authorize"
    assert endpoints.openai.token_url == "http://127.0.0.1:9/o/oauth/token"
    assert endpoints.copilot.copilot_token_url == "http://127.0.0.1:9/copilot_internal/v2/token"
    assert endpoints.anthropic.token_url == "https://console.anthropic.com/v1/oauth/token"
    assert SigninEndpoints.from_env({}) == SigninEndpoints()


def test_a_bad_override_names_the_variable() -> None:
    from openpista.core.errors import ConfigError

    with pytest.raises(ConfigError, match="OPENPISTA_OAUTH_OPENAI_BASE"):
        SigninEndpoints.from_env({"OPENPISTA_OAUTH_OPENAI_BASE": "auth.example"})
    with pytest.raises(ConfigError, match="OPENPISTA_OAUTH_OPENAI_CALLBACK_PORT"):
        SigninEndpoints.from_env({"OPENPISTA_OAUTH_OPENAI_CALLBACK_PORT": "http"})
