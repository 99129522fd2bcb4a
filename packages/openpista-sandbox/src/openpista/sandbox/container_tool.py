"""`container.run`: a command in a fresh, locked-down container; also the way to hand a task to a
worker container and get its JSON result back (`result: "json"`)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openpista.core.errors import ToolError
from openpista.core.process import truncate_output
from openpista.core.skills import SkillLoader
from openpista.core.tool import Tool, ToolContext, ToolOutput
from openpista.sandbox.containers import (
    MAX_KEPT_BYTES,
    MIN_CPUS,
    ContainerEngine,
    ContainerResult,
    ContainerSpec,
    Mount,
)

if TYPE_CHECKING:
    from openpista.core.config import Config

TIMEOUT_CAP_FACTOR = 10
MEMORY_CAP_FACTOR = 4
MIN_MEMORY_MB = 16
WORKSPACE_TARGET = "/workspace"
SKILL_TARGET = "/skill"
_DEFAULT_MAX_OUTPUT_CHARS = 10000

_DESCRIPTION = (
    "Run a shell command (`sh -c COMMAND`) in a fresh, isolated Docker container that is "
    "removed afterwards: no network, a read-only filesystem except /tmp, the skills workspace "
    "read-only at /workspace, a non-root user, memory/CPU/process limits. Use it for untrusted, "
    "heavy or risky work instead of system.run. Nothing persists between calls. "
    'As an orchestrator, hand a task to a worker with result="json": the command must print '
    "one JSON value on stdout, which comes back to you parsed. `skill` runs the command in that "
    "container skill's image with the skill folder at /skill."
)


def _seconds(value: float) -> str:
    return f"{value:g}"


def describe_end(result: ContainerResult, *, timeout_s: float, memory_mb: int) -> str:
    """How the container ended, as the first line of a result."""
    if result.engine_lost:
        return f"{result.engine_lost}; what it printed until then follows"
    if result.timed_out:
        return f"timed out after {_seconds(timeout_s)} s, container removed"
    if result.oom_killed:
        return f"killed: out of memory (limit {memory_mb} MB)"
    return f"exit code: {result.exit_code}"


def failed(result: ContainerResult) -> bool:
    return (
        bool(result.engine_lost) or result.timed_out or result.oom_killed or result.exit_code != 0
    )


def describe(result: ContainerResult, *, timeout_s: float, memory_mb: int) -> str:
    """The end, then the `--- stdout ---` and `--- stderr ---` sections, as system.run's."""
    parts = [describe_end(result, timeout_s=timeout_s, memory_mb=memory_mb)]
    for name, dropped in (("stdout", result.stdout_dropped), ("stderr", result.stderr_dropped)):
        if dropped:
            parts.append(f"({name} went on for {dropped:,} more bytes than are kept here)")
    stdout, stderr = result.stdout.rstrip("\n"), result.stderr.rstrip("\n")
    if stdout:
        parts.append(f"--- stdout ---\n{stdout}")
    if stderr:
        parts.append(f"--- stderr ---\n{stderr}")
    if not stdout and not stderr:
        parts.append("(no output)")
    return "\n".join(parts)


