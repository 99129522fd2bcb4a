"""`openpista run -e`: one task, the final reply on stdout, tool activity on stderr.

Notices go to stderr too: a switch to a fallback model names the model that answers. A reply
cut short (the output limit, a stream that broke off) ends with a line saying so, and with
--json carries `"cut_off": "length" | "interrupted"`; the exit status is still 0, since what
came is the model's answer.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openpista.cli.errors import print_error
from openpista.cli.progress import WaitingIndicator
from openpista.cli.runtime import create_gateway, open_runtime
from openpista.core.activity import (
    describe_approval_question,
    describe_tool_call,
    describe_tool_result,
    printable,
)
from openpista.core.approval import (
    ApprovalAnswer,
    ApprovalDecision,
    ApprovalRequest,
    parse_decision,
)
from openpista.core.config import approval_mode, load_config
from openpista.core.models import ChannelEvent, ToolCall, ToolResult
from openpista.core.observer import TurnInfo, TurnObserver

if TYPE_CHECKING:
    from openpista.channels.line_reader import LineReader

ONE_SHOT_CHANNEL = "cli:run"


class OneShotObserver(TurnObserver):
    """What `run -e` shows on stderr: a waiting indicator, tool activity, approval questions.

    Under `ask`, questions go to the terminal when stdin is one; with no terminal nobody can
    be asked, so each call is denied and stderr says so.
    """

    def __init__(self, indicator: WaitingIndicator, *, can_ask: bool) -> None:
        self._indicator = indicator
        self._running = 0
        self._can_ask = can_ask
        self._reader: LineReader | None = None

    async def waiting_for_session(self, turn: TurnInfo) -> None:
        await self._indicator.pause()
        session = printable(turn.session_id)
        _say(f"openpista: session {session} is busy with another turn; waiting for it")
        self._indicator.resume()

    async def notice(self, text: str) -> None:
        # A switch to a fallback model: the reply on stdout stays the model's alone.
        await self._indicator.pause()
        _say(f"openpista: {printable(text)}")
        if self._running == 0:
            self._indicator.resume()

    async def tool_started(self, call: ToolCall) -> None:
        await self._indicator.pause()
        self._running += 1
        _say(describe_tool_call(call))

    async def tool_finished(self, call: ToolCall, result: ToolResult) -> None:
        await self._indicator.pause()
        _say(describe_tool_result(call, result))
        self._running = max(self._running - 1, 0)
        if self._running == 0:
            self._indicator.resume()  # the model has the results: waiting for it again

    async def request_approval(self, request: ApprovalRequest) -> ApprovalAnswer | None:
        await self._indicator.pause()
        if not self._can_ask:
            _say(
                f"openpista: {request.tool} needs approval (approval = ask) and there is no "
                "terminal to ask on: not run"
            )
            return None
        if self._reader is None:
            from openpista.channels.line_reader import LineReader

            self._reader = LineReader(sys.stdin)
        self._reader.discard_typed_ahead()  # only keys pressed after the question count
        sys.stderr.write(describe_approval_question(request.call) + " ")
        sys.stderr.flush()
        try:
            while True:
                line = await self._reader.readline()
                if line is None:
                    _say("(end of input: not run)")
                    return ApprovalAnswer(ApprovalDecision.DENY, "cli:terminal (end of input)")
                decision = parse_decision(line)
                if decision is not None:
                    self._indicator.resume()
                    return ApprovalAnswer(decision, "cli:terminal")
                sys.stderr.write("Please answer y (yes), n (no) or a (all): ")
                sys.stderr.flush()
        except asyncio.CancelledError:
            # It expired (approval_timeout_s) or openpista is stopping: close the question's
            # line, so a late answer is not typed into the shell unexplained.
            _say("\n(question closed: not run)")
            raise


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _report_failure(message: str, as_json: bool) -> None:
    """The message on stderr, and with --json also as {"error": MESSAGE} on stdout."""
    print_error(printable(message, keep_lines=True))  # it may quote what a server sent
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
        # A new session gets a fresh id (as the store makes them); -s names one, created
        # under that id if new.
        event = ChannelEvent(
            ONE_SHOT_CHANNEL, text, session_id=session_id or str(uuid.uuid4()), sender="local"
        )
        gateway = create_gateway(runtime, {})
        llm = runtime.provider
        indicator = WaitingIndicator(sys.stderr, f"waiting for {llm.name}/{llm.model}")
        observer = OneShotObserver(indicator, can_ask=_stdin_is_terminal())
        indicator.resume()
        try:
            response = await gateway.handle(
                event,
                observer=observer,
                approval=approval_mode(config, ONE_SHOT_CHANNEL, one_shot=True),
            )
        finally:
            await indicator.pause()
            await gateway.shutdown(cancel=True)
    session = printable(response.session_id)
    if response.is_error:
        message = response.content.removeprefix("❌").strip()
        _report_failure(
            f"{message} (the conversation so far is kept in session {session})", as_json
        )
        return 1
    saved_pictures = [image.path for image in response.images if image.path]
    for path in saved_pictures:
        _say(f"picture saved: {printable(path)}")
    if len(saved_pictures) < len(response.images):
        _say("openpista: a picture could not be saved (see the log)")
    if as_json:
        payload: dict[str, Any] = {
            "session_id": response.session_id,
            "reply": response.content,
            "tool_calls": [
                {"name": c.name, "arguments": c.arguments, "ok": c.ok} for c in response.tool_calls
            ],
            "images": saved_pictures,
        }
        if response.cut_off is not None:
            # The reply ends with a line saying so; scripts get the reason as a key too.
            payload["cut_off"] = response.cut_off
        sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    else:
        # The model may repeat what a tool read (a hostile file): never let it drive the terminal.
        sys.stdout.write(printable(response.content, keep_lines=True).rstrip("\n") + "\n")
        if sys.stderr.isatty():
            sys.stderr.write(f"(session {session}: continue with -s {session})\n")
    if response.stopped_at_limit:
        # The agent did not finish the task: scripts must be able to tell.
        print_error(
            f"the agent stopped after {config.agent.max_tool_rounds} tool rounds without a final "
            f"answer (agent.max_tool_rounds); continue with -s {session}"
        )
        return 1
    return 0


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, OSError, ValueError):
        return False
