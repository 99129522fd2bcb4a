"""Fixtures: a fake chat-completions server on 127.0.0.1 and providers pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from openpista.providers.chat_completions import ChatCompletionsProvider
from openpista.providers.credentials import CredentialStore
from openpista.providers.testing import FakeAuthorizationServer, FakeChatCompletionsServer


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
    made: list[ChatCompletionsProvider] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)

    def make(**overrides: Any) -> ChatCompletionsProvider:
        options: dict[str, Any] = {
            "name": "openai",
            "model": "fake-model",
            "base_url": server.base_url,
            "api_key": "sk-test-key",
            "timeout_s": 30.0,
            "sleep": sleep,
        }
        options.update(overrides)
        provider = ChatCompletionsProvider(**options)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


@pytest.fixture
def auth_server() -> Iterator[FakeAuthorizationServer]:
    """A fake authorization server for every sign-in flow."""
    with FakeAuthorizationServer() as fake:
        yield fake


@pytest.fixture
def credential_store(tmp_path: Path) -> CredentialStore:
    """A file-backed credential store in a fresh OPENPISTA_HOME."""
    return CredentialStore.open(tmp_path / "home", env={"OPENPISTA_CREDENTIALS_BACKEND": "file"})
