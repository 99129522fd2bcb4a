"""`[agent] fallback_models` end to end: the primary server is down, the fallback answers."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from openpista.providers.testing import FakeChatCompletionsServer

from .conftest import Openpista


@pytest.fixture
def fallback_llm() -> Iterator[FakeChatCompletionsServer]:
    with FakeChatCompletionsServer() as server:
        yield server


def _config(openpista: Openpista, fallback_llm: FakeChatCompletionsServer) -> None:
    openpista.write_config(
        f"""
[agent]
fallback_models = ["custom/fallback-model"]

[providers.custom]
base_url = "{fallback_llm.base_url}"
"""
    )


def _primary_down(llm: FakeChatCompletionsServer) -> None:
    for _ in range(3):  # the provider's own retries first; Retry-After 0 keeps the test quick
        llm.queue_error(503, "The server is overloaded", retry_after=0)


def test_a_primary_that_is_down_falls_back_and_says_so(
    openpista: Openpista, llm: FakeChatCompletionsServer, fallback_llm: FakeChatCompletionsServer
) -> None:
    _config(openpista, fallback_llm)
    _primary_down(llm)
    fallback_llm.queue_text("Answered by the fallback.")

    result = openpista.run("run", "-e", "hello?")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "Answered by the fallback.\n"
    assert "openai/fake-model failed" in result.stderr
    assert "HTTP 503" in result.stderr
    assert "switched to custom/fallback-model" in result.stderr
    assert len(llm.requests) == 3
    (request,) = fallback_llm.requests
    assert request["model"] == "fallback-model"
    assert request["messages"][-1] == {"role": "user", "content": "hello?"}


def test_the_rest_of_a_tool_round_stays_on_the_fallback_and_the_next_run_tries_the_primary(
    openpista: Openpista, llm: FakeChatCompletionsServer, fallback_llm: FakeChatCompletionsServer
) -> None:
    _config(openpista, fallback_llm)
    _primary_down(llm)
    fallback_llm.queue_tool_calls([("system_run", {"command": "echo from-the-fallback"})])
    fallback_llm.queue_text("The fallback ran it.")

    first = openpista.run("run", "--json", "-s", "fb", "-e", "run something")

    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["reply"] == "The fallback ran it."
    assert len(llm.requests) == 3 and len(fallback_llm.requests) == 2
    assert first.stderr.count("switched to custom/fallback-model") == 1

    # The primary is back: the next run starts there, with the fallback's tool round in its
    # history, and the request is one the API accepts (the fake checks the pairs).
    llm.queue_text("The primary again.")
    second = openpista.run("run", "-s", "fb", "-e", "and now?")

    assert second.returncode == 0, second.stderr
    assert second.stdout == "The primary again.\n"
    assert "switched" not in second.stderr
    roles = [m["role"] for m in llm.requests[-1]["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]


def test_without_fallback_models_the_failure_is_reported(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    _primary_down(llm)

    result = openpista.run("run", "-e", "hello?")

    assert result.returncode == 1
    assert "HTTP 503" in result.stderr and "switched" not in result.stderr


def test_a_fallback_without_a_key_is_skipped_and_named(
    openpista: Openpista, llm: FakeChatCompletionsServer, fallback_llm: FakeChatCompletionsServer
) -> None:
    openpista.write_config(
        f"""
[agent]
fallback_models = ["together/some-model", "custom/fallback-model"]

[providers.custom]
base_url = "{fallback_llm.base_url}"
"""
    )
    _primary_down(llm)
    fallback_llm.queue_text("Answered by the second fallback.")

    result = openpista.run("run", "-e", "hello?")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "Answered by the second fallback.\n"
    assert "together/some-model is not usable (no API key for together" in result.stderr
    assert "switched to custom/fallback-model" in result.stderr
