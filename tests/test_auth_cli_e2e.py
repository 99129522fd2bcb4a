"""`openpista auth login | status | logout`, the real command against the fake authorization
server: the browser step played by fetching the printed URL as a browser would."""

from __future__ import annotations

import re
import stat
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from openpista.providers.testing import FakeAuthorizationServer
from openpista.providers.testing.oauth import visit

from .conftest import Openpista


@pytest.fixture
def auth() -> Iterator[FakeAuthorizationServer]:
    with FakeAuthorizationServer() as server:
        yield server


@pytest.fixture
def cli(openpista: Openpista, auth: FakeAuthorizationServer) -> Openpista:
    openpista.env.update(auth.env())
    openpista.env["OPENPISTA_CREDENTIALS_BACKEND"] = "file"
    for variable in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
        openpista.env.pop(variable, None)
    return openpista


def _read_until(process: subprocess.Popen[str], pattern: str) -> tuple[str, list[str]]:
    """Read stdout lines until one matches `pattern`: (the match, every line read)."""
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        found = re.search(pattern, line)
        if found:
            return found.group(0), lines
    raise AssertionError(f"{pattern!r} never printed; got {''.join(lines)!r}")


def _finish(process: subprocess.Popen[str], stdin: str | None = None) -> tuple[int, str, str]:
    out, err = process.communicate(stdin, timeout=60)
    return process.returncode, out, err


def _secrets(home: Path) -> list[str]:
    table = tomllib.loads((home / "credentials.toml").read_text())
    found: list[str] = []
    for entry in table.values():
        for key in ("access_token", "refresh_token", "id_token", "api_key"):
            if entry.get(key):
                found.append(entry[key])
    return found


