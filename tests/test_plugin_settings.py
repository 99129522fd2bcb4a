"""A third-party distribution's [channels.NAME] section, as the `openpista` command reads it."""

from __future__ import annotations

from pathlib import Path

from .conftest import Openpista

DECLARATION = """
from dataclasses import dataclass, field

from openpista.core.settings import SettingsDeclaration, at_least


@dataclass(slots=True)
class MatrixSettings:
    enabled: bool = False
    rooms: list[int] = field(default_factory=lambda: [])


MATRIX = SettingsDeclaration(MatrixSettings, checks={"rooms[]": at_least(1)})
"""


def install_matrix(openpista: Openpista, site: Path) -> None:
    site.mkdir()
    dist_info = site / "acme_matrix-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-matrix\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[openpista.settings]\nchannels.matrix = acme_matrix_settings:MATRIX\n"
    )
    (site / "acme_matrix_settings.py").write_text(DECLARATION)
    openpista.env["PYTHONPATH"] = str(site)


def test_a_plugin_section_is_checked_by_the_command(openpista: Openpista, tmp_path: Path) -> None:
    install_matrix(openpista, tmp_path / "site")
    openpista.write_config("[channels.matrix]\nroom = [1]\n")
    result = openpista.run("run", "-e", "hi")
    assert result.returncode == 2
    assert "config.toml: channels.matrix.room: unknown key; expected one of: enabled, rooms" in (
        result.stderr
    )
    assert "(did you mean rooms?)" in result.stderr

    openpista.write_config("[channels.matrix]\nrooms = [0]\n")
    result = openpista.run("run", "-e", "hi")
    assert result.returncode == 2
    assert "channels.matrix.rooms[0]: expected an integer of at least 1, got 0" in result.stderr


def test_an_undeclared_section_is_run_with_a_warning(openpista: Openpista) -> None:
    openpista.write_config("[channels.matrix]\nenabled = false\n")
    result = openpista.run("run", "-e", "hi")
    assert result.returncode == 0, result.stderr
    assert "[channels.matrix]: no installed distribution declares this section" in result.stderr
