"""`openpista skills list`: the skills found in the workspace."""

from __future__ import annotations

import sys
from pathlib import Path

from openpista.core.config import expand_path, load_config
from openpista.core.skills import SkillLoader


def list_skills(config_path: Path | None) -> None:
    config = load_config(config_path)
    workspace = expand_path(config.skills.workspace, config.home)
    found = SkillLoader(workspace).discover()
    if not found:
        sys.stdout.write(
            f"No skills in {workspace}.\n"
            "A skill is a folder holding a SKILL.md; see skills/README.md in the repository.\n"
        )
        return
    width = max(len(skill.name) for skill in found)
    for skill in found:
        sys.stdout.write(
            f"{skill.name:<{width}}  {skill.mode:<10}  {skill.description}  ({skill.path})\n"
        )
