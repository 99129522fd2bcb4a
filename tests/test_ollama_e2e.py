"""OLLAMA_BASE_URL names Ollama's host root, as Ollama's own tools read it: /v1 is added."""

from __future__ import annotations

from openpista.providers.testing import FakeChatCompletionsServer

from .conftest import Openpista


def test_ollama_base_url_given_as_the_host_root_reaches_the_v1_api(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    del openpista.env["OPENPISTA_BASE_URL"]
    host_root = llm.base_url.removesuffix("/v1")
    openpista.env |= {"OPENPISTA_PROVIDER": "ollama", "OLLAMA_BASE_URL": host_root}
    llm.queue_text("Hello from ollama.")

    result = openpista.run("run", "-e", "hi")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello from ollama.\n"
    assert [r.path for r in llm.recorded] == ["/v1/chat/completions"]
