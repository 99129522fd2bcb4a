"""Tools the core tests share: a screenshot tool, and tools that prove calls run concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from openpista.core.models import Image
from openpista.core.tool import FunctionTool, ToolContext, ToolOutput

SCREENSHOT = Image("image/png", "AAAA")

HandshakeTools = Callable[[str, str], tuple[FunctionTool, FunctionTool]]


@pytest.fixture
def screenshot_tool() -> FunctionTool:
    """`screen.capture`: returns the text "[screenshot]" with one PNG image."""

    async def capture(arguments: dict[str, Any], context: ToolContext) -> ToolOutput:
        return ToolOutput("[screenshot]", images=[SCREENSHOT])

    return FunctionTool(
        "screen.capture", capture, description="Take a screenshot.", requires_approval=False
    )


@pytest.fixture
def handshake_tools() -> HandshakeTools:
    """Two tools named as asked that each finish only while the other runs too.

    Each sets its own event and waits for its partner's, so run one after the other the first
    waits forever. Each answers "<name> met its partner".
    """

    def make(first: str, second: str) -> tuple[FunctionTool, FunctionTool]:
        first_ready, second_ready = asyncio.Event(), asyncio.Event()
        return (
            _handshake(first, first_ready, second_ready),
            _handshake(second, second_ready, first_ready),
        )

    return make


def _handshake(name: str, mine: asyncio.Event, partner: asyncio.Event) -> FunctionTool:
    async def meet(arguments: dict[str, Any], context: ToolContext) -> str:
        mine.set()
        await partner.wait()
        return f"{name} met its partner"

    return FunctionTool(name, meet, description="handshake")
