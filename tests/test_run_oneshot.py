"""`openpista run -e` end to end: the real command, a real tool round, real SQLite memory."""

from __future__ import annotations

import json

from openpista.providers.testing import FakeChatCompletionsServer, FakeReply

from .conftest import Openpista


def _tool_messages(request: dict) -> list[dict]:
    return [m for m in request["messages"] if m["role"] == "tool"]


def test_run_executes_a_real_system_run_round_and_prints_the_final_reply(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    llm.queue_tool_calls([("system_run", {"command": "echo hello-from-bash; echo oops >&2"})])
    llm.queue_text("The command printed hello-from-bash.")

    result = openpista.run("run", "-e", "Say hello through bash")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "The command printed hello-from-bash.\n"
    assert "system.run" in result.stderr  # tool activity goes to stderr
    # The LLM saw the tool under its wire name, and got the real output back.
    first, second = llm.requests
    assert "system_run" in [t["function"]["name"] for t in first["tools"]]
    (tool_message,) = _tool_messages(second)
    assert "hello-from-bash" in tool_message["content"]
    assert "oops" in tool_message["content"]
    assert "exit code: 0" in tool_message["content"]


def test_json_output_reports_session_reply_and_tool_calls(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    llm.queue_tool_calls([("system_run", {"command": "exit 3"})])
    llm.queue_text("It failed with 3.")

    result = openpista.run("run", "--json", "-e", "run exit 3")

    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["reply"] == "It failed with 3."
    assert payload["tool_calls"] == [
        {"name": "system.run", "arguments": {"command": "exit 3"}, "ok": False}
    ]
    assert payload["session_id"]


def test_session_flag_continues_the_conversation_with_its_history(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    llm.queue_text("Nice to meet you, Ada.")
    llm.queue_text("Your name is Ada.")

    first = openpista.run("run", "-s", "chat-1", "-e", "My name is Ada.")
    second = openpista.run("run", "-s", "chat-1", "-e", "What is my name?")

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert second.stdout == "Your name is Ada.\n"
    history = [(m["role"], m["content"]) for m in llm.requests[1]["messages"][1:]]
    assert history == [
        ("user", "My name is Ada."),
        ("assistant", "Nice to meet you, Ada."),
        ("user", "What is my name?"),
    ]


def test_session_show_json_shows_the_stored_tool_call(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    llm.queue_tool_calls([("system_run", {"command": "echo stored"})])
    llm.queue_text("done")
    assert openpista.run("run", "-s", "s-tools", "-e", "store a tool call").returncode == 0

    shown = openpista.run("session", "show", "s-tools", "--json")

    assert shown.returncode == 0, shown.stderr
    session = json.loads(shown.stdout)
    assert session["id"] == "s-tools"
    roles = [m["role"] for m in session["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant"]
    call_message = session["messages"][1]
    (call,) = call_message["tool_calls"]
    assert call["name"] == "system.run"
    assert json.loads(call["arguments"]) == {"command": "echo stored"}
    assert session["messages"][2]["tool_call_id"] == call["id"]
    assert "stored" in session["messages"][2]["content"]


def test_session_list_and_delete(openpista: Openpista, llm: FakeChatCompletionsServer) -> None:
    llm.queue_text("one")
    assert openpista.run("run", "-s", "keep-me", "-e", "hi").returncode == 0

    listed = openpista.run("session", "list", "--json")
    assert [s["id"] for s in json.loads(listed.stdout)] == ["keep-me"]
    assert "keep-me" in openpista.run("session", "list").stdout

    deleted = openpista.run("session", "delete", "keep-me")
    assert deleted.returncode == 0
    assert json.loads(openpista.run("session", "list", "--json").stdout) == []

    missing = openpista.run("session", "delete", "keep-me")
    assert missing.returncode == 1
    assert "no session 'keep-me'" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_streaming_provider_reply_is_assembled(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    # The interactive chat streams; the one-shot reply must match what was streamed there.
    llm.queue_text("streamed words arrive in pieces")
    result = openpista.run("tui", input="hello\n/quit\n")
    assert result.returncode == 0, result.stderr
    assert "streamed words arrive in pieces" in result.stdout
    assert llm.requests[0].get("stream") is True


def test_interactive_chat_shows_tool_activity_on_stderr_and_replies_on_stdout(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    llm.queue_tool_calls([("system_run", {"command": "echo chatty"})], text="Let me look.")
    llm.queue_text("It said chatty.")

    result = openpista.run("tui", input="look around\ny\n/quit\n")

    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "Let me look.\n"
        'Allow system.run {"command": "echo chatty"}? [y]es / [n]o / [a]ll \n'
        "It said chatty.\n"
    )
    assert '⚙ system.run {"command": "echo chatty"}' in result.stderr
    assert "✓ system.run: exit code: 0" in result.stderr


def test_hitting_max_tool_rounds_exits_1_with_a_clear_message(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    openpista.write_config("[agent]\nmax_tool_rounds = 2\n")
    for _ in range(3):
        llm.queue_tool_calls([("system_run", {"command": "echo again"})])

    result = openpista.run("run", "-s", "loop", "-e", "loop forever")

    assert result.returncode == 1
    assert "I stopped after 2 tool rounds" in result.stdout
    assert "agent.max_tool_rounds" in result.stderr
    assert "continue with -s loop" in result.stderr
    assert len(llm.requests) == 3


def test_a_reply_cannot_drive_the_terminal(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    llm.queue_text("A\x1b[2J\x1b]0;owned\x07B\nline two\tTabbed")
    result = openpista.run("run", "-e", "cat the hostile file")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "A\\x1b[2J\\x1b]0;owned\\x07B\nline two\tTabbed\n"
    llm.queue_text("C\x1b[2JD")
    chat = openpista.run(input="again\n")
    assert chat.stdout == "C\\x1b[2JD\n"


def test_session_show_gives_each_replys_tokens_and_the_total(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    llm.queue_tool_calls([("system_run", {"command": "echo counted"})])
    llm.queue_text("Counted it all.")
    assert openpista.run("run", "-s", "s-usage", "-e", "count tokens").returncode == 0

    stored = json.loads(openpista.run("session", "show", "s-usage", "--json").stdout)["messages"]
    replies = [m for m in stored if m["role"] == "assistant"]
    assert all(m["input_tokens"] and m["output_tokens"] for m in replies)
    shown = openpista.run("session", "show", "s-usage")

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    call_line, answer_line = (line for line in lines if "[tokens:" in line)
    first, second = replies
    assert call_line.startswith("[assistant → system.run ")
    assert f"[tokens: {first['input_tokens']:,} in / {first['output_tokens']:,} out]" in call_line
    assert answer_line == (
        f"[assistant] [tokens: {second['input_tokens']:,} in / {second['output_tokens']:,} out]"
    )
    total_in = first["input_tokens"] + second["input_tokens"]
    total_out = first["output_tokens"] + second["output_tokens"]
    assert lines[-1] == f"[total tokens: {total_in:,} in / {total_out:,} out, 2 model replies]"


def _stream_cut_at_the_output_limit(text_pieces: list[str]) -> str:
    """An SSE reply whose last chunk says finish_reason "length" (the fake has no such mode)."""

    def event(delta: dict, finish_reason: str | None = None) -> str:
        chunk = {
            "id": "chatcmpl-cut",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "fake-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        return f"data: {json.dumps(chunk)}\n\n"

    events = [event({"role": "assistant", "content": ""})]
    events += [event({"content": piece}) for piece in text_pieces]
    events += [event({}, "length"), "data: [DONE]\n\n"]
    return "".join(events)


def test_a_reply_cut_at_the_output_limit_says_so(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    cut = _stream_cut_at_the_output_limit(["The essay ", "begins"])
    llm.queue(FakeReply(raw_body=cut))
    llm.queue(FakeReply(raw_body=cut))
    note = "[cut off: the model reached its output limit]"

    shown = openpista.run("run", "-s", "s-cut", "-e", "write an essay")
    as_json = openpista.run("run", "--json", "-e", "write an essay")

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == f"The essay begins\n\n{note}\n"
    assert as_json.returncode == 0, as_json.stderr
    payload = json.loads(as_json.stdout)
    assert payload["reply"] == f"The essay begins\n\n{note}"
    assert payload["cut_off"] == "length"
    stored = json.loads(openpista.run("session", "show", "s-cut", "--json").stdout)["messages"]
    assert stored[-1]["content"] == f"The essay begins\n\n{note}"
