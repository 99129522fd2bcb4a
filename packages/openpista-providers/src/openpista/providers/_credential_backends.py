"""The two places a CredentialStore keeps credentials: a 0600 TOML file, or the OS keyring."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import tomllib
from pathlib import Path
from typing import Any, cast

from openpista.core.errors import ConfigError
from openpista.providers._file_lock import exclusive_lock
from openpista.providers.credentials import (
    KEYRING_MARKER_NAME,
    KEYRING_SERVICE,
    Credential,
    CredentialBackend,
    CredentialStoreError,
)

logger = logging.getLogger(__name__)

_FILE_HEADER = (
    "# openpista credentials, written by `openpista auth login`: keep this file private (0600).\n"
    "# Remove an entry with `openpista auth logout PROVIDER`.\n"
)


class FileBackend(CredentialBackend):
    """`credentials.toml`: one table per provider, rewritten atomically, always mode 0600.

    A file readable by others is tightened to 0600 with a warning (the secrets in it may
    already have been read: the warning says so); one that cannot be tightened (owned by
    someone else) is refused.
    """

    def __init__(self, path: Path, lock_path: Path) -> None:
        self.path = path
        self.lock_path = lock_path
        self.location = str(path)

    def read(self, provider: str) -> Credential | None:
        entry = self._load().get(provider)
        return None if entry is None else self._parse(provider, entry)

    def read_all(self) -> list[Credential]:
        return [self._parse(provider, entry) for provider, entry in self._load().items()]

    def write(self, credential: Credential) -> None:
        with exclusive_lock(self.lock_path):
            entries = self._load()
            entries[credential.provider] = credential.to_table()
            self._save(entries)

    def remove(self, provider: str) -> bool:
        # The entry is not parsed: a malformed one can always be removed.
        with exclusive_lock(self.lock_path):
            entries = self._load()
            if entries.pop(provider, None) is None:
                return False
            self._save(entries)
            return True

    def _load(self) -> dict[str, dict[str, Any]]:
        """Every entry as its raw table: each is parsed only when asked for, so a malformed
        entry stops only what uses it (and `auth logout` can still remove it)."""
        try:
            descriptor = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise CredentialStoreError(f"cannot read {self.path}: {exc.strerror}") from None
        try:
            with os.fdopen(descriptor, "rb") as file:
                self._check_mode(os.fstat(file.fileno()).st_mode)
                raw = file.read()
        except OSError as exc:  # a folder where the file should be, say
            raise CredentialStoreError(f"cannot read {self.path}: {exc.strerror}") from None
        try:
            table = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(
                str(self.path),
                "(file)",
                f"not valid TOML ({exc}); fix it, or delete it and sign in again",
            ) from None
        entries: dict[str, dict[str, Any]] = {}
        for provider, entry in table.items():
            if not isinstance(entry, dict):
                raise ConfigError(str(self.path), provider, "expected a table ([PROVIDER])")
            entries[provider] = cast(dict[str, Any], entry)
        return entries

    def _parse(self, provider: str, entry: dict[str, Any]) -> Credential:
        try:
            return Credential.from_table(provider, entry)
        except ValueError as exc:
            key, _, problem = str(exc).partition(": ")
            raise ConfigError(
                str(self.path),
                f"{provider}.{key}",
                f"{problem}; fix it, or remove the entry with `openpista auth logout "
                f"{provider}` and sign in again",
            ) from None

    def _check_mode(self, mode: int) -> None:
        loose = stat.S_IMODE(mode) & 0o077
        if not loose:
            return
        try:
            os.chmod(self.path, 0o600)
        except OSError as exc:
            raise CredentialStoreError(
                f"{self.path} is readable by other users (mode {stat.S_IMODE(mode):o}) and "
                f"cannot be made private ({exc.strerror}); fix its owner or mode (chmod 600)"
            ) from None
        logger.warning(
            "%s was readable by other users (mode %o): made it private (0600); "
            "if others could log in here, sign in again to replace the tokens",
            self.path,
            stat.S_IMODE(mode),
        )

    def _save(self, entries: dict[str, dict[str, Any]]) -> None:
        text = _FILE_HEADER + "".join(
            "\n" + _toml_table(provider, entries[provider]) for provider in sorted(entries)
        )
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = directory / f".{self.path.name}.{os.getpid()}.tmp"
        # Created 0600 from the start (O_EXCL: never someone else's file), so the secrets
        # are never readable by others, not even for an instant.
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(text.encode("utf-8"))
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform.
    with contextlib.suppress(OSError, AttributeError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _toml_table(name: str, table: dict[str, object]) -> str:
    lines = [f"[{_toml_key(name)}]"]
    nested: list[str] = []
    for key, value in table.items():
        if isinstance(value, dict):
            items = cast(dict[str, str], value)
            nested.append(f"\n[{_toml_key(name)}.{_toml_key(key)}]")
            nested.extend(f"{_toml_key(k)} = {_toml_string(str(v))}" for k, v in items.items())
        elif isinstance(value, float | int):
            lines.append(f"{_toml_key(key)} = {float(value)!r}")
        else:
            lines.append(f"{_toml_key(key)} = {_toml_string(str(value))}")
    return "\n".join(lines + nested) + "\n"


def _toml_key(key: str) -> str:
    bare = key and all(char.isascii() and (char.isalnum() or char in "_-") for char in key)
    return key if bare else _toml_string(key)


def _toml_string(value: str) -> str:
    escaped: list[str] = []
    for char in value:
        if char in ('"', "\\"):
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


# -- the OS keyring --------------------------------------------------------------------------

_INDEX_ENTRY = ":index"
"""The keyring entry listing the providers stored (a keyring cannot list its entries);
a colon is in no provider name."""


class KeyringBackend(CredentialBackend):
    """One JSON entry per provider under service "openpista", plus an index of the names."""

    def __init__(self, keyring: Any, name: str, lock_path: Path) -> None:
        self._keyring = keyring
        self.location = f"the system keyring ({name})"
        # Serialises index updates between processes, as for the file.
        self.lock_path = lock_path

    def read(self, provider: str) -> Credential | None:
        raw = self._call("read", self._keyring.get_password, KEYRING_SERVICE, provider)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return Credential.from_table(provider, cast(dict[str, Any], data))
        except ValueError as exc:
            raise CredentialStoreError(
                f"the keyring entry {KEYRING_SERVICE}/{provider} is not a valid credential "
                f"({exc}); run `openpista auth logout {provider}` and sign in again"
            ) from None

    def read_all(self) -> list[Credential]:
        found = [self.read(provider) for provider in self._index()]
        return [credential for credential in found if credential is not None]

    def write(self, credential: Credential) -> None:
        value = json.dumps(credential.to_table(), separators=(",", ":"))
        with exclusive_lock(self.lock_path):
            self._call(
                "write", self._keyring.set_password, KEYRING_SERVICE, credential.provider, value
            )
            index = self._index()
            self._save_index([*index, credential.provider])

    def remove(self, provider: str) -> bool:
        with exclusive_lock(self.lock_path):
            existed = (
                self._call("read", self._keyring.get_password, KEYRING_SERVICE, provider)
                is not None
            )
            if existed:
                self._call("write", self._keyring.delete_password, KEYRING_SERVICE, provider)
            index = self._index()
            if provider in index:
                self._save_index([name for name in index if name != provider])
            return existed

    def _index(self) -> list[str]:
        raw = self._call("read", self._keyring.get_password, KEYRING_SERVICE, _INDEX_ENTRY)
        try:
            names = json.loads(raw) if raw else []
        except ValueError:
            names = []
        if not isinstance(names, list):
            return []
        return [name for name in cast(list[object], names) if isinstance(name, str)]

    def _save_index(self, names: list[str]) -> None:
        value = json.dumps(sorted(set(names)))
        self._call("write", self._keyring.set_password, KEYRING_SERVICE, _INDEX_ENTRY, value)
        # The same names beside the lock file, so that a run can tell without the keyring
        # that nothing is stored for its provider (CredentialStore.open_if_used).
        marker = self.lock_path.with_name(KEYRING_MARKER_NAME)
        marker.write_text("".join(f"{name}\n" for name in sorted(set(names))), encoding="utf-8")

    def _call(self, action: str, function: Any, *args: str) -> Any:
        try:
            return function(*args)
        except Exception as exc:  # keyring backends raise their own types (dbus, Security ...)
            raise CredentialStoreError(
                f"cannot {action} {self.location}: {type(exc).__name__}: {exc}; set "
                "OPENPISTA_CREDENTIALS_BACKEND=file to keep credentials in "
                "OPENPISTA_HOME/credentials.toml instead"
            ) from None


def usable_keyring(lock_path: Path) -> KeyringBackend | None:
    """The system keyring when `keyring` finds one that really stores secrets, else None.

    `keyring` itself is imported only here: it scans its backends on import.
    """
    try:
        import keyring
        from keyring.backends import chainer, fail, null
    except Exception:  # not installed, or a backend that breaks on import
        return None
    try:
        backend = keyring.get_keyring()
    except Exception:
        return None
    if isinstance(backend, fail.Keyring | null.Keyring):
        return None
    if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
        return None
    # Priority below 1 marks backends keyring itself would not recommend (plain-text
    # files of keyrings.alt): our own 0600 file is no worse than those.
    priority = getattr(backend, "priority", 0)
    if not isinstance(priority, int | float) or priority < 1:
        return None
    name = getattr(backend, "name", "") or type(backend).__name__
    return KeyringBackend(keyring, str(name), lock_path)
