"""Where sign-ins and API keys are kept: the OS keyring, or a 0600 file in OPENPISTA_HOME.

One `Credential` per provider. `CredentialStore.open()` picks the backend:

- `OPENPISTA_CREDENTIALS_BACKEND=file` or `=keyring` forces one;
- otherwise an existing `OPENPISTA_HOME/credentials.toml` is used (credentials stored there
  never vanish because a keyring became available), else the system keyring when `keyring`
  finds a usable one, else `credentials.toml`.

Every read goes to the backend (nothing is cached), so two processes see each other's
writes; writes of the file take a lock, so two processes never lose each other's updates.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal, cast

from openpista.core.errors import ConfigError, OpenpistaError

logger = logging.getLogger(__name__)

CREDENTIALS_BACKEND_VARIABLE = "OPENPISTA_CREDENTIALS_BACKEND"
"""`file` or `keyring`: forces where credentials are kept (tests use `file`)."""

CREDENTIALS_FILE_NAME = "credentials.toml"
LOCK_FILE_NAME = "credentials.lock"
KEYRING_MARKER_NAME = "credentials.keyring"
"""Beside the lock: the names (never the secrets) of the providers kept in the keyring, so a
run that has nothing stored answers without importing keyring (about 0.4 s)."""
KEYRING_SERVICE = "openpista"

AuthMethod = Literal["oauth", "api_key"]
AUTH_METHODS: tuple[AuthMethod, ...] = ("oauth", "api_key")


class CredentialStoreError(OpenpistaError):
    """The credential store cannot be read or written (keyring failure, unreadable file)."""


@dataclass(slots=True)
class Credential:
    """What openpista holds for one provider: a sign-in's tokens, or an API key.

    For method "api_key", `access_token` is the key. For "oauth" it is the bearer token,
    `refresh_token` renews it (for copilot: the GitHub token that buys new Copilot tokens).
    """

    provider: str
    method: AuthMethod
    access_token: str
    refresh_token: str = ""
    expires_at: float | None = None
    """Unix seconds; None when the token does not expire (API keys)."""
    id_token: str = ""
    account_id: str = ""
    """The ChatGPT account id (OpenAI sign-in), from the id_token's claims."""
    api_key: str = ""
    """An API key obtained by exchange (OpenAI: id_token -> API key)."""
    extra: dict[str, str] = field(default_factory=lambda: {})
    """Provider-specific values (Azure endpoint, AWS region and secret key ...)."""

    def expires_within(self, seconds: float, now: float | None = None) -> bool:
        """Whether the token expires less than `seconds` from `now` (or already has)."""
        if self.expires_at is None:
            return False
        return self.expires_at - (time.time() if now is None else now) < seconds

    def secrets(self) -> list[str]:
        """Every secret value this credential holds, to scrub from messages and logs."""
        values = [self.access_token, self.refresh_token, self.id_token, self.api_key]
        values += [value for key, value in self.extra.items() if _is_secret_extra(key)]
        return [value for value in values if value]

    def to_table(self) -> dict[str, object]:
        """The stored form: every field but `provider`, empty ones left out."""
        table: dict[str, object] = {}
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.name != "provider" and value not in ("", None, {}):
                table[spec.name] = dict(value) if isinstance(value, dict) else value
        return table

    @classmethod
    def from_table(cls, provider: str, table: Mapping[str, object]) -> Credential:
        """The credential stored as `table`; raises ValueError("KEY: problem") when malformed."""
        known = {spec.name for spec in fields(cls)} - {"provider"}
        for key in table:
            if key not in known:
                raise ValueError(f"{key}: unknown key; expected one of {', '.join(sorted(known))}")
        method = table.get("method")
        if method not in AUTH_METHODS:
            raise ValueError('method: expected "oauth" or "api_key"')
        texts: dict[str, str] = {}
        for key in ("access_token", "refresh_token", "id_token", "account_id", "api_key"):
            value = table.get(key, "")
            if not isinstance(value, str):
                raise ValueError(f"{key}: expected a string")
            texts[key] = value
        if not texts["access_token"]:
            raise ValueError("access_token: missing")
        expires_at = table.get("expires_at")
        if expires_at is not None and (
            isinstance(expires_at, bool)
            or not isinstance(expires_at, int | float)
            or not math.isfinite(expires_at)
        ):
            raise ValueError("expires_at: expected a number (unix seconds)")
        extra = table.get("extra", {})
        if not isinstance(extra, dict) or not all(
            isinstance(value, str) for value in cast(dict[str, object], extra).values()
        ):
            raise ValueError("extra: expected a table of strings")
        return cls(
            provider=provider,
            method=cast(AuthMethod, method),
            expires_at=None if expires_at is None else float(expires_at),
            extra=dict(cast(dict[str, str], extra)),
            **texts,
        )


