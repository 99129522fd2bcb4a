"""`--provider` on the command line: the provider it names gets OPENPISTA_BASE_URL and
OPENPISTA_API_KEY, and, without `--model`, a model of its own rather than the config's."""

from __future__ import annotations

from openpista.providers.catalog import known_models
from openpista.providers.testing import FakeAnthropicServer, FakeChatCompletionsServer

from .conftest import Openpista


def test_the_base_url_and_key_variables_follow_the_provider_chosen_on_the_command_line(
    openpista: Openpista,
) -> None:
    with FakeChatCompletionsServer(require_api_key="sk-from-env") as custom:
        custom.queue_text("custom answered")
        openpista.env["OPENPISTA_BASE_URL"] = custom.base_url
        openpista.env["OPENPISTA_API_KEY"] = "sk-from-env"
        openpista.write_config('[providers.custom]\napi_key = "sk-in-the-file"\n')

        done = openpista.run("run", "--provider", "custom", "--model", "m", "-e", "hi")

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "custom answered"
    assert custom.headers[-1]["authorization"] == "Bearer sk-from-env"


def test_another_provider_without_a_model_gets_its_own_first_known_model(
    openpista: Openpista,
) -> None:
    with FakeAnthropicServer(require_api_key="ak-test") as api:
        api.queue_text("Claude here.")
        openpista.env["OPENPISTA_BASE_URL"] = api.base_url
        openpista.env["ANTHROPIC_API_KEY"] = "ak-test"

        done = openpista.run("run", "--provider", "anthropic", "-e", "hi")

        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "Claude here."
        assert api.requests[-1]["model"] == known_models("anthropic")[0]


def test_a_mistyped_provider_section_is_refused_naming_the_likely_one(
    openpista: Openpista,
) -> None:
    openpista.write_config('[providers.opnai]\napi_key = "sk-typo"\n')

    done = openpista.run("run", "-e", "hi")

    assert done.returncode == 2
    assert "providers.opnai: no provider named 'opnai' is installed" in done.stderr
    assert "did you mean providers.openai?" in done.stderr
