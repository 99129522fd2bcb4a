"""`mode: container` skills: each call in a fresh container of the skill's image.

The skill folder is mounted read-only at /skill (the working directory) and the workspace at
/workspace; `run.sh` runs with sh, else `main.py` with python3, else the image's own command.
`args` arrive as JSON on stdin and in OPENPISTA_SKILL_ARGS. Without a reachable engine the
skill runs as a subprocess skill, its result (an error too) starting with a warning, unless
`[sandbox] require_container` is true: then it refuses.
"""

from __future__ import annotations

import asyncio
import getpass
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openpista.core.errors import ToolError
from openpista.core.process import truncate_output
from openpista.core.skills import SKILL_ARGS_ENV, Skill, SubprocessSkillRunner
from openpista.core.tool import ToolContext, ToolOutput
from openpista.sandbox.container_tool import (
    SKILL_TARGET,
    WORKSPACE_TARGET,
    cpu_count,
    describe,
    describe_end,
)
from openpista.sandbox.containers import ContainerEngine, ContainerSpec, Mount
from openpista.sandbox.engine import engine_problem, image_problem

if TYPE_CHECKING:
    from openpista.core.config import Config

_STDERR_TAIL_CHARS = 2000


class ContainerSkillRunner:
    """Runs container skills on the engine, or as subprocesses when there is none (see module)."""

    def __init__(
        self,
        engine: ContainerEngine,
        fallback: SubprocessSkillRunner,
        *,
        image: str,
        timeout_s: float = 60.0,
        memory_mb: int = 512,
        cpus: float = 1.0,
        workspace: Path | None = None,
        require_container: bool = False,
        max_output_chars: int = 10000,
    ) -> None:
        self.engine = engine
        self.fallback = fallback
        self.image = image
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.workspace = workspace
        self.require_container = require_container
        self.max_output_chars = max_output_chars

    @classmethod
    def from_config(cls, config: Config) -> ContainerSkillRunner:
        """The `openpista.skill_runners` entry point `container`, from `[sandbox]`."""
        sandbox = config.sandbox
        fallback = SubprocessSkillRunner.from_config(config)
        return cls(
            ContainerEngine(),
            fallback,
            image=sandbox.image,
            timeout_s=sandbox.timeout_s,
            memory_mb=sandbox.memory_mb,
            cpus=sandbox.cpus,
            workspace=Path(config.skills.workspace).expanduser(),
            require_container=sandbox.require_container,
            max_output_chars=fallback.max_output_chars,
        )

    def availability(self) -> str | None:
        """None when an engine answers, else which engine is missing and what happens then."""
        problem = engine_problem(self.engine.address)
        if problem is None:
            return None
        if self.require_container:
            return f"{problem}; container skills refuse to run (sandbox.require_container)"
        return f"{problem}; container skills run as subprocesses instead"

    def skill_availability(self, skill: Skill) -> str | None:
        """None when `skill` can run in its container here, else what is missing."""
        problem = self.availability()
        if problem is not None:
            return problem
        return image_problem(self.image_of(skill), self.engine.address)

    def image_of(self, skill: Skill) -> str:
        return skill.image or self.image

    async def run(self, skill: Skill, args: dict[str, Any], context: ToolContext) -> ToolOutput:
        problem = await asyncio.to_thread(engine_problem, self.engine.address)
        if problem is not None:
            return await self._without_engine(skill, args, context, problem)
        args_json = json.dumps(args, ensure_ascii=False)
        timeout_s = skill.timeout_s if skill.timeout_s is not None else self.timeout_s
        mounts = [Mount(skill.path.resolve(), SKILL_TARGET)]
        if self.workspace is not None and self.workspace.is_dir():
            mounts.append(Mount(self.workspace.resolve(), WORKSPACE_TARGET))
        result = await self.engine.run(
            ContainerSpec(
                image=self.image_of(skill),
                command=_command(skill),
                timeout_s=timeout_s,
                memory_mb=self.memory_mb,
                # An engine refuses more CPUs than the machine has.
                cpus=min(self.cpus, cpu_count()),
                mounts=tuple(mounts),
                workdir=SKILL_TARGET,
                env={SKILL_ARGS_ENV: args_json},
                stdin=args_json.encode("utf-8"),
            )
        )
        if result.engine_lost:
            shown = describe(result, timeout_s=timeout_s, memory_mb=self.memory_mb)
            raise ToolError(f"skill {skill.name}: {truncate_output(shown, self.max_output_chars)}")
        if result.timed_out or result.oom_killed:
            end = describe_end(result, timeout_s=timeout_s, memory_mb=self.memory_mb)
            raise ToolError(f"skill {skill.name} {end}")
        if result.exit_code != 0:
            stderr = result.stderr.strip()[-_STDERR_TAIL_CHARS:] or "(no output on stderr)"
            raise ToolError(f"skill {skill.name} exited with code {result.exit_code}: {stderr}")
        output = result.stdout if result.stdout.strip() else f"(skill {skill.name} printed nothing)"
        return ToolOutput(truncate_output(output, self.max_output_chars))

    async def _without_engine(
        self, skill: Skill, args: dict[str, Any], context: ToolContext, problem: str
    ) -> ToolOutput:
        if self.require_container:
            raise ToolError(
                f"skill {skill.name} needs a container and {problem}; it was not run "
                "(sandbox.require_container = true: start the Docker engine, or set it to false "
                "to let container skills run as subprocesses)"
            )
        warning = (
            f"warning: {problem}, so container skill {skill.name} ran as a subprocess on this "
            "machine, without the container's isolation or limits: no /workspace or /skill "
            f"mounts, as the user {_user()} in the skill folder {skill.path}"
        )
        try:
            output = await self.fallback.run(skill, args, context)
        except ToolError as exc:
            raise ToolError(f"{warning}\n{exc}") from exc
        return ToolOutput(f"{warning}\n{output.text}", output.is_error, output.images)

    async def aclose(self) -> None:
        await self.engine.aclose()


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid with no name
        import os

        return str(os.getuid())


def _command(skill: Skill) -> list[str] | None:
    if (skill.path / "run.sh").is_file():
        return ["sh", "run.sh"]
    if (skill.path / "main.py").is_file():
        return ["python3", "main.py"]
    return None
