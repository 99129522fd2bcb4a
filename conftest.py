"""Every test, in every package: a private OPENPISTA_HOME and file-backed credentials, so no
test reads or writes the developer's own ~/.openpista or system keyring."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def private_openpista_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    home = tmp_path_factory.mktemp("openpista-home")
    monkeypatch.setenv("OPENPISTA_HOME", str(home))
    monkeypatch.setenv("OPENPISTA_CREDENTIALS_BACKEND", "file")
    return home
