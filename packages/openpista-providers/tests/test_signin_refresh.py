"""Stored sign-ins refreshed inside the five-minute window, and the hook providers use."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from openpista.providers.credentials import Credential, CredentialStore
from openpista.providers.signin import (
    SigninError,
    fresh_credential,
    sign_in,
    stored_auth,
)
from openpista.providers.signin.copilot import sign_in as copilot_sign_in
from openpista.providers.testing import BrowserConsole, FakeAuthorizationServer


async def _signed_in(
    auth: FakeAuthorizationServer, store: CredentialStore, provider: str
) -> Credential:
    if provider == "copilot":

        async def no_sleep(seconds: float) -> None:
            pass

        credential = await copilot_sign_in(
            BrowserConsole(open_browser=False), auth.endpoints().copilot, sleep=no_sleep
        )
    else:
        credential = await sign_in(provider, BrowserConsole(), auth.endpoints(), timeout_s=30)
    store.put(credential)
    return credential


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_token_expiring_in_four_minutes_is_refreshed_and_saved(
    credential_store: CredentialStore, provider: str
) -> None:
    with FakeAuthorizationServer(access_token_lifetime_s=240) as auth:
        before = await _signed_in(auth, credential_store, provider)
        fresh = await fresh_credential(credential_store, provider, endpoints=auth.endpoints())

        assert auth.refresh_count(provider) == 1
        assert fresh.access_token != before.access_token
        assert auth.is_valid_access_token(fresh.access_token, provider)
        assert fresh.refresh_token != before.refresh_token  # the server rotated it
        assert credential_store.get(provider) == fresh
    if provider == "openai":
        assert fresh.account_id == "acct-fake-0001"
        assert fresh.api_key == before.api_key


@pytest.mark.parametrize("provider", ["openai", "anthropic", "copilot"])
async def test_a_token_expiring_in_six_minutes_is_not_refreshed(
    credential_store: CredentialStore, provider: str
) -> None:
    with FakeAuthorizationServer(access_token_lifetime_s=360, copilot_token_lifetime_s=360) as auth:
        before = await _signed_in(auth, credential_store, provider)
        fresh = await fresh_credential(credential_store, provider, endpoints=auth.endpoints())
        assert fresh == before
        assert auth.refresh_count(provider) == 0


async def test_the_window_is_measured_from_now(credential_store: CredentialStore) -> None:
    with FakeAuthorizationServer(access_token_lifetime_s=3600) as auth:
        before = await _signed_in(auth, credential_store, "openai")
        assert before.expires_at is not None
        six_minutes_before = before.expires_at - 360
        kept = await fresh_credential(
            credential_store, "openai", endpoints=auth.endpoints(), now=six_minutes_before
        )
        assert kept == before
        four_minutes_before = before.expires_at - 240
        fresh = await fresh_credential(
            credential_store, "openai", endpoints=auth.endpoints(), now=four_minutes_before
        )
        assert fresh.access_token != before.access_token
        assert auth.refresh_count("openai") == 1


async def test_copilot_buys_a_new_session_token_with_the_github_token(
    credential_store: CredentialStore,
) -> None:
    with FakeAuthorizationServer(copilot_token_lifetime_s=240) as auth:
        before = await _signed_in(auth, credential_store, "copilot")
        fresh = await fresh_credential(credential_store, "copilot", endpoints=auth.endpoints())
        assert auth.refresh_count("copilot") == 1
        assert fresh.access_token != before.access_token
        assert fresh.refresh_token == before.refresh_token
        assert fresh.extra == before.extra
        assert credential_store.get("copilot") == fresh


async def test_an_expired_sign_in_that_cannot_be_refreshed_says_what_to_do(
    credential_store: CredentialStore,
) -> None:
    with FakeAuthorizationServer(
        access_token_lifetime_s=0, fail_refresh=(400, "refresh token revoked")
    ) as auth:
        before = await _signed_in(auth, credential_store, "openai")
        with pytest.raises(SigninError) as caught:
            await fresh_credential(credential_store, "openai", endpoints=auth.endpoints())
    assert str(caught.value) == (
        "openai: the stored sign-in expired and could not be refreshed "
        "(HTTP 400: invalid_grant: refresh token revoked); run `openpista auth login openai`"
    )
    assert credential_store.get("openai") == before


async def test_an_unreachable_server_is_named_without_secrets(
    credential_store: CredentialStore,
) -> None:
    with FakeAuthorizationServer(access_token_lifetime_s=0) as auth:
        before = await _signed_in(auth, credential_store, "anthropic")
        endpoints = auth.endpoints()
    # The server is gone now.
    with pytest.raises(SigninError) as caught:
        await fresh_credential(credential_store, "anthropic", endpoints=endpoints)
    message = str(caught.value)
    assert "could not be refreshed (cannot reach http://127.0.0.1:" in message
    assert "connection refused" in message
    assert before.refresh_token not in message
    assert before.access_token not in message


async def test_a_failed_refresh_of_a_still_valid_token_keeps_using_it(
    credential_store: CredentialStore, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeAuthorizationServer(
        access_token_lifetime_s=240, fail_refresh=(503, "down for maintenance")
    ) as auth:
        before = await _signed_in(auth, credential_store, "openai")
        with caplog.at_level(logging.WARNING):
            kept = await fresh_credential(credential_store, "openai", endpoints=auth.endpoints())
    assert kept == before
    assert "the current token is used until it expires" in caplog.text
    assert before.refresh_token not in caplog.text


async def test_concurrent_refreshes_spend_the_refresh_token_once(
    credential_store: CredentialStore,
) -> None:
    with FakeAuthorizationServer(access_token_lifetime_s=240) as auth:
        await _signed_in(auth, credential_store, "anthropic")
        auth.access_token_lifetime_s = 3600  # refreshed tokens are good for an hour
        results = await asyncio.gather(
            *(
                fresh_credential(credential_store, "anthropic", endpoints=auth.endpoints())
                for _ in range(4)
            )
        )
        # Each waiter re-read the store under the lock and found the token the first one
        # stored; the server saw a single refresh (a second would be a reuse, refused).
        assert auth.refresh_count("anthropic") == 1
    assert len({credential.access_token for credential in results}) == 1


async def test_not_signed_in_says_how_to_sign_in(credential_store: CredentialStore) -> None:
    with pytest.raises(SigninError, match=r"^openai: not signed in; run `openpista auth login"):
        await fresh_credential(credential_store, "openai")


# -- stored_auth: what providers call ---------------------------------------------------------


async def test_stored_auth_gives_each_providers_headers(
    credential_store: CredentialStore,
    auth_server: FakeAuthorizationServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in auth_server.env().items():
        monkeypatch.setenv(name, value)
    for provider in ("openai", "anthropic", "copilot"):
        await _signed_in(auth_server, credential_store, provider)
    credential_store.put(Credential("openrouter", "api_key", "sk-or-key"))
    credential_store.put(Credential("together", "api_key", "tg-key"))

    openai = stored_auth("openai", credential_store)
    assert openai is not None and openai.method == "oauth" and openai.api_key == ""
    headers = await openai.headers()
    assert auth_server.is_valid_access_token(headers.pop("Authorization").removeprefix("Bearer "))
    assert headers == {"chatgpt-account-id": "acct-fake-0001"}

    anthropic = stored_auth("anthropic", credential_store)
    assert anthropic is not None
    headers = await anthropic.headers()
    assert headers["anthropic-beta"] == "oauth-2025-04-20"
    assert "x-api-key" not in headers

    copilot = stored_auth("copilot", credential_store)
    assert copilot is not None
    headers = await copilot.headers()
    assert headers["Copilot-Integration-Id"] == "vscode-chat"
    assert headers["Editor-Version"].startswith("vscode/")

    openrouter = stored_auth("openrouter", credential_store)
    assert openrouter is not None and openrouter.method == "api_key"
    assert openrouter.api_key == "sk-or-key"
    assert await openrouter.headers() == {"Authorization": "Bearer sk-or-key"}
    assert stored_auth("gemini", credential_store) is None


async def test_stored_auth_headers_refresh_when_due(
    credential_store: CredentialStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeAuthorizationServer(access_token_lifetime_s=240) as auth:
        for name, value in auth.env().items():
            monkeypatch.setenv(name, value)
        before = await _signed_in(auth, credential_store, "openai")
        source = stored_auth("openai", credential_store)
        assert source is not None
        headers = await source.headers()
        assert headers["Authorization"] != f"Bearer {before.access_token}"
        assert auth.refresh_count("openai") == 1
        assert source.credential.expires_at is not None
        assert source.credential.expires_at > time.time()
