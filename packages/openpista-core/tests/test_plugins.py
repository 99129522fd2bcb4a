"""Entry-point plugins: listing and loading them, and the errors when one is missing or broken.

Each test installs a real distribution (a dist-info folder and a module) into a temporary
folder on sys.path, which is how importlib.metadata finds any installed distribution.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from openpista.core import plugins
from openpista.core.errors import OpenpistaError

GROUP = "openpista.testing-plugins"


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    dist_info = tmp_path / "acme_openpista-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-openpista\nVersion: 1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        f"[{GROUP}]\n"
        "zeta = acme_openpista_plugin:make_zeta\n"
        "alpha = acme_openpista_plugin:make_alpha\n"
        "broken = acme_openpista_missing_module:make\n"
        "\n"
        f"[{plugins.PROVIDERS_GROUP}]\n"
        "acme = acme_openpista_plugin:make_alpha\n"
    )
    (tmp_path / "acme_openpista_plugin.py").write_text(
        "def make_alpha():\n    return 'alpha made'\n\ndef make_zeta():\n    return 'zeta made'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("acme_openpista_plugin", None)


def test_group_names() -> None:
    assert plugins.PROVIDERS_GROUP == "openpista.providers"
    assert plugins.TOOLS_GROUP == "openpista.tools"
    assert plugins.CHANNELS_GROUP == "openpista.channels"
    assert plugins.SKILL_RUNNERS_GROUP == "openpista.skill_runners"


def test_core_provides_the_subprocess_skill_runner() -> None:
    from openpista.core.skills import SubprocessSkillRunner

    assert "subprocess" in plugins.available(plugins.SKILL_RUNNERS_GROUP)
    factory = plugins.load(plugins.SKILL_RUNNERS_GROUP, "subprocess")
    assert factory == SubprocessSkillRunner.from_config


def test_available_lists_entry_point_names_sorted(installed: Path) -> None:
    assert plugins.available(GROUP) == ["alpha", "broken", "zeta"]
    assert "acme" in plugins.available(plugins.PROVIDERS_GROUP)


def test_an_empty_group_has_nothing_available() -> None:
    assert plugins.available("openpista.nothing-here") == []


def test_load_returns_the_named_object(installed: Path) -> None:
    make_alpha = plugins.load(GROUP, "alpha")
    assert make_alpha() == "alpha made"
    assert plugins.load(GROUP, "zeta")() == "zeta made"


def test_a_missing_provider_names_the_installed_ones(installed: Path) -> None:
    installed_names = ", ".join(plugins.available(plugins.PROVIDERS_GROUP))
    with pytest.raises(OpenpistaError) as raised:
        plugins.load(plugins.PROVIDERS_GROUP, "nonexistent")
    assert str(raised.value) == (
        f"no openpista provider named 'nonexistent' is installed; installed: {installed_names}"
    )


def test_missing_plugins_of_other_groups() -> None:
    with pytest.raises(OpenpistaError, match="no openpista channel named 'irc' is installed; "):
        plugins.load(plugins.CHANNELS_GROUP, "irc")
    with pytest.raises(OpenpistaError, match=r"installed: none$"):
        plugins.load("openpista.nothing-here", "x")


def test_a_plugin_that_fails_to_import_is_named_in_the_error(installed: Path) -> None:
    with pytest.raises(OpenpistaError) as raised:
        plugins.load(GROUP, "broken")
    message = str(raised.value)
    assert "'broken' (acme_openpista_missing_module:make) failed to load" in message
    assert "ModuleNotFoundError" in message
    assert "reinstall acme-openpista" in message
