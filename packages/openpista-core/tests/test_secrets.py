"""openpista's secrets stay out of the environment of the commands tools run."""

from __future__ import annotations

import pytest

from openpista.core.process import run_process
from openpista.core.secrets import register_secret_variables, scrubbed_environment

CONTRACT_SECRETS = [
    "OPENPISTA_API_KEY",
    "openpista_API_KEY",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENROUTER_API_KEY",
    "TOGETHER_API_KEY",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_WEBHOOK_SECRET",
    "OPENPISTA_WEB_TOKEN",
    "openpista_WEB_TOKEN",
]


def test_the_contract_credentials_are_removed_and_everything_else_kept() -> None:
    env = {name: "secret-value" for name in CONTRACT_SECRETS}
    env |= {"PATH": "/usr/bin", "OPENPISTA_HOME": "/h", "TELEGRAM_API_URL": "http://x"}
    assert scrubbed_environment(env) == {
        "PATH": "/usr/bin",
        "OPENPISTA_HOME": "/h",
        "TELEGRAM_API_URL": "http://x",
    }


def test_a_registered_variable_is_removed_too() -> None:
    register_secret_variables(["SOMEPRESET_API_KEY"])
    assert scrubbed_environment({"SOMEPRESET_API_KEY": "k", "HOME": "/h"}) == {"HOME": "/h"}


async def test_commands_run_without_the_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CONTRACT_SECRETS:
        monkeypatch.setenv(name, f"leaked-{name}")
    monkeypatch.setenv("HARMLESS_SETTING", "visible")
    result = await run_process(["env"], timeout_s=10)
    assert "leaked-" not in result.stdout
    assert "HARMLESS_SETTING=visible" in result.stdout
