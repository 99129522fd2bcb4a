"""The tool registry: refusing colliding names, and dispatch that turns every failure into text."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from openpista.core.errors import ToolError, ToolRegistrationError
from openpista.core.models import Image, ToolCall, ToolResult
from openpista.core.registry import ToolRegistry
from openpista.core.tool import (
    WIRE_NAME_PATTERN,
    FunctionTool,
    Tool,
    ToolContext,
    ToolOutput,
    ToolStates,
    wire_name,
)

CONTEXT = ToolContext(session_id="s1", channel_id="test:1")

COMMAND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"command": {"type": "string"}},
    "required": ["command"],
}


class EchoTool(FunctionTool):
    """Returns its `command` argument, and remembers what it was called with."""

    def __init__(self, name: str = "test.echo", parameters: dict[str, Any] | None = None) -> None:
        super().__init__(
            name,
            self._echo,
            description=f"echo ({name})",
            parameters=parameters if parameters is not None else COMMAND_SCHEMA,
        )
        self.calls: list[tuple[dict[str, Any], ToolContext]] = []

    async def _echo(self, arguments: dict[str, Any], context: ToolContext) -> str:
        self.calls.append((arguments, context))
        return f"echo: {arguments.get('command')}"


class RaisingTool(FunctionTool):
    """Raises the exception it was given."""

    def __init__(self, name: str, exc: BaseException) -> None:
        async def raise_it(arguments: dict[str, Any], context: ToolContext) -> str:
            raise exc

        super().__init__(name, raise_it, description="raises")


def call(name: str, arguments: str = "{}", call_id: str = "c1") -> ToolCall:
    return ToolCall(id=call_id, name=name, arguments=arguments)


def test_tools_are_real_tools() -> None:
    assert isinstance(EchoTool(), Tool)


def test_specs_are_sorted_and_carry_wire_names() -> None:
    registry = ToolRegistry([EchoTool("system.run"), EchoTool("browser.click")])
    specs = registry.specs()
    assert [(spec.name, spec.wire_name) for spec in specs] == [
        ("browser.click", "browser_click"),
        ("system.run", "system_run"),
    ]
    assert specs[1].description == "echo (system.run)"
    assert specs[1].parameters == COMMAND_SCHEMA


def test_lookup_helpers() -> None:
    echo = EchoTool("system.run")
    registry = ToolRegistry()
    assert len(registry) == 0
    registry.register(echo)
    registry.register(EchoTool("a.tool"))
    assert len(registry) == 2
    assert "system.run" in registry
    assert "system.nothing" not in registry
    assert registry.get("system.run") is echo
    assert registry.get("system_run") is echo
    assert registry.get("nothing") is None
    assert registry.names() == ["a.tool", "system.run"]
    assert [spec.name for spec in registry.specs()] == ["a.tool", "system.run"]


def test_duplicate_name_is_refused_naming_both_tools() -> None:
    registry = ToolRegistry([EchoTool("system.run")])
    with pytest.raises(ToolRegistrationError) as raised:
        registry.register(RaisingTool("system.run", RuntimeError()))
    message = str(raised.value)
    assert "'system.run'" in message
    assert "EchoTool" in message
    assert "RaisingTool" in message
    assert registry.names() == ["system.run"]


def test_wire_name_collision_is_refused_naming_both_tools() -> None:
    registry = ToolRegistry([EchoTool("mcp.files.read")])
    with pytest.raises(ToolRegistrationError) as raised:
        registry.register(EchoTool("mcp.files_read"))
    message = str(raised.value)
    assert "'mcp.files_read'" in message
    assert "'mcp.files.read'" in message
    assert "mcp_files_read" in message
    assert len(registry) == 1


def test_an_empty_name_is_refused() -> None:
    registry = ToolRegistry()
    with pytest.raises(ToolRegistrationError, match="empty"):
        registry.register(EchoTool(""))
    assert len(registry) == 0


def test_a_wire_name_past_64_characters_is_shortened_the_same_way_every_time() -> None:
    long_name = "mcp.a-server-with-a-long-name." + "read_" * 10 + "file"
    shortened = wire_name(long_name)
    assert len(shortened) == 64
    assert WIRE_NAME_PATTERN.match(shortened)
    assert shortened == wire_name(long_name)
    assert shortened[:56] == long_name.replace(".", "_")[:55] + "_"
    # Names that agree in their first 55 characters still get different wire names.
    assert wire_name(long_name + "s") != shortened
    assert wire_name("x" * 64) == "x" * 64


async def test_a_tool_with_a_long_name_is_registered_and_found_by_its_wire_name() -> None:
    long_name = "mcp.filesystem." + "x" * 60
    echo = EchoTool(long_name)
    registry = ToolRegistry([echo])
    (spec,) = registry.specs()
    assert (spec.name, spec.wire_name) == (long_name, wire_name(long_name))
    assert len(spec.wire_name) == 64
    assert registry.get(spec.wire_name) is echo
    result = await registry.dispatch(call(spec.wire_name, '{"command": "x"}'), CONTEXT)
    assert (result.name, result.output) == (long_name, "echo: x")


def test_a_shortened_wire_name_that_collides_is_still_refused() -> None:
    long_name = "mcp.filesystem." + "x" * 60
    registry = ToolRegistry([EchoTool(long_name)])
    with pytest.raises(ToolRegistrationError, match="the same name as the registered tool"):
        registry.register(EchoTool(wire_name(long_name)))
    assert registry.names() == [long_name]


async def test_dispatch_runs_the_tool_with_parsed_arguments_and_context() -> None:
    echo = EchoTool()
    registry = ToolRegistry([echo])
    result = await registry.dispatch(call("test.echo", '{"command": "ls -l"}', "call-7"), CONTEXT)
    assert (result.call_id, result.name, result.output, result.is_error) == (
        "call-7",
        "test.echo",
        "echo: ls -l",
        False,
    )
    assert echo.calls == [({"command": "ls -l"}, CONTEXT)]


async def test_a_call_by_wire_name_reaches_the_tool() -> None:
    registry = ToolRegistry([EchoTool("system.run")])
    result = await registry.dispatch(call("system_run", '{"command": "x"}'), CONTEXT)
    assert not result.is_error
    assert result.name == "system.run"


async def test_unknown_tool_lists_the_available_ones() -> None:
    registry = ToolRegistry([EchoTool("system.run"), EchoTool("browser.click")])
    result = await registry.dispatch(call("system.explode"), CONTEXT)
    assert result.is_error
    assert result.output == (
        "unknown tool 'system.explode'. Available tools: browser.click, system.run."
    )


async def test_arguments_that_are_not_json_are_explained() -> None:
    echo = EchoTool()
    result = await ToolRegistry([echo]).dispatch(call("test.echo", '{"command": '), CONTEXT)
    assert result.is_error
    assert "invalid arguments for tool test.echo: arguments are not valid JSON" in result.output
    assert echo.calls == []


async def test_arguments_that_are_not_an_object_are_explained() -> None:
    result = await ToolRegistry([EchoTool()]).dispatch(call("test.echo", '["ls"]'), CONTEXT)
    assert result.is_error
    assert "arguments must be a JSON object, got list" in result.output


async def test_schema_problems_are_returned_to_the_llm() -> None:
    echo = EchoTool()
    result = await ToolRegistry([echo]).dispatch(call("test.echo", '{"command": 5}'), CONTEXT)
    assert result.is_error
    assert result.output.startswith(
        "invalid arguments for tool test.echo: command: expected a string, got number 5."
    )
    assert echo.calls == []


async def test_empty_arguments_count_as_an_empty_object() -> None:
    result = await ToolRegistry([EchoTool()]).dispatch(call("test.echo", ""), CONTEXT)
    assert result.output.startswith(
        "invalid arguments for tool test.echo: missing required property 'command'"
    )


async def test_tool_error_becomes_an_error_result_with_its_message() -> None:
    registry = ToolRegistry([RaisingTool("system.run", ToolError("no such file: x.txt"))])
    result = await registry.dispatch(call("system.run"), CONTEXT)
    assert result.is_error
    assert result.output == "no such file: x.txt"


async def test_unexpected_exception_becomes_an_error_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = ToolRegistry([RaisingTool("system.run", KeyError("boom"))])
    with caplog.at_level(logging.DEBUG, logger="openpista.core.registry"):
        result = await registry.dispatch(call("system.run"), CONTEXT)
    assert result.is_error
    assert result.output == "tool system.run failed: KeyError: 'boom'"
    assert any(record.exc_info for record in caplog.records)


async def test_cancellation_propagates() -> None:
    registry = ToolRegistry([RaisingTool("system.run", asyncio.CancelledError())])
    with pytest.raises(asyncio.CancelledError):
        await registry.dispatch(call("system.run"), CONTEXT)


async def test_images_are_kept_in_the_result(screenshot_tool: FunctionTool) -> None:
    result = await ToolRegistry([screenshot_tool]).dispatch(call("screen.capture"), CONTEXT)
    assert result.output == "[screenshot]"
    assert result.images == [Image("image/png", "AAAA")]


async def test_dispatch_all_runs_a_round_concurrently_in_call_order(
    handshake_tools: Callable[[str, str], tuple[FunctionTool, FunctionTool]],
) -> None:
    registry = ToolRegistry([*handshake_tools("test.first", "test.second"), EchoTool()])
    calls = [
        call("test.second", call_id="a"),
        call("test.echo", '{"command": "hi"}', call_id="b"),
        call("test.first", call_id="c"),
    ]
    # Run one after the other, the first handshake would wait forever for its partner.
    async with asyncio.timeout(10):
        results = await registry.dispatch_all(calls, CONTEXT)
    assert [(r.call_id, r.output) for r in results] == [
        ("a", "test.second met its partner"),
        ("b", "echo: hi"),
        ("c", "test.first met its partner"),
    ]


async def test_a_function_tool_is_registered_and_dispatched_like_any_tool() -> None:
    seen: list[tuple[dict[str, Any], ToolContext]] = []

    async def greet(arguments: dict[str, Any], context: ToolContext) -> str:
        seen.append((arguments, context))
        return f"hello, {arguments['who']}"

    greeter = FunctionTool(
        "test.greet",
        greet,
        description="Greet someone.",
        parameters={
            "type": "object",
            "properties": {"who": {"type": "string"}},
            "required": ["who"],
        },
    )
    assert isinstance(greeter, Tool)
    registry = ToolRegistry([greeter])
    (spec,) = registry.specs()
    assert (spec.name, spec.wire_name, spec.description) == (
        "test.greet",
        "test_greet",
        "Greet someone.",
    )
    result = await registry.dispatch(call("test.greet", '{"who": "Ada"}'), CONTEXT)
    assert (result.output, result.is_error) == ("hello, Ada", False)
    assert seen == [({"who": "Ada"}, CONTEXT)]
    # The schema still guards the function: a bad call never reaches it.
    refused = await registry.dispatch(call("test.greet", '{"who": 7}'), CONTEXT)
    assert refused.is_error
    assert len(seen) == 1


async def test_a_function_tool_wraps_text_and_passes_tool_output_through() -> None:
    async def text(arguments: dict[str, Any], context: ToolContext) -> str:
        return "plain text"

    async def failure(arguments: dict[str, Any], context: ToolContext) -> ToolOutput:
        return ToolOutput("disk full", is_error=True)

    assert await FunctionTool("t.text", text).run({}, CONTEXT) == ToolOutput("plain text")
    assert await FunctionTool("t.fail", failure).run({}, CONTEXT) == ToolOutput(
        "disk full", is_error=True
    )
    bare = FunctionTool("t.text", text)
    assert (bare.description, bare.parameters) == ("", {"type": "object"})
    assert repr(bare) == "FunctionTool('t.text')"


def logging_tool(name: str, log: list[str], *, serial_group: str | None = None) -> FunctionTool:
    """A tool that notes when each call starts and ends, yielding to the loop in between."""

    async def run(arguments: dict[str, Any], context: ToolContext) -> str:
        log.append(f"{name} {arguments['n']} start")
        await asyncio.sleep(0.01)
        log.append(f"{name} {arguments['n']} end")
        return f"{name} done"

    return FunctionTool(name, run, description="logs", serial_group=serial_group)


async def test_calls_sharing_a_serial_group_run_one_after_another_in_call_order() -> None:
    log: list[str] = []
    registry = ToolRegistry(
        [
            logging_tool("browser.click", log, serial_group="browser"),
            logging_tool("browser.type", log, serial_group="browser"),
        ]
    )
    calls = [
        call("browser.type", '{"n": 1}', "a"),
        call("browser.click", '{"n": 2}', "b"),
        call("browser.type", '{"n": 3}', "c"),
    ]
    results = await registry.dispatch_all(calls, CONTEXT)
    assert [r.call_id for r in results] == ["a", "b", "c"]
    assert log == [
        "browser.type 1 start",
        "browser.type 1 end",
        "browser.click 2 start",
        "browser.click 2 end",
        "browser.type 3 start",
        "browser.type 3 end",
    ]


async def test_a_serial_chain_runs_alongside_other_calls_and_other_chains(
    handshake_tools: Callable[[str, str], tuple[FunctionTool, FunctionTool]],
) -> None:
    log: list[str] = []
    first, second = handshake_tools("tab.one", "tab.two")
    first.serial_group, second.serial_group = "tab-1", "tab-2"
    loose_first, loose_second = handshake_tools("test.first", "test.second")
    registry = ToolRegistry(
        [
            first,
            second,
            loose_first,
            loose_second,
            logging_tool("browser.click", log, serial_group="browser"),
        ]
    )
    calls = [
        call("browser.click", '{"n": 1}', "a"),
        call("tab.one", call_id="b"),
        call("test.first", call_id="c"),
        call("browser.click", '{"n": 2}', "d"),
        call("tab.two", call_id="e"),
        call("test.second", call_id="f"),
    ]
    # Different groups and ungrouped calls must overlap, or a handshake waits forever.
    async with asyncio.timeout(10):
        results = await registry.dispatch_all(calls, CONTEXT)
    assert [(r.call_id, r.output) for r in results] == [
        ("a", "browser.click done"),
        ("b", "tab.one met its partner"),
        ("c", "test.first met its partner"),
        ("d", "browser.click done"),
        ("e", "tab.two met its partner"),
        ("f", "test.second met its partner"),
    ]
    assert log == [
        "browser.click 1 start",
        "browser.click 1 end",
        "browser.click 2 start",
        "browser.click 2 end",
    ]


async def test_run_round_runs_the_callers_function_on_every_call() -> None:
    registry = ToolRegistry([EchoTool("browser.click"), EchoTool("system.run")])
    seen: list[str] = []

    async def run_one(tool_call: ToolCall) -> ToolResult:
        seen.append(tool_call.id)
        return ToolResult(tool_call.id, tool_call.name, f"ran {tool_call.id}")

    calls = [call("system.run", call_id="a"), call("nothing.here", call_id="b")]
    results = await registry.run_round(calls, run_one)
    assert [r.output for r in results] == ["ran a", "ran b"]
    assert sorted(seen) == ["a", "b"]
    assert await registry.run_round([], run_one) == []


async def test_when_one_call_of_a_round_raises_the_others_are_cancelled() -> None:
    registry = ToolRegistry([EchoTool("system.run")])
    cancelled = asyncio.Event()

    async def run_one(tool_call: ToolCall) -> ToolResult:
        if tool_call.id == "boom":
            await asyncio.sleep(0)
            raise RuntimeError("approval channel closed")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    calls = [call("system.run", call_id="waits"), call("system.run", call_id="boom")]
    with pytest.raises(RuntimeError, match="approval channel closed"):
        await registry.run_round(calls, run_one)
    assert cancelled.is_set()


class ClosingTool(FunctionTool):
    """Records its aclose() in a shared list; raises there when told to."""

    def __init__(self, name: str, closed: list[str], *, fails: bool = False) -> None:
        async def noop(arguments: dict[str, Any], context: ToolContext) -> str:
            return ""

        super().__init__(name, noop)
        self.closed = closed
        self.fails = fails

    async def aclose(self) -> None:
        self.closed.append(self.name)
        if self.fails:
            raise OSError("browser already gone")


async def test_aclose_closes_every_tool_newest_first_once_despite_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed: list[str] = []
    registry = ToolRegistry(
        [
            ClosingTool("a.first", closed),
            EchoTool("b.no_aclose"),
            ClosingTool("c.fails", closed, fails=True),
            ClosingTool("d.last", closed),
        ]
    )
    with caplog.at_level(logging.WARNING, logger="openpista.core.registry"):
        await registry.aclose()
    assert closed == ["d.last", "c.fails", "a.first"]
    assert [record.getMessage() for record in caplog.records] == ["closing tool c.fails failed"]
    await registry.aclose()
    assert closed == ["d.last", "c.fails", "a.first"]


async def test_tool_states_give_a_session_the_same_state_on_every_call() -> None:
    async def count(arguments: dict[str, Any], context: ToolContext) -> str:
        calls = context.state.get("test.count", 0) + 1
        context.state["test.count"] = calls
        return f"call {calls} in {context.session_id}"

    registry = ToolRegistry([FunctionTool("test.count", count)])
    states = ToolStates()

    def context_for(session_id: str) -> ToolContext:
        return ToolContext(session_id, "test:1", state=states.for_session(session_id))

    outputs = [
        (await registry.dispatch(call("test.count"), context_for(session_id))).output
        for session_id in ("s1", "s1", "s2")
    ]
    assert outputs == ["call 1 in s1", "call 2 in s1", "call 1 in s2"]
    assert len(states) == 2
    states.forget("s1")
    states.forget("never-seen")
    assert (await registry.dispatch(call("test.count"), context_for("s1"))).output == (
        "call 1 in s1"
    )
