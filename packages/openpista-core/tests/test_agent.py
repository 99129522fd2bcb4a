"""The agent loop: storing as it goes, tool rounds, limits, and repairing interrupted history."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from openpista.core.agent import CANCELLED_TOOL_RESULT, Agent, TurnResult, repair_history
from openpista.core.errors import ProviderError
from openpista.core.media import MediaStore
from openpista.core.models import Image, ImagePart, Message, ToolCall, ToolCallRecord
from openpista.core.prompt import BUILTIN_SYSTEM_PROMPT
from openpista.core.provider import ChatRequest, ChatResponse
from openpista.core.registry import ToolRegistry
from openpista.core.skills import SkillLoader
from openpista.core.testing import (
    InMemoryStore,
    RecordingObserver,
    ScriptedProvider,
    text_reply,
    tool_call_reply,
    tool_calls_reply,
)
from openpista.core.tool import FunctionTool, ToolContext

CHANNEL = "test:local"


async def add(arguments: dict[str, Any], context: ToolContext) -> str:
    return str(arguments["a"] + arguments["b"])


ADD_TOOL = FunctionTool(
    "math.add",
    add,
    description="Add two integers.",
    parameters={
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
)


async def new_session(memory: InMemoryStore) -> str:
    return (await memory.create_session(CHANNEL)).id


def system_text(request: ChatRequest) -> str:
    first = request.messages[0]
    assert first.role == "system"
    return first.content


async def test_a_plain_answer_is_returned_and_stored() -> None:
    memory = InMemoryStore()
    session = await new_session(memory)
    provider = ScriptedProvider([text_reply("Hello there.")])
    agent = Agent(provider, ToolRegistry([ADD_TOOL]), memory)

    result = await agent.run_turn(session, "hi", channel_id=CHANNEL)

    assert result == TurnResult(reply="Hello there.", tool_calls=[], images=[], rounds=0)
    assert [(m.role, m.content) for m in await memory.load_messages(session)] == [
        ("user", "hi"),
        ("assistant", "Hello there."),
    ]
    (request,) = provider.requests
    assert [(m.role, m.content) for m in request.messages[1:]] == [("user", "hi")]
    assert [spec.wire_name for spec in request.tools] == ["math_add"]


async def test_the_user_message_is_stored_before_the_provider_is_asked() -> None:
    memory = InMemoryStore()
    session = await new_session(memory)
    seen: list[list[str]] = []

    async def answer(request: ChatRequest) -> ChatResponse:
        seen.append([m.content for m in await memory.load_messages(session)])
        return text_reply("ok")

    agent = Agent(ScriptedProvider([answer]), ToolRegistry(), memory)
    await agent.run_turn(session, "remember me", channel_id=CHANNEL)
    assert seen == [["remember me"]]


async def test_a_provider_failure_propagates_and_keeps_the_user_message() -> None:
    memory = InMemoryStore()
    session = await new_session(memory)
    provider = ScriptedProvider([ProviderError("503 from upstream", status_code=503)])
    agent = Agent(provider, ToolRegistry(), memory)
    with pytest.raises(ProviderError, match="503 from upstream"):
        await agent.run_turn(session, "hello?", channel_id=CHANNEL)
    assert [(m.role, m.content) for m in await memory.load_messages(session)] == [
        ("user", "hello?")
    ]


async def test_system_prompt_puts_the_users_text_before_the_builtin_prompt() -> None:
    memory = InMemoryStore()
    session = await new_session(memory)
    provider = ScriptedProvider(["ok"])
    agent = Agent(provider, ToolRegistry(), memory, system_prompt="Always answer in French.")
    await agent.run_turn(session, "hi", channel_id=CHANNEL)
    text = system_text(provider.requests[0])
    assert text.startswith("Always answer in French.\n\n")
    assert BUILTIN_SYSTEM_PROMPT in text
    assert "# Skills" not in text


async def test_a_tool_round_runs_the_tool_and_feeds_the_result_back() -> None:
    memory = InMemoryStore()
    session = await new_session(memory)
    provider = ScriptedProvider(
        [tool_call_reply("math.add", {"a": 2, "b": 3}, "call-1"), text_reply("2 + 3 = 5")]
    )
    agent = Agent(provider, ToolRegistry([ADD_TOOL]), memory)
    observer = RecordingObserver()

    result = await agent.run_turn(session, "what is 2 + 3?", channel_id=CHANNEL, observer=observer)

    assert result.reply == "2 + 3 = 5"
    assert result.rounds == 1
    assert result.tool_calls == [ToolCallRecord("math.add", {"a": 2, "b": 3}, ok=True)]
    # The answer is the second assistant message of the turn: its deltas say so.
    assert observer.deltas(1) == "2 + 3 = 5"
    assert observer.deltas(0) == ""
    kinds = [kind for kind in observer.kinds() if kind != "delta"]
    assert kinds == ["message", "tool_started", "tool_finished", "message"]
    started = [detail for kind, detail in observer.events if kind == "tool_started"]
    finished = [detail for kind, detail in observer.events if kind == "tool_finished"]
    assert [call.id for call in started] == ["call-1"]
    assert [(call.id, result.output) for call, result in finished] == [("call-1", "5")]
    second = provider.requests[1]
    assert [(m.role, m.content, m.tool_call_id) for m in second.messages[1:]] == [
        ("user", "what is 2 + 3?", None),
        ("assistant", "", None),
        ("tool", "5", "call-1"),
    ]
    assert second.messages[2].tool_calls[0].name == "math.add"
    stored = await memory.load_messages(session)
    assert [(m.role, m.content) for m in stored] == [
        ("user", "what is 2 + 3?"),
        ("assistant", ""),
        ("tool", "5"),
        ("assistant", "2 + 3 = 5"),
    ]
    assert stored[1].tool_calls == [ToolCall("call-1", "math.add", '{"a": 2, "b": 3}')]


async def test_a_round_of_tool_calls_runs_concurrently(
    handshake_tools: Callable[[str, str], tuple[FunctionTool, FunctionTool]],
) -> None:
    memory = InMemoryStore()
    session = await new_session(memory)
    provider = ScriptedProvider(
        [
            tool_calls_reply(ToolCall("a", "test.left"), ToolCall("b", "test.right")),
            text_reply("both done"),
        ]
    )
    agent = Agent(provider, ToolRegistry(handshake_tools("test.left", "test.right")), memory)
    async with asyncio.timeout(10):
        result = await agent.run_turn(session, "go", channel_id=CHANNEL)
    assert result.reply == "both done"
    assert [(m.tool_call_id, m.content) for m in provider.requests[1].messages[3:]] == [
        ("a", "test.left met its partner"),
        ("b", "test.right met its partner"),
    ]


async def test_schema_errors_go_back_to_the_llm_which_can_correct_itself() -> None:
    memory = InMemoryStore()
    session = await new_session(memory)
    provider = ScriptedProvider(
        [
            tool_call_reply("math.add", {"a": "two", "b": 3}, "bad"),
            tool_call_reply("math.add", {"a": 2, "b": 3}, "good"),
            text_reply("5"),
        ]
    )
    agent = Agent(provider, ToolRegistry([ADD_TOOL]), memory)
    result = await agent.run_turn(session, "add", channel_id=CHANNEL)

    error = provider.requests[1].messages[-1]
    assert (error.role, error.tool_call_id) == ("tool", "bad")
    assert 'a: expected an integer, got string "two"' in error.content
    assert provider.requests[2].messages[-1].content == "5"
    assert result.rounds == 2
    assert result.tool_calls == [
        ToolCallRecord("math.add", {"a": "two", "b": 3}, ok=False),
        ToolCallRecord("math.add", {"a": 2, "b": 3}, ok=True),
    ]


async def test_arguments_that_are_not_json_are_recorded_as_given() -> None:
    memory = InMemoryStore()
    session = await new_session(memory)
    provider = ScriptedProvider(
        [tool_calls_reply(ToolCall("c", "math.add", '{"a": 1,')), text_reply("sorry")]
    )
    agent = Agent(provider, ToolRegistry([ADD_TOOL]), memory)
    result = await agent.run_turn(session, "add", channel_id=CHANNEL)
    assert result.tool_calls == [ToolCallRecord("math.add", '{"a": 1,', ok=False)]
    assert "not valid JSON" in provider.requests[1].messages[-1].content


async def test_unknown_tools_are_reported_to_the_llm() -> None:
    memory = InMemoryStore()
    session = await new_session(memory)
    provider = ScriptedProvider([tool_call_reply("math.divide", {}, "x"), text_reply("ok")])
    agent = Agent(provider, ToolRegistry([ADD_TOOL]), memory)
    await agent.run_turn(session, "divide", channel_id=CHANNEL)
    assert provider.requests[1].messages[-1].content == (
        "unknown tool 'math.divide'. Available tools: math.add."
    )


async def test_tool_images_are_returned_with_the_turn(screenshot_tool: FunctionTool) -> None:
    memory = InMemoryStore()
    session = await new_session(memory)
    provider = ScriptedProvider([tool_call_reply("screen.capture", {}), text_reply("Here.")])
    agent = Agent(provider, ToolRegistry([screenshot_tool]), memory)
    result = await agent.run_turn(session, "show me", channel_id=CHANNEL)
    assert result.images == [Image("image/png", "AAAA")]
    assert provider.requests[1].messages[-1].content == "[screenshot]"


async def test_stops_after_max_tool_rounds_with_a_clear_reply() -> None:
    memory = InMemoryStore()
    session = await new_session(memory)
    count = 0

    async def always_more(request: ChatRequest) -> ChatResponse:
        nonlocal count
        count += 1
        return tool_call_reply("math.add", {"a": count, "b": 1}, f"call-{count}")

    provider = ScriptedProvider([always_more] * 10)
    agent = Agent(provider, ToolRegistry([ADD_TOOL]), memory, max_tool_rounds=3)
    result = await agent.run_turn(session, "loop forever", channel_id=CHANNEL)

    assert result.reply == (
        "I stopped after 3 tool rounds without reaching a final answer "
        "(agent.max_tool_rounds = 3). Ask me to continue, or raise the limit."
    )
    assert result.rounds == 3
    assert len(result.tool_calls) == 3
    assert len(provider.requests) == 4
    stored = await memory.load_messages(session)
    assert stored[-1] == Message("assistant", result.reply)
    # The fourth request's calls were never run, so they are not stored unanswered.
    assert [m.role for m in stored].count("tool") == 3
    assert repair_history(stored) == stored


async def test_max_tool_rounds_keeps_the_text_the_llm_wrote() -> None:
    memory = InMemoryStore()
    session = await new_session(memory)
    provider = ScriptedProvider([tool_call_reply("math.add", {"a": 1, "b": 1}, text="Working…")])
    agent = Agent(provider, ToolRegistry([ADD_TOOL]), memory, max_tool_rounds=0)
    result = await agent.run_turn(session, "go", channel_id=CHANNEL)
    assert result.reply.startswith("Working…\n\nI stopped after 0 tool rounds")
    assert result.tool_calls == []


async def test_an_empty_final_answer_after_tool_use_still_gives_a_reply() -> None:
    # Not an error (some providers' empty 200 after a tool round was once taken for a refused
    # key): the reply says what happened, is stored, and the next turn goes on from it.
    memory = InMemoryStore()
    session = await new_session(memory)
    provider = ScriptedProvider([tool_call_reply("math.add", {"a": 1, "b": 1}), text_reply("  ")])
    agent = Agent(provider, ToolRegistry([ADD_TOOL]), memory)
    result = await agent.run_turn(session, "go", channel_id=CHANNEL)
    assert result.reply == "(the model returned an empty reply)"
    assert result.rounds == 1
    stored = await memory.load_messages(session)
    assert [m.role for m in stored] == ["user", "assistant", "tool", "assistant"]
    assert stored[-1].content == "(the model returned an empty reply)"

    provider.add("Sorry, 1 + 1 = 2.")
    result = await agent.run_turn(session, "well?", channel_id=CHANNEL)
    assert result.reply == "Sorry, 1 + 1 = 2."
    sent = provider.requests[-1].messages
    assert [m.role for m in sent] == ["system", "user", "assistant", "tool", "assistant", "user"]


async def test_history_is_carried_into_the_next_turn() -> None:
    memory = InMemoryStore()
    session = await new_session(memory)
    provider = ScriptedProvider(["I am openpista.", "You asked who I am."])
    agent = Agent(provider, ToolRegistry(), memory)
    await agent.run_turn(session, "who are you?", channel_id=CHANNEL)
    await agent.run_turn(session, "what did I ask?", channel_id=CHANNEL)
    assert [m.content for m in provider.requests[1].messages[1:]] == [
        "who are you?",
        "I am openpista.",
        "what did I ask?",
    ]


async def test_skills_context_is_read_afresh_for_every_request(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    loader = SkillLoader(workspace)
    memory = InMemoryStore()
    session = await new_session(memory)
    provider = ScriptedProvider(
        [
            tool_call_reply("skill.install", {"name": "greeter", "description": "Greets people."}),
            text_reply("Installed the greeter skill."),
            text_reply("Still here."),
        ]
    )

    async def install_skill(arguments: dict[str, Any], context: ToolContext) -> str:
        # Writes a SKILL.md into the workspace, as an agent creating a skill would.
        folder = workspace / arguments["name"]
        folder.mkdir(parents=True)
        (folder / "SKILL.md").write_text(
            f"---\ndescription: {arguments['description']}\n---\nSay hello.\n"
        )
        return "installed"

    install_tool = FunctionTool(
        "skill.install",
        install_skill,
        description="Install a skill.",
        parameters={
            "type": "object",
            "properties": {"name": {"type": "string"}, "description": {"type": "string"}},
            "required": ["name", "description"],
        },
    )
    agent = Agent(provider, ToolRegistry([install_tool]), memory, skills_context=loader.context)
    await agent.run_turn(session, "make a greeter skill", channel_id=CHANNEL)
    await agent.run_turn(session, "thanks", channel_id=CHANNEL)

    first, second, third = (system_text(request) for request in provider.requests)
    assert "greeter" not in first
    for text in (second, third):
        assert "# Skills" in text
        assert "## Skill: greeter\nGreets people.\nSay hello." in text


async def test_a_cancelled_round_stores_a_result_for_each_call_it_cut_short() -> None:
    memory = InMemoryStore()
    session = await new_session(memory)
    stuck_started = asyncio.Event()

    async def hang(arguments: dict[str, Any], context: ToolContext) -> str:
        stuck_started.set()
        await asyncio.Event().wait()
        return "unreachable"

    provider = ScriptedProvider([tool_call_reply("test.stuck", {}, "lost"), "Recovered."])
    agent = Agent(provider, ToolRegistry([FunctionTool("test.stuck", hang)]), memory)

    turn = asyncio.create_task(agent.run_turn(session, "hang", channel_id=CHANNEL))
    await stuck_started.wait()
    turn.cancel()
    with pytest.raises(asyncio.CancelledError):
        await turn
    stored_before = await memory.load_messages(session)
    assert [(m.role, m.tool_call_id) for m in stored_before] == [
        ("user", None),
        ("assistant", None),
        ("tool", "lost"),
    ]

    result = await agent.run_turn(session, "are you there?", channel_id=CHANNEL)
    assert result.reply == "Recovered."
    assert [(m.role, m.content, m.tool_call_id) for m in provider.requests[1].messages[1:]] == [
        ("user", "hang", None),
        ("assistant", "", None),
        ("tool", CANCELLED_TOOL_RESULT, "lost"),
        ("user", "are you there?", None),
    ]
    stored_after = await memory.load_messages(session)
    assert [m.role for m in stored_after] == ["user", "assistant", "tool", "user", "assistant"]


async def test_tool_results_answering_no_call_are_dropped_from_the_request() -> None:
    memory = InMemoryStore()
    session = await new_session(memory)
    await memory.append_messages(
        session,
        [
            Message("user", "earlier"),
            Message("tool", "orphan output", tool_call_id="ghost"),
            Message("assistant", "earlier answer"),
        ],
    )
    provider = ScriptedProvider(["ok"])
    await Agent(provider, ToolRegistry(), memory).run_turn(session, "now", channel_id=CHANNEL)
    assert [m.content for m in provider.requests[0].messages[1:]] == [
        "earlier",
        "earlier answer",
        "now",
    ]
    assert len(await memory.load_messages(session)) == 5


def test_repair_history_answers_each_call_once() -> None:
    call_a, call_b = ToolCall("a", "x.y"), ToolCall("b", "x.y")
    history = [
        Message("user", "go"),
        Message("assistant", "", [call_a, call_b]),
        Message("tool", "result b", tool_call_id="b"),
        Message("tool", "result b again", tool_call_id="b"),
        Message("user", "next"),
        Message("tool", "late result a", tool_call_id="a"),
    ]
    repaired = repair_history(history)
    assert [(m.role, m.content, m.tool_call_id) for m in repaired] == [
        ("user", "go", None),
        ("assistant", "", None),
        ("tool", "result b", "b"),
        ("tool", "(no result: the previous run was interrupted)", "a"),
        ("user", "next", None),
    ]
    assert len(history) == 6


async def test_the_stored_assistant_tool_call_keeps_the_exact_arguments_text() -> None:
    memory = InMemoryStore()
    session = await new_session(memory)
    raw = '{ "a" : 1, "b":2 }'
    provider = ScriptedProvider([tool_calls_reply(ToolCall("k", "math.add", raw)), "3"])
    await Agent(provider, ToolRegistry([ADD_TOOL]), memory).run_turn(
        session, "add", channel_id=CHANNEL
    )
    stored = await memory.load_messages(session)
    assert stored[1].tool_calls[0].arguments == raw
    assert json.loads(stored[1].tool_calls[0].arguments) == {"a": 1, "b": 2}


def test_repair_history_accepts_call_ids_reused_by_later_messages() -> None:
    # Some local models number their calls from 0 in every message.
    history = [
        Message("user", "go"),
        Message("assistant", "", [ToolCall("0", "x.y")]),
        Message("tool", "first", tool_call_id="0"),
        Message("assistant", "", [ToolCall("0", "x.y")]),
        Message("tool", "second", tool_call_id="0"),
        Message("assistant", "done"),
    ]
    assert repair_history(history) == history


async def test_tool_pictures_are_kept_as_media_files_not_in_the_conversation(
    screenshot_tool: FunctionTool, tmp_path: Path
) -> None:
    memory = InMemoryStore()
    session = await new_session(memory)
    media = MediaStore(tmp_path / "media")
    provider = ScriptedProvider([tool_call_reply("screen.capture", {}), "A screenshot."])
    agent = Agent(provider, ToolRegistry([screenshot_tool]), memory, media=media)

    result = await agent.run_turn(session, "look", channel_id=CHANNEL)

    tool_message = (await memory.load_messages(session))[2]
    (part,) = tool_message.parts
    assert isinstance(part, ImagePart)
    saved = media.path_of(part.path)
    assert saved.read_bytes() == base64.b64decode("AAAA")
    # The channel gets the picture, and where it was saved.
    assert result.images == [Image("image/png", "AAAA", path=str(saved))]
    # The LLM's next request carries the tool's text, not the picture's data.
    sent = [m for m in provider.requests[1].messages if m.role == "tool"]
    assert [m.content for m in sent] == ["[screenshot]"]
