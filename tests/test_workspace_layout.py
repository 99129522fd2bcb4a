"""The layout CONTRACT section 1 promises: one namespace, libraries that depend on core alone."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from openpista.core import plugins

ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = ["providers", "tools", "channels", "sandbox"]
ALL = ["core", *LIBRARIES, "cli"]


def _pyproject(name: str) -> dict:
    return tomllib.loads((ROOT / "packages" / f"openpista-{name}" / "pyproject.toml").read_text())


def _openpista_imports(name: str) -> set[str]:
    src = ROOT / "packages" / f"openpista-{name}" / "src"
    found: set[str] = set()
    pattern = re.compile(r"^\s*(?:from|import)\s+openpista\.(\w+)", re.MULTILINE)
    for path in src.rglob("*.py"):
        found.update(pattern.findall(path.read_text()))
    return found


def test_openpista_is_a_namespace_package_in_every_distribution() -> None:
    for name in ALL:
        src = ROOT / "packages" / f"openpista-{name}" / "src" / "openpista"
        assert (src / name / "__init__.py").exists()
        assert not (src / "__init__.py").exists(), f"openpista-{name} ships openpista/__init__.py"


@pytest.mark.parametrize("name", LIBRARIES)
def test_each_library_depends_on_core_alone(name: str) -> None:
    dependencies = _pyproject(name)["project"]["dependencies"]
    ours = {d.split(">")[0].split("=")[0].strip() for d in dependencies if "openpista" in d}
    assert ours == {"openpista-core"}
    assert _openpista_imports(name) <= {name, "core"}


def test_core_depends_on_no_other_openpista_library() -> None:
    dependencies = _pyproject("core")["project"]["dependencies"]
    assert not [d for d in dependencies if "openpista" in d]
    assert _openpista_imports("core") == {"core"}


def test_every_declared_entry_point_loads() -> None:
    for group in (plugins.PROVIDERS_GROUP, plugins.TOOLS_GROUP, plugins.CHANNELS_GROUP):
        names = plugins.available(group)
        assert names, f"nothing installed in {group}"
        for entry in names:
            assert callable(plugins.load(group, entry))
    assert {"openai", "together", "ollama", "openrouter", "custom"} <= set(
        plugins.available(plugins.PROVIDERS_GROUP)
    )
    assert "system" in plugins.available(plugins.TOOLS_GROUP)
    assert "cli" in plugins.available(plugins.CHANNELS_GROUP)
