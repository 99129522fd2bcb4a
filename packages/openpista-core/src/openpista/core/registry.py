"""The tools the agent can call: registration under unique wire names, and safe dispatch.

Dispatch never raises for anything the LLM or a tool did wrong: every failure becomes an error
ToolResult whose text tells the LLM what happened, so it can correct itself on the next round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, cast

from openpista.core.errors import ToolError, ToolRegistrationError
from openpista.core.models import ToolCall, ToolResult
from openpista.core.provider import ToolSpec
from openpista.core.schema import validate_arguments
from openpista.core.tool import MAX_WIRE_NAME_LENGTH, Tool, ToolContext, ToolOutput, wire_name

__all__ = ["MAX_WIRE_NAME_LENGTH", "ToolRegistry", "close_tools"]

logger = logging.getLogger(__name__)


class ToolRegistry:
    """Tools by internal name, each with a wire name no other tool shares."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self._by_wire_name: dict[str, Tool] = {}
        self._specs: list[ToolSpec] | None = None
        self._closed = False
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        """Add `tool`; raises ToolRegistrationError for a bad or colliding name."""
        name = tool.name
        if not name:
            raise ToolRegistrationError(
                f"cannot register tool {tool!r}: its name is empty; give it a dotted name "
                "such as 'system.run'"
            )
        if name in self._tools:
            raise ToolRegistrationError(
                f"cannot register tool '{name}' ({_origin(tool)}): a tool with that name is "
                f"already registered ({_origin(self._tools[name])}); remove one of them"
            )
        wire = wire_name(name)
        clash = self._by_wire_name.get(wire)
        if clash is not None:
            raise ToolRegistrationError(
                f"cannot register tool '{name}': providers would see it as '{wire}', the same "
                f"name as the registered tool '{clash.name}'; rename one of them"
            )
        self._tools[name] = tool
        self._by_wire_name[wire] = tool
        self._specs = None

    def specs(self) -> list[ToolSpec]:
        """The tools as offered to the LLM, sorted by name."""
        if self._specs is None:
            self._specs = [
                ToolSpec(
                    name=tool.name,
                    wire_name=wire_name(tool.name),
                    description=tool.description,
                    parameters=tool.parameters,
                )
                for tool in sorted(self._tools.values(), key=lambda tool: tool.name)
            ]
        return list(self._specs)

    def get(self, name: str) -> Tool | None:
        """The tool with internal name `name` (or, failing that, with that wire name)."""
        return self._tools.get(name) or self._by_wire_name.get(name)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def check(self, call: ToolCall) -> ToolResult | None:
        """Why `call` cannot run (unknown tool, arguments that are not JSON or do not match the
        schema), as the error result the LLM gets; None when it can. Cheap: the agent checks
        before asking the user to approve a call that could never run."""
        found = self._resolve(call)
        return found if isinstance(found, ToolResult) else None

    def _resolve(self, call: ToolCall) -> ToolResult | tuple[Tool, dict[str, Any]]:
        tool = self.get(call.name)
        if tool is None:
            available = ", ".join(self.names()) or "none"
            return ToolResult(
                call.id,
                call.name,
                f"unknown tool '{call.name}'. Available tools: {available}.",
                is_error=True,
            )
        name = tool.name
        try:
            arguments = call.parsed_arguments()
        except ValueError as exc:
            return ToolResult(
                call.id,
                name,
                f"invalid arguments for tool {name}: {exc}. Call it again with a JSON object "
                "matching its parameters.",
                is_error=True,
            )
        problems = validate_arguments(tool.parameters, arguments)
        if problems:
            return ToolResult(
                call.id,
                name,
                f"invalid arguments for tool {name}: {'; '.join(problems)}. Call it again with "
                "arguments matching its parameters.",
                is_error=True,
            )
        return tool, arguments

    async def dispatch(self, call: ToolCall, context: ToolContext) -> ToolResult:
        """Run one call; every failure becomes an error result the LLM can read."""
        found = self._resolve(call)
        if isinstance(found, ToolResult):
            return found
        tool, arguments = found
        name = tool.name
        try:
            output: Any = await tool.run(arguments, context)
        except ToolError as exc:
            return ToolResult(call.id, name, str(exc) or f"tool {name} failed", is_error=True)
        except Exception as exc:
            logger.debug("tool %s raised", name, exc_info=True)
            return ToolResult(
                call.id, name, f"tool {name} failed: {type(exc).__name__}: {exc}", is_error=True
            )
        if isinstance(output, ToolOutput):
            return ToolResult(call.id, name, output.text, output.is_error, output.images)
        # A third-party tool that returns plain text instead of a ToolOutput still works.
        return ToolResult(call.id, name, str(output))

    async def dispatch_all(
        self, calls: Sequence[ToolCall], context: ToolContext
    ) -> list[ToolResult]:
        """Dispatch a round's calls as `run_round` orders them; results come back in call order."""
        return await self.run_round(calls, lambda call: self.dispatch(call, context))

    async def run_round(
        self,
        calls: Sequence[ToolCall],
        run_one: Callable[[ToolCall], Awaitable[ToolResult]],
    ) -> list[ToolResult]:
        """Run `run_one` on every call of a round; results come back in call order.

        Calls run concurrently, except that calls of tools sharing a `serial_group` form one
        chain that runs one call after another in the order the model gave them (a browser's
        click, then its type). Chains and ungrouped calls run concurrently with each other.
        If one call raises, the rest are cancelled and the exception propagates.
        """
        if len(calls) == 1:
            return [await run_one(calls[0])]
        results: list[ToolResult | None] = [None] * len(calls)
        chains: dict[str, list[int]] = {}
        loose: list[int] = []
        for index, call in enumerate(calls):
            group = self._serial_group(call.name)
            if group is None:
                loose.append(index)
            else:
                chains.setdefault(group, []).append(index)

        async def run_chain(indexes: list[int]) -> None:
            for index in indexes:
                results[index] = await run_one(calls[index])

        tasks = [
            asyncio.ensure_future(run_chain(indexes))
            for indexes in (*([index] for index in loose), *chains.values())
        ]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            # gather leaves the others running when one fails or this round is cancelled.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        # Every chain has finished, so every slot holds its call's result.
        return cast("list[ToolResult]", results)

    def _serial_group(self, name: str) -> str | None:
        tool = self.get(name)
        group: object = getattr(tool, "serial_group", None) if tool is not None else None
        return group if isinstance(group, str) and group else None

    async def aclose(self) -> None:
        """Release what the tools opened: each tool's `aclose()`, newest first, once.

        A tool whose `aclose()` fails is logged and the rest are still closed; a second call
        does nothing.
        """
        if self._closed:
            return
        self._closed = True
        await close_tools(reversed(list(self._tools.values())))


async def close_tools(tools: Iterable[Tool]) -> None:
    """Await `aclose()` of each tool that has one, in order; failures are logged, not raised."""
    for tool in tools:
        close: object = getattr(tool, "aclose", None)
        if not callable(close):
            continue
        try:
            await cast("Callable[[], Awaitable[object]]", close)()
        except Exception:
            logger.warning("closing tool %s failed", tool.name, exc_info=True)


def _origin(tool: Tool) -> str:
    cls = type(tool)
    return f"{cls.__module__}.{cls.__qualname__}"
