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
    import click

    from openpista.cli.commands import cli

    try:
        result = cli.main(prog_name="openpista", standalone_mode=False)
    except click.ClickException as exc:
        if isinstance(exc, click.UsageError) and _is_json_run(sys.argv[1:]):
            # `run --json` promises {"error": ...} on stdout for every failure, a mistyped
            # option included.
            import json

            sys.stdout.write(json.dumps({"error": exc.format_message()}) + "\n")
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        sys.stderr.write("Aborted!\n")
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


def _is_json_run(args: list[str]) -> bool:
    return "run" in args and "--json" in args


if __name__ == "__main__":
    main()
