"""`system.run`: the LLM runs a shell command on this machine and reads what it printed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from openpista.core.errors import ToolError
from openpista.core.process import ProcessResult, run_process, truncate_output
from openpista.core.tool import Tool, ToolContext, ToolOutput
from openpista.tools.settings import ShellSettings

if TYPE_CHECKING:
    from openpista.core.config import Config

TIMEOUT_CAP_FACTOR = 10
"""A per-call `timeout_s` may ask for at most this many times the configured timeout."""

_DESCRIPTION = (
    "Run a shell command with bash on the user's machine and return its stdout, stderr and "
    "exit code. Use it to inspect files, run programs and scripts, or query the system. "
    "Commands run non-interactively (stdin is empty), so never start anything that waits for "
    "input or runs forever; pass flags like -y where needed. To leave a server running, start "
    "it in the background (`cmd > log 2>&1 &`): the call returns as soon as the shell exits. "
    "Each call starts a fresh shell: `cd` does not carry over, use `cwd` instead. "
    "Long output is cut; prefer commands that print only what you need (head, grep, wc)."
)


def _seconds(value: float) -> str:
    """30.0 -> '30', 0.5 -> '0.5': how a person writes a duration."""
    return f"{value:g}"


class SystemRunTool:
    """Runs `bash -c COMMAND` in its own process group with a hard timeout.

    The result text starts with the exit code (or the timeout), then the `--- stdout ---` and
    `--- stderr ---` sections that are not empty, or `(no output)`; the whole text is cut at
    `max_output_chars` with a marker saying how many characters were cut. A non-zero exit or a
    timeout is a tool error whose text still carries everything the command printed.

    A call may pass its own `timeout_s`, honoured up to TIMEOUT_CAP_FACTOR (10) times the
    configured `timeout_s` (so 300 s with the default 30 s): the configuration stays in charge
    of how long a model can keep the machine busy, yet a model can still ask for the slow
    build it knows is coming. A longer request runs with the cap and the result says so.
    """

    requires_approval = True
    """It runs anything the model writes: under `ask` the user sees each command first."""

    def __init__(self, timeout_s: float = 30.0, max_output_chars: int = 10000) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self._timeout_s = timeout_s
        self._max_output_chars = max_output_chars

    @property
    def name(self) -> str:
        return "system.run"

    @property
    def description(self) -> str:
        return _DESCRIPTION

    @property
    def parameters(self) -> dict[str, Any]:
        cap = self._timeout_s * TIMEOUT_CAP_FACTOR
        return {
            "type": "object",
            "properties": {
                "command": {
                    "type": "string",
                    "description": "The command line, run as `bash -c COMMAND`.",
                },
                "cwd": {
                    "type": "string",
                    "description": "Working directory (`~` allowed). Default: the current one.",
                },
                "timeout_s": {
                    "type": "number",
                    "description": (
                        f"Seconds before the command is killed. "
                        f"Default {_seconds(self._timeout_s)}, at most {_seconds(cap)}."
                    ),
                },
            },
            "required": ["command"],
            "additionalProperties": False,
        }

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolOutput:
        command = arguments.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ToolError(
                "system.run needs `command`: a non-empty string holding a shell command"
            )
        cwd = _working_directory(arguments.get("cwd"))
        timeout_s, note = self._effective_timeout(arguments.get("timeout_s"))
        try:
            # `server &` asks for a process that outlives the command: it keeps running.
            result = await run_process(
                ["bash", "-c", command], timeout_s=timeout_s, cwd=cwd, keep_background=True
            )
        except OSError as exc:
            raise ToolError(
                f"could not start bash to run the command: {exc}; is bash installed and on PATH?"
            ) from exc
        text = _describe(result, timeout_s=timeout_s, from_config=timeout_s == self._timeout_s)
        if note:
            text = f"{note}\n{text}"
        return ToolOutput(
            text=truncate_output(text, self._max_output_chars),
            is_error=result.timed_out or result.exit_code != 0,
        )

    def _effective_timeout(self, requested: object) -> tuple[float, str]:
        """The timeout to use, and a note for the result when the request was lowered."""
        if requested is None:
            return self._timeout_s, ""
        if isinstance(requested, bool) or not isinstance(requested, int | float):
            raise ToolError(
                f"system.run `timeout_s` must be a number of seconds, got {requested!r}"
            )
        if requested <= 0:
            raise ToolError(f"system.run `timeout_s` must be positive, got {requested}")
        cap = self._timeout_s * TIMEOUT_CAP_FACTOR
        if requested > cap:
            return cap, (
                f"note: timeout_s {_seconds(requested)} is above the limit; "
                f"ran with {_seconds(cap)} s ({TIMEOUT_CAP_FACTOR}x tools.shell.timeout_s)"
            )
        return float(requested), ""


def _working_directory(raw: object) -> Path | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise ToolError(f"system.run `cwd` must be a string path, got {raw!r}")
    path = Path(raw).expanduser()
    if not path.exists():
        raise ToolError(f"working directory does not exist: {path}")
    if not path.is_dir():
        raise ToolError(f"working directory is not a directory: {path}")
    return path


def _describe(result: ProcessResult, *, timeout_s: float, from_config: bool) -> str:
    if result.timed_out:
        origin = "tools.shell.timeout_s" if from_config else "the call's timeout_s"
        head = (
            f"timed out after {_seconds(timeout_s)} s ({origin}); the command and everything "
            "it started were killed. Output gathered until then:"
        )
    else:
        head = f"exit code: {result.exit_code}"
    if result.left_running:
        head += (
            "\n(processes it started in the background keep running; their output from now "
            "on is not collected: redirect it to a file to keep it, e.g. `cmd > log 2>&1 &`)"
        )
    # Output past what run_process keeps was never held in memory: say how big it really was.
    for name, dropped in (("stdout", result.stdout_dropped), ("stderr", result.stderr_dropped)):
        if dropped:
            head += f"\n({name} went on for {dropped:,} more bytes than are kept here)"
    parts = [head]
    stdout = result.stdout.rstrip("\n")
    stderr = result.stderr.rstrip("\n")
    if stdout:
        parts.append(f"--- stdout ---\n{stdout}")
    if stderr:
        parts.append(f"--- stderr ---\n{stderr}")
    if not stdout and not stderr:
        parts.append("(no output)")
    return "\n".join(parts)


def create_tools(config: Config) -> list[Tool]:
    """The `openpista.tools` entry point `system`: system.run, set up from `[tools.shell]`."""
    shell = config.section("tools.shell", ShellSettings)
    return [SystemRunTool(timeout_s=shell.timeout_s, max_output_chars=shell.max_output_chars)]
