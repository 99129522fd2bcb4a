"""Skills: folders holding a SKILL.md, found anywhere under the workspace, and the skill.run tool.

A SKILL.md may start with YAML front matter between two `---` lines (`name`, `description`,
`mode: subprocess|wasm|container`, `image`, `timeout_s`, `safe`); its body goes into the system
prompt.
Every mode runs through a SkillRunner found under the `openpista.skill_runners` entry point
group: core's SubprocessSkillRunner runs `run.sh` with bash or `main.py` with python;
openpista-sandbox supplies wasm and container.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from openpista.core.errors import ToolError
from openpista.core.process import run_process, truncate_output
from openpista.core.secrets import scrubbed_environment
from openpista.core.tool import ToolContext, ToolOutput

if TYPE_CHECKING:
    from openpista.core.config import Config

logger = logging.getLogger(__name__)

SkillMode = Literal["subprocess", "wasm", "container"]
SKILL_FILE = "SKILL.md"
SKILL_ARGS_ENV = "OPENPISTA_SKILL_ARGS"
_MODES: tuple[SkillMode, ...] = ("subprocess", "wasm", "container")
_STDERR_TAIL_CHARS = 2000
MAX_SKILL_TIMEOUT_S = 3600.0
"""The longest `timeout_s` a SKILL.md may set: an hour; a longer job is no tool call."""
# Folders no one keeps skills in, and that can be huge: not worth walking on every request.
_SKIPPED_DIRS = frozenset({"node_modules", "__pycache__", "target"})


@dataclass(frozen=True, slots=True)
class Skill:
    name: str
    description: str
    mode: SkillMode
    image: str
    """The container image, for `mode: container`; empty for the default."""
    timeout_s: float | None
    """None: the skill.run default applies."""
    body: str
    """SKILL.md after the front matter: instructions for the LLM."""
    path: Path
    """The skill's folder."""
    safe: bool = False
    """A wasm skill declaring itself safe (`safe: true`): confined to a read-only workspace, it
    runs without asking under the `ask` approval policy. Always False for other modes."""


class SkillFormatError(ValueError):
    """A SKILL.md that cannot be read as a skill; the message says which key and why."""


def parse_skill(skill_file: Path, text: str) -> Skill:
    """The skill described by `text`, the contents of `skill_file`; raises SkillFormatError."""
    meta: dict[str, Any] = {}
    body = text
    lines = text.splitlines(keepends=True)
    if lines and lines[0].strip() == "---":
        end = next(
            (index for index, line in enumerate(lines[1:], 1) if line.strip() in ("---", "...")),
            None,
        )
        if end is None:
            raise SkillFormatError("the front matter starting at line 1 has no closing '---' line")
        meta = _load_front_matter("".join(lines[1:end]))
        body = "".join(lines[end + 1 :])

    folder = skill_file.parent
    name = _text_field(meta, "name", folder.name).strip()
    if not name:
        raise SkillFormatError("'name' is empty")
    mode = _text_field(meta, "mode", "subprocess").strip()
    if mode not in _MODES:
        raise SkillFormatError(f"'mode' must be one of {', '.join(_MODES)}, got {mode!r}")
    timeout = meta.get("timeout_s")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= MAX_SKILL_TIMEOUT_S  # refuses .nan and .inf too
    ):
        raise SkillFormatError(
            f"'timeout_s' must be a positive number of seconds, at most "
            f"{MAX_SKILL_TIMEOUT_S:g}, got {timeout!r}"
        )
    safe = meta.get("safe", False)
    if not isinstance(safe, bool):
        raise SkillFormatError(f"'safe' must be true or false, got {safe!r}")
    if safe and mode != "wasm":
        # Only the WASM sandbox confines a skill; a subprocess or container skill saying it is
        # safe must not skip the question.
        logger.warning(
            "%s: 'safe: true' is ignored for mode %r: only wasm skills can skip approval",
            skill_file,
            mode,
        )
        safe = False
    return Skill(
        name=name,
        description=_text_field(meta, "description", "").strip(),
        mode=mode,
        image=_text_field(meta, "image", "").strip(),
        timeout_s=float(timeout) if timeout is not None else None,
        body=body.strip(),
        path=folder,
        safe=safe,
    )


def _load_front_matter(text: str) -> dict[str, Any]:
    import yaml

    try:
        meta: object = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SkillFormatError(f"the front matter is not valid YAML: {exc}") from exc
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise SkillFormatError(
            f"the front matter must be a mapping of keys to values, got {type(meta).__name__}"
        )
    return cast("dict[str, Any]", meta)


def _text_field(meta: Mapping[str, Any], key: str, default: str) -> str:
    value = meta.get(key)
    if value is None:
        return default
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    raise SkillFormatError(f"'{key}' must be text, got {type(value).__name__}")


