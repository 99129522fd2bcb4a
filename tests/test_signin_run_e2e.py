"""A sign-in stored by `openpista auth login` is what `openpista run -e` then sends: the real
command, the fake authorization server, and the fake Anthropic and Responses APIs checking
that every bearer token they get was issued (and is still valid) there."""

from __future__ import annotations

import re
import subprocess
import tomllib
from collections.abc import Iterator

import pytest

from openpista.providers.testing import (
    FakeAnthropicServer,
    FakeAuthorizationServer,
    FakeResponsesServer,
)
from openpista.providers.testing.oauth import visit

from .conftest import Openpista


@pytest.fixture
def short_lived_tokens() -> Iterator[FakeAuthorizationServer]:
    # Two minutes: inside the five-minute window, so every use refreshes first.
    with FakeAuthorizationServer(access_token_lifetime_s=120) as server:
        yield server


def _signed_in_cli(openpista: Openpista, auth: FakeAuthorizationServer) -> Openpista:
    openpista.env.update(auth.env())
    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENPISTA_BASE_URL", "DISPLAY"):
        openpista.env.pop(variable, None)
    return openpista


def _read_url(process: subprocess.Popen[str], pattern: str) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        found = re.search(pattern, line)
        if found:
            return found.group(0)
    raise AssertionError(f"{pattern!r} never printed")


def _login_anthropic(cli: Openpista) -> None:
    login = cli.popen("auth", "login", "anthropic", "--method", "oauth")
    url = _read_url(login, r"http://\S+/anthropic/oauth/authorize\?\S+")
    code = re.search(r'<code id="code">([^<]*)</code>', visit(url).text)
    assert code is not None
    _, err = login.communicate(code.group(1) + "\n", timeout=60)
    assert login.returncode == 0, err


def _stored(cli: Openpista, provider: str) -> dict[str, object]:
    return tomllib.loads((cli.home / "credentials.toml").read_text())[provider]


def test_anthropic_sign_in_is_used_refreshed_and_removed(
    openpista: Openpista, short_lived_tokens: FakeAuthorizationServer
) -> None:
    auth = short_lived_tokens
    cli = _signed_in_cli(openpista, auth)
    _login_anthropic(cli)
    first_token = _stored(cli, "anthropic")["access_token"]

    with FakeAnthropicServer() as api:
        api.queue_text("Hello from Claude.")
        cli.env.update({"OPENPISTA_PROVIDER": "anthropic", "OPENPISTA_MODEL": "claude-x"})
        config = cli.home / "config.toml"
        config.write_text(f'[providers.anthropic]\nbase_url = "{api.base_url}"\n')
        done = cli.run("run", "-e", "hi")

        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "Hello from Claude."
        [request] = api.recorded
    headers = request.headers
    # The stored token expired within five minutes: refreshed before use, and saved.
    assert auth.refresh_count("anthropic") == 1
    bearer = headers["authorization"].removeprefix("Bearer ")
    assert bearer != first_token
    assert auth.is_valid_access_token(bearer)
    assert _stored(cli, "anthropic")["access_token"] == bearer
    assert "oauth-2025-04-20" in headers["anthropic-beta"]
    assert "x-api-key" not in headers

    out = cli.run("auth", "logout", "anthropic")
    assert out.returncode == 0, out.stderr
    after = cli.run("run", "-e", "hi again")
    assert after.returncode == 1
    assert "no API key for anthropic" in after.stderr
    assert "openpista auth login anthropic" in after.stderr


def test_chatgpt_sign_in_speaks_responses_with_the_account_id(
    openpista: Openpista, short_lived_tokens: FakeAuthorizationServer
) -> None:
    auth = short_lived_tokens
    cli = _signed_in_cli(openpista, auth)
    login = cli.popen("auth", "login", "openai", "--method", "oauth")
    url = _read_url(login, r"http://\S+/openai/oauth/authorize\?\S+")
    assert visit(url).status_code == 200
    _, err = login.communicate(timeout=60)
    assert login.returncode == 0, err

    with FakeResponsesServer(
        require_headers={"chatgpt-account-id": auth.account_id}, require_stream=True
    ) as api:
        api.queue_text("Hello from ChatGPT.")
        cli.env.update({"OPENPISTA_PROVIDER": "openai", "OPENPISTA_MODEL": "gpt-5"})
        (cli.home / "config.toml").write_text(
            # The subscription's backend, here the fake; the protocol follows the sign-in.
            f'[providers.openai]\nbase_url = "{api.base_url}"\n'
        )
        done = cli.run("run", "-e", "hi")

        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "Hello from ChatGPT."
        [request] = api.recorded
    bearer = request.headers["authorization"].removeprefix("Bearer ")
    assert auth.is_valid_access_token(bearer)
    assert auth.refresh_count("openai") == 1
