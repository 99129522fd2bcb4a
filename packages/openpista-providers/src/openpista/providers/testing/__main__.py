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

chooser = argparse.ArgumentParser(add_help=False)
chooser.add_argument("--api", choices=tuple(SERVERS), default="chat")
chosen, rest = chooser.parse_known_args()
sys.exit(SERVERS[chosen.api](rest))
