"""A skill's `skill.wasm`: what makes it acceptable, read once per change.

Only binary modules are run: wasmtime would also read the text format (WAT), so a text file
would fail with a parser's complaint (`expected '('`) instead of saying what is wrong.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from io import BufferedReader
from pathlib import Path

from openpista.sandbox.wasm.engine import runtime_identity

MODULE_FILE = "skill.wasm"
MAX_MODULE_BYTES = 64 << 20
"""The largest skill.wasm accepted; real skills are kilobytes to a few megabytes."""
WASM_MAGIC = b"\0asm"


class ModuleFileError(ValueError):
    """A skill.wasm that cannot be run; the message says why, naming the file."""


def module_problem(wasm_file: Path) -> str | None:
    """None when `wasm_file` looks runnable (a regular file, not too large, a binary module),
    else why not: the cheap checks `openpista skills list` shows."""
    try:
        _open_checked(wasm_file).close()
    except ModuleFileError as exc:
        return str(exc)
    return None


def cache_key(module: bytes) -> str:
    """The key of `module` compiled by this wasmtime, on this machine, with our settings."""
    module_sha = hashlib.sha256(module).hexdigest()
    return hashlib.sha256(f"{runtime_identity()}; module sha256 {module_sha}".encode()).hexdigest()


class ModuleReader:
    """Reads skill.wasm files and remembers each one's cache key by its identity (device,
    inode, size, modification time), so an unchanged file is not read and hashed on every call."""

    def __init__(self) -> None:
        self._keys: dict[Path, tuple[tuple[int, int, int, int, int], str]] = {}
        self._lock = threading.Lock()  # guests run in threads of their own

    def key(self, wasm_file: Path) -> tuple[str, bytes | None]:
        """The cache key of `wasm_file`, and its bytes when they had to be read for it.

        Raises ModuleFileError when it is missing, no regular file, too large or no binary
        module."""
        with _open_checked(wasm_file) as file:
            info = os.fstat(file.fileno())
            # ctime too: a rewrite that keeps size and mtime (cp -p, touch -r) still moves it.
            identity = (
                info.st_dev,
                info.st_ino,
                info.st_size,
                info.st_mtime_ns,
                info.st_ctime_ns,
            )
            with self._lock:
                known = self._keys.get(wasm_file)
            if known is not None and known[0] == identity:
                return known[1], None
            data = _read_all(file, wasm_file)
        key = cache_key(data)
        with self._lock:
            self._keys[wasm_file] = (identity, key)
        return key, data

    def read(self, wasm_file: Path) -> bytes:
        """The bytes of `wasm_file`, checked as `key` checks them."""
        with _open_checked(wasm_file) as file:
            return _read_all(file, wasm_file)


def _open_checked(wasm_file: Path) -> BufferedReader:
    """`wasm_file` opened for reading after the checks that need no more than its first bytes."""
    try:
        file = open(wasm_file, "rb")  # noqa: SIM115  # returned open, the caller closes it
    except FileNotFoundError:
        raise ModuleFileError(f"there is no {wasm_file.name} in {wasm_file.parent}") from None
    except IsADirectoryError:
        raise ModuleFileError(f"{wasm_file} is a directory, not a module file") from None
    except OSError as exc:
        raise ModuleFileError(f"{wasm_file} cannot be read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ModuleFileError(f"{wasm_file} is not a regular file")
        if info.st_size > MAX_MODULE_BYTES:
            raise ModuleFileError(
                f"{wasm_file} is {info.st_size / (1 << 20):.1f} MB, over the "
                f"{MAX_MODULE_BYTES >> 20} MB limit for a skill module"
            )
        if file.read(len(WASM_MAGIC)) != WASM_MAGIC:
            raise ModuleFileError(
                f"{wasm_file} is not a WebAssembly binary module (it does not start with "
                "\\0asm); build it with a compiler targeting wasm32-wasi (the text format, "
                "WAT, is not accepted)"
            )
        file.seek(0)
    except BaseException:
        file.close()
        raise
    return file


def _read_all(file: BufferedReader, wasm_file: Path) -> bytes:
    data = file.read(MAX_MODULE_BYTES + 1)
    if len(data) > MAX_MODULE_BYTES:  # it grew since it was checked
        raise ModuleFileError(f"{wasm_file} is over the {MAX_MODULE_BYTES >> 20} MB limit")
    return data
