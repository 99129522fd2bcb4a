"""The litellm-served providers, driving the real litellm against the fake chat-completions
server on 127.0.0.1 (litellm's `openai/` route speaks chat completions to any base URL)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from openpista.core.errors import ProviderError
from openpista.core.models import Message
from openpista.core.provider import ChatRequest, ProviderSettings, ToolSpec
from openpista.providers.testing import FakeChatCompletionsServer
from openpista.providers.via_litellm import ROUTES, create_provider, litellm_model

SYSTEM_RUN = ToolSpec(
    name="system.run",
    wire_name="system_run",
    description="Run a shell command",
    parameters={"type": "object", "properties": {"command": {"type": "string"}}},
)


def settings(server: FakeChatCompletionsServer, **overrides: str) -> ProviderSettings:
    values = {
        "name": "litellm",
        "model": "openai/fake-model",
        "base_url": server.base_url,
        "api_key": "sk-litellm-test",
    }
    values.update(overrides)
    return ProviderSettings(timeout_s=30, **values)  # type: ignore[arg-type]


def test_each_provider_name_gets_its_litellm_prefix_once() -> None:
    assert litellm_model(ROUTES["gemini"], "gemini-2.5-flash") == "gemini/gemini-2.5-flash"
    assert litellm_model(ROUTES["gemini"], "gemini/gemini-2.5-flash") == "gemini/gemini-2.5-flash"
    assert litellm_model(ROUTES["vercel"], "openai/gpt-4.1") == "vercel_ai_gateway/openai/gpt-4.1"
    assert litellm_model(ROUTES["litellm"], "litellm/mistral/mistral-large") == (
        "mistral/mistral-large"
    )


async def test_a_streamed_reply_arrives_through_litellm() -> None:
    with FakeChatCompletionsServer() as server:
        server.queue_text("Hello from the long tail.")
        provider = create_provider(settings(server))
        pieces: list[str] = []

        async def on_delta(piece: str) -> None:
            pieces.append(piece)

        response = await provider.complete(
            ChatRequest(messages=[Message(role="user", content="hi")]), on_delta=on_delta
        )

    assert response.message.content == "Hello from the long tail."
    assert "".join(pieces) == "Hello from the long tail."
    assert server.requests[-1]["model"] == "fake-model"
    assert server.headers[-1]["authorization"] == "Bearer sk-litellm-test"


async def test_a_tool_round_goes_through_litellm_under_wire_names() -> None:
    with FakeChatCompletionsServer() as server:
        server.queue_tool_calls([("system_run", {"command": "ls"})])
        server.queue_text("Two files.")
        provider = create_provider(settings(server))
        first = await provider.complete(
            ChatRequest(messages=[Message(role="user", content="list")], tools=[SYSTEM_RUN])
        )
        [call] = first.message.tool_calls
        history = [
            Message(role="user", content="list"),
            first.message,
            Message(role="tool", content="a.txt b.txt", tool_call_id=call.id),
        ]
        second = await provider.complete(ChatRequest(messages=history, tools=[SYSTEM_RUN]))

    assert call.name == "system.run"
    assert call.arguments == '{"command": "ls"}' or '"ls"' in call.arguments
    assert first.finish_reason == "tool_calls"
    assert second.message.content == "Two files."
    sent = server.requests[-1]["messages"]
    assert sent[-1] == {"role": "tool", "tool_call_id": call.id, "content": "a.txt b.txt"}


async def test_a_refused_key_is_one_line_naming_the_provider_and_status() -> None:
    with FakeChatCompletionsServer(require_api_key="the-right-key") as server:
        provider = create_provider(settings(server))
        with pytest.raises(ProviderError) as caught:
            await provider.complete(ChatRequest(messages=[Message(role="user", content="hi")]))

    message = str(caught.value)
    assert message.startswith("litellm: authentication failed (HTTP 401)")
    assert "\n" not in message
    assert "sk-litellm-test" not in message
    assert "providers.litellm.api_key" in message
    assert caught.value.status_code == 401 and not caught.value.retryable


def test_without_the_extra_installed_the_error_says_how_to_install_it() -> None:
    # A child interpreter where importing litellm fails as it does when it is not installed.
    script = (
        "import sys, asyncio\n"
        "sys.modules['litellm'] = None\n"
        "from openpista.core.models import Message\n"
        "from openpista.core.provider import ChatRequest, ProviderSettings\n"
        "from openpista.providers.via_litellm import create_provider\n"
        "p = create_provider(ProviderSettings(name='gemini', model='gemini-2.5-flash'))\n"
        "try:\n"
        "    asyncio.run(p.complete(ChatRequest(messages=[Message(role='user', content='hi')])))\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)

    assert done.stdout.strip() == (
        "ProviderError gemini is served through litellm, which is not installed: "
        "pip install 'openpista-providers[litellm]'"
    )


def test_no_model_is_refused_with_an_example() -> None:
    with pytest.raises(ProviderError, match=r"gemini: no model chosen.*gemini-2.5-flash"):
        create_provider(ProviderSettings(name="gemini", model=""))


def test_loading_the_entry_point_does_not_import_litellm() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, openpista.providers.via_litellm; print('litellm' in sys.modules)",
        ],
        capture_output=True,
        text=True,
    )
    assert done.stdout.strip() == "False"
