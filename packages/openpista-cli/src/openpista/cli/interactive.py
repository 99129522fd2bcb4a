"""The interactive terminal chat (`openpista` / `openpista tui`), line by line on the cli channel.

The full-screen TUI arrives with its own issue; until then this is the conversation loop it
will replace, with the same session semantics: `-s ID` resumes a session, otherwise a new
one starts.
"""

from __future__ import annotations

import sys
from pathlib import Path

from openpista.cli.runtime import create_gateway, open_runtime, open_session
from openpista.cli.signals import InterruptHandler, run_cancellable
from openpista.core.config import Config, load_config

CHANNEL_ID = "cli:local"


async def _chat(config: Config, session_id: str | None, interrupt: list[InterruptHandler]) -> int:
    from openpista.channels.cli import CliChannel

    async with open_runtime(config) as runtime:
        memory = runtime.memory
        session = await open_session(memory, session_id, CHANNEL_ID)
        channel = CliChannel(channel_id=CHANNEL_ID)
        gateway = create_gateway(runtime, {"cli": channel})
        gateway.router.set_current(CHANNEL_ID, session.id)

        def stop_turn() -> bool:
            # Ctrl-C while the agent works stops that turn and keeps the chat; at the
            # prompt (nothing running) it leaves.
            current = gateway.router.current(CHANNEL_ID)
            return current is not None and gateway.cancel_turn(current)

        interrupt.append(stop_turn)
        if sys.stdin.isatty():
            model = f"{runtime.provider.name}/{runtime.provider.model}"
            sys.stderr.write(
                f"openpista — session {session.id} ({model}). Ctrl-C stops a reply; /quit leaves.\n"
            )
        await channel.run(gateway.dispatch)
        await gateway.shutdown()
    return 0


def run_interactive(config_path: Path | None, session_id: str | None) -> int:
    interrupt: list[InterruptHandler] = []
    return run_cancellable(_chat(load_config(config_path), session_id, interrupt), interrupt)
