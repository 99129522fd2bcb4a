"""Pictures in a conversation, as each protocol sends them: inline for models known to take
images (at most 1 MB of base64), a one-line placeholder for every other model; checked
against the fake servers, which refuse what the real APIs refuse (an image in a tool message
of chat completions, a malformed image block)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest

from openpista.core.models import FilePart, ImagePart, Message, TextPart, ToolCall
from openpista.core.provider import ChatRequest, LlmProvider
from openpista.providers.anthropic import AnthropicProvider
from openpista.providers.chat_completions import ChatCompletionsProvider
from openpista.providers.pictures import MAX_INLINE_PICTURE_BYTES, accepts_images
from openpista.providers.responses import ResponsesProvider
from openpista.providers.testing import (
    FakeAnthropicServer,
    FakeChatCompletionsServer,
    FakeResponsesServer,
)

from .conftest import SYSTEM_RUN

# A real 1x1 PNG: what a screenshot's file holds, in miniature.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
SHOT = ImagePart("ab/ab12.png", "image/png", name="screen.capture-1", size=len(PNG))


def media(files: dict[str, bytes]) -> Callable[[str], bytes]:
    def read(path: str) -> bytes:
        return files[path]  # KeyError: a file that is gone

    return read


def conversation(*parts: ImagePart | FilePart | TextPart) -> list[Message]:
    """A tool round whose result carries `parts`, then the user's thanks."""
    return [
        Message("user", "what is on my screen?"),
        Message(
            "assistant",
            "",
            tool_calls=[ToolCall("call_1", "system.run", '{"command": "shot"}')],
        ),
        Message("tool", "Screenshot of display :1, 1x1 PNG", tool_call_id="call_1", parts=[*parts]),
        Message("user", "thanks"),
    ]


async def ask(provider: LlmProvider, messages: list[Message], files: dict[str, bytes]) -> None:
    try:
        await provider.complete(ChatRequest(messages, [SYSTEM_RUN], read_media=media(files)))
    finally:
        await provider.aclose()


def chat(server: FakeChatCompletionsServer, name: str, model: str) -> ChatCompletionsProvider:
    return ChatCompletionsProvider(
        name=name, model=model, base_url=server.base_url, api_key="k", max_attempts=1
    )


def test_only_known_image_models_of_known_services_take_pictures() -> None:
    assert accepts_images("openai", "gpt-4o-mini")
    assert accepts_images("anthropic", "claude-sonnet-4-5")
    assert accepts_images("openrouter", "google/gemini-2.5-flash")
    assert not accepts_images("openai", "gpt-3.5-turbo")
    # A custom server may be anything, whatever its model is called.
    assert not accepts_images("custom", "gpt-4o")
    assert not accepts_images("my-llamacpp", "gpt-4o")
    assert not accepts_images("ollama", "llama3.2")


async def test_a_custom_model_gets_a_placeholder_and_no_base64() -> None:
    with FakeChatCompletionsServer() as server:
        await ask(chat(server, "custom", "gpt-4o"), conversation(SHOT), {SHOT.path: PNG})
        body = server.requests[0]
    tool = body["messages"][2]
    assert tool["role"] == "tool"
    assert tool["content"] == (
        "Screenshot of display :1, 1x1 PNG\n"
        "[picture screen.capture-1: PNG, 0.1 KB; the user has it, it is not shown to you]"
    )
    assert ";base64," not in json.dumps(body)
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool", "user"]


async def test_an_image_model_gets_the_picture_after_the_tool_results() -> None:
    with FakeChatCompletionsServer() as server:
        await ask(chat(server, "openai", "gpt-4o"), conversation(SHOT), {SHOT.path: PNG})
        body = server.requests[0]
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["user", "assistant", "tool", "user", "user"]
    assert body["messages"][2]["content"].endswith("[picture screen.capture-1: attached]")
    pictures = body["messages"][3]["content"]
    assert pictures[0]["text"] == "(the pictures from the tool results above: screen.capture-1)"
    url = pictures[1]["image_url"]["url"]
    assert url == "data:image/png;base64," + base64.b64encode(PNG).decode()