def _shows_no_secret(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text
        # Not even a piece: every 5-character window of the token's random part.
        tail = secret[-20:]
        for start in range(len(tail) - 4):
            assert tail[start : start + 5] not in text, (secret, text)


def test_openai_browser_sign_in_status_and_logout(cli: Openpista) -> None:
    login = cli.popen("--log-level", "debug", "auth", "login", "openai")
    url, said = _read_until(login, r"http://\S+/openai/oauth/authorize\?\S+")
    page = visit(url)  # what the user's browser does: authorize, then the local callback
    assert page.status_code == 200
    assert "Sign-in received" in page.text and "Return to your terminal" in page.text
    status, out, err = _finish(login)
    assert status == 0, err
    assert (
        f"Signed in to OpenAI: ChatGPT Plus/Pro subscription, browser sign-in. "
        f"The credential is stored in {cli.home / 'credentials.toml'}."
    ) in out

    file = cli.home / "credentials.toml"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    stored = tomllib.loads(file.read_text())["openai"]
    assert stored["method"] == "oauth"
    assert stored["account_id"] == "acct-fake-0001"
    secrets = _secrets(cli.home)
    assert len(secrets) == 4  # access, refresh, id token and the exchanged API key
    # Debug logs (httpx's included) and everything printed hold no secret.
    assert "DEBUG" in err
    _shows_no_secret("".join(said) + out + err, secrets)

    shown = cli.run("auth", "status")
    assert shown.returncode == 0, shown.stderr
    line = next(line for line in shown.stdout.splitlines() if " openai " in line)
    assert line.startswith("● openai")
    assert re.search(
        r"signed in \(OAuth\), expires in (59 min|1 h) \(renewed automatically\)", line
    )
    # The fixture sets OPENAI_API_KEY: status says a key is set there too.
    assert "a key is also set (OPENAI_API_KEY)" in line
    assert f"Credentials are stored in {file}." in shown.stdout
    assert next(x for x in shown.stdout.splitlines() if " anthropic " in x).startswith("○")
    _shows_no_secret(shown.stdout + shown.stderr, secrets)

    out = cli.run("auth", "logout", "openai")
    assert out.returncode == 0
    assert f"Signed out of OpenAI: removed its credential from {file}." in out.stdout
    assert "A key is still set for openai (OPENAI_API_KEY)" in out.stdout
    assert "openai" not in tomllib.loads(file.read_text())
    again = cli.run("auth", "logout", "openai")
    assert again.returncode == 0
    assert "Not signed in to OpenAI; nothing to remove." in again.stdout
    after = cli.run("auth", "status").stdout
    assert next(x for x in after.splitlines() if " openai " in x).startswith("○ openai")


def test_anthropic_code_is_pasted(cli: Openpista) -> None:
    login = cli.popen("auth", "login", "claude")
    url, _ = _read_until(login, r"http://\S+/anthropic/oauth/authorize\?\S+")
    page = visit(url)
    shown = re.search(r'<code id="code">([^<]*)</code>', page.text)
    assert shown is not None
    status, out, err = _finish(login, stdin=shown.group(1) + "\n")
    assert status == 0, err
    assert "Signed in to Anthropic" in out
    assert tomllib.loads((cli.home / "credentials.toml").read_text())["anthropic"]["refresh_token"]


def test_copilot_device_code_is_shown(cli: Openpista) -> None:
    login = cli.popen("auth", "login", "copilot")
    code, _ = _read_until(login, r"^\s+\d{4}-\d{4}\s*$")
    status, out, err = _finish(login)
    assert status == 0, err
    assert "Signed in to GitHub Copilot" in out
    assert code.strip() not in err
    entry = tomllib.loads((cli.home / "credentials.toml").read_text())["copilot"]
    assert entry["refresh_token"].startswith("gho_fake")


def test_api_key_from_stdin_is_stored_privately_and_never_shown(cli: Openpista) -> None:
    login = cli.run("auth", "login", "together", input="tg-0123456789abcdefghij\n")
    assert login.returncode == 0, login.stderr
    assert "tg-0123456789abcdefghij" not in login.stdout + login.stderr
    file = cli.home / "credentials.toml"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert tomllib.loads(file.read_text())["together"]["access_token"] == (
        "tg-0123456789abcdefghij"
    )
    status = cli.run("auth", "status")
    assert re.search(r"^● together +Together AI +API key$", status.stdout, re.MULTILINE)
    _shows_no_secret(status.stdout, ["tg-0123456789abcdefghij"])


def test_an_empty_key_stores_nothing(cli: Openpista) -> None:
    login = cli.run("auth", "login", "gemini", input="\n")
    assert login.returncode == 1
    assert "openpista: error: gemini: no API key given; nothing stored" in login.stderr
    assert not (cli.home / "credentials.toml").exists()


def test_picker_searches_by_typed_text(cli: Openpista) -> None:
    # "open" matches openai, openrouter, the custom (OpenAI-compatible) server and Azure
    # OpenAI, as docs/authentication.md says; 3 picks the third of those; custom takes a key.
    login = cli.run("auth", "login", input="open\n3\nsk-custom-key-000\n")
    assert login.returncode == 0, login.stderr
    assert "○ openai" in login.stdout  # the status dots
    assert 'Providers matching "open":' in login.stdout
    matching = login.stdout.split('Providers matching "open":')[1].split("Number or name")[0]
    assert re.findall(r"^\s+\d+\. \S (\w+)", matching, re.MULTILINE) == [
        "openai",
        "openrouter",
        "custom",
        "azure",
    ]
    assert "Signed in to Custom OpenAI-compatible server: API key." in login.stdout
    stored = tomllib.loads((cli.home / "credentials.toml").read_text())
    assert stored["custom"]["access_token"] == "sk-custom-key-000"


def test_picker_then_method_choice(cli: Openpista) -> None:
    login = cli.run("auth", "login", input="anthropic\n2\nsk-ant-key-0000\n")
    assert login.returncode == 0, login.stderr
    assert "1. Claude Pro/Max subscription, paste a code" in login.stdout
    stored = tomllib.loads((cli.home / "credentials.toml").read_text())
    assert stored["anthropic"] == {"method": "api_key", "access_token": "sk-ant-key-0000"}


@pytest.mark.parametrize("command", [["login", "nope"], ["logout", "nope"]])
def test_unknown_provider_lists_the_valid_ones(cli: Openpista, command: list[str]) -> None:
    result = cli.run("auth", *command)
    assert result.returncode == 1
    assert result.stderr.startswith('openpista: error: unknown provider "nope"; expected one of: ')
    assert "openai, anthropic, openrouter, copilot" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_malformed_credentials_file_is_named(cli: Openpista) -> None:
    file = cli.home / "credentials.toml"
    file.write_text('[openai]\nmethod = "oauth"\naccess_token = 5\n')
    file.chmod(0o600)
    result = cli.run("auth", "status")
    assert result.returncode == 2
    assert result.stderr == (
        f"openpista: error: {file}: openai.access_token: expected a string; fix it, or remove "
        "the entry with `openpista auth logout openai` and sign in again\n"
    )


def test_auth_help_and_status_import_nothing_heavy(cli: Openpista) -> None:
    for args in (["auth", "--help"], ["auth", "login", "--help"], ["auth", "status"]):
        modules, _ = cli.modules_loaded(*args)
        assert not {m.split(".")[0] for m in modules} & {"httpx", "keyring"}, args


@pytest.mark.parametrize(
    "typed",
    [
        "tg-0123\x1b[201~456789\n",  # a terminal's bracketed-paste marker pasted along
        "tg-0123\t456789\n",
        "tg-0123–456789\n",  # a typographic dash from a web page
        "tg-0123\u200b456789\n",  # a zero-width space
    ],
)
def test_a_key_no_http_header_can_carry_is_refused_before_storing(
    cli: Openpista, typed: str
) -> None:
    login = cli.run("auth", "login", "together", input=typed)

    assert login.returncode == 1
    assert login.stderr == (
        "openpista: error: together: the key holds characters an HTTP header cannot carry "
        "(a stray newline?); nothing stored\n"
    )
    assert "456789" not in login.stdout + login.stderr
    assert not (cli.home / "credentials.toml").exists()


@pytest.mark.parametrize(
    "endpoint", ["my-resource.openai.azure.com", "ftp://x.example", "https://"]
)
def test_azure_refuses_an_endpoint_that_is_no_http_url(cli: Openpista, endpoint: str) -> None:
    login = cli.run("auth", "login", "azure", input=f"az-key-0000\n{endpoint}\n\n")

    assert login.returncode == 1
    assert login.stderr == (
        "openpista: error: azure: the endpoint must be an http(s) URL such as "
        "https://NAME.openai.azure.com; nothing stored\n"
    )
    assert not (cli.home / "credentials.toml").exists()


def test_azure_stores_key_endpoint_and_version(cli: Openpista) -> None:
    login = cli.run(
        "auth", "login", "azure", input="az-key-0000\nhttps://x.openai.azure.com\n2024-10-21\n"
    )

    assert login.returncode == 0, login.stderr
    stored = tomllib.loads((cli.home / "credentials.toml").read_text())["azure"]
    assert stored["access_token"] == "az-key-0000"
    assert stored["extra"] == {
        "api_base": "https://x.openai.azure.com",
        "api_version": "2024-10-21",
    }


def test_status_names_openpista_api_key_as_where_the_other_key_is(cli: Openpista) -> None:
    cli.env.pop("OPENAI_API_KEY", None)
    cli.env.update({"OPENPISTA_PROVIDER": "together", "OPENPISTA_API_KEY": "zz-general-key"})

    shown = cli.run("auth", "status")

    assert shown.returncode == 0, shown.stderr
    line = next(x for x in shown.stdout.splitlines() if " together " in x)
    assert line.endswith("a key is also set (OPENPISTA_API_KEY)")


def test_sigterm_while_the_browser_step_waits_stops_with_one_line(cli: Openpista) -> None:
    import signal

    login = cli.popen("auth", "login", "openai")
    _read_until(login, r"http://\S+/openai/oauth/authorize\?\S+")
    login.send_signal(signal.SIGTERM)
    status, _, err = _finish(login)

    assert status == 143
    assert err.strip().splitlines()[-1] == "openpista: stopped by SIGTERM"
    assert not (cli.home / "credentials.toml").exists()


def test_status_with_nothing_stored_says_where_sign_ins_will_go(cli: Openpista) -> None:
    shown = cli.run("auth", "status")

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(
        "No credentials are stored yet; `openpista auth login` keeps them in "
        f"{cli.home / 'credentials.toml'}."
    )
    assert not (cli.home / "credentials.toml").exists()
