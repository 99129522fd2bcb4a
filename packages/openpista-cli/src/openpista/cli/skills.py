"""`openpista skills list`: the skills found in the workspace, and whether each can run here."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import sys
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from openpista.core.config import Config, expand_path, load_config
from openpista.core.skills import Skill, SkillLoader, SkillRunner, missing_runner_message

CHECK_TIMEOUT_S = 5.0
"""How long one runner check (a Docker engine's ping) may take before it counts as a no."""


@dataclass(frozen=True, slots=True)
class SkillStatus:
    skill: Skill
    problem: str | None
    """None when the skill can run here, else what is missing."""

    def to_json(self) -> dict[str, Any]:
        skill = self.skill
        return {
            "name": skill.name,
            "mode": skill.mode,
            "safe": skill.safe,
            "ready": self.problem is None,
            "problem": self.problem,
            "description": skill.description,
            "path": str(skill.path),
            "image": skill.image or None,
            "timeout_s": skill.timeout_s,
        }


def list_skills(config_path: Path | None, *, as_json: bool = False) -> None:
    config = load_config(config_path)
    workspace = expand_path(config.skills.workspace, config.home)
    found = SkillLoader(workspace).discover()
    if not found:
        if as_json:
            sys.stdout.write("[]\n")
            return
        sys.stdout.write(
            f"No skills in {workspace}.\n"
            "A skill is a folder holding a SKILL.md; see skills/README.md in the repository.\n"
        )
        return
    statuses = asyncio.run(_statuses_from_config(config, found))
    if as_json:
        sys.stdout.write(
            json.dumps([status.to_json() for status in statuses], indent=2, allow_nan=False) + "\n"
        )
        return
    sys.stdout.write(format_statuses(statuses))


def format_statuses(statuses: Sequence[SkillStatus]) -> str:
    """One line per skill (name, mode, ready or no, description, folder), and under a skill
    that cannot run here, why."""
    modes = [_mode_label(status.skill) for status in statuses]
    name_width = max(len(status.skill.name) for status in statuses)
    mode_width = max(len(mode) for mode in modes)
    lines: list[str] = []
    for status, mode in zip(statuses, modes, strict=True):
        skill = status.skill
        ready = "ready" if status.problem is None else "no   "
        lines.append(
            f"{skill.name:<{name_width}}  {mode:<{mode_width}}  {ready}  "
            f"{skill.description}  ({skill.path})"
        )
        if status.problem is not None:
            lines.append(f"{'':<{name_width}}  {status.problem}")
    return "\n".join(lines) + "\n"


def _mode_label(skill: Skill) -> str:
    return f"{skill.mode}, safe" if skill.safe else skill.mode


async def _statuses_from_config(config: Config, skills: Sequence[Skill]) -> list[SkillStatus]:
    # The runners the agent would use, built through the same entry points.
    from openpista.cli.runtime import create_skill_runners

    runners = create_skill_runners(config)
    try:
        return await skill_statuses(skills, runners)
    finally:
        await _close(runners)


async def skill_statuses(
    skills: Sequence[Skill],
    runners: Mapping[str, SkillRunner],
    *,
    timeout_s: float = CHECK_TIMEOUT_S,
) -> list[SkillStatus]:
    """Whether each skill can run here: a runner for its mode is installed, the runner's
    `availability()` finds what it needs (asked once per mode) and, when the runner has one,
    its `skill_availability(skill)` finds what the skill needs (a container image). Each check
    may be sync or async and gets `timeout_s`, so a hung engine cannot hang the listing."""
    per_mode: dict[str, str | None] = {}
    statuses: list[SkillStatus] = []
    for skill in skills:
        runner = runners.get(skill.mode)
        if runner is None:
            statuses.append(SkillStatus(skill, missing_runner_message(skill)))
            continue
        if skill.mode not in per_mode:
            per_mode[skill.mode] = await _check(runner, "availability", (), timeout_s)
        problem = per_mode[skill.mode]
        if problem is None:
            problem = await _check(runner, "skill_availability", (skill,), timeout_s)
        statuses.append(SkillStatus(skill, problem))
    return statuses


async def _check(
    runner: SkillRunner, method: str, args: tuple[Any, ...], timeout_s: float
) -> str | None:
    """The runner's answer to an optional check (None when it has no such method)."""
    function: object = getattr(runner, method, None)
    if not callable(function):
        return None
    call = function
    try:
        if inspect.iscoroutinefunction(call):
            async with asyncio.timeout(timeout_s):
                answer = await cast("Awaitable[object]", call(*args))
        else:
            answer = await _in_daemon_thread(lambda: call(*args), timeout_s)
            if inspect.isawaitable(answer):
                async with asyncio.timeout(timeout_s):
                    answer = await answer
    except TimeoutError:
        return f"the {method} check gave no answer within {timeout_s:g} s"
    except Exception as exc:
        return f"the {method} check failed: {exc}"
    return None if answer is None else str(answer)


async def _in_daemon_thread(function: Callable[[], object], timeout_s: float) -> object:
    """`function()` in a thread that cannot keep the process alive, so a check stuck in a
    blocking call is left behind at `timeout_s` (raises TimeoutError)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[object] = loop.create_future()

    def settle(outcome: object, failed: bool) -> None:
        if done.done():
            return
        if failed:
            done.set_exception(cast("BaseException", outcome))
        else:
            done.set_result(outcome)

    def work() -> None:
        try:
            outcome, failed = function(), False
        except BaseException as exc:
            outcome, failed = exc, True
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(settle, outcome, failed)

    threading.Thread(target=work, name="skill runner check", daemon=True).start()
    async with asyncio.timeout(timeout_s):
        return await done


async def _close(runners: Mapping[str, SkillRunner]) -> None:
    for runner in runners.values():
        close: object = getattr(runner, "aclose", None)
        if callable(close):
            with contextlib.suppress(Exception):
                await cast("Callable[[], Awaitable[object]]", close)()
