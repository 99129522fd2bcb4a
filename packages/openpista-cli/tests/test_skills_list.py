"""`openpista skills list`'s readiness checks: each runner's answers, bounded in time."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from openpista.cli.skills import SkillStatus, format_statuses, skill_statuses
from openpista.core.skills import Skill, SkillMode, SubprocessSkillRunner
from openpista.core.tool import ToolContext, ToolOutput


def a_skill(tmp_path: Path, name: str, mode: SkillMode, *, safe: bool = False) -> Skill:
    return Skill(name, f"{name} does things", mode, "", None, "", tmp_path / name, safe)


class EngineRunner:
    """A container-style runner: an engine check for the mode, an image check per skill."""

    def __init__(self, engine: str | None = None, images: tuple[str, ...] = ()) -> None:
        self.engine = engine
        self.images = images
        self.engine_checks = 0

    async def availability(self) -> str | None:
        self.engine_checks += 1
        return self.engine

    async def skill_availability(self, skill: Skill) -> str | None:
        return None if skill.name in self.images else f"image for {skill.name} is not present"

    async def run(self, skill: Skill, args: dict[str, Any], context: ToolContext) -> ToolOutput:
        raise NotImplementedError


class HungRunner:
    """Checks that never answer: one blocks its thread, one awaits forever."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def availability(self) -> str | None:
        self.release.wait()
        return None

    async def skill_availability(self, skill: Skill) -> str | None:
        await asyncio.Event().wait()
        return None

    async def run(self, skill: Skill, args: dict[str, Any], context: ToolContext) -> ToolOutput:
        raise NotImplementedError


async def test_each_skill_says_whether_its_runner_and_what_it_needs_are_there(
    tmp_path: Path,
) -> None:
    skills = [
        a_skill(tmp_path, "shell", "subprocess"),
        a_skill(tmp_path, "built", "container"),
        a_skill(tmp_path, "missing-image", "container"),
        a_skill(tmp_path, "module", "wasm"),
    ]
    engine = EngineRunner(images=("built",))
    (tmp_path / "shell").mkdir()
    (tmp_path / "shell" / "run.sh").write_text("echo hi\n")  # a program to run
    statuses = await skill_statuses(
        skills, {"subprocess": SubprocessSkillRunner(), "container": engine}
    )
    assert [status.problem for status in statuses[:3]] == [
        None,
        None,
        "image for missing-image is not present",
    ]
    assert "needs the WASM runtime" in (statuses[3].problem or "")
    assert engine.engine_checks == 1, "the engine is asked once for all its skills"


async def test_a_missing_engine_is_said_for_every_skill_of_its_mode(tmp_path: Path) -> None:
    skills = [a_skill(tmp_path, "a", "container"), a_skill(tmp_path, "b", "container")]
    runner = EngineRunner(engine="Docker engine not reachable at unix:///var/run/docker.sock")
    statuses = await skill_statuses(skills, {"container": runner})
    assert [status.problem for status in statuses] == [runner.engine, runner.engine]


async def test_a_check_that_hangs_counts_as_no_after_the_timeout(tmp_path: Path) -> None:
    runner = HungRunner()
    try:
        (blocked,) = await skill_statuses(
            [a_skill(tmp_path, "a", "container")], {"container": runner}, timeout_s=0.2
        )
        assert blocked.problem == "the availability check gave no answer within 0.2 s"
        runner.release.set()  # the runner's mode check answers now; the per-skill one never
        (awaiting,) = await skill_statuses(
            [a_skill(tmp_path, "a", "container")], {"container": runner}, timeout_s=0.2
        )
        assert awaiting.problem == "the skill_availability check gave no answer within 0.2 s"
    finally:
        runner.release.set()


def test_the_listing_shows_mode_readiness_and_why_not(tmp_path: Path) -> None:
    text = format_statuses(
        [
            SkillStatus(a_skill(tmp_path, "hello-wasm", "wasm", safe=True), None),
            SkillStatus(a_skill(tmp_path, "box", "container"), "Docker engine not reachable"),
        ]
    )
    first, second, reason = text.splitlines()
    assert first.split()[:4] == ["hello-wasm", "wasm,", "safe", "ready"]
    assert second.split()[:3] == ["box", "container", "no"]
    assert reason.strip() == "Docker engine not reachable"
