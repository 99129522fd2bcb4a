"""`python -m openpista.providers.testing [--api chat|responses|anthropic]`: serve a fake
provider from a shell (chat completions unless told); the other options are the chosen
server's."""

from __future__ import annotations

import argparse
import sys

from openpista.providers.testing import anthropic, chat_completions, responses

SERVERS = {
    "chat": chat_completions.main,
    "responses": responses.serve,
    "anthropic": anthropic.serve,
}

# Without a help option of its own: `--help` reaches the chosen server, after this part.
chooser = argparse.ArgumentParser(prog="python -m openpista.providers.testing", add_help=False)
chooser.add_argument(
    "--api",
    choices=tuple(SERVERS),
    default="chat",
    help="the wire protocol to serve (default: chat); the other options are that server's",
)
chosen, rest = chooser.parse_known_args()
if {"-h", "--help"} & set(rest):
    sys.stdout.write(chooser.format_help() + f"\nThe {chosen.api} server (--api {chosen.api}):\n")
    sys.stdout.flush()
sys.exit(SERVERS[chosen.api](rest))
