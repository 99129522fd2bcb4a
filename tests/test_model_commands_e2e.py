"""`openpista model list | test`: the catalog as a user sees it, one prompt to a fake server."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from openpista.providers.catalog import known_models
from openpista.providers.signin.slots import find_slot
from openpista.providers.testing import FakeChatCompletionsServer

from .conftest import Openpista


def _section(stdout: str, provider: str) -> list[str]:
    """The lines of one provider's group in `model list`: its header, then its models."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{provider} ("))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def test_model_list_groups_by_provider_and_marks_what_is_usable(openpista: Openpista) -> None:
    openpista.write_config('[agent]\nfallback_models = ["ollama/llama3.2"]\n')
    openpista.env.pop("OPENROUTER_API_KEY", None)

    result = openpista.run("model", "list")

    assert result.returncode == 0, result.stderr
    openai = _section(result.stdout, "openai")
    assert openai[0] == "openai (✓ authenticated)  [active provider]"
    # The active model is listed (first, since the catalog does not know it) and marked.
    assert openai[1].split() == ["fake-model", "(active)"]
    assert any(line.split()[:3] == ["gpt-4.1-mini", "1,047,576", "tokens"] for line in openai)
    openrouter = _section(result.stdout, "openrouter")
    assert openrouter[0] == (
        "openrouter (not authenticated: set OPENROUTER_API_KEY or providers.openrouter.api_key "
        "in config.toml, or run `openpista auth login openrouter`)"
    )
    ollama = _section(result.stdout, "ollama")
    assert ollama[0] == "ollama (✓ no key needed)"
    assert any(line.split()[0] == "llama3.2" and "(fallback)" in line for line in ollama)
    assert [line.split()[0] for line in openrouter[1:]] == list(known_models("openrouter"))
    # No subcommand lists too.
    assert openpista.run("model").stdout == result.stdout


LITELLM_VARIABLES = (
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "VERCEL_AI_GATEWAY_API_KEY",
    "AZURE_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "AZURE_AD_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
)


def test_every_provider_is_told_how_it_can_really_be_signed_in(openpista: Openpista) -> None:
    for variable in LITELLM_VARIABLES:
        openpista.env.pop(variable, None)

    result = openpista.run("model", "list")

    assert result.returncode == 0, result.stderr
    headers = {
        line.split(" (", 1)[0]: line
        for line in result.stdout.splitlines()
        if line and not line.startswith(" ")
    }
    assert headers["gemini"] == (
        "gemini (not authenticated: set GEMINI_API_KEY or providers.gemini.api_key in "
        "config.toml, or run `openpista auth login gemini`)"
    )
    assert headers["vercel"] == (
        "vercel (not authenticated: set VERCEL_AI_GATEWAY_API_KEY or providers.vercel.api_key "
        "in config.toml, or run `openpista auth login vercel`)"
    )
    # Copilot has no key to set; Bedrock takes AWS's variables.
    assert headers["copilot"] == "copilot (not authenticated: run `openpista auth login copilot`)"
    assert headers["bedrock"] == (
        "bedrock (not authenticated: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or "
        "AWS_PROFILE, or run `openpista auth login bedrock`)"
    )
    # litellm names any vendor: whether its key is there cannot be told.
    assert headers["litellm"].startswith("litellm (key not checked: set the variable litellm")
    # Every `auth login NAME` suggested is one `auth login` knows.
    suggested = re.findall(r"`openpista auth login (\S+)`", result.stdout)
    assert len(suggested) >= 8
    assert [name for name in suggested if find_slot(name) is None] == []
    assert "auth login litellm" not in result.stdout
    assert "providers.copilot.api_key" not in result.stdout
    assert "providers.bedrock.api_key" not in result.stdout


