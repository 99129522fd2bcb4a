"""Compiled WASM modules kept on disk, so a skill is compiled once, not on every call.

A compiled module is native code that wasmtime maps and runs without checking it, so only
files this cache wrote are ever loaded: regular files (not links) owned by this user, mode
0600, starting with a header that holds the full cache key. The key is the SHA-256 of the
module's bytes together with the wasmtime version, the machine and the engine settings
(`engine.runtime_identity`): a changed skill.wasm, an upgraded wasmtime or another engine
configuration is a miss, never a wrong hit.

Where: `.cache/` in the skill's folder (the loader skips hidden folders), or, when the skill's
folder is not writable, `OPENPISTA_HOME/cache/wasm/`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from openpista.sandbox.wasm.engine import runtime_identity

if TYPE_CHECKING:
    import wasmtime

logger = logging.getLogger(__name__)

SKILL_CACHE_DIR = ".cache"
_HEADER = b"openpista compiled wasm 1\n"
_SUFFIX = ".cwasm"


def cache_key(module: bytes) -> str:
    """The key of `module` compiled by this wasmtime, on this machine, with our settings."""
    module_sha = hashlib.sha256(module).hexdigest()
    return hashlib.sha256(f"{runtime_identity()}; module sha256 {module_sha}".encode()).hexdigest()


class CompiledModuleCache:
    """Loads a skill's module compiled, compiling and saving it on a miss."""

    def __init__(self, fallback_dir: Path) -> None:
        self.fallback_dir = fallback_dir
        """Where compiled modules go when the skill's own folder is not writable."""

    def load(self, engine: wasmtime.Engine, wasm_file: Path) -> tuple[wasmtime.Module, bool]:
        """The module in `wasm_file` for `engine`, and whether it came from the cache.

        Raises OSError when the file cannot be read and wasmtime.WasmtimeError when it is no
        valid module.
        """
        import wasmtime

        data = wasm_file.read_bytes()
        key = cache_key(data)
        name = f"skill.{key}{_SUFFIX}"
        places = (wasm_file.parent / SKILL_CACHE_DIR, self.fallback_dir)
        for folder in places:
            compiled = _read_trusted(folder / name, key)
            if compiled is None:
                continue
            try:
                return wasmtime.Module.deserialize(engine, compiled), True
            except wasmtime.WasmtimeError as exc:
                logger.warning("ignoring the unloadable compiled module %s: %s", folder / name, exc)
        module = wasmtime.Module(engine, data)
        serialized = module.serialize()
        for folder in places:
            if _write(folder, name, _HEADER + key.encode() + b"\n" + serialized):
                break
        return module, False


def _read_trusted(path: Path, key: str) -> bytes | None:
    """The compiled code in `path` if this cache wrote it for `key`, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None  # missing (the usual miss), a link, unreadable
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if (
            not stat.S_ISREG(info.st_mode)
            or info.st_uid != os.getuid()
            or stat.S_IMODE(info.st_mode) & 0o077
        ):
            logger.warning("ignoring %s: not a private file of this user, so not ours", path)
            return None
        expected = _HEADER + key.encode() + b"\n"
        if file.read(len(expected)) != expected:
            logger.warning("ignoring %s: its header does not hold the expected key", path)
            return None
        return file.read()


def _write(folder: Path, name: str, content: bytes) -> bool:
    """Save `content` as `folder/name` (0600, all at once) and drop older compilations there;
    False when the folder is not writable."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=_SUFFIX, dir=folder)  # 0600
    except OSError as exc:
        logger.debug("cannot cache compiled modules in %s: %s", folder, exc)
        return False
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(content)
        os.replace(temporary, folder / name)
    except OSError as exc:
        logger.debug("cannot cache compiled modules in %s: %s", folder, exc)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        return False
    # A skill has one module: an earlier compilation of it (an older skill.wasm or wasmtime)
    # will never be loaded again. The fallback folder is shared by all skills: left alone.
    if folder.name == SKILL_CACHE_DIR:
        for old in folder.glob(f"skill.*{_SUFFIX}"):
            if old.name != name:
                with contextlib.suppress(OSError):
                    old.unlink()
    return True