class SkillLoader:
    """Finds the skills under a workspace folder, reading each SKILL.md again only if it changed."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self._parsed: dict[Path, tuple[tuple[int, int], Skill | None]] = {}
        self._warned: set[tuple[Path, str]] = set()

    def discover(self) -> list[Skill]:
        """Every valid skill, ordered by path; a malformed SKILL.md is warned about and skipped."""
        skills: list[Skill] = []
        seen: dict[str, Skill] = {}
        parsed: dict[Path, tuple[tuple[int, int], Skill | None]] = {}
        for skill_file in sorted(_skill_files(self.workspace)):
            skill = self._load(skill_file, parsed)
            if skill is None:
                continue
            earlier = seen.get(skill.name)
            if earlier is not None:
                self._warn_once(
                    skill_file,
                    f"skill name {skill.name!r} is already used by {earlier.path / SKILL_FILE}; "
                    "this one is ignored: give it another name",
                )
                continue
            seen[skill.name] = skill
            skills.append(skill)
        # Dropping files that disappeared keeps the cache as big as the workspace, no bigger.
        self._parsed = parsed
        return skills

    def context(self) -> str:
        """The skills section of the system prompt; empty when there are no skills."""
        sections: list[str] = []
        for skill in self.discover():
            parts = [f"## Skill: {skill.name}"]
            if skill.description:
                parts.append(skill.description)
            if skill.body:
                parts.append(skill.body)
            sections.append("\n".join(parts))
        return "\n\n".join(sections)

    def _load(
        self, skill_file: Path, parsed: dict[Path, tuple[tuple[int, int], Skill | None]]
    ) -> Skill | None:
        try:
            stat = skill_file.stat()
            key = (stat.st_mtime_ns, stat.st_size)
            cached = self._parsed.get(skill_file)
            if cached is not None and cached[0] == key:
                parsed[skill_file] = cached
                return cached[1]
            text = skill_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self._warn_once(skill_file, f"cannot be read: {exc}")
            return None
        try:
            skill: Skill | None = parse_skill(skill_file, text)
        except SkillFormatError as exc:
            self._warn_once(skill_file, str(exc))
            skill = None
        parsed[skill_file] = (key, skill)
        return skill

    def _warn_once(self, skill_file: Path, problem: str) -> None:
        # context() runs on every LLM request: say each problem once, not every time.
        if (skill_file, problem) in self._warned:
            return
        self._warned.add((skill_file, problem))
        logger.warning("skipping skill %s: %s", skill_file, problem)


def _skill_files(workspace: Path) -> Iterator[Path]:
    if not workspace.is_dir():
        return
    for folder, dirs, files in os.walk(workspace):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRS]
        if SKILL_FILE in files:
            yield Path(folder) / SKILL_FILE


class SkillRunner(Protocol):
    """Runs the skills of one mode; the `openpista.skill_runners` entry named after the mode
    names a `SkillRunnerFactory` that makes it.

    Optional methods a runner may define (read with getattr, so plain runners need none):

    - `availability() -> str | None`: None when skills of this mode can run here, else what is
      missing (no WASM runtime, no Docker engine), for `openpista skills list` to show.
    - `async aclose()`: releases what the runner opened; called once when the process stops.
    """

    async def run(self, skill: Skill, args: dict[str, Any], context: ToolContext) -> ToolOutput:
        """The skill's result; raises ToolError when it fails, saying which way."""
        ...


SkillRunnerFactory = Callable[["Config"], SkillRunner]
"""What an `openpista.skill_runners` entry point names: the runner for a configuration."""


def missing_runner_message(skill: Skill) -> str:
    """What to tell the user when no installed distribution runs `skill`'s mode: telling them
    to install openpista-sandbox when it is installed (but has no runner for the mode) helps
    nobody."""
    from importlib.metadata import PackageNotFoundError, version

    if skill.mode == "subprocess":
        return (
            f"skill {skill.name} uses mode 'subprocess', but no subprocess skill runner is "
            "registered: reinstall openpista-core"
        )
    runtime = _RUNTIMES.get(skill.mode, f"a {skill.mode} runner")
    needs = f"skill {skill.name} uses mode '{skill.mode}', which needs {runtime}"
    try:
        installed = version("openpista-sandbox")
    except PackageNotFoundError:
        return (
            f"{needs} from openpista-sandbox, which is not installed: install it "
            "(pip install openpista-sandbox) and restart openpista"
        )
    return (
        f"{needs}, and the installed openpista-sandbox {installed} provides no "
        f"{skill.mode} runner yet; run this skill's job another way (a subprocess skill)"
    )


_RUNTIMES: dict[str, str] = {
    "wasm": "the WASM runtime",
    "container": "the container runtime",
}