@pytest.mark.parametrize(
    ("provider", "variable"),
    [
        ("gemini", "GEMINI_API_KEY"),
        ("gemini", "GOOGLE_API_KEY"),
        ("vercel", "VERCEL_AI_GATEWAY_API_KEY"),
        ("bedrock", "AWS_ACCESS_KEY_ID"),
    ],
)
def test_a_key_in_the_variable_litellm_reads_counts_as_authenticated(
    openpista: Openpista, provider: str, variable: str
) -> None:
    for name in LITELLM_VARIABLES:
        openpista.env.pop(name, None)
    openpista.env[variable] = "key-from-the-environment"

    result = openpista.run("model", "list")

    assert _section(result.stdout, provider)[0] == f"{provider} (✓ authenticated)"


def test_a_key_in_the_config_file_counts_as_authenticated(openpista: Openpista) -> None:
    openpista.write_config('[providers.together]\napi_key = "tk-from-the-file"\n')
    openpista.env.pop("TOGETHER_API_KEY", None)

    result = openpista.run("model", "list")

    assert _section(result.stdout, "together")[0] == "together (✓ authenticated)"
    assert "tk-from-the-file" not in result.stdout + result.stderr


def test_model_test_sends_one_prompt_and_shows_reply_latency_and_tokens(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    llm.queue_text("I am working fine.")

    result = openpista.run("model", "test")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "reply:   I am working fine."
    assert lines[1] == "model:   openai/fake-model"
    assert lines[2].startswith("latency: ") and lines[2].endswith(" s (finish reason: stop)")
    (request,) = llm.requests
    assert request["model"] == "fake-model"
    assert request["stream"] is True
    prompt_words = len(request["messages"][0]["content"].split())
    assert lines[3] == f"tokens:  {prompt_words} in / 4 out"


@pytest.fixture
def other_llm() -> Iterator[FakeChatCompletionsServer]:
    with FakeChatCompletionsServer(models=["served-model"]) as server:
        yield server


def test_model_test_takes_provider_slash_model(
    openpista: Openpista, other_llm: FakeChatCompletionsServer
) -> None:
    openpista.write_config(f'[providers.custom]\nbase_url = "{other_llm.base_url}"\n')
    # OPENPISTA_BASE_URL would name the tested provider's base URL, over the file's.
    del openpista.env["OPENPISTA_BASE_URL"]
    other_llm.queue_text("Custom here.")

    result = openpista.run("model", "test", "custom/served-model")

    assert result.returncode == 0, result.stderr
    assert "reply:   Custom here." in result.stdout
    assert "model:   custom/served-model" in result.stdout
    assert other_llm.requests[0]["model"] == "served-model"


def test_an_unknown_model_fails_in_one_line_naming_the_known_ones(
    openpista: Openpista, other_llm: FakeChatCompletionsServer
) -> None:
    # The openai preset pointed at a server that serves one model only: a 404 for others.
    openpista.env["OPENPISTA_BASE_URL"] = other_llm.base_url

    result = openpista.run("model", "test", "openai/gpt-nosuch")

    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("openpista: error: openai: model 'gpt-nosuch'")
    assert "known models for openai: gpt-5, gpt-5-mini" in line
    assert line.endswith("see `openpista model list`")


def test_an_unknown_provider_lists_the_installed_ones(openpista: Openpista) -> None:
    result = openpista.run("model", "test", "nosuch/some-model")

    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "no provider named 'nosuch' is installed; installed: " in line
    assert "openai" in line


def test_model_help_imports_no_httpx() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from openpista.cli.commands import cli\n"
        "for args in (['model', '--help'], ['model', 'test', '--help']):\n"
        "    result = CliRunner().invoke(cli, args)\n"
        "    assert result.exit_code == 0, result.output\n"
        "print('httpx' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_model_test_with_a_provider_name_alone_uses_that_providers_model(
    openpista: Openpista,
) -> None:
    from openpista.providers.catalog import known_models
    from openpista.providers.testing import FakeAnthropicServer

    with FakeAnthropicServer() as api:
        api.queue_text("Claude here.")
        openpista.write_config(
            f'[providers.anthropic]\nbase_url = "{api.base_url}"\napi_key = "ak-test"\n'
        )
        del openpista.env["OPENPISTA_BASE_URL"]

        result = openpista.run("model", "test", "anthropic/")

        assert result.returncode == 0, result.stderr
        assert api.requests[-1]["model"] == known_models("anthropic")[0]
