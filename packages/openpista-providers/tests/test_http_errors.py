"""How the shared HTTP base words failures every protocol can meet (providers/_http.py),
driven through the chat-completions provider against the fake server."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from openpista.core.errors import ProviderError
from openpista.core.models import Message
from openpista.core.provider import ChatRequest
from openpista.providers.chat_completions import ChatCompletionsProvider
from openpista.providers.testing import FakeChatCompletionsServer, FakeReply

MakeProvider = Callable[..., ChatCompletionsProvider]

HI = ChatRequest(messages=[Message(role="user", content="hi")])

DIRECTORY_PAGE = (
    "<!DOCTYPE HTML>\n<html lang='en'><head><title>Error response</title></head>"
    "<body><h1>Error response</h1><p>Error code: 501</p></body></html>"
)


async def test_a_web_server_that_is_no_api_is_said_at_once_without_its_page(
    server: FakeChatCompletionsServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    # What `python3 -m http.server` answers a POST with.
    server.queue(FakeReply(status=501, raw_body=DIRECTORY_PAGE))

    with pytest.raises(ProviderError) as caught:
        await make_provider().complete(HI)

    message = str(caught.value)
    assert "answered HTTP 501 with a web page, not an API error" in message
    assert "providers.openai.base_url points at an OpenAI-compatible API" in message
    assert "<" not in message
    assert delays == []  # not retried
    assert len(server.requests) == 1


async def test_a_proxy_error_page_on_a_5xx_is_retried_and_not_quoted(
    server: FakeChatCompletionsServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    for _ in range(3):
        server.queue(FakeReply(status=502, raw_body=page))

    with pytest.raises(ProviderError) as caught:
        await make_provider().complete(HI)

    assert str(caught.value).startswith("openai: server error (HTTP 502: a web page)")
    assert len(delays) == 2


async def test_a_retry_after_longer_than_we_would_wait_falls_through_at_once(
    server: FakeChatCompletionsServer, make_provider: MakeProvider, delays: list[float]
) -> None:
    server.queue_error(429, "Rate limit reached", retry_after=3600)
    server.queue_text("never asked for")

    with pytest.raises(ProviderError) as caught:
        await make_provider().complete(HI)

    message = str(caught.value)
    assert "rate limited (HTTP 429: Rate limit reached)" in message
    assert "the server asks to wait 3600 s" in message
    assert caught.value.retryable  # so a fallback model answers instead
    assert delays == []
    assert server.pending == 1


async def test_an_unknown_model_in_a_400_lists_the_known_ones(
    server: FakeChatCompletionsServer, make_provider: MakeProvider
) -> None:
    server.queue(
        FakeReply(
            status=400,
            raw_body='{"error": {"message": "The requested model \'nosuch\' does not exist.",'
            ' "type": "invalid_request_error", "code": "model_not_found"}}',
        )
    )

    with pytest.raises(ProviderError) as caught:
        await make_provider(model="nosuch").complete(HI)

    message = str(caught.value)
    assert "HTTP 400): The requested model 'nosuch' does not exist; known" in message
    assert "known models for openai: " in message and "gpt-4.1-mini" in message


async def test_a_placeholder_key_does_not_garble_the_message(
    make_provider: MakeProvider, unused_port: int
) -> None:
    # Ollama's docs use the key "ollama"; masking it would turn the provider's own name
    # into *** (real keys are far longer and still masked).
    provider = make_provider(
        name="ollama", api_key="ollama", base_url=f"http://127.0.0.1:{unused_port}/v1"
    )

    with pytest.raises(ProviderError) as caught:
        await provider.complete(HI)

    assert str(caught.value).startswith("ollama: cannot reach http://127.0.0.1:")
    assert "providers.ollama.base_url" in str(caught.value)


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
