"""The credential store: the 0600 TOML file, the keyring backend, and how one is chosen."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import keyring.backend
import pytest
from keyring.backends import fail

from openpista.core.errors import ConfigError
from openpista.providers.credentials import Credential, CredentialStore, CredentialStoreError

FILE_ENV = {"OPENPISTA_CREDENTIALS_BACKEND": "file"}


def _oauth(provider: str = "openai", **changes: Any) -> Credential:
    values: dict[str, Any] = {
        "provider": provider,
        "method": "oauth",
        "access_token": "at-secret-1",
        "refresh_token": "rt-secret-1",
        "expires_at": 1_900_000_000.0,
        "id_token": "a.b.c",
        "account_id": "acct-1",
        "api_key": "sk-exchanged",
    }
    values.update(changes)
    return Credential(**values)


def test_file_store_round_trips_every_field(tmp_path: Path) -> None:
    store = CredentialStore.open(tmp_path / "home", env=FILE_ENV)
    bedrock = Credential(
        "bedrock",
        "api_key",
        "AKIAEXAMPLE",
        extra={"aws_secret_access_key": 'se"cret\\\n', "aws_region_name": "eu-west-1"},
    )
    store.put(_oauth())
    store.put(bedrock)

    again = CredentialStore.open(tmp_path / "home", env=FILE_ENV)
    assert again.get("openai") == _oauth()
    assert again.get("bedrock") == bedrock
    assert [credential.provider for credential in again.all()] == ["bedrock", "openai"]
    assert again.get("anthropic") is None
    assert again.location == str(tmp_path / "home" / "credentials.toml")


def test_file_is_private_from_the_start_even_with_a_permissive_umask(tmp_path: Path) -> None:
    home = tmp_path / "new-home"
    store = CredentialStore.open(home, env=FILE_ENV)
    previous = os.umask(0)
    try:
        store.put(_oauth())
    finally:
        os.umask(previous)
    file = home / "credentials.toml"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert not [path for path in home.iterdir() if path.name.endswith(".tmp")]
    assert tomllib.loads(file.read_text())["openai"]["method"] == "oauth"


def test_delete_removes_only_that_provider(credential_store: CredentialStore) -> None:
    credential_store.put(_oauth())
    credential_store.put(_oauth("anthropic"))
    assert credential_store.delete("openai") is True
    assert credential_store.delete("openai") is False
    assert [c.provider for c in credential_store.all()] == ["anthropic"]


def test_malformed_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "credentials.toml").write_text("[openai\nmethod = 1\n")
    os.chmod(tmp_path / "credentials.toml", 0o600)
    store = CredentialStore.open(tmp_path, env=FILE_ENV)
    with pytest.raises(ConfigError) as caught:
        store.get("openai")
    assert str(tmp_path / "credentials.toml") in str(caught.value)
    assert "not valid TOML" in str(caught.value)


@pytest.mark.parametrize(
    ("entry", "key", "problem"),
    [
        ('method = "password"\naccess_token = "x"', "openai.method", '"oauth" or "api_key"'),
        (
            'method = "oauth"\naccess_token = "x"\nexpires_at = "soon"',
            "openai.expires_at",
            "number",
        ),
        ('method = "oauth"', "openai.access_token", "missing"),
        ('method = "oauth"\naccess_token = "x"\ncolour = "red"', "openai.colour", "unknown key"),
    ],
)
def test_malformed_entry_names_the_file_and_the_key(
    tmp_path: Path, entry: str, key: str, problem: str
) -> None:
    file = tmp_path / "credentials.toml"
    file.write_text(f"[openai]\n{entry}\n")
    os.chmod(file, 0o600)
    with pytest.raises(ConfigError) as caught:
        CredentialStore.open(tmp_path, env=FILE_ENV).get("openai")
    message = str(caught.value)
    assert message.startswith(f"{file}: {key}: ")
    assert problem in message


def test_a_file_readable_by_others_is_tightened_with_a_warning(
    credential_store: CredentialStore, caplog: pytest.LogCaptureFixture
) -> None:
    credential_store.put(_oauth())
    file = credential_store.home / "credentials.toml"
    os.chmod(file, 0o644)
    with caplog.at_level(logging.WARNING):
        assert credential_store.get("openai") == _oauth()
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert "readable by other users (mode 644)" in caplog.text
    assert "at-secret-1" not in caplog.text


def test_unknown_backend_name_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r'OPENPISTA_CREDENTIALS_BACKEND.*"file" or "keyring"'):
        CredentialStore.open(tmp_path, env={"OPENPISTA_CREDENTIALS_BACKEND": "vault"})


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from openpista.providers.credentials import Credential, CredentialStore\n"
        "env = {'OPENPISTA_CREDENTIALS_BACKEND': 'file'}\n"
        "store = CredentialStore.open(Path(sys.argv[1]), env=env)\n"
        "for round in range(15):\n"
        "    store.put(Credential(sys.argv[2], 'api_key', f'key-{round}'))\n"
    )
    writers = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path), f"provider{i}"])
        for i in range(6)
    ]
    assert [writer.wait(timeout=120) for writer in writers] == [0] * 6
    stored = CredentialStore.open(tmp_path, env=FILE_ENV).all()
    assert {(c.provider, c.access_token) for c in stored} == {
        (f"provider{i}", "key-14") for i in range(6)
    }


# -- the keyring ---------------------------------------------------------------------------


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A real keyring backend (keyring's own extension point) that keeps entries in memory."""

    priority = 5  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.entries[(service, username)]


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def test_keyring_is_used_when_usable_and_no_file_exists(
    tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    store = CredentialStore.open(tmp_path, env={})
    assert store.location.startswith("the system keyring (")
    store.put(_oauth())
    store.put(_oauth("anthropic"))
    assert store.delete("anthropic") is True

    again = CredentialStore.open(tmp_path, env={})
    assert again.get("openai") == _oauth()
    assert [c.provider for c in again.all()] == ["openai"]
    assert set(memory_keyring.entries) == {("openpista", "openai"), ("openpista", ":index")}
    assert not (tmp_path / "credentials.toml").exists()


def test_an_existing_file_wins_over_the_keyring(
    tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    CredentialStore.open(tmp_path, env=FILE_ENV).put(_oauth())
    store = CredentialStore.open(tmp_path, env={})
    assert store.location == str(tmp_path / "credentials.toml")
    assert store.get("openai") == _oauth()


def test_file_is_the_fallback_without_a_usable_keyring(tmp_path: Path) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        store = CredentialStore.open(tmp_path, env={})
        assert store.location == str(tmp_path / "credentials.toml")
        with pytest.raises(CredentialStoreError, match="no usable system keyring"):
            CredentialStore.open(tmp_path, env={"OPENPISTA_CREDENTIALS_BACKEND": "keyring"})
    finally:
        keyring.set_keyring(previous)


def test_a_corrupt_keyring_entry_says_how_to_recover(
    tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    memory_keyring.entries[("openpista", "openai")] = "not json"
    store = CredentialStore.open(tmp_path, env={"OPENPISTA_CREDENTIALS_BACKEND": "keyring"})
    with pytest.raises(CredentialStoreError, match="openpista auth logout openai"):
        store.get("openai")


def test_a_home_with_nothing_stored_is_answered_without_importing_keyring(
    tmp_path: Path,
) -> None:
    # What every `run -e` with a key in the environment asks first: it must stay cheap and
    # must never make a desktop keyring ask to be unlocked.
    script = (
        "import sys\n"
        "from openpista.providers.signin.stored import stored_auth\n"
        "print(stored_auth('openai'), 'keyring' in sys.modules)\n"
    )
    env = {**os.environ, "OPENPISTA_HOME": str(tmp_path)}
    env.pop("OPENPISTA_CREDENTIALS_BACKEND", None)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)

    assert done.stdout.strip() == "None False", done.stderr


def test_a_stored_file_is_found_by_the_fast_path(tmp_path: Path) -> None:
    env = {"OPENPISTA_CREDENTIALS_BACKEND": "file"}
    assert CredentialStore.open_if_used("together", tmp_path, env) is None
    CredentialStore.open(tmp_path, env).put(
        Credential(provider="together", method="api_key", access_token="tg-key")
    )

    store = CredentialStore.open_if_used("together", tmp_path, env)

    assert store is not None
    assert store.get("together") is not None


def test_one_malformed_entry_stops_only_what_uses_it_and_can_be_removed(
    tmp_path: Path,
) -> None:
    env = {"OPENPISTA_CREDENTIALS_BACKEND": "file"}
    store = CredentialStore.open(tmp_path, env)
    store.put(Credential(provider="together", method="api_key", access_token="tg-key"))
    file = tmp_path / "credentials.toml"
    file.write_text(
        file.read_text() + '\n[openai]\nmethod = "oauth"\naccess_token = "a"\nexpires_at = "soon"\n'
    )

    # Other providers keep working, and so does writing.
    assert store.get("together") is not None
    store.put(Credential(provider="gemini", method="api_key", access_token="gm-key"))
    with pytest.raises(ConfigError) as caught:
        store.get("openai")
    assert "openai.expires_at" in str(caught.value)
    assert "openpista auth logout openai" in str(caught.value)

    assert store.delete("openai")
    assert [c.provider for c in store.all()] == ["gemini", "together"]


@pytest.mark.parametrize("value", ["inf", "nan"])
def test_an_expiry_that_is_no_real_time_is_refused(tmp_path: Path, value: str) -> None:
    file = tmp_path / "credentials.toml"
    file.write_text(f'[openai]\nmethod = "oauth"\naccess_token = "a"\nexpires_at = {value}\n')
    file.chmod(0o600)

    with pytest.raises(ConfigError, match=r"openai\.expires_at: expected a number"):
        CredentialStore.open(tmp_path, {"OPENPISTA_CREDENTIALS_BACKEND": "file"}).get("openai")


def test_a_folder_where_the_file_should_be_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "credentials.toml").mkdir()

    with pytest.raises(CredentialStoreError, match=r"cannot read .*credentials\.toml: Is a"):
        CredentialStore.open(tmp_path, {"OPENPISTA_CREDENTIALS_BACKEND": "file"}).get("openai")
