"""`openpista run -e`: one task, the final reply on stdout, tool activity on stderr."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from openpista.cli.errors import print_error
from openpista.cli.progress import WaitingIndicator
from openpista.cli.runtime import open_runtime, open_session
from openpista.core.activity import describe_tool_call, describe_tool_result
from openpista.core.config import load_config
from openpista.core.errors import ProviderError
from openpista.core.models import ToolCall, ToolResult

ONE_SHOT_CHANNEL = "cli:run"


class ActivityPrinter:
    """Tool activity on stderr, with the waiting indicator in between tool rounds."""

    def __init__(self, indicator: WaitingIndicator) -> None:
        self._indicator = indicator
        self._running = 0

    async def on_tool_call(self, call: ToolCall) -> None:
        await self._indicator.pause()
        self._running += 1
        sys.stderr.write(describe_tool_call(call) + "\n")
        sys.stderr.flush()

    async def on_tool_result(self, call: ToolCall, result: ToolResult) -> None:
        sys.stderr.write(describe_tool_result(call, result) + "\n")
        sys.stderr.flush()
        self._running -= 1
        if self._running == 0:
            self._indicator.resume()  # the model has the results: waiting for it again


def _report_failure(message: str, as_json: bool) -> None:
    """The message on stderr, and with --json also as {"error": MESSAGE} on stdout."""
    print_error(message)
    if as_json:
        sys.stdout.write(json.dumps({"error": message}, ensure_ascii=False) + "\n")


async def run_once(
    config_path: Path | None,
    text: str,
    *,
    session_id: str | None,
    provider: str | None,
    model: str | None,
    as_json: bool,
) -> int:
    config = load_config(config_path)
    async with open_runtime(config, provider=provider, model=model) as runtime:
        session = await open_session(runtime.memory, session_id, ONE_SHOT_CHANNEL)
        llm = runtime.provider
        indicator = WaitingIndicator(sys.stderr, f"waiting for {llm.name}/{llm.model}")
        activity = ActivityPrinter(indicator)
        indicator.resume()
        try:
            async with asyncio.timeout(config.agent.timeout_s):
                result = await runtime.agent.run_turn(
                    session.id,
                    text,
                    channel_id=session.channel_id,
                    on_tool_call=activity.on_tool_call,
                    on_tool_result=activity.on_tool_result,
                )
        except ProviderError as exc:
            await indicator.pause()
            _report_failure(str(exc), as_json)
            return 1
        except TimeoutError:
            await indicator.pause()
            _report_failure(
                f"no reply within {config.agent.timeout_s:g} s (agent.timeout_s); "
                f"the conversation so far is kept in session {session.id}",
                as_json,
            )
            return 1
        finally:
            await indicator.pause()
    if as_json:
        payload = {
            "session_id": session.id,
            "reply": result.reply,
            "tool_calls": [
                {"name": c.name, "arguments": c.arguments, "ok": c.ok} for c in result.tool_calls
            ],
        }
        sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(result.reply.rstrip("\n") + "\n")
        if sys.stderr.isatty():
            sys.stderr.write(f"(session {session.id}: continue with -s {session.id})\n")
    if result.stopped_at_limit:
        # The agent did not finish the task: scripts must be able to tell.
        print_error(
            f"the agent stopped after {config.agent.max_tool_rounds} tool rounds without a final "
            f"answer (agent.max_tool_rounds); continue with -s {session.id}"
        )
        return 1
    return 0
