"""Fixtures: a fake chat-completions server on 127.0.0.1 and providers pointed at it; and
what the protocol tests share (tools, a one-line request, a collector of streamed text, a
maker of providers)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from openpista.core.models import Message
from openpista.core.provider import ChatRequest, ToolSpec
from openpista.providers._provider import HttpProvider
from openpista.providers.chat_completions import ChatCompletionsProvider
from openpista.providers.credentials import CredentialStore
from openpista.providers.testing import FakeAuthorizationServer, FakeChatCompletionsServer

P = TypeVar("P", bound=HttpProvider)

SYSTEM_RUN = ToolSpec(
    name="system.run",
    wire_name="system_run",
    description="Run a shell command",
    parameters={"type": "object", "properties": {"command": {"type": "string"}}},
)
BROWSER_NAVIGATE = ToolSpec(
    name="browser.navigate",
    wire_name="browser_navigate",
    description="Open a URL",
    parameters={"type": "object", "properties": {"url": {"type": "string"}}},
)


def ask(text: str, tools: list[ToolSpec] | None = None) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=text)], tools=tools or [])


class Deltas:
    """Collects streamed text pieces in arrival order."""

    def __init__(self) -> None:
        self.pieces: list[str] = []

    async def __call__(self, piece: str) -> None:
        self.pieces.append(piece)


@contextlib.asynccontextmanager
async def providers_made(
    kind: Callable[..., P], delays: list[float], **defaults: Any
) -> AsyncIterator[Callable[..., P]]:
    """A maker of `kind` providers with these keyword arguments (each call may override
    them), all closed at the end. Their backoff sleeps are recorded in `delays` instead of
    waited for."""
    made: list[P] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)

    def make(**overrides: Any) -> P:
        provider = kind(**{"timeout_s": 30.0, "sleep": sleep, **defaults, **overrides})
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


@pytest.fixture
def server() -> Iterator[FakeChatCompletionsServer]:
    with FakeChatCompletionsServer() as fake:
        yield fake


@pytest.fixture
def delays() -> list[float]:
    """The backoff delays providers made by `make_provider` asked for, in order."""
    return []


ProviderMaker = Callable[..., ChatCompletionsProvider]


@pytest.fixture
async def make_provider(
    server: FakeChatCompletionsServer, delays: list[float]
) -> AsyncIterator[ProviderMaker]:
    """Providers aimed at the fake server by default; all closed after the test.

    Their backoff sleeps are recorded in `delays` instead of waited for.
    """
    async with providers_made(
        ChatCompletionsProvider,
        delays,
        name="openai",
        model="fake-model",
        base_url=server.base_url,
        api_key="sk-test-key",
    ) as make:
        yield make


@pytest.fixture
def auth_server() -> Iterator[FakeAuthorizationServer]:
    """A fake authorization server for every sign-in flow."""
    with FakeAuthorizationServer() as fake:
        yield fake


@pytest.fixture
def credential_store(tmp_path: Path) -> CredentialStore:
    """A file-backed credential store in a fresh OPENPISTA_HOME."""
    return CredentialStore.open(tmp_path / "home", env={"OPENPISTA_CREDENTIALS_BACKEND": "file"})
