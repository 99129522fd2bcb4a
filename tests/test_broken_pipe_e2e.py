"""A reader that leaves early (`openpista model list | head -1`) ends the command quietly, as
it ends `git log`: no error line, the status of a program ended by SIGPIPE."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import OPENPISTA, Openpista


@pytest.mark.parametrize("command", [["model", "list"], ["auth", "status"], ["--version"]])
def test_a_closed_stdout_ends_the_command_quietly(openpista: Openpista, command: list[str]) -> None:
    process = subprocess.Popen(
        [OPENPISTA, *command],
        env=openpista.env,
        cwd=openpista.home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    # The reader leaves before the first line: every write the command makes hits a closed pipe.
    process.stdout.close()
    with process.stderr:
        error = process.stderr.read()
    status = process.wait(timeout=60)

    assert error == ""
    assert status == 141


def test_head_reading_one_line_shows_it_and_nothing_on_stderr(openpista: Openpista) -> None:
    done = subprocess.run(
        f"'{OPENPISTA}' auth status | head -1",
        shell=True,
        env=openpista.env,
        cwd=openpista.home,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.stdout.startswith(("Credentials are stored in ", "No credentials are stored yet"))
    assert done.stdout.count("\n") == 1
    assert done.stderr == ""
