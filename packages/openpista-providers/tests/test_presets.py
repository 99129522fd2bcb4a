"""Presets: defaults, environment variables, settings that win, and the errors for bad settings."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from openpista.core.errors import ProviderError
from openpista.core.models import Message
from openpista.core.provider import ChatRequest, LlmProvider, ProviderSettings
from openpista.providers.chat_completions import ChatCompletionsProvider
from openpista.providers.presets import PRESETS, create_provider
from openpista.providers.testing import FakeChatCompletionsServer

KEY_VARIABLES = ("OPENAI_API_KEY", "TOGETHER_API_KEY", "OPENROUTER_API_KEY", "OLLAMA_BASE_URL")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys in the developer's own environment must not change what these tests see."""
    for variable in KEY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


def chat_provider(settings: ProviderSettings) -> ChatCompletionsProvider:
    provider = create_provider(settings)
    assert isinstance(provider, ChatCompletionsProvider)
    return provider


HELLO = ChatRequest(messages=[Message(role="user", content="hello")])


def test_every_declared_entry_point_loads_the_factory() -> None:
    declared = {ep.name: ep for ep in entry_points(group="openpista.providers")}

    for name in ("openai", "together", "ollama", "openrouter", "custom"):
        assert declared[name].load() is create_provider
        assert name in PRESETS


def test_loading_the_entry_points_does_not_import_httpx() -> None:
    script = (
        "import sys\n"
        "from importlib.metadata import entry_points\n"
        "for ep in entry_points(group='openpista.providers'): ep.load()\n"
        "import openpista.providers\n"
        "print(sorted(m for m in ('httpx', 'httpcore', 'anyio') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("name", "base_url", "variable"),
    [
        ("openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
        ("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
        ("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    ],
)
def test_keyed_presets_default_their_url_and_take_the_key_from_their_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, base_url: str, variable: str
) -> None:
    monkeypatch.setenv(variable, "key-from-env")

    provider = chat_provider(ProviderSettings(name=name, model="some-model"))

    assert isinstance(provider, LlmProvider)
    assert provider.name == name
    assert provider.model == "some-model"
    assert provider.base_url == base_url


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("openai", "OPENAI_API_KEY"),
        ("together", "TOGETHER_API_KEY"),
        ("openrouter", "OPENROUTER_API_KEY"),
    ],
)
def test_a_missing_key_is_refused_at_creation_naming_both_places(name: str, variable: str) -> None:
    with pytest.raises(ProviderError) as caught:
        create_provider(ProviderSettings(name=name, model="m"))

    assert str(caught.value) == (
        f"no API key for {name}: set {variable} or providers.{name}.api_key in config.toml, "
        f"or sign in with `openpista auth login {name}`"
    )


async def test_the_environment_key_is_sent_when_the_config_has_none(
    monkeypatch: pytest.MonkeyPatch, server: FakeChatCompletionsServer
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "key-from-env")
    provider = create_provider(ProviderSettings(name="openai", model="m", base_url=server.base_url))
    try:
        await provider.complete(HELLO)
    finally:
        await provider.aclose()

    assert server.headers[-1]["authorization"] == "Bearer key-from-env"


async def test_the_configured_key_and_url_win_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, server: FakeChatCompletionsServer
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "key-from-env")
    settings = ProviderSettings(
        name="openai", model="m", base_url=server.base_url, api_key="key-from-config"
    )
    provider = create_provider(settings)
    try:
        response = await provider.complete(HELLO)
    finally:
        await provider.aclose()

    assert response.message.content == "Echo: hello"
    assert server.headers[-1]["authorization"] == "Bearer key-from-config"


def test_ollama_needs_no_key_and_defaults_to_localhost() -> None:
    provider = chat_provider(ProviderSettings(name="ollama", model="llama3.2"))

    assert provider.base_url == "http://localhost:11434/v1"


def test_ollama_base_url_from_the_environment_gets_v1_when_it_lacks_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://gpu-box:11434/")
    assert chat_provider(ProviderSettings(name="ollama", model="m")).base_url == (
        "http://gpu-box:11434/v1"
    )

    monkeypatch.setenv("OLLAMA_BASE_URL", "http://gpu-box:11434/v1")
    assert chat_provider(ProviderSettings(name="ollama", model="m")).base_url == (
        "http://gpu-box:11434/v1"
    )

    configured = ProviderSettings(name="ollama", model="m", base_url="http://other:1/v1")
    assert chat_provider(configured).base_url == "http://other:1/v1"


def test_an_ollama_host_root_from_any_source_gets_v1(monkeypatch: pytest.MonkeyPatch) -> None:
    # The config loader merges OLLAMA_BASE_URL into [providers.ollama] base_url: the preset's
    # rule must hold for what arrives that way too.
    monkeypatch.delenv("OLLAMA_BASE_URL", raising=False)
    configured = ProviderSettings(name="ollama", model="m", base_url="http://gpu-box:11434/")
    assert chat_provider(configured).base_url == "http://gpu-box:11434/v1"
    # Other presets take their base URL as given.
    custom = ProviderSettings(name="custom", model="m", base_url="http://127.0.0.1:8000/api")
    assert chat_provider(custom).base_url == "http://127.0.0.1:8000/api"


def test_custom_needs_a_base_url() -> None:
    with pytest.raises(ProviderError) as caught:
        create_provider(ProviderSettings(name="custom", model="m"))

    assert str(caught.value).startswith(
        "no base_url for custom: set providers.custom.base_url in config.toml"
    )


async def test_custom_works_without_a_key(server: FakeChatCompletionsServer) -> None:
    provider = create_provider(ProviderSettings(name="custom", model="m", base_url=server.base_url))
    try:
        response = await provider.complete(HELLO)
    finally:
        await provider.aclose()

    assert response.message.content == "Echo: hello"
    assert "authorization" not in server.headers[-1]


def test_a_name_that_is_no_preset_is_served_like_custom() -> None:
    settings = ProviderSettings(name="my-vllm", model="m", base_url="http://127.0.0.1:8000/v1")

    provider = chat_provider(settings)

    assert provider.name == "my-vllm"
    assert provider.base_url == "http://127.0.0.1:8000/v1"


def test_chat_is_accepted_and_nonsense_is_refused() -> None:
    chat = ProviderSettings(name="openai", model="m", api_key="k", api="chat")
    assert chat_provider(chat).name == "openai"

    with pytest.raises(ProviderError, match='"grpc" is not a known protocol'):
        create_provider(ProviderSettings(name="openai", model="m", api_key="k", api="grpc"))


def test_settings_timeout_reaches_the_provider(server: FakeChatCompletionsServer) -> None:
    settings = ProviderSettings(name="custom", model="m", base_url=server.base_url, timeout_s=3)

    provider = chat_provider(settings)

    assert provider.timeout_s == 3


def test_the_presets_table_lists_what_model_list_needs() -> None:
    assert list(PRESETS) == [
        "openai",
        "anthropic",
        "together",
        "ollama",
        "openrouter",
        "copilot",
        "custom",
    ]
    assert PRESETS["openai"].needs_key and PRESETS["openai"].key_env == "OPENAI_API_KEY"
    assert not PRESETS["ollama"].needs_key and PRESETS["ollama"].base_url_env == "OLLAMA_BASE_URL"
    assert PRESETS["custom"].base_url == ""
    assert all(PRESETS[name].example_models for name in ("openai", "together", "ollama"))
