"""How the command reports failures: one line on stderr, never a traceback (unless --debug)."""

from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Iterator

from openpista.core.errors import ConfigError, OpenpistaError

CONFIG_ERROR_STATUS = 2
FAILURE_STATUS = 1


class StdoutClosed(Exception):
    """The reader of stdout went away (a pipe into `head`); see main()."""


def print_error(message: str) -> None:
    sys.stderr.write(f"openpista: error: {message}\n")
    sys.stderr.flush()


@contextlib.contextmanager
def report_errors(*, debug: bool) -> Iterator[None]:
    try:
        yield
    except ConfigError as exc:
        if debug:
            traceback.print_exc()
        print_error(str(exc))
        raise SystemExit(CONFIG_ERROR_STATUS) from None
    except OpenpistaError as exc:
        if debug:
            traceback.print_exc()
        print_error(str(exc))
        raise SystemExit(FAILURE_STATUS) from None
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        raise SystemExit(130) from None
    except BrokenPipeError:
        # stdout's reader left (`openpista model list | head -1`): no error; main() ends
        # quietly. Not re-raised as it is: click would swallow it (an OSError) with status 1.
        raise StdoutClosed from None
    except (SystemExit, GeneratorExit):
        raise
    except Exception as exc:
        # A bug of ours: still one line, with a hint to get the traceback.
        if debug:
            traceback.print_exc()
        print_error(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        raise SystemExit(FAILURE_STATUS) from None
