"""Local fake servers that speak the real wire protocols, for tests (ours and yours).

Each is a real HTTP server on 127.0.0.1 in a background thread, so it serves an `openpista`
subprocess as readily as an in-process client, and it checks requests the way the real API
does. One module per protocol:

- `chat_completions`: OpenAI chat completions (`FakeChatCompletionsServer`); with
  `dialect="llamacpp"` it answers as llama.cpp's Python server does (module `llamacpp`).
- `oauth`: every sign-in flow's authorization server (`FakeAuthorizationServer`), and
  `BrowserConsole`, a person with a browser driving a flow.
- `responses`: the OpenAI Responses API (`FakeResponsesServer`).
- `anthropic`: Anthropic Messages (`FakeAnthropicServer`).

`python -m openpista.providers.testing` serves one from a shell.
"""

from __future__ import annotations

from openpista.providers.testing.anthropic import (
    AnthropicResponder,
    FakeAnthropicReply,
    FakeAnthropicServer,
    RecordedAnthropicRequest,
)
from openpista.providers.testing.chat_completions import (
    IGNORED_TOOLS_TEXT,
    TOOL_NAME_PATTERN,
    Dialect,
    FakeChatCompletionsServer,
    FakeReply,
    RecordedRequest,
    Responder,
    ToolCallScript,
    echo_responder,
    last_user_text,
    run_command_responder,
)
from openpista.providers.testing.oauth import (
    BrowserConsole,
    FakeAuthorizationServer,
    RecordedOAuthRequest,
)
from openpista.providers.testing.responses import (
    FakeResponsesServer,
    ResponsesReply,
    ResponsesResponder,
    last_user_input_text,
    responses_echo_responder,
    responses_run_command_responder,
)

__all__ = [
    "IGNORED_TOOLS_TEXT",
    "TOOL_NAME_PATTERN",
    "AnthropicResponder",
    "BrowserConsole",
    "Dialect",
    "FakeAnthropicReply",
    "FakeAnthropicServer",
    "FakeAuthorizationServer",
    "FakeChatCompletionsServer",
    "FakeReply",
    "FakeResponsesServer",
    "RecordedAnthropicRequest",
    "RecordedOAuthRequest",
    "RecordedRequest",
    "Responder",
    "ResponsesReply",
    "ResponsesResponder",
    "ToolCallScript",
    "echo_responder",
    "last_user_input_text",
    "last_user_text",
    "responses_echo_responder",
    "responses_run_command_responder",
    "run_command_responder",
]