async def test_a_picture_over_one_megabyte_is_described_instead() -> None:
    big = b"\x89PNG" + bytes(MAX_INLINE_PICTURE_BYTES)
    part = ImagePart("cd/cd34.png", "image/png", name="screen.capture-1", size=len(big))
    with FakeChatCompletionsServer() as server:
        await ask(chat(server, "openai", "gpt-4o"), conversation(part), {part.path: big})
        body = server.requests[0]
    assert ";base64," not in json.dumps(body)
    assert "too large to show you" in body["messages"][2]["content"]
    assert len(json.dumps(body)) < 10_000


async def test_a_picture_whose_file_is_gone_is_said_to_be_gone() -> None:
    with FakeChatCompletionsServer() as server:
        await ask(chat(server, "openai", "gpt-4o"), conversation(SHOT), {})
        body = server.requests[0]
    assert (
        "[picture screen.capture-1: its file is gone from the media folder]"
        in (body["messages"][2]["content"])
    )
    assert len(body["messages"]) == 4


async def test_text_parts_and_files_reach_the_model_as_text() -> None:
    doc = FilePart("ef/ef56.pdf", "application/pdf", name="report.pdf", size=120 * 1024)
    with FakeChatCompletionsServer() as server:
        await ask(chat(server, "custom", "m"), conversation(TextPart("page 1: hello"), doc), {})
        body = server.requests[0]
    assert body["messages"][2]["content"] == (
        "Screenshot of display :1, 1x1 PNG\npage 1: hello\n"
        "[file report.pdf: application/pdf, 120 KB]"
    )


async def test_a_photo_the_user_sent_goes_with_their_message() -> None:
    photo = ImagePart("aa/photo.jpg", "image/jpeg", name="photo.jpg", size=len(PNG))
    messages = [Message("user", "what is this?", parts=[photo])]
    with FakeChatCompletionsServer() as server:
        await ask(chat(server, "openai", "gpt-4.1-mini"), messages, {photo.path: PNG})
        body = server.requests[0]
    content = body["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "what is this?\n[picture photo.jpg: attached]"}
    assert content[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")


async def test_the_fake_refuses_an_image_in_a_tool_message_as_the_api_does() -> None:
    """The reason pictures of tool results travel in a user message of their own."""
    import httpx

    body = {
        "model": "gpt-4o",
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "x", "arguments": "{}"},
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "c1",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}
                ],
            },
        ],
    }
    with FakeChatCompletionsServer() as server:
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{server.base_url}/chat/completions", json=body)
    assert response.status_code == 400
    assert "only allowed for messages with role 'user'" in response.json()["error"]["message"]


async def test_anthropic_keeps_the_picture_inside_its_tool_result() -> None:
    with FakeAnthropicServer() as server:
        provider = AnthropicProvider(
            name="anthropic", model="claude-sonnet-4-5", base_url=server.base_url, api_key="k"
        )
        await ask(provider, conversation(SHOT), {SHOT.path: PNG})
        body = server.requests[0]
    result = body["messages"][2]["content"][0]
    assert result["type"] == "tool_result"
    assert result["content"][1] == {
        "type": "image",
        "source": {
            "type": "base64",
            "media_type": "image/png",
            "data": base64.b64encode(PNG).decode(),
        },
    }


async def test_anthropic_compatible_custom_servers_get_the_placeholder() -> None:
    with FakeAnthropicServer() as server:
        provider = AnthropicProvider(
            name="custom", model="claude-sonnet-4-5", base_url=server.base_url, api_key="k"
        )
        await ask(provider, conversation(SHOT), {SHOT.path: PNG})
        body = server.requests[0]
    assert ";base64," not in json.dumps(body)
    assert "it is not shown to you]" in body["messages"][2]["content"][0]["content"]


@pytest.mark.parametrize(("name", "inline"), [("openai", True), ("custom", False)])
async def test_responses_sends_an_input_image_after_the_outputs(name: str, inline: bool) -> None:
    with FakeResponsesServer() as server:
        provider = ResponsesProvider(
            name=name, model="gpt-5", base_url=server.base_url, api_key="k", max_attempts=1
        )
        await ask(provider, conversation(SHOT), {SHOT.path: PNG})
        body = server.requests[0]
    kinds = [item.get("type") for item in body["input"]]
    if inline:
        assert kinds == ["message", "function_call", "function_call_output", "message", "message"]
        image = body["input"][3]["content"][1]
        assert image["type"] == "input_image"
        assert image["image_url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    else:
        assert kinds == ["message", "function_call", "function_call_output", "message"]
        assert ";base64," not in json.dumps(body)
