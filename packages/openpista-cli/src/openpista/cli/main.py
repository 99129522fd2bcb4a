"""The `openpista` command line: parses arguments and hands each command to its module.

Nothing heavy is imported here: `openpista --version` and `--help` must stay as quick as a
bare interpreter, so SQLAlchemy, httpx and channel libraries load inside the commands.
"""

from __future__ import annotations

import sys

from openpista.cli import __version__ as VERSION


def main() -> None:
    # `--version` is asked for by scripts and package managers in loops: answer before
    # paying for click.
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write(f"openpista {VERSION}\n")
        return
    from openpista.cli.commands import cli

    cli(prog_name="openpista")


if __name__ == "__main__":
    main()
