"""The cli channel over real pipes, a real pseudo-terminal, files and in-memory streams."""

from __future__ import annotations

import asyncio
import io
import os
import pty
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pytest

from openpista.channels.cli import CliChannel, create_channel
from openpista.core.approval import ApprovalAnswer, ApprovalDecision, ApprovalRequest
from openpista.core.channel import ChannelAdapter
from openpista.core.config import Config
from openpista.core.models import AgentResponse, ChannelEvent, ToolCall

HANG_GUARD_S = 10


@dataclass
class Pipe:
    reader: TextIO
    writer: TextIO

    def send(self, text: str) -> None:
        self.writer.write(text)
        self.writer.flush()


@pytest.fixture
def pipe() -> Iterator[Pipe]:
    read_fd, write_fd = os.pipe()
    with (
        open(read_fd, encoding="utf-8") as reader,
        open(write_fd, "w", encoding="utf-8") as writer,
    ):
        yield Pipe(reader, writer)


@dataclass
class Answerer:
    """A stand-in gateway: queues each event and answers it later through channel.send."""

    channel: CliChannel
    reply_to: Callable[[str], str] = lambda text: f"re: {text}"
    delays: dict[str, float] = field(default_factory=lambda: {})
    stream_pieces: int = 0
    error: bool = False
    log: list[str] = field(default_factory=lambda: [])
    events: list[ChannelEvent] = field(default_factory=lambda: [])
    seen_mid_stream: list[str] = field(default_factory=lambda: [])
    output: io.StringIO | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=lambda: [])

    async def __call__(self, event: ChannelEvent) -> None:
        self.events.append(event)
        self.log.append(f"dispatch {event.text}")
        # Like the gateway: return once queued, answer from another task.
        self._tasks.append(asyncio.create_task(self._answer(event)))

    async def _answer(self, event: ChannelEvent) -> None:
        await asyncio.sleep(self.delays.get(event.text, 0))
        content = self.reply_to(event.text)
        if self.stream_pieces:
            size = -(-len(content) // self.stream_pieces)
            for start in range(0, len(content), size):
                await self.channel.send_delta(event.channel_id, "s1", content[start : start + size])
                if self.output is not None:
                    self.seen_mid_stream.append(self.output.getvalue())
                await asyncio.sleep(0)
        self.log.append(f"reply {event.text}")
        await self.channel.send(
            AgentResponse(
                channel_id=event.channel_id,
                session_id="s1",
                content=content,
                is_error=self.error,
                in_reply_to=event.id,
            )
        )


async def _run(channel: CliChannel, dispatch: Answerer) -> None:
    await asyncio.wait_for(channel.run(dispatch), HANG_GUARD_S)


async def _eventually(condition: Callable[[], bool]) -> None:
    for _ in range(HANG_GUARD_S * 100):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")


async def test_replies_come_in_the_order_of_the_lines(pipe: Pipe) -> None:
    out, err = io.StringIO(), io.StringIO()
    channel = CliChannel(input_stream=pipe.reader, output_stream=out, error_stream=err)
    # The first answer is the slowest: without waiting for it, "two" would overtake it.
    answerer = Answerer(channel, delays={"one": 0.3, "two": 0.0, "three": 0.1})
    pipe.send("one\ntwo\nthree\n")
    pipe.writer.close()
    await _run(channel, answerer)
    assert out.getvalue() == "re: one\nre: two\nre: three\n"
    assert answerer.log == [
        "dispatch one",
        "reply one",
        "dispatch two",
        "reply two",
        "dispatch three",
        "reply three",
    ]
    assert err.getvalue() == ""


async def test_events_carry_the_channel_id_and_local_sender(pipe: Pipe) -> None:
    channel = CliChannel(
        input_stream=pipe.reader, output_stream=io.StringIO(), channel_id="cli:test"
    )
    answerer = Answerer(channel)
    pipe.send("  hello there  \n")
    pipe.writer.close()
    await _run(channel, answerer)
    assert [(e.channel_id, e.text, e.sender) for e in answerer.events] == [
        ("cli:test", "hello there", "local")
    ]


@pytest.mark.parametrize("command", ["/quit", "/exit"])
async def test_quit_command_ends_run_without_sending_later_lines(pipe: Pipe, command: str) -> None:
    out = io.StringIO()
    channel = CliChannel(input_stream=pipe.reader, output_stream=out)
    answerer = Answerer(channel)
    # The writer stays open: only the command can end run here.
    pipe.send(f"first\n{command}\nnever sent\n")
    await _run(channel, answerer)
    assert [e.text for e in answerer.events] == ["first"]
    assert out.getvalue() == "re: first\n"


async def test_end_of_input_ends_run_after_the_last_reply(pipe: Pipe) -> None:
    out = io.StringIO()
    channel = CliChannel(input_stream=pipe.reader, output_stream=out)
    answerer = Answerer(channel)
    running = asyncio.create_task(_run(channel, answerer))
    pipe.send("ping\n")
    await _eventually(lambda: out.getvalue() == "re: ping\n")
    assert not running.done()
    pipe.writer.close()
    await running
    assert [e.text for e in answerer.events] == ["ping"]


async def test_last_line_without_newline_is_still_sent(pipe: Pipe) -> None:
    out = io.StringIO()
    channel = CliChannel(input_stream=pipe.reader, output_stream=out)
    pipe.send("no newline at the end")
    pipe.writer.close()
    await _run(channel, Answerer(channel))
    assert out.getvalue() == "re: no newline at the end\n"


async def test_blank_lines_are_ignored(pipe: Pipe) -> None:
    out = io.StringIO()
    channel = CliChannel(input_stream=pipe.reader, output_stream=out)
    answerer = Answerer(channel)
    pipe.send("\n   \n\t\nhi\n\n\r\n")
    pipe.writer.close()
    await _run(channel, answerer)
    assert [e.text for e in answerer.events] == ["hi"]
    assert out.getvalue() == "re: hi\n"


async def test_windows_line_endings_and_split_characters_arrive_whole(pipe: Pipe) -> None:
    out = io.StringIO()
    channel = CliChannel(input_stream=pipe.reader, output_stream=out)
    answerer = Answerer(channel)
    running = asyncio.create_task(_run(channel, answerer))
    write_fd = pipe.writer.fileno()
    os.write(write_fd, "café".encode()[:-1])  # 'é' cut in half between two writes
    await asyncio.sleep(0.05)
    os.write(write_fd, "café".encode()[-1:] + b"\r\n")
    pipe.writer.close()
    await running
    assert [e.text for e in answerer.events] == ["café"]


async def test_streamed_text_is_shown_as_it_arrives_then_the_line_is_finished(
    pipe: Pipe,
) -> None:
    out = io.StringIO()
    channel = CliChannel(input_stream=pipe.reader, output_stream=out)
    answerer = Answerer(channel, reply_to=lambda _: "Hello, world", stream_pieces=3, output=out)
    pipe.send("greet\nagain\n")
    pipe.writer.close()
    await _run(channel, answerer)
    assert answerer.seen_mid_stream[:3] == ["Hell", "Hello, w", "Hello, world"]
    # The full content is not printed a second time after its deltas.
    assert out.getvalue() == "Hello, world\nHello, world\n"


async def test_error_replies_go_to_the_error_stream(pipe: Pipe) -> None:
    out, err = io.StringIO(), io.StringIO()
    channel = CliChannel(input_stream=pipe.reader, output_stream=out, error_stream=err)
    answerer = Answerer(channel, reply_to=lambda _: "provider unreachable", error=True)
    pipe.send("hi\n")
    pipe.writer.close()
    await _run(channel, answerer)
    assert out.getvalue() == ""
    assert err.getvalue() == "provider unreachable\n"


async def test_error_after_streamed_text_finishes_the_line_first(pipe: Pipe) -> None:
    out, err = io.StringIO(), io.StringIO()
    channel = CliChannel(input_stream=pipe.reader, output_stream=out, error_stream=err)

    async def dispatch(event: ChannelEvent) -> None:
        async def answer() -> None:
            await channel.send_delta(event.channel_id, "s1", "partial answ")
            await channel.send(
                AgentResponse(
                    event.channel_id,
                    "s1",
                    "stream broke off",
                    is_error=True,
                    in_reply_to=event.id,
                )
            )

        tasks.append(asyncio.create_task(answer()))

    tasks: list[asyncio.Task[None]] = []
    pipe.send("hi\n")
    pipe.writer.close()
    await asyncio.wait_for(channel.run(dispatch), HANG_GUARD_S)
    assert out.getvalue() == "partial answ\n"
    assert err.getvalue() == "stream broke off\n"


async def test_a_failing_dispatch_is_reported_and_the_next_line_still_goes(pipe: Pipe) -> None:
    out, err = io.StringIO(), io.StringIO()
    channel = CliChannel(input_stream=pipe.reader, output_stream=out, error_stream=err)
    answerer = Answerer(channel)

    async def dispatch(event: ChannelEvent) -> None:
        if event.text == "bad":
            raise RuntimeError("gateway queue is closed")
        await answerer(event)

    pipe.send("bad\ngood\n")
    pipe.writer.close()
    await asyncio.wait_for(channel.run(dispatch), HANG_GUARD_S)
    assert "could not hand the message to the agent: gateway queue is closed" in err.getvalue()
    assert out.getvalue() == "re: good\n"


async def test_stop_ends_run_while_it_waits_for_input(pipe: Pipe) -> None:
    channel = CliChannel(input_stream=pipe.reader, output_stream=io.StringIO())
    running = asyncio.create_task(_run(channel, Answerer(channel)))
    await asyncio.sleep(0.05)
    assert not running.done()
    await channel.stop()
    await running


async def test_stop_ends_run_while_it_waits_for_a_reply(pipe: Pipe) -> None:
    channel = CliChannel(input_stream=pipe.reader, output_stream=io.StringIO())
    dispatched: list[str] = []

    async def never_answers(event: ChannelEvent) -> None:
        dispatched.append(event.text)

    running = asyncio.create_task(asyncio.wait_for(channel.run(never_answers), HANG_GUARD_S))
    pipe.send("anyone there?\n")
    await _eventually(lambda: dispatched == ["anyone there?"])
    assert not running.done()
    await channel.stop()
    await running


async def test_reads_a_regular_file(tmp_path: Path) -> None:
    script = tmp_path / "messages.txt"
    script.write_text("alpha\n\nbeta\n", encoding="utf-8")
    out = io.StringIO()
    with script.open(encoding="utf-8") as source:
        channel = CliChannel(input_stream=source, output_stream=out)
        await _run(channel, Answerer(channel))
    assert out.getvalue() == "re: alpha\nre: beta\n"


async def test_reads_an_in_memory_stream_and_shows_no_prompt() -> None:
    out = io.StringIO()
    channel = CliChannel(input_stream=io.StringIO("alpha\nbeta\n"), output_stream=out)
    await _run(channel, Answerer(channel))
    assert out.getvalue() == "re: alpha\nre: beta\n"


async def test_prompt_can_be_forced_on_a_pipe(pipe: Pipe) -> None:
    out = io.StringIO()
    channel = CliChannel(input_stream=pipe.reader, output_stream=out, prompt=True)
    pipe.send("hi\n")
    pipe.writer.close()
    await _run(channel, Answerer(channel))
    # After end of input the waiting prompt gets its line ended.
    assert out.getvalue() == "> re: hi\n> \n"


@dataclass
class Terminal:
    controller_fd: int
    """The pseudo-terminal's master side: what a terminal emulator writes keystrokes to."""
    stdin: TextIO


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    master_fd, slave_fd = pty.openpty()
    try:
        with open(slave_fd, encoding="utf-8") as stdin:
            yield Terminal(master_fd, stdin)
    finally:
        os.close(master_fd)


async def test_a_terminal_gets_a_prompt_before_each_line(terminal: Terminal) -> None:
    out = io.StringIO()
    channel = CliChannel(input_stream=terminal.stdin, output_stream=out)
    running = asyncio.create_task(_run(channel, Answerer(channel)))
    await _eventually(lambda: out.getvalue() == "> ")
    os.write(terminal.controller_fd, b"hello\n")
    await _eventually(lambda: out.getvalue() == "> re: hello\n> ")
    os.write(terminal.controller_fd, b"\x04")  # Ctrl-D: end of input on a terminal
    await running
    assert out.getvalue() == "> re: hello\n> \n"


async def test_an_unasked_reply_gets_its_own_line_and_the_prompt_back(pipe: Pipe) -> None:
    out = io.StringIO()
    channel = CliChannel(input_stream=pipe.reader, output_stream=out, prompt=True)
    running = asyncio.create_task(_run(channel, Answerer(channel)))
    await _eventually(lambda: out.getvalue() == "> ")
    # What a cron job's message to cli:local looks like to the channel.
    await channel.send(AgentResponse("cli:local", "s9", "daily summary"))
    assert out.getvalue() == "> \ndaily summary\n> "
    await channel.stop()
    await running


def test_is_a_channel_adapter_named_cli() -> None:
    channel = CliChannel(input_stream=io.StringIO(), output_stream=io.StringIO())
    assert isinstance(channel, ChannelAdapter)
    assert channel.name == "cli"
    assert channel.channel_id == "cli:local"


def test_entry_point_builds_a_cli_channel() -> None:
    from importlib.metadata import entry_points

    (entry,) = [ep for ep in entry_points(group="openpista.channels") if ep.name == "cli"]
    assert entry.load() is create_channel
    channel = create_channel(Config())
    assert isinstance(channel, CliChannel)
    assert channel.channel_id == "cli:local"


_CHILD_PROGRAM = """
import asyncio, sys
from openpista.channels.cli import CliChannel
from openpista.core.models import AgentResponse

async def main() -> None:
    channel = CliChannel()
    async def dispatch(event):
        asyncio.get_running_loop().call_soon(
            asyncio.ensure_future,
            channel.send(AgentResponse(
                event.channel_id, "s1", event.text.upper(), in_reply_to=event.id
            )),
        )
    await channel.run(dispatch)
    print("run returned", file=sys.stderr)

asyncio.run(main())
"""


def _run_child(**stdin: Any) -> tuple[str, str, int]:
    """Run a process whose CliChannel uses its real stdin and stdout."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD_PROGRAM],
        **stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout, done.stderr, done.returncode


def test_a_process_with_piped_stdin_answers_each_line_and_exits_at_eof() -> None:
    out, err, code = _run_child(input="one\ntwo\n")
    assert (out, err, code) == ("ONE\nTWO\n", "run returned\n", 0)


def test_a_process_with_a_file_as_stdin_answers_each_line(tmp_path: Path) -> None:
    script = tmp_path / "in.txt"
    script.write_text("from a file\n/quit\nignored\n", encoding="utf-8")
    with script.open(encoding="utf-8") as source:
        out, err, code = _run_child(stdin=source)
    assert (out, err, code) == ("FROM A FILE\n", "run returned\n", 0)


def test_a_process_with_dev_null_as_stdin_ends_at_once() -> None:
    out, err, code = _run_child(stdin=subprocess.DEVNULL)
    assert (out, err, code) == ("", "run returned\n", 0)


def _request(command: str = "ls") -> ApprovalRequest:
    return ApprovalRequest(
        "s1", "cli:local", ToolCall("c1", "system.run", f'{{"command": "{command}"}}')
    )


async def test_a_question_during_a_turn_is_answered_by_the_next_line(pipe: Pipe) -> None:
    out, err = io.StringIO(), io.StringIO()
    channel = CliChannel(input_stream=pipe.reader, output_stream=out, error_stream=err)
    answers: list[ApprovalAnswer | None] = []

    async def dispatch(event: ChannelEvent) -> None:
        async def turn() -> None:
            answers.append(await channel.ask_approval(_request()))
            await channel.send(AgentResponse(event.channel_id, "s1", "done", in_reply_to=event.id))

        tasks.append(asyncio.create_task(turn()))

    tasks: list[asyncio.Task[None]] = []
    pipe.send("list files\nmaybe\nyes\nnext message\n")
    pipe.writer.close()
    seen: list[str] = []

    async def record(event: ChannelEvent) -> None:
        seen.append(event.text)
        await dispatch(event)

    await asyncio.wait_for(channel.run(record), HANG_GUARD_S)
    assert answers[0] == ApprovalAnswer(ApprovalDecision.ALLOW, "cli:local")
    # The answer lines were not messages; the line after them was.
    assert seen == ["list files", "next message"]
    assert out.getvalue().startswith(
        'Allow system.run {"command": "ls"}? [y]es / [n]o / [a]ll \n'
        "Please answer y (yes), n (no) or a (all): \n"
        "done\n"
    )


async def test_an_unrequested_reply_is_not_taken_for_the_answer_being_waited_for(
    pipe: Pipe,
) -> None:
    out = io.StringIO()
    channel = CliChannel(input_stream=pipe.reader, output_stream=out)
    log: list[str] = []

    async def dispatch(event: ChannelEvent) -> None:
        log.append(f"dispatch {event.text}")

        async def answer() -> None:
            # A cron job's reply comes first; the line's own answer only later.
            await channel.send(AgentResponse("cli:local", "s1", "daily summary"))
            await asyncio.sleep(0.05)
            log.append(f"reply {event.text}")
            await channel.send(
                AgentResponse("cli:local", "s1", f"re: {event.text}", in_reply_to=event.id)
            )

        tasks.append(asyncio.create_task(answer()))

    tasks: list[asyncio.Task[None]] = []
    pipe.send("one\ntwo\n")
    pipe.writer.close()
    await asyncio.wait_for(channel.run(dispatch), HANG_GUARD_S)
    # "two" is sent only after "one" got its own reply, not after the cron message.
    assert log == ["dispatch one", "reply one", "dispatch two", "reply two"]
    assert out.getvalue() == "daily summary\nre: one\ndaily summary\nre: two\n"


async def test_a_question_while_waiting_for_input_takes_the_next_line(pipe: Pipe) -> None:
    out = io.StringIO()
    channel = CliChannel(input_stream=pipe.reader, output_stream=out)
    running = asyncio.create_task(_run(channel, Answerer(channel)))
    await asyncio.sleep(0.05)  # the channel waits for input now
    question = asyncio.create_task(channel.ask_approval(_request("date")))
    await _eventually(lambda: "Allow system.run" in out.getvalue())
    pipe.send("n\nhello\n")
    assert await asyncio.wait_for(question, HANG_GUARD_S) == ApprovalAnswer(
        ApprovalDecision.DENY, "cli:local"
    )
    await _eventually(lambda: "re: hello" in out.getvalue())
    pipe.writer.close()
    await running


class ClosedPipe(io.StringIO):
    """What stdout becomes when its reader has gone (`openpista | head -c 5`)."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


async def test_a_reader_going_away_ends_the_channel_instead_of_hanging(pipe: Pipe) -> None:
    channel = CliChannel(input_stream=pipe.reader, output_stream=ClosedPipe())
    pipe.send("one\ntwo\n")  # the input goes on; nobody can read the answers any more
    await asyncio.wait_for(channel.run(Answerer(channel)), HANG_GUARD_S)


async def test_stopping_while_a_question_waits_denies_it_and_says_why(pipe: Pipe) -> None:
    out = io.StringIO()
    channel = CliChannel(input_stream=pipe.reader, output_stream=out)
    running = asyncio.create_task(_run(channel, Answerer(channel)))
    await asyncio.sleep(0.05)
    question = asyncio.create_task(channel.ask_approval(_request("date")))
    await _eventually(lambda: "Allow system.run" in out.getvalue())
    await channel.stop()
    await running
    answer = await asyncio.wait_for(question, HANG_GUARD_S)
    assert answer is not None and answer.decision == ApprovalDecision.DENY
    assert answer.reason is not None and "stopping" in answer.reason
    assert out.getvalue().endswith("[a]ll \n(openpista is stopping: not run)\n")


async def test_a_switch_to_a_fallback_model_is_shown_on_the_error_stream(pipe: Pipe) -> None:
    # The real gateway and agent, a primary that is down and a fallback that answers.
    from openpista.core.agent import Agent
    from openpista.core.errors import ProviderError
    from openpista.core.fallback import FallbackModel, FallbackProvider
    from openpista.core.gateway import Gateway
    from openpista.core.registry import ToolRegistry
    from openpista.core.testing import InMemoryStore, ScriptedProvider

    down = ProviderError("openai: server error (HTTP 503: overloaded)", retryable=True)
    primary = ScriptedProvider([down], name="openai", model="gpt-4.1-mini")
    fallback = ScriptedProvider(["Hi from the fallback."], name="ollama", model="llama3.2")
    chain = FallbackProvider(primary, [FallbackModel("ollama/llama3.2", lambda: fallback)])
    memory = InMemoryStore()
    out, err = io.StringIO(), io.StringIO()
    channel = CliChannel(input_stream=pipe.reader, output_stream=out, error_stream=err)
    gateway = Gateway(Agent(chain, ToolRegistry(), memory), memory, {"cli": channel})
    pipe.send("hi\n")
    pipe.writer.close()

    await asyncio.wait_for(channel.run(gateway.dispatch), HANG_GUARD_S)
    await gateway.shutdown()

    assert out.getvalue() == "Hi from the fallback.\n"
    assert err.getvalue() == (
        "openpista: openai/gpt-4.1-mini failed (openai: server error (HTTP 503: overloaded)); "
        "switched to ollama/llama3.2\n"
    )