def _is_secret_extra(key: str) -> bool:
    # `extra` holds both (endpoint, region) and secrets (AWS secret key); only the
    # latter are scrubbed, so an endpoint still shows in an error message.
    return any(word in key.lower() for word in ("secret", "key", "token", "password"))


class CredentialStore:
    """Per-provider credentials in the keyring or `credentials.toml`; see the module doc."""

    def __init__(self, backend: CredentialBackend, home: Path) -> None:
        self._backend = backend
        self.home = home

    @classmethod
    def open(
        cls, home: Path | None = None, env: Mapping[str, str] | None = None
    ) -> CredentialStore:
        """The store of `home` (default OPENPISTA_HOME), backend chosen as the module says.

        Raises ConfigError when OPENPISTA_CREDENTIALS_BACKEND has an unknown value, and
        CredentialStoreError when it asks for a keyring and none is usable.
        """
        import os

        from openpista.core.config import openpista_home

        env = os.environ if env is None else env
        home = openpista_home(env) if home is None else home
        file = home / CREDENTIALS_FILE_NAME
        wanted = env.get(CREDENTIALS_BACKEND_VARIABLE, "").strip().lower()
        if wanted not in ("", "file", "keyring"):
            raise ConfigError(
                "environment",
                CREDENTIALS_BACKEND_VARIABLE,
                f'expected "file" or "keyring", got "{wanted}"',
            )
        from openpista.providers import _credential_backends as backends

        if wanted == "file" or (wanted == "" and file.exists()):
            return cls(backends.FileBackend(file, home / LOCK_FILE_NAME), home)
        keyring_backend = backends.usable_keyring(home / LOCK_FILE_NAME)
        if keyring_backend is not None:
            return cls(keyring_backend, home)
        if wanted == "keyring":
            raise CredentialStoreError(
                f"{CREDENTIALS_BACKEND_VARIABLE}=keyring, but no usable system keyring was "
                f"found; unset it to keep credentials in {file} (mode 0600)"
            )
        return cls(backends.FileBackend(file, home / LOCK_FILE_NAME), home)

    @classmethod
    def open_if_used(
        cls, provider: str, home: Path | None = None, env: Mapping[str, str] | None = None
    ) -> CredentialStore | None:
        """The store, when it may hold `provider`'s credential; None when it cannot (no
        credentials file, and no sign-in kept in the keyring for `provider`).

        The fast path of every `run -e` whose key comes from the environment: nothing is
        imported and no keyring is asked (which could prompt to unlock it).
        """
        import os

        from openpista.core.config import openpista_home

        env = os.environ if env is None else env
        home = openpista_home(env) if home is None else home
        wanted = env.get(CREDENTIALS_BACKEND_VARIABLE, "").strip().lower()
        if wanted != "keyring" and (home / CREDENTIALS_FILE_NAME).exists():
            return cls.open(home, env)
        if wanted == "file":
            return None
        try:
            listed = (home / KEYRING_MARKER_NAME).read_text(encoding="utf-8").split()
        except OSError:
            return None
        return cls.open(home, env) if provider in listed else None

    @property
    def location(self) -> str:
        """Where credentials are kept, for people: the file's path or the keyring's name."""
        return self._backend.location

    @property
    def refresh_lock_path(self) -> Path:
        """The lock file held while a token is refreshed (see signin.refresh)."""
        return self.home / "credentials.refresh.lock"

    def get(self, provider: str) -> Credential | None:
        return self._backend.read(provider)

    def put(self, credential: Credential) -> None:
        """Store `credential`, replacing the provider's previous one."""
        self._backend.write(credential)

    def delete(self, provider: str) -> bool:
        """Remove the provider's credential; False when there was none."""
        return self._backend.remove(provider)

    def all(self) -> list[Credential]:
        """Every stored credential, ordered by provider name."""
        return sorted(self._backend.read_all(), key=lambda credential: credential.provider)


class CredentialBackend:
    """Where a CredentialStore keeps its entries (the file or the keyring)."""

    location: str

    def read(self, provider: str) -> Credential | None:
        raise NotImplementedError

    def read_all(self) -> list[Credential]:
        raise NotImplementedError

    def write(self, credential: Credential) -> None:
        raise NotImplementedError

    def remove(self, provider: str) -> bool:
        raise NotImplementedError
