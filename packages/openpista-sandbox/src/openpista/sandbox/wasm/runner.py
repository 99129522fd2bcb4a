"""The `wasm` skill runner: `skill.wasm` under WASI, off the event loop, stoppable, bounded."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openpista.core.config import expand_path
from openpista.core.errors import ToolError
from openpista.core.process import DEFAULT_MAX_BYTES, truncate_output
from openpista.core.skills import Skill
from openpista.core.tool import ToolContext, ToolOutput
from openpista.sandbox.wasm.cache import CompiledModuleCache
from openpista.sandbox.wasm.engine import runtime_problem
from openpista.sandbox.wasm.guest import Ending, GuestResult, GuestRun
from openpista.sandbox.wasm.module_file import MODULE_FILE, module_problem

if TYPE_CHECKING:
    from openpista.core.config import Config

DEFAULT_TIMEOUT_S = 30.0
MEMORY_LIMIT_BYTES = 64 << 20
_STDERR_TAIL_CHARS = 2000
# After the timeout the guest traps at its next epoch check or wakes from its sleep, within
# microseconds: that long and no longer is the result waited for.
_STOP_GRACE_S = 1.0


class WasmSkillRunner:
    """Runs `mode: wasm` skills: the skill folder's `skill.wasm` as a WASI command.

    The guest gets the args as JSON on stdin and the workspace read-only at /workspace, and
    nothing else; its stdout is the result. It runs in a thread of its own, so the event loop
    goes on; at the timeout (SKILL.md `timeout_s`, else `default_timeout_s`) or when the turn
    is cancelled its engine's epoch is advanced and the guest traps. Its linear memory is
    capped at `memory_limit_bytes`. A non-zero exit, a trap, the timeout and running out of
    memory are ToolErrors that say which.
    """

    def __init__(
        self,
        workspace: Path,
        cache_dir: Path,
        *,
        default_timeout_s: float = DEFAULT_TIMEOUT_S,
        memory_limit_bytes: int = MEMORY_LIMIT_BYTES,
        max_output_chars: int = 10000,
    ) -> None:
        self.workspace = workspace
        """Preopened read-only at /workspace in every guest."""
        self.cache = CompiledModuleCache(cache_dir)
        self.default_timeout_s = default_timeout_s
        self.memory_limit_bytes = memory_limit_bytes
        self.max_output_chars = max_output_chars

    @classmethod
    def from_config(cls, config: Config) -> WasmSkillRunner:
        """The `wasm` entry point: the skills workspace, the compiled-module cache under
        OPENPISTA_HOME, and `[tools.shell] max_output_chars`
        as for subprocess skills."""
        # [tools.shell] is declared by openpista-tools, which this library may not import.
        shell = config.tools.get("shell")
        return cls(
            expand_path(config.skills.workspace, config.home),
            config.home / "cache" / "wasm",
            max_output_chars=int(getattr(shell, "max_output_chars", 10000)),
        )

    def availability(self) -> str | None:
        return runtime_problem()

    def skill_availability(self, skill: Skill) -> str | None:
        """None when the skill's skill.wasm looks runnable (a regular file within the size
        limit starting with the WebAssembly magic bytes), else why not."""
        return module_problem(skill.path / MODULE_FILE)

    async def run(self, skill: Skill, args: dict[str, Any], context: ToolContext) -> ToolOutput:
        wasm_file = skill.path / MODULE_FILE
        problem = module_problem(wasm_file)
        if problem is not None:
            raise ToolError(
                f"skill {skill.name} cannot run: {problem} (see skills/README.md for how to "
                "build a wasm skill)"
            )
        problem = runtime_problem()
        if problem is not None:
            raise ToolError(f"skill {skill.name} cannot run: {problem}")
        timeout_s = skill.timeout_s if skill.timeout_s is not None else self.default_timeout_s
        guest = GuestRun(
            wasm_file,
            workspace=self.workspace,
            stdin=json.dumps(args, ensure_ascii=False).encode("utf-8"),
            argv0=skill.name,
            memory_limit_bytes=self.memory_limit_bytes,
            max_output_bytes=DEFAULT_MAX_BYTES,
            cache=self.cache,
        )
        result = await _run_in_thread(guest, timeout_s, skill.name)
        if result is None:
            raise ToolError(
                f"skill {skill.name} timed out after {timeout_s:g} s and is stuck in a host "
                "call: its thread is left running until that call returns"
            )
        return self._output(skill, result, timeout_s)

    def _output(self, skill: Skill, result: GuestResult, timeout_s: float) -> ToolOutput:
        name = skill.name
        if result.ending == Ending.STOPPED:
            raise ToolError(f"skill {name} timed out after {timeout_s:g} s")
        if result.ending == Ending.NOT_STARTED:
            raise ToolError(f"skill {name} could not start: {result.trap}")
        if result.ending == Ending.TRAPPED or result.exit_code != 0:
            raise ToolError(self._failure(name, result))
        output = result.stdout if result.stdout.strip() else f"(skill {name} printed nothing)"
        if result.stdout_dropped:
            output += f"\n[... {result.stdout_dropped} more bytes of output not kept ...]"
        return ToolOutput(truncate_output(output, self.max_output_chars))

    def _failure(self, name: str, result: GuestResult) -> str:
        stderr = result.stderr.strip()[-_STDERR_TAIL_CHARS:]
        if result.ending == Ending.TRAPPED:
            detail = f"trapped: {result.trap}" + (f"; stderr: {stderr}" if stderr else "")
        else:
            detail = f"exited with code {result.exit_code}: {stderr or '(no output on stderr)'}"
        if not self._ran_out_of_memory(result):
            return f"skill {name} {detail}"
        return (
            f"skill {name} ran out of memory ({self.memory_limit_bytes >> 20} MB limit): its "
            f"memory had grown to {result.memory_bytes / (1 << 20):.1f} MB when it {detail}"
        )

    def _ran_out_of_memory(self, result: GuestResult) -> bool:
        # wasmtime refuses a memory.grow past the store's limit by returning -1 to the guest,
        # without telling the host; the guest then fails its own way (malloc returns NULL and
        # it exits, or Rust aborts with a trap). A failure after the memory grew past half the
        # limit is taken for that: the next doubling (or any request that big) was refused.
        return result.memory_bytes > self.memory_limit_bytes // 2


async def _run_in_thread(guest: GuestRun, timeout_s: float, name: str) -> GuestResult | None:
    """The guest's result, or None when it was stopped at `timeout_s` but did not end (stuck
    in a host call that cannot be interrupted; none is known). Cancelling the awaiting task
    stops the guest.

    A daemon thread, not the loop's executor: a guest stuck in a host call must not hold up
    the executor's other work, nor the process's exit.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[GuestResult] = loop.create_future()
    # Retrieved even when nobody awaits it any more (a cancelled turn): no "never retrieved".
    done.add_done_callback(lambda future: future.cancelled() or future.exception())

    def report(result: GuestResult | BaseException) -> None:
        if done.done():
            return
        if isinstance(result, BaseException):
            done.set_exception(result)
        else:
            done.set_result(result)

    def work() -> None:
        try:
            outcome: GuestResult | BaseException = guest.run()
        except BaseException as exc:  # handed to the awaiting task, raised there
            outcome = exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(report, outcome)

    threading.Thread(target=work, name=f"wasm skill {name}", daemon=True).start()
    try:
        try:
            async with asyncio.timeout(timeout_s):
                return await asyncio.shield(done)
        except TimeoutError:
            guest.stop()
        try:
            async with asyncio.timeout(_STOP_GRACE_S):
                return await asyncio.shield(done)
        except TimeoutError:
            return None
    except asyncio.CancelledError:
        guest.stop()
        raise
