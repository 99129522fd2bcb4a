"""The tool registry: refusing colliding names, and dispatch that turns every failure into text."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from openpista.core.errors import ToolError, ToolRegistrationError
from openpista.core.models import Image, ToolCall
from openpista.core.registry import ToolRegistry
from openpista.core.tool import FunctionTool, Tool, ToolContext, ToolOutput

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


def test_empty_and_too_long_names_are_refused() -> None:
    registry = ToolRegistry()
    with pytest.raises(ToolRegistrationError, match="empty"):
        registry.register(EchoTool(""))
    with pytest.raises(ToolRegistrationError, match="65 characters"):
        registry.register(EchoTool("x" * 65))
    registry.register(EchoTool("x" * 64))
    assert registry.names() == ["x" * 64]


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
