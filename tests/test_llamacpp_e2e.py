"""`openpista run -e` against the fake server's llama.cpp dialect, configured as a user of a
local llama.cpp server would (provider "custom", a base URL, no key)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from openpista.providers.testing import FakeChatCompletionsServer, FakeReply, run_command_responder

from .conftest import Openpista


@pytest.fixture
def llm() -> Iterator[FakeChatCompletionsServer]:
    with FakeChatCompletionsServer(dialect="llamacpp", responder=run_command_responder) as server:
        yield server


@pytest.fixture
def local(openpista: Openpista) -> Openpista:
    del openpista.env["OPENAI_API_KEY"]
    openpista.env["OPENPISTA_PROVIDER"] = "custom"
    openpista.env["OPENPISTA_MODEL"] = "smollm2"
    return openpista


def test_run_completes_a_tool_round(local: Openpista, llm: FakeChatCompletionsServer) -> None:
    result = local.run("run", "-e", "run: echo hello-from-llamacpp")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Tool said: exit code: 0\n")
    assert "hello-from-llamacpp" in result.stdout
    assert "Traceback" not in result.stderr
    # The tool call could not be streamed (an empty stream), so it was asked for unstreamed;
    # the second request carried the call back with "" as its content, and was accepted.
    streamed, unstreamed, second = llm.requests
    assert streamed["stream"] is True
    assert "stream" not in unstreamed
    assert second["tool_choice"] == "auto"
    (assistant,) = [m for m in second["messages"] if m.get("tool_calls")]
    assert assistant["content"] == ""


def test_a_stream_the_server_ends_early_is_kept_and_marked_as_cut(
    local: Openpista, llm: FakeChatCompletionsServer
) -> None:
    llm.queue(FakeReply(text="Once upon a time there was a cat.", interrupt_after_chunks=4))

    result = local.run("run", "--json", "-e", "tell me a story")

    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["cut_off"] == "interrupted"
    assert payload["reply"].startswith("Once upon a")
    assert "[cut off: the connection to the provider broke off]" in payload["reply"]
    assert len(llm.requests) == 1  # Not asked again: the user had seen the text.
    shown = local.run("session", "show", payload["session_id"])
    assert "Once upon a" in shown.stdout
