"""One run of a WASI command under wasmtime: the sandbox, the limits, and how it ended.

Synchronous: the runner calls it in a thread of its own. The guest sees its arguments on
stdin, the workspace read-only at /workspace, no other directory, no environment variables
and no network (wasmtime's Python WASI has no sockets). Its memory is capped by the store's
limits; it is stopped by advancing its engine's epoch (`GuestRun.stop`), which traps the guest
at its next loop iteration or function call, and a guest asleep in `poll_oneoff` (a `sleep`)
wakes and ends there (see poll.py).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from openpista.sandbox.wasm.cache import CompiledModuleCache
from openpista.sandbox.wasm.engine import new_engine
from openpista.sandbox.wasm.module_file import ModuleFileError
from openpista.sandbox.wasm.poll import GuestStopped, define_poll_oneoff

if TYPE_CHECKING:
    import wasmtime

GUEST_WORKSPACE = "/workspace"


MAX_TABLE_ELEMENTS = 100_000
"""Entries a table may hold: C and Rust programs need one table of their functions."""
MAX_INSTANCES = 10
MAX_TABLES = 10


class Ending(StrEnum):
    """How a guest's run ended."""

    EXITED = "exited"
    """It returned from `_start` or called exit: see `exit_code`."""
    TRAPPED = "trapped"
    """A trap (unreachable, out-of-bounds access, stack exhausted): see `trap`."""
    STOPPED = "stopped"
    """Interrupted by `GuestRun.stop` (the timeout, a cancelled turn)."""
    NOT_STARTED = "not_started"
    """The module could not be loaded or instantiated: see `trap`."""


@dataclass(frozen=True, slots=True)
class GuestResult:
    ending: Ending
    exit_code: int = 0
    trap: str = ""
    """What the trap or the failed start said, without wasmtime's backtrace."""
    stdout: str = ""
    stderr: str = ""
    stdout_dropped: int = 0
    """Bytes of stdout past the capture limit, counted and thrown away."""
    memory_bytes: int = 0
    """The guest's linear memory when it ended."""
    cached: bool = False
    """The compiled module came from the cache."""


class BoundedOutput:
    """Collects what a guest writes to one stream, keeping the first `limit` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._kept = bytearray()
        self.dropped = 0

    def write(self, data: bytes) -> None:
        room = self.limit - len(self._kept)
        self._kept += data[: max(room, 0)]
        self.dropped += max(len(data) - max(room, 0), 0)

    def text(self) -> str:
        return self._kept.decode("utf-8", errors="replace")


class GuestRun:
    """One guest's run, stoppable from another thread."""

    def __init__(
        self,
        wasm_file: Path,
        *,
        workspace: Path,
        stdin: bytes,
        argv0: str,
        memory_limit_bytes: int,
        max_output_bytes: int,
        cache: CompiledModuleCache,
    ) -> None:
        self.wasm_file = wasm_file
        self.workspace = workspace
        self.stdin = stdin
        self.argv0 = argv0
        self.memory_limit_bytes = memory_limit_bytes
        self.max_output_bytes = max_output_bytes
        self.cache = cache
        self._lock = threading.Lock()
        self._engine: wasmtime.Engine | None = None
        self._stopped = threading.Event()

    def stop(self) -> None:
        """Trap the guest at its next epoch check, or wake it from its sleep to end it; one not
        started yet never starts."""
        with self._lock:
            self._stopped.set()
            if self._engine is not None:
                self._engine.increment_epoch()

    def run(self) -> GuestResult:
        import wasmtime

        engine = new_engine()
        try:
            module, cached = self.cache.load(engine, self.wasm_file)
        except (ModuleFileError, OSError, wasmtime.WasmtimeError) as exc:
            return GuestResult(Ending.NOT_STARTED, trap=_first_line(str(exc)))
        stdout = BoundedOutput(self.max_output_bytes)
        stderr = BoundedOutput(self.max_output_bytes)
        stdin_fd, stdin_path = tempfile.mkstemp(prefix="openpista-wasm-stdin-")  # 0600
        try:
            with os.fdopen(stdin_fd, "wb") as file:
                file.write(self.stdin)
            store = wasmtime.Store(engine)
            # Everything a guest can make the host allocate is bounded: its one memory, its
            # tables (a table.grow of millions of entries happens inside wasmtime, where the
            # epoch cannot stop it) and how many instances, tables and memories it makes.
            store.set_limits(
                memory_size=self.memory_limit_bytes,
                table_elements=MAX_TABLE_ELEMENTS,
                instances=MAX_INSTANCES,
                tables=MAX_TABLES,
                memories=1,
            )
            store.set_wasi(self._wasi(stdin_path, stdout, stderr))
            # One tick: the first increment of this run's own engine traps the guest.
            store.set_epoch_deadline(1)
            linker = wasmtime.Linker(engine)
            linker.define_wasi()
            define_poll_oneoff(linker, self._stopped)
            try:
                instance = linker.instantiate(store, module)
            except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
                return GuestResult(Ending.NOT_STARTED, trap=_trap_text(exc), cached=cached)
            exports = instance.exports(store)
            start = exports.get("_start")
            if not isinstance(start, wasmtime.Func):
                return GuestResult(
                    Ending.NOT_STARTED,
                    trap="it exports no _start function: build it as a WASI command",
                    cached=cached,
                )
            with self._lock:
                if self._stopped.is_set():
                    return GuestResult(Ending.STOPPED, cached=cached)
                self._engine = engine
            ending, exit_code, trap = Ending.EXITED, 0, ""
            try:
                start(store)
            except wasmtime.ExitTrap as exc:
                exit_code = exc.code
            except GuestStopped:
                ending = Ending.STOPPED
            except wasmtime.Trap as exc:
                stopped = exc.trap_code == wasmtime.TrapCode.INTERRUPT and self._stopped.is_set()
                ending = Ending.STOPPED if stopped else Ending.TRAPPED
                trap = _trap_text(exc)
            except wasmtime.WasmtimeError as exc:  # a host call failing fatally
                ending, trap = Ending.TRAPPED, _trap_text(exc)
            memory = exports.get("memory")
            memory_bytes = memory.data_len(store) if isinstance(memory, wasmtime.Memory) else 0
            return GuestResult(
                ending,
                exit_code=exit_code,
                trap=trap,
                stdout=stdout.text(),
                stderr=stderr.text(),
                stdout_dropped=stdout.dropped,
                memory_bytes=memory_bytes,
                cached=cached,
            )
        finally:
            with contextlib.suppress(OSError):
                os.unlink(stdin_path)

    def _wasi(
        self, stdin_path: str, stdout: BoundedOutput, stderr: BoundedOutput
    ) -> wasmtime.WasiConfig:
        import wasmtime

        wasi = wasmtime.WasiConfig()
        wasi.argv = [self.argv0]
        wasi.env = []
        wasi.stdin_file = stdin_path
        wasi.stdout_custom = stdout.write
        wasi.stderr_custom = stderr.write
        # fs_mutable=False: wasmtime grants only read permissions on the directory and its
        # files, so opening for writing, creating, renaming and deleting fail in the host.
        wasi.preopen_dir(str(self.workspace), GUEST_WORKSPACE, False)
        return wasi


def _trap_text(exc: Exception) -> str:
    """The cause wasmtime gives, without its backtrace: `wasm trap: interrupt` -> `interrupt`."""
    text = str(getattr(exc, "message", None) or exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if "Caused by:" in lines:
        lines = lines[lines.index("Caused by:") + 1 :]
    cause = lines[0] if lines else "unknown trap"
    return cause.removeprefix("wasm trap: ")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "unknown error"
