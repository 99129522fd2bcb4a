"""`python -m openpista.providers.testing --help` as a user reads it."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(("args", "server"), [([], "chat"), (["--api", "anthropic"], "anthropic")])
def test_help_names_the_api_choice_and_the_chosen_servers_options(
    args: list[str], server: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "openpista.providers.testing", *args, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert "--api {chat,responses,anthropic}" in done.stdout
    assert "the wire protocol to serve (default: chat)" in done.stdout
    assert f"The {server} server (--api {server}):" in done.stdout
    assert "--port PORT" in done.stdout  # the chosen server's own options follow
