"""The `openpista` command line: parses arguments and hands each command to its module.

Nothing heavy is imported here: `openpista --version` and `--help` must stay as quick as a
bare interpreter, so SQLAlchemy, httpx and channel libraries load inside the commands.
"""

from __future__ import annotations

import sys

from openpista.cli import __version__ as VERSION

SIGPIPE_STATUS = 141
"""128 + SIGPIPE: how `git log | head -1` and every C program end when the reader left."""


def main() -> None:
    try:
        try:
            status = _run()
        finally:
            sys.stdout.flush()
    except BrokenPipeError:
        # The reader of stdout went away (`openpista auth status | head -1`): nothing more
        # can be shown, and saying so would only be noise. stdout now points at /dev/null so
        # the interpreter's own flush at exit does not fail again.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        status = SIGPIPE_STATUS
    sys.exit(status)


def _run() -> int:
    """Run the command line; its exit status."""
    # `--version` is asked for by scripts and package managers in loops: answer before
    # paying for click.
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write(f"openpista {VERSION}\n")
        return 0
    import click

    from openpista.cli.commands import cli
    from openpista.cli.errors import StdoutClosed

    try:
        result = cli.main(prog_name="openpista", standalone_mode=False)
    except StdoutClosed:
        raise BrokenPipeError from None
    except click.ClickException as exc:
        if isinstance(exc, click.UsageError) and _is_json_run(sys.argv[1:]):
            # `run --json` promises {"error": ...} on stdout for every failure, a mistyped
            # option included.
            import json

            sys.stdout.write(json.dumps({"error": exc.format_message()}) + "\n")
        exc.show()
        return exc.exit_code
    except click.Abort:
        sys.stderr.write("Aborted!\n")
        return 1
    return result if isinstance(result, int) else 0


def _is_json_run(args: list[str]) -> bool:
    return "run" in args and "--json" in args


if __name__ == "__main__":
    main()