class ContainerRunTool:
    """Runs each call in its own container (see ContainerEngine) and reports how it ended.

    Per-call limits may go up to TIMEOUT_CAP_FACTOR times `[sandbox] timeout_s`,
    MEMORY_CAP_FACTOR times `memory_mb` and this machine's CPU count; a larger request runs at
    the cap and the result says so.
    """

    requires_approval = True
    """It runs what the model writes, isolated but on the owner's machine and engine."""

    def __init__(
        self,
        engine: ContainerEngine,
        *,
        image: str,
        timeout_s: float = 60.0,
        memory_mb: int = 512,
        cpus: float = 1.0,
        workspace: Path | None = None,
        max_output_chars: int = _DEFAULT_MAX_OUTPUT_CHARS,
    ) -> None:
        self.engine = engine
        self.image = image
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.workspace = workspace
        self.max_output_chars = max_output_chars

    @classmethod
    def from_config(cls, config: Config) -> ContainerRunTool:
        sandbox = config.sandbox
        shell = config.tools.get("shell")
        return cls(
            ContainerEngine(),
            image=sandbox.image,
            timeout_s=sandbox.timeout_s,
            memory_mb=sandbox.memory_mb,
            cpus=sandbox.cpus,
            workspace=Path(config.skills.workspace).expanduser(),
            max_output_chars=int(getattr(shell, "max_output_chars", _DEFAULT_MAX_OUTPUT_CHARS)),
        )

    @property
    def name(self) -> str:
        return "container.run"

    @property
    def description(self) -> str:
        return _DESCRIPTION

    @property
    def parameters(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": "Run as `sh -c COMMAND`."},
                "image": {
                    "type": "string",
                    "description": f"Container image. Default {self.image}.",
                },
                "skill": {
                    "type": "string",
                    "description": "A container skill's name: use its image, its folder at /skill.",
                },
                "timeout_s": {
                    "type": "number",
                    "description": (
                        f"Seconds before the container is killed. Default "
                        f"{_seconds(self.timeout_s)}, at most "
                        f"{_seconds(self.timeout_s * TIMEOUT_CAP_FACTOR)}."
                    ),
                },
                "memory_mb": {
                    "type": "integer",
                    "description": (
                        f"Memory limit in MB. Default {self.memory_mb}, at most "
                        f"{self.memory_mb * MEMORY_CAP_FACTOR}."
                    ),
                },
                "cpus": {
                    "type": "number",
                    "description": f"CPUs. Default {_seconds(self.cpus)}, at most {cpu_count()}.",
                },
                "result": {
                    "type": "string",
                    "enum": ["text", "json"],
                    "description": (
                        "text (default): exit code, stdout and stderr. json: the command is a "
                        "worker printing one JSON value on stdout; you get that value."
                    ),
                },
            },
            "required": ["command"],
            "additionalProperties": False,
        }

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolOutput:
        command = arguments.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ToolError("container.run needs `command`: a non-empty shell command")
        mode = arguments.get("result", "text")
        if mode not in ("text", "json"):
            raise ToolError(f'container.run `result` must be "text" or "json", got {mode!r}')
        notes: list[str] = []
        timeout_s = _bounded(
            arguments.get("timeout_s"),
            "timeout_s",
            self.timeout_s,
            self.timeout_s * TIMEOUT_CAP_FACTOR,
            notes,
            above=0.0,
        )
        memory_mb = int(
            _bounded(
                arguments.get("memory_mb"),
                "memory_mb",
                self.memory_mb,
                self.memory_mb * MEMORY_CAP_FACTOR,
                notes,
                at_least=MIN_MEMORY_MB,
            )
        )
        # An engine refuses more CPUs than the machine has, whatever the configuration says.
        cpus = _bounded(
            arguments.get("cpus"),
            "cpus",
            min(self.cpus, cpu_count()),
            cpu_count(),
            notes,
            at_least=MIN_CPUS,
        )
        image, mounts, workdir = self._placement(arguments)
        spec = ContainerSpec(
            image=image,
            command=["sh", "-c", command],
            timeout_s=timeout_s,
            memory_mb=memory_mb,
            cpus=cpus,
            mounts=mounts,
            workdir=workdir,
        )
        result = await self.engine.run(spec)
        if mode == "json" and not failed(result):
            return ToolOutput(self._json_result(result, notes))
        text = describe(result, timeout_s=timeout_s, memory_mb=memory_mb)
        text = "\n".join([*notes, text])
        return ToolOutput(truncate_output(text, self.max_output_chars), is_error=failed(result))

    def _placement(self, arguments: dict[str, Any]) -> tuple[str, tuple[Mount, ...], str]:
        """The image, the read-only mounts and the working directory of a call."""
        mounts: list[Mount] = []
        if self.workspace is not None and self.workspace.is_dir():
            mounts.append(Mount(self.workspace.resolve(), WORKSPACE_TARGET))
        workdir = WORKSPACE_TARGET if mounts else "/tmp"
        image = arguments.get("image") or ""
        if not isinstance(image, str):
            raise ToolError(f"container.run `image` must be an image name, got {image!r}")
        skill_name = arguments.get("skill") or ""
        if skill_name:
            if self.workspace is None:
                raise ToolError("container.run `skill`: no skills workspace is configured")
            skills = SkillLoader(self.workspace).discover()
            skill = next((s for s in skills if s.name == skill_name), None)
            available = ", ".join(s.name for s in skills if s.mode == "container") or "none"
            if skill is None:
                raise ToolError(f"unknown skill {skill_name!r}; container skills: {available}")
            if skill.mode != "container":
                raise ToolError(
                    f"skill {skill.name!r} is a {skill.mode} skill, and container.run `skill` "
                    f"takes only container skills (mode: container): {available}"
                )
            if image and skill.image and image != skill.image:
                raise ToolError(
                    f"container.run: skill {skill.name} runs in image {skill.image}; "
                    f"leave `image` out or give that one"
                )
            image = image or skill.image
            mounts.append(Mount(skill.path.resolve(), SKILL_TARGET))
            workdir = SKILL_TARGET
        return image or self.image, tuple(mounts), workdir

    def _json_result(self, result: ContainerResult, notes: list[str]) -> str:
        if result.stdout_dropped:
            raise ToolError(
                f"the worker's stdout was over the {MAX_KEPT_BYTES // (1 << 20)} MiB a result "
                f"may hold ({result.stdout_dropped:,} bytes more); have it print a smaller one"
            )
        stdout = result.stdout.strip()
        try:
            value: object = json.loads(stdout, parse_constant=_refuse_constant)
        except _NotJson as exc:
            raise ToolError(f"the worker printed no valid JSON on stdout: {exc}") from None
        except json.JSONDecodeError as exc:
            shown = stdout[:300] or "(nothing)"
            stderr = result.stderr.strip()[-1000:] or "(nothing)"
            raise ToolError(
                f"the worker printed no valid JSON on stdout ({exc.msg} at line {exc.lineno} "
                f"column {exc.colno}); stdout: {shown}; stderr: {stderr}"
            ) from None
        text = json.dumps(value, ensure_ascii=False)
        if len(text) > self.max_output_chars:
            raise ToolError(
                f"the worker's JSON result is {len(text):,} characters, over the "
                f"{self.max_output_chars:,} a result may hold; have it print a smaller one"
            )
        return "\n".join([*notes, text])

    async def aclose(self) -> None:
        await self.engine.aclose()


