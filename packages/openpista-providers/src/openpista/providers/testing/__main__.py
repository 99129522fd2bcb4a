"""`python -m openpista.providers.testing [--api chat|responses]`: serve a fake provider from a
shell (default: chat completions); the other options are the chosen server's."""

from __future__ import annotations

import argparse
import sys

from openpista.providers.testing.chat_completions import main
from openpista.providers.testing.responses import serve

chooser = argparse.ArgumentParser(add_help=False)
chooser.add_argument("--api", choices=("chat", "responses"), default="chat")
chosen, rest = chooser.parse_known_args()
sys.exit(serve(rest) if chosen.api == "responses" else main(rest))
