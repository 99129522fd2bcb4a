"""The litellm-served providers, driving the real litellm against the fake chat-completions
server on 127.0.0.1 (litellm's `openai/` route speaks chat completions to any base URL)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from openpista.core.errors import ProviderError
from openpista.core.models import Message
from openpista.core.provider import ChatRequest, ProviderSettings, ToolSpec
from openpista.providers.credentials import Credential, CredentialStore
from openpista.providers.testing import FakeChatCompletionsServer
from openpista.providers.via_litellm import (
    ROUTES,
    LitellmProvider,
    create_provider,
    litellm_model,
)

KEY_VARIABLES = (
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "AZURE_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "AZURE_AD_TOKEN",
    "AZURE_API_BASE",
    "VERCEL_AI_GATEWAY_API_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_PROFILE",
)

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
        "settings = ProviderSettings(name='gemini', model='gemini-2.5-flash', api_key='k')\n"
        "p = create_provider(settings)\n"
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


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No key in the environment and an empty OPENPISTA_HOME: the home is returned."""
    for variable in KEY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("OPENPISTA_HOME", str(home))
    monkeypatch.setenv("OPENPISTA_CREDENTIALS_BACKEND", "file")
    monkeypatch.setenv("HOME", str(tmp_path))
    return home


@pytest.mark.parametrize(
    ("name", "variable"), [("gemini", "GEMINI_API_KEY"), ("vercel", "VERCEL_AI_GATEWAY_API_KEY")]
)
def test_a_missing_key_is_refused_at_once_saying_where_to_put_one(
    no_keys: Path, name: str, variable: str
) -> None:
    with pytest.raises(ProviderError) as caught:
        create_provider(ProviderSettings(name=name, model="some-model"))

    assert str(caught.value) == (
        f"no API key for {name}: set {variable} or providers.{name}.api_key in config.toml, "
        f"or run `openpista auth login {name}`"
    )


@pytest.mark.parametrize("variable", ["GEMINI_API_KEY", "GOOGLE_API_KEY"])
def test_gemini_takes_either_variable_litellm_reads(
    no_keys: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "g-key")

    provider = create_provider(ProviderSettings(name="gemini", model="gemini-2.5-flash"))

    assert provider.name == "gemini"


def test_a_key_stored_by_auth_login_counts(no_keys: Path) -> None:
    store = CredentialStore.open(no_keys, env={"OPENPISTA_CREDENTIALS_BACKEND": "file"})
    store.put(Credential(provider="gemini", method="api_key", access_token="g-stored"))

    provider = create_provider(ProviderSettings(name="gemini", model="gemini-2.5-flash"))

    assert provider.name == "gemini"


def test_azure_needs_a_key_and_an_endpoint(no_keys: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ProviderError, match=r"^no API key for azure: set AZURE_API_KEY or "):
        create_provider(ProviderSettings(name="azure", model="deployment"))
    with pytest.raises(ProviderError) as caught:
        create_provider(ProviderSettings(name="azure", model="deployment", api_key="az-key"))
    assert str(caught.value) == (
        "no endpoint for azure: set AZURE_API_BASE or providers.azure.base_url in config.toml "
        "(https://NAME.openai.azure.com), or run `openpista auth login azure`"
    )

    create_provider(
        ProviderSettings(
            name="azure", model="d", api_key="az-key", base_url="https://x.openai.azure.com"
        )
    )
    monkeypatch.setenv("AZURE_API_KEY", "az-key")
    monkeypatch.setenv("AZURE_API_BASE", "https://x.openai.azure.com")
    create_provider(ProviderSettings(name="azure", model="deployment"))
    # The endpoint stored by `auth login azure` beside the key is enough too.
    monkeypatch.delenv("AZURE_API_BASE")
    monkeypatch.delenv("AZURE_API_KEY")
    store = CredentialStore.open(no_keys, env={"OPENPISTA_CREDENTIALS_BACKEND": "file"})
    store.put(
        Credential(
            provider="azure",
            method="api_key",
            access_token="az-stored",
            extra={"api_base": "https://x.openai.azure.com"},
        )
    )
    create_provider(ProviderSettings(name="azure", model="deployment"))


@pytest.mark.parametrize("name", ["bedrock", "litellm"])
def test_bedrock_and_litellm_are_not_checked_before_the_request(no_keys: Path, name: str) -> None:
    # AWS credentials may come from ~/.aws or an instance role; litellm/ names any vendor.
    provider = create_provider(ProviderSettings(name=name, model="some-model"))

    assert provider.name == name


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections: bound, never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


# litellm's Gemini module, imported at the first Gemini request, trips a pydantic warning.
@pytest.mark.filterwarnings("ignore:.* using the .ReadOnly. qualifier")
@pytest.mark.parametrize(
    ("name", "model", "path"), [("litellm", "openai/x", "/v1"), ("gemini", "gemini-2.5-flash", "")]
)
async def test_an_unreachable_server_is_said_so_in_one_line(
    closed_port: int, name: str, model: str, path: str
) -> None:
    provider = create_provider(
        ProviderSettings(
            name=name,
            model=model,
            base_url=f"http://127.0.0.1:{closed_port}{path}",
            api_key="k-test",
        )
    )
    with pytest.raises(ProviderError) as caught:
        await provider.complete(ChatRequest(messages=[Message(role="user", content="hi")]))

    assert str(caught.value) == f"{name}: cannot reach the API (connection refused)"
    assert caught.value.retryable and caught.value.status_code is None


@pytest.mark.filterwarnings("ignore:.* using the .ReadOnly. qualifier")
async def test_an_error_litellm_raises_itself_has_no_traceback_and_no_invented_status(
    no_keys: Path,
) -> None:
    # Past the check at creation (a provider made directly): litellm's own refusal.
    provider = LitellmProvider(name="gemini", model="gemini-2.5-flash", route=ROUTES["gemini"])
    with pytest.raises(ProviderError) as caught:
        await provider.complete(ChatRequest(messages=[Message(role="user", content="hi")]))

    message = str(caught.value)
    assert message.startswith("gemini: the request failed: Missing Gemini API key.")
    assert "Traceback" not in message and "HTTP" not in message
    assert "\n" not in message


@pytest.mark.filterwarnings("ignore:.* using the .ReadOnly. qualifier")
async def test_tls_to_a_plain_http_server_names_the_tls_failure_without_object_reprs() -> None:
    with FakeChatCompletionsServer() as server:
        root = server.base_url.replace("http://", "https://").removesuffix("/v1")
        provider = create_provider(
            ProviderSettings(name="gemini", model="gemini-2.5-flash", base_url=root, api_key="k")
        )
        with pytest.raises(ProviderError) as caught:
            await provider.complete(ChatRequest(messages=[Message(role="user", content="hi")]))

    assert str(caught.value) == "gemini: cannot reach the API (TLS failure: WRONG_VERSION_NUMBER)"