class _NotJson(ValueError):
    pass


def _refuse_constant(name: str) -> object:
    # Python's json reads NaN and Infinity, which JSON has not: another reader would choke.
    raise _NotJson(f"{name} is no JSON value (JSON has no NaN or Infinity)")


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _bounded(
    requested: object,
    key: str,
    default: float,
    cap: float,
    notes: list[str],
    *,
    above: float | None = None,
    at_least: float | None = None,
) -> float:
    """The per-call value of a limit: the default when absent, greater than `above` or at
    least `at_least` (else an error), at most `cap` (with a note)."""
    if requested is None:
        return default
    if isinstance(requested, bool) or not isinstance(requested, int | float):
        raise ToolError(f"container.run `{key}` must be a number, got {requested!r}")
    if not math.isfinite(requested):
        raise ToolError(f"container.run `{key}` must be a finite number, got {requested}")
    if above is not None and requested <= above:
        raise ToolError(f"container.run `{key}` must be greater than {above:g}, got {requested}")
    if at_least is not None and requested < at_least:
        raise ToolError(f"container.run `{key}` must be at least {at_least:g}, got {requested}")
    if requested > cap:
        notes.append(f"note: {key} {requested:g} is above the limit; ran with {cap:g}")
        return cap
    return float(requested)


def create_tools(config: Config) -> list[Tool]:
    """The `openpista.tools` entry point `container`: container.run, from `[sandbox]`."""
    return [ContainerRunTool.from_config(config)]
