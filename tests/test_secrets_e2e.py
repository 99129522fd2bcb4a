"""Tools never see openpista's credentials: `env` through system.run, end to end."""

from __future__ import annotations

from openpista.providers.testing import FakeChatCompletionsServer

from .conftest import Openpista


def test_env_run_by_the_model_shows_no_api_key_or_token(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    openpista.env |= {
        "OPENAI_API_KEY": "sk-LEAK-openai",
        "ANTHROPIC_API_KEY": "sk-LEAK-anthropic",
        "openpista_API_KEY": "sk-LEAK-lower",
        "TELEGRAM_BOT_TOKEN": "123:LEAK-bot-token",
        "OPENPISTA_WEB_TOKEN": "LEAK-web-token",
        "UNRELATED_SETTING": "still-here",
    }
    llm.queue_tool_calls([("system_run", {"command": "env"})])
    llm.queue_text("Here is your environment.")

    result = openpista.run("run", "-e", "show me the environment")

    assert result.returncode == 0, result.stderr
    # openpista itself still uses its key (OPENPISTA_API_KEY, lower-case, wins for the run).
    assert llm.headers[0]["authorization"] == "Bearer sk-LEAK-lower"
    (tool_message,) = [m for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert "UNRELATED_SETTING=still-here" in tool_message["content"]
    assert "LEAK" not in tool_message["content"]