class SubprocessSkillRunner:
    """Runs subprocess skills: `run.sh` with bash, else `main.py` with this Python.

    `args` arrive as JSON on stdin and in OPENPISTA_SKILL_ARGS; stdout is the result, cut past
    `max_output_chars`; a non-zero exit or the timeout is a ToolError saying which.
    """

    def __init__(self, *, default_timeout_s: float = 30.0, max_output_chars: int = 10000) -> None:
        self.default_timeout_s = default_timeout_s
        """For skills whose SKILL.md sets no `timeout_s`."""
        self.max_output_chars = max_output_chars

    @classmethod
    def from_config(cls, config: Config) -> SubprocessSkillRunner:
        """The `subprocess` entry point: timeout and output limit from `[tools.shell]`."""
        # [tools.shell] is declared by openpista-tools, which core may not import: read by name.
        shell = config.tools.get("shell")
        return cls(
            default_timeout_s=float(getattr(shell, "timeout_s", 30.0)),
            max_output_chars=int(getattr(shell, "max_output_chars", 10000)),
        )

    def availability(self) -> str | None:
        return None

    def skill_availability(self, skill: Skill) -> str | None:
        """None when the skill has a program to run, else what is missing."""
        return None if _subprocess_argv(skill) else _NO_PROGRAM.format(path=skill.path)

    async def run(self, skill: Skill, args: dict[str, Any], context: ToolContext) -> ToolOutput:
        argv = _subprocess_argv(skill)
        if argv is None:
            raise ToolError(f"skill {skill.name} " + _NO_PROGRAM.format(path=skill.path))
        args_json = json.dumps(args, ensure_ascii=False)
        timeout_s = skill.timeout_s if skill.timeout_s is not None else self.default_timeout_s
        env = {**scrubbed_environment(), SKILL_ARGS_ENV: args_json}
        try:
            result = await run_process(
                argv,
                timeout_s=timeout_s,
                stdin=args_json.encode("utf-8"),
                cwd=skill.path,
                env=env,
            )
        except OSError as exc:
            raise ToolError(f"skill {skill.name} could not be started: {exc}") from exc
        if result.timed_out:
            raise ToolError(f"skill {skill.name} timed out after {timeout_s:g} s")
        if result.exit_code != 0:
            stderr = result.stderr.strip()[-_STDERR_TAIL_CHARS:] or "(no output on stderr)"
            raise ToolError(f"skill {skill.name} exited with code {result.exit_code}: {stderr}")
        output = result.stdout if result.stdout.strip() else f"(skill {skill.name} printed nothing)"
        return ToolOutput(truncate_output(output, self.max_output_chars))


_NO_PROGRAM = "has neither run.sh nor main.py in {path}; a subprocess skill needs one of them"


def _subprocess_argv(skill: Skill) -> list[str] | None:
    if (skill.path / "run.sh").is_file():
        return ["bash", "run.sh"]
    if (skill.path / "main.py").is_file():
        return [sys.executable, "main.py"]
    return None


SKILL_RUN_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "The skill's name, as listed under Skills."},
        "args": {
            "type": "object",
            "description": "Arguments for the skill; it receives them as JSON.",
        },
    },
    "required": ["name"],
    "additionalProperties": False,
}


class SkillRunTool:
    """The `skill.run` tool: runs a workspace skill by name through its mode's runner.

    `runners` maps a mode to its runner; left out, subprocess skills run with the defaults and
    other modes have none. Needs approval, a skill runs code on the owner's machine, except a
    wasm skill whose SKILL.md says `safe: true` (see `requires_approval_for`).
    """

    requires_approval = True

    def __init__(
        self, loader: SkillLoader, *, runners: Mapping[str, SkillRunner] | None = None
    ) -> None:
        self.loader = loader
        self.runners: dict[str, SkillRunner] = (
            dict(runners) if runners is not None else {"subprocess": SubprocessSkillRunner()}
        )

    @property
    def name(self) -> str:
        return "skill.run"

    @property
    def description(self) -> str:
        return (
            "Run a skill from the skills workspace by name. The skills and what they do are "
            "listed in the system prompt under Skills. `args` is passed to the skill as JSON; "
            "the result is what the skill printed."
        )

    @property
    def parameters(self) -> dict[str, Any]:
        return SKILL_RUN_PARAMETERS

    def requires_approval_for(self, arguments: dict[str, Any]) -> bool:
        """False only for a wasm skill declaring `safe: true`: the WASM sandbox gives it the
        workspace read-only and nothing else. Every other call (an unknown skill included) is
        asked about."""
        name = str(arguments.get("name", ""))
        skill = next((skill for skill in self.loader.discover() if skill.name == name), None)
        return not (skill is not None and skill.mode == "wasm" and skill.safe)

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolOutput:
        name = str(arguments.get("name", ""))
        args = cast("dict[str, Any]", arguments.get("args") or {})
        skills = self.loader.discover()
        skill = next((skill for skill in skills if skill.name == name), None)
        if skill is None:
            if not skills:
                raise ToolError(
                    f"unknown skill {name!r}: no skills are installed in {self.loader.workspace}"
                )
            available = ", ".join(sorted(skill.name for skill in skills))
            raise ToolError(f"unknown skill {name!r}; available skills: {available}")
        runner = self.runners.get(skill.mode)
        if runner is None:
            raise ToolError(missing_runner_message(skill))
        return await runner.run(skill, args, context)

    async def aclose(self) -> None:
        """Close the runners that hold something open; one failing does not stop the rest."""
        for mode, runner in self.runners.items():
            close: object = getattr(runner, "aclose", None)
            if not callable(close):
                continue
            try:
                await cast("Callable[[], Awaitable[object]]", close)()
            except Exception:
                logger.warning("closing the %s skill runner failed", mode, exc_info=True)
