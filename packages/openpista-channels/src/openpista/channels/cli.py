"""The `cli` channel: talk to the agent line by line on stdin and stdout.

This is the line-by-line chat of the `openpista` command and the `cli` channel of
`openpista start` (`[channels.cli] enabled`).

What a user sees
----------------
Each line typed (or piped) in is one message to the agent on the channel id `cli:local`.
The reply is printed before the next line is read, so a conversation reads in order even
when a whole script of messages is piped in:

    $ printf 'What is 2+2?\\nAnd times 3?\\n' | openpista
    4
    12

- A `> ` prompt is shown only when stdin is a terminal (or when asked for with `prompt=True`).
- Blank lines are ignored. `/quit` or `/exit` ends the channel, as does the end of input
  (Ctrl-D on a terminal, the end of a piped file).
- Streamed replies appear as they are generated; the line is finished when the reply is.
- Error replies (the provider failed, the agent gave up) go to stderr, so `2>/dev/null`
  hides them and scripts can tell them apart from answers.
- Notices go to stderr: when the primary model fails and a fallback answers,
  `openpista: openai/gpt-4.1-mini failed (...); switched to anthropic/claude-sonnet-4-5`.
- Tool activity goes to stderr as it happens (`⚙ system.run {"command": "ls"}`, then
  `  ✓ system.run: exit code: 0`), so the transcript on stdout holds only the replies.
- Approval: under `approval = "ask"` the channel asks on its output,
  `Allow system.run {"command": "ls"}? [y]es / [n]o / [a]ll`, and takes the answer from the
  next input line (y, yes, n, no, a, all), so piped input can answer too. Anything else asks
  again; the end of input denies.
- A reply nobody here asked for (a cron job's) is printed on a line of its own and never taken
  for the answer to the line waiting for one: replies are matched by the event they answer.

Input can be a terminal, a pipe, a regular file or any text stream: terminals and pipes are
watched by the event loop, the rest are read in a background thread, so waiting for input
never stalls the agent, the cron scheduler or other channels sharing the loop.

Configuration: `[channels.cli] enabled` is read by whoever composes the channels; the
channel itself has no settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TextIO, TypeVar

from openpista.channels.line_reader import LineReader
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
from openpista.core.channel import EventDispatcher
from openpista.core.models import AgentResponse, ChannelEvent, ToolCall, ToolResult

if TYPE_CHECKING:
    from openpista.core.config import Config

_T = TypeVar("_T")


class _NoLine:
    """No line was read: what waited alongside the read finished first."""


_NO_LINE = _NoLine()

PROMPT = "> "
QUIT_COMMANDS = frozenset({"/quit", "/exit"})


class _Stopped(Exception):
    """stop() was called while run() was waiting."""


class CliChannel:
    """A ChannelAdapter over a text input and output: one line in, one reply out.

    Streams default to the process's stdin, stdout and stderr as they are when the channel
    is made (so redirections done before then apply).
    """

    def __init__(
        self,
        *,
        input_stream: TextIO | None = None,
        output_stream: TextIO | None = None,
        error_stream: TextIO | None = None,
        channel_id: str = "cli:local",
        prompt: bool | None = None,
    ) -> None:
        self._input = input_stream if input_stream is not None else sys.stdin
        self._output = output_stream if output_stream is not None else sys.stdout
        self._errors = error_stream if error_stream is not None else sys.stderr
        self._channel_id = channel_id
        self._input_is_terminal = _is_terminal(self._input)
        self._show_prompt = prompt if prompt is not None else self._input_is_terminal
        self._stop_requested = asyncio.Event()
        self._reply: asyncio.Future[None] | None = None
        self._awaiting_event: str | None = None
        self._reader: LineReader | None = None
        self._pending_line: asyncio.Future[str | None] | None = None
        """The read in progress: messages and approval answers come from one stream of lines,
        so a read is never abandoned (a line half-read would be lost), only waited for."""
        self._questions: list[tuple[ApprovalRequest, asyncio.Future[ApprovalAnswer | None]]] = []
        self._question_arrived = asyncio.Event()
        self._input_ended = False
        self._streamed_this_turn = False
        self._waiting_for_input = False
        self._prompt_on_screen = False

    @property
    def name(self) -> str:
        return "cli"

    @property
    def channel_id(self) -> str:
        return self._channel_id

    async def run(self, dispatch: EventDispatcher) -> None:
        """Read lines until /quit, the end of input or stop(), waiting for each reply."""
        reader = self._reader = LineReader(self._input)
        try:
            while True:
                line = await self._next_line(reader)
                if line is None:
                    return
                text = line.strip()
                if not text:
                    continue
                if text in QUIT_COMMANDS:
                    return
                await self._converse(dispatch, text)
                if self._input_ended:
                    return
        except _Stopped:
            return
        finally:
            self._reply = None
            self._reader = None
            if self._pending_line is not None:
                self._pending_line.cancel()
                self._pending_line = None
            for _, question in self._questions:
                if not question.done():
                    if self._prompt_on_screen:
                        self._write(self._output, "\n(openpista is stopping: not run)\n")
                        self._prompt_on_screen = False
                    question.set_result(
                        ApprovalAnswer(
                            ApprovalDecision.DENY,
                            f"{self._channel_id} (stopping)",
                            reason="openpista is stopping, and nobody answered before it did",
                        )
                    )
            if self._prompt_on_screen:
                # Leave the user's shell prompt on a line of its own after Ctrl-D.
                self._write(self._output, "\n")
                self._prompt_on_screen = False

    async def send(self, response: AgentResponse) -> None:
        """Finish the turn: the rest of the line after streamed text, or the whole reply."""
        self._clear_prompt()
        if response.is_error or response.cancelled:
            # Errors and "(cancelled)" go to stderr: stdout holds only the agent's answers.
            if self._streamed_this_turn:
                self._write(self._output, "\n")
            self._write(self._errors, f"{printable(response.content, keep_lines=True)}\n")
        elif self._streamed_this_turn:
            self._write(self._output, "\n")
        else:
            # The model may repeat what a tool read (a hostile file): never let it drive the
            # terminal.
            self._write(self._output, f"{printable(response.content, keep_lines=True)}\n")
        for image in response.images:
            # A terminal cannot show the picture; it says where the file is, as `run -e` does.
            if image.path:
                self._write(self._errors, f"picture saved: {printable(image.path)}\n")
        self._streamed_this_turn = False
        answers_the_line = (
            response.in_reply_to is not None and response.in_reply_to == self._awaiting_event
        )
        if answers_the_line and self._reply is not None and not self._reply.done():
            self._reply.set_result(None)
        elif self._waiting_for_input:
            # A reply nobody here asked for (a cron job): put the prompt back under it.
            self._prompt()

    async def send_delta(self, channel_id: str, session_id: str, text: str) -> None:
        """Print streamed reply text as it arrives."""
        if not text:
            return
        self._clear_prompt()
        self._streamed_this_turn = True
        self._write(self._output, printable(text, keep_lines=True))

    async def send_tool_activity(
        self, channel_id: str, session_id: str, call: ToolCall, result: ToolResult | None
    ) -> None:
        """Show on stderr which tool runs, then how it went."""
        self._clear_prompt()
        if self._streamed_this_turn:
            # Text the model wrote before asking for the tool: finish its line first.
            self._write(self._output, "\n")
            self._streamed_this_turn = False
        line = describe_tool_call(call) if result is None else describe_tool_result(call, result)
        self._write(self._errors, line + "\n")

    async def send_notice(self, channel_id: str, session_id: str, text: str) -> None:
        """Show a notice about the turn (a switch to a fallback model) on stderr."""
        self._clear_prompt()
        if self._streamed_this_turn:
            self._write(self._output, "\n")
            self._streamed_this_turn = False
        self._write(self._errors, f"openpista: {printable(text)}\n")

    async def ask_approval(self, request: ApprovalRequest) -> ApprovalAnswer | None:
        """Ask on the output; the answer is the next input line (read while the turn waits).

        None (the call is denied) when the channel is not reading or its input has ended.
        """
        if self._reader is None or self._input_ended:
            return None
        question: asyncio.Future[ApprovalAnswer | None] = asyncio.get_running_loop().create_future()
        entry = (request, question)
        self._questions.append(entry)
        self._question_arrived.set()
        try:
            return await question
        finally:
            if entry in self._questions:
                self._questions.remove(entry)

    async def stop(self) -> None:
        """Make run() return, even mid-read or while a reply is pending."""
        self._stop_requested.set()

    async def _next_line(self, reader: LineReader) -> str | None:
        """The next message line; approval questions that come meanwhile (a cron job's turn)
        are asked and answered first."""
        while True:
            if self._pending_question() is not None:
                await self._answer_question()
                if self._input_ended:
                    return None
                continue
            self._prompt()
            self._question_arrived.clear()
            self._waiting_for_input = True
            try:
                line = await self._line_or(self._question_arrived.wait())
            finally:
                self._waiting_for_input = False
            if isinstance(line, _NoLine):
                continue  # a question arrived first
            if line is not None:
                self._prompt_on_screen = False  # the user's Enter moved the cursor on
            return line

    async def _line_or(self, other: Awaitable[object]) -> str | _NoLine | None:
        """The next input line, or _NO_LINE when `other` finishes first (the read goes on and
        its line is returned by a later call)."""
        reader = self._reader
        assert reader is not None
        if self._pending_line is None:
            self._pending_line = asyncio.ensure_future(reader.readline())
        line = self._pending_line
        waiting = asyncio.ensure_future(other)
        try:
            await self._unless_stopped(
                asyncio.wait({line, waiting}, return_when=asyncio.FIRST_COMPLETED)
            )
        finally:
            waiting.cancel()
        if not line.done():
            return _NO_LINE
        self._pending_line = None
        return line.result()

    async def _converse(self, dispatch: EventDispatcher, text: str) -> None:
        loop = asyncio.get_running_loop()
        reply = loop.create_future()
        self._reply = reply
        self._streamed_this_turn = False
        event = ChannelEvent(channel_id=self._channel_id, text=text, sender="local")
        self._awaiting_event = event.id
        try:
            await self._unless_stopped(dispatch(event))
        except _Stopped:
            raise
        except Exception as exc:
            # The gateway could not take the message; say so and keep the session going.
            self._write(
                self._errors,
                f"could not hand the message to the agent: {exc}; try again or restart openpista\n",
            )
            return
        await self._await_reply(reply)

    async def _await_reply(self, reply: asyncio.Future[None]) -> None:
        """Wait for the reply, answering approval questions from the input meanwhile."""
        while not reply.done():
            self._question_arrived.clear()
            if not self._pending_question():
                arrived = asyncio.ensure_future(self._question_arrived.wait())
                try:
                    await self._unless_stopped(
                        asyncio.wait({reply, arrived}, return_when=asyncio.FIRST_COMPLETED)
                    )
                finally:
                    arrived.cancel()
                continue
            await self._answer_question()

    def _pending_question(
        self,
    ) -> tuple[ApprovalRequest, asyncio.Future[ApprovalAnswer | None]] | None:
        for entry in self._questions:
            if not entry[1].done():
                return entry
        return None

    async def _answer_question(self) -> None:
        entry = self._pending_question()
        if entry is None:
            return
        request, question = entry
        self._clear_prompt()
        if self._streamed_this_turn:
            self._write(self._output, "\n")
            self._streamed_this_turn = False
        question_text = describe_approval_question(request.call)
        where = printable(request.channel_id)
        # Not a call for the line being answered (a cron job's turn): say whose call it is.
        if request.sender == "cron":
            question_text = f"(a cron job on {where}) {question_text}"
        elif request.channel_id != self._channel_id:
            question_text = f"(for {where}) {question_text}"
        if self._reader is not None and self._input_is_terminal:
            if self._pending_line is not None and not self._pending_line.done():
                # A read in progress holds what was typed so far; let it go and start afresh.
                self._pending_line.cancel()
                self._pending_line = None
            self._reader.discard_typed_ahead()
        self._write(self._output, question_text + " ")
        self._prompt_on_screen = True  # other output starts on a new line
        decision: ApprovalDecision | None = None
        while decision is None:
            line = await self._line_or(asyncio.shield(question))
            if isinstance(line, str):
                self._prompt_on_screen = False  # the answer's Enter (or our newline) moved on
            if isinstance(line, _NoLine) or question.done():
                # Withdrawn (it expired, or the turn was stopped) while we waited for the line.
                self._prompt_on_screen = False
                self._write(self._output, "\n(question closed: not run)\n")
                return
            if line is None:
                self._input_ended = True
                self._write(self._output, "\n(end of input: not run)\n")
                question.set_result(
                    ApprovalAnswer(ApprovalDecision.DENY, f"{self._channel_id} (end of input)")
                )
                return
            if not self._input_is_terminal:
                # Piped answers are not echoed: end the question's line ourselves.
                self._write(self._output, "\n")
            if line.strip() in QUIT_COMMANDS:
                # Leaving while asked: the call does not run, and no more lines are read.
                self._input_ended = True
                question.set_result(
                    ApprovalAnswer(ApprovalDecision.DENY, f"{self._channel_id} (/quit)")
                )
                return
            decision = parse_decision(line)
            if decision is None:
                self._write(self._output, "Please answer y (yes), n (no) or a (all): ")
        question.set_result(ApprovalAnswer(decision, self._channel_id))

    async def _unless_stopped(self, awaitable: Awaitable[_T]) -> _T:
        """Await `awaitable`, or raise _Stopped as soon as stop() is called."""
        if self._stop_requested.is_set():
            if asyncio.iscoroutine(awaitable):
                awaitable.close()  # never to be awaited: spare Python's "never awaited" warning
            raise _Stopped
        work = asyncio.ensure_future(awaitable)
        stopping = asyncio.ensure_future(self._stop_requested.wait())
        try:
            await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not work.done():
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
        if work.cancelled() and self._stop_requested.is_set():
            raise _Stopped
        return work.result()

    def _prompt(self) -> None:
        if self._show_prompt and not self._prompt_on_screen:
            self._write(self._output, PROMPT)
            self._prompt_on_screen = True

    def _clear_prompt(self) -> None:
        """Start output on a fresh line when a prompt is waiting for input on this one."""
        if self._prompt_on_screen:
            self._write(self._output, "\n")
            self._prompt_on_screen = False

    def _write(self, stream: TextIO, text: str) -> None:
        try:
            if stream is self._errors:
                # Keep stdout and stderr in order on a shared terminal.
                self._output.flush()
            stream.write(text)
            stream.flush()
        except (BrokenPipeError, ValueError):
            # The reader went away (`openpista | head`) or the stream was closed: nobody can
            # read the conversation any more, so the channel stops, as at the end of input.
            _silence(stream)
            self._stop_requested.set()


def _silence(stream: TextIO) -> None:
    """Point a broken stream at /dev/null, so flushing it at exit raises nothing either."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, OSError, ValueError):
        return False


def create_channel(config: Config) -> CliChannel:
    """The `openpista.channels` entry point `cli`: stdin/stdout as the channel `cli:local`."""
    return CliChannel()
