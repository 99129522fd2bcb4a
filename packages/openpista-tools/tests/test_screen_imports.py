"""The screen and notify tools cost nothing until called: no imaging or D-Bus library at
registration (the cli registers every tool on each run)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_tools_loads_no_imaging_or_dbus_library() -> None:
    """mss, Pillow and jeepney are imported by the calls that use them, not at registration."""
    code = (
        "import sys\n"
        "import openpista.tools.notify, openpista.tools.screen\n"
        "heavy = ('mss', 'PIL', 'jeepney', 'pyscreenshot')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
