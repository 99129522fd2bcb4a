"""`python -m openpista.providers.testing [--api chat|anthropic]`: serve a fake provider from a
shell (chat completions unless told)."""

from __future__ import annotations

import sys

from openpista.providers.testing import anthropic, chat_completions


def _serve(argv: list[str]) -> int:
    api = "chat"
    if "--api" in argv:
        at = argv.index("--api")
        api = argv[at + 1] if at + 1 < len(argv) else ""
        argv = argv[:at] + argv[at + 2 :]
    if api == "anthropic":
        return anthropic.serve(argv)
    if api == "chat":
        return chat_completions.main(argv)
    print(f"--api: expected chat or anthropic, not {api!r}", file=sys.stderr)
    return 2


sys.exit(_serve(sys.argv[1:]))
