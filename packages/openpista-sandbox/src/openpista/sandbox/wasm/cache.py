"""Compiled WASM modules kept on disk, so a skill is compiled once, not on every call.

A compiled module is native code that wasmtime maps and runs without checking it: loading a
file someone else wrote would run their code outside the sandbox, and loading a damaged one
can crash the process. So:

- The cache lives only in `OPENPISTA_HOME/cache/wasm/` (folder 0700), never in a skill's
  folder, which may come from an archive or a repository.
- Every file carries an HMAC-SHA256 over its whole content (header, key and compiled code)
  made with a secret key of this OPENPISTA_HOME (`cache.key` beside the files: 32 random
  bytes, 0600, created once). A file whose MAC does not match (forged, damaged, copied from
  another OPENPISTA_HOME) is never deserialized: it is compiled afresh and replaced.
- The cache key is the SHA-256 of the module's bytes together with the wasmtime version, the
  machine and the engine settings (`engine.runtime_identity`): a changed skill.wasm, an
  upgraded wasmtime or another engine configuration is a miss, never a wrong hit.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from openpista.sandbox.wasm.module_file import ModuleReader

if TYPE_CHECKING:
    import wasmtime

logger = logging.getLogger(__name__)

SECRET_FILE = "cache.key"
_SECRET_BYTES = 32
_HEADER = b"openpista compiled wasm 2\n"
_MAC_BYTES = hashlib.sha256().digest_size
_SUFFIX = ".cwasm"


class CompiledModuleCache:
    """Loads a skill's module compiled, compiling and saving it on a miss."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        """Where the compiled modules and the secret key are kept (OPENPISTA_HOME/cache/wasm)."""
        self.modules = ModuleReader()

    def load(self, engine: wasmtime.Engine, wasm_file: Path) -> tuple[wasmtime.Module, bool]:
        """The module in `wasm_file` for `engine`, and whether it came from the cache.

        Raises ModuleFileError when the file is missing or no binary module, and
        wasmtime.WasmtimeError when it is no valid module.
        """
        import wasmtime

        key, data = self.modules.key(wasm_file)
        # One file per skill module: the name starts with the module's path, so saving a new
        # compilation of it drops the older ones, and ends with the key.
        owner = hashlib.sha256(os.fsencode(wasm_file.absolute())).hexdigest()[:16]
        path = self.folder / f"{owner}.{key}{_SUFFIX}"
        secret = self._secret()
        if secret is not None:
            compiled = _read_authentic(path, key, secret)
            if compiled is not None:
                try:
                    return wasmtime.Module.deserialize(engine, compiled), True
                except wasmtime.WasmtimeError as exc:  # authentic but refused: a wasmtime bug
                    logger.warning("ignoring the unloadable compiled module %s: %s", path, exc)
        module = wasmtime.Module(engine, data if data is not None else self.modules.read(wasm_file))
        if secret is not None:
            _save(path, _signed(key, bytes(module.serialize()), secret), f"{owner}.*{_SUFFIX}")
        return module, False

    def _secret(self) -> bytes | None:
        """This OPENPISTA_HOME's cache key, created on first use; None (no caching, with a
        warning) when it cannot be made or is not a private file of this user."""
        path = self.folder / SECRET_FILE
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            return _read_secret(path) or _create_secret(path)
        except OSError as exc:
            logger.warning("not caching compiled WASM modules: %s: %s", path, exc)
            return None


def _read_secret(path: Path) -> bytes | None:
    """The key in `path`, None when there is none yet; OSError when it is unusable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if (
            not stat.S_ISREG(info.st_mode)
            or info.st_uid != os.getuid()
            or stat.S_IMODE(info.st_mode) & 0o077
        ):
            raise OSError("the key file is not a private file of this user (0600); remove it")
        secret = file.read(_SECRET_BYTES + 1)
    if len(secret) != _SECRET_BYTES:
        raise OSError(f"the key file does not hold {_SECRET_BYTES} bytes; remove it")
    return secret


def _create_secret(path: Path) -> bytes:
    """A new key saved in `path` all at once (written aside, then linked in place, so a reader
    never sees half a key); if another process got there first, its key."""
    secret = secrets.token_bytes(_SECRET_BYTES)
    fd, temporary = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)  # 0600
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(secret)
        try:
            os.link(temporary, path)
        except FileExistsError:
            existing = _read_secret(path)
            if existing is None:
                raise OSError("the key file vanished while it was created") from None
            return existing
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
    return secret


def _signed(key: str, compiled: bytes, secret: bytes) -> bytes:
    head = _HEADER + key.encode() + b"\n"
    mac = hmac.new(secret, head + compiled, hashlib.sha256).digest()
    return head + mac + compiled


def _read_authentic(path: Path, key: str, secret: bytes) -> bytes | None:
    """The compiled code in `path` if this OPENPISTA_HOME's cache wrote it for `key`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None  # missing (the usual miss), a link, unreadable
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            return None
        content = file.read()
    head = _HEADER + key.encode() + b"\n"
    mac = content[len(head) : len(head) + _MAC_BYTES]
    compiled = content[len(head) + _MAC_BYTES :]
    expected = hmac.new(secret, head + compiled, hashlib.sha256).digest()
    if not content.startswith(head) or not hmac.compare_digest(mac, expected):
        logger.warning("ignoring %s: it is not a compiled module this cache wrote", path)
        return None
    return compiled


def _save(path: Path, content: bytes, siblings: str) -> None:
    """Save `content` as `path` (0600, all at once) and drop the other files matching
    `siblings` (older compilations of the same module); a failure only costs a compilation."""
    try:
        fd, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=_SUFFIX, dir=path.parent)  # 0600
    except OSError as exc:
        logger.warning("cannot cache compiled WASM modules in %s: %s", path.parent, exc)
        return
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(content)
        os.replace(temporary, path)
    except OSError as exc:
        logger.warning("cannot cache compiled WASM modules in %s: %s", path.parent, exc)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        return
    for old in path.parent.glob(siblings):
        if old.name != path.name:
            with contextlib.suppress(OSError):
                old.unlink()
