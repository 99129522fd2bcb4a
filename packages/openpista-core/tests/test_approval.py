"""Tool approval in the agent loop: each decision, allow-all, expiry, and the audit trail."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from openpista.core.agent import Agent
from openpista.core.approval import (
    ApprovalAnswer,
    ApprovalDecision,
    ApprovalGate,
    ApprovalRequest,
    parse_decision,
)
from openpista.core.models import ToolCall
from openpista.core.observer import TurnObserver
from openpista.core.registry import ToolRegistry
from openpista.core.testing import (
    InMemoryStore,
    RecordingObserver,
    ScriptedProvider,
    tool_call_reply,
    tool_calls_reply,
)
from openpista.core.tool import FunctionTool, ToolContext, ToolOutput

CHANNEL = "test:local"


class Touch:
    """A tool that needs approval (as system.run does) and records each run."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.tool = FunctionTool(
            "files.touch",
            self._touch,
            parameters={"type": "object", "properties": {"path": {"type": "string"}}},
        )

    async def _touch(self, arguments: dict[str, Any], context: ToolContext) -> str:
        self.ran.append(arguments["path"])
        return f"touched {arguments['path']}"


async def look(arguments: dict[str, Any], context: ToolContext) -> str:
    return "a calm screen"


LOOK = FunctionTool("screen.look", look, requires_approval=False)


async def setup(
    *script: Any, timeout_s: float = 300.0
) -> tuple[Agent, Touch, InMemoryStore, ScriptedProvider, str]:
    memory = InMemoryStore()
    session = (await memory.create_session(CHANNEL)).id
    touch = Touch()
    provider = ScriptedProvider(list(script))
    agent = Agent(
        provider,
        ToolRegistry([touch.tool, LOOK]),
        memory,
        approval=ApprovalGate(timeout_s),
    )
    return agent, touch, memory, provider, session


def tool_result_texts(provider: ScriptedProvider, request: int) -> list[str]:
    return [m.content for m in provider.requests[request].messages if m.role == "tool"]


async def test_a_denied_call_does_not_run_and_the_llm_is_told() -> None:
    agent, touch, memory, provider, session = await setup(
        tool_call_reply("files.touch", {"path": "x"}), "OK, I won't."
    )
    observer = RecordingObserver([ApprovalDecision.DENY])

    result = await agent.run_turn(
        session, "touch x", channel_id=CHANNEL, observer=observer, approval="ask"
    )

    assert touch.ran == []
    assert result.reply == "OK, I won't."
    (question,) = observer.questions
    assert (question.tool, json.loads(question.arguments)) == ("files.touch", {"path": "x"})
    (denied,) = tool_result_texts(provider, 1)
    assert "denied" in denied and "not run" in denied
    (entry,) = await memory.list_tool_calls(session)
    assert (entry.tool, entry.decision, entry.decided_by, entry.ok) == (
        "files.touch",
        "denied",
        "tester",
        False,
    )


async def test_an_allowed_call_runs_and_is_audited_as_allowed() -> None:
    agent, touch, memory, _, session = await setup(
        tool_call_reply("files.touch", {"path": "x"}), "Done."
    )
    observer = RecordingObserver([ApprovalDecision.ALLOW])
    await agent.run_turn(session, "touch x", channel_id=CHANNEL, observer=observer, approval="ask")
    assert touch.ran == ["x"]
    (entry,) = await memory.list_tool_calls()
    assert (entry.decision, entry.ok, entry.arguments) == ("allowed", True, '{"path": "x"}')
    assert entry.duration_ms >= 0


async def test_allow_all_covers_later_calls_in_the_session_with_one_answer() -> None:
    agent, touch, memory, _, session = await setup(
        tool_call_reply("files.touch", {"path": "a"}),
        tool_call_reply("files.touch", {"path": "b"}),
        "Both done.",
        tool_call_reply("files.touch", {"path": "c"}),
        "And c.",
    )
    observer = RecordingObserver([ApprovalDecision.ALLOW_ALL])
    await agent.run_turn(session, "a and b", channel_id=CHANNEL, observer=observer, approval="ask")
    await agent.run_turn(session, "now c", channel_id=CHANNEL, observer=observer, approval="ask")

    assert touch.ran == ["a", "b", "c"]
    assert len(observer.questions) == 1
    entries = await memory.list_tool_calls(session)
    assert [(e.decision, e.decided_by) for e in reversed(entries)] == [
        ("allowed_all", "tester"),
        ("allowed_all", "session"),
        ("allowed_all", "session"),
    ]


async def test_one_answer_of_all_covers_the_rest_of_the_same_round() -> None:
    calls = [
        ToolCall("c1", "files.touch", '{"path": "a"}'),
        ToolCall("c2", "files.touch", '{"path": "b"}'),
    ]
    agent, touch, _, _, session = await setup(tool_calls_reply(*calls), "ok")
    observer = RecordingObserver([ApprovalDecision.ALLOW_ALL])
    await agent.run_turn(session, "go", channel_id=CHANNEL, observer=observer, approval="ask")
    assert sorted(touch.ran) == ["a", "b"]
    assert len(observer.questions) == 1


async def test_auto_never_asks_and_records_auto() -> None:
    agent, touch, memory, _, session = await setup(
        tool_call_reply("files.touch", {"path": "x"}), "Done."
    )
    observer = RecordingObserver()
    await agent.run_turn(session, "touch x", channel_id=CHANNEL, observer=observer, approval="auto")
    assert touch.ran == ["x"]
    assert observer.questions == []
    (entry,) = await memory.list_tool_calls()
    assert (entry.decision, entry.decided_by) == ("auto", "policy")


async def test_read_only_tools_are_never_asked_about() -> None:
    agent, _, memory, provider, session = await setup(tool_call_reply("screen.look", {}), "Calm.")
    observer = RecordingObserver()
    await agent.run_turn(session, "look", channel_id=CHANNEL, observer=observer, approval="ask")
    assert observer.questions == []
    assert tool_result_texts(provider, 1) == ["a calm screen"]
    (entry,) = await memory.list_tool_calls()
    assert entry.decision == "auto"


class Sandboxed:
    """A tool whose calls differ: `requires_approval_for` says which are asked about."""

    name = "box.run"
    description = "runs in a box"
    requires_approval = True

    def __init__(self) -> None:
        self.ran: list[bool] = []

    @property
    def parameters(self) -> dict[str, Any]:
        return {"type": "object", "properties": {"confined": {"type": "boolean"}}}

    def requires_approval_for(self, arguments: dict[str, Any]) -> bool:
        return not arguments.get("confined", False)

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolOutput:
        self.ran.append(bool(arguments.get("confined")))
        return ToolOutput("ran")


async def test_a_tool_can_waive_approval_per_call() -> None:
    memory = InMemoryStore()
    session = (await memory.create_session(CHANNEL)).id
    box = Sandboxed()
    confined = ToolCall("c1", "box.run", '{"confined": true}')
    loose = ToolCall("c2", "box.run", '{"confined": false}')
    provider = ScriptedProvider([tool_calls_reply(confined, loose), "Done."])
    agent = Agent(provider, ToolRegistry([box]), memory, approval=ApprovalGate())
    observer = RecordingObserver([ApprovalDecision.DENY])

    await agent.run_turn(session, "box", channel_id=CHANNEL, observer=observer, approval="ask")

    assert box.ran == [True]
    (question,) = observer.questions
    assert json.loads(question.arguments) == {"confined": False}
    decisions = {entry.arguments: entry.decision for entry in await memory.list_tool_calls()}
    assert decisions == {'{"confined": true}': "auto", '{"confined": false}': "denied"}


async def test_with_nobody_to_ask_the_call_is_denied_and_the_llm_told_why() -> None:
    agent, touch, memory, provider, session = await setup(
        tool_call_reply("files.touch", {"path": "x"}), "I could not."
    )
    # A plain TurnObserver cannot ask anyone.
    await agent.run_turn(
        session, "touch x", channel_id=CHANNEL, observer=TurnObserver(), approval="ask"
    )
    assert touch.ran == []
    (text,) = tool_result_texts(provider, 1)
    assert "nobody can be asked" in text
    (entry,) = await memory.list_tool_calls()
    assert (entry.decision, entry.decided_by) == ("denied", "no-approver")


class SilentUser(TurnObserver):
    """Never answers: the question hangs until it expires."""

    def __init__(self) -> None:
        self.settled: list[str] = []

    async def request_approval(self, request: ApprovalRequest) -> ApprovalAnswer | None:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def approval_settled(self, request: ApprovalRequest) -> None:
        self.settled.append(request.id)


async def test_an_unanswered_question_expires_as_denied() -> None:
    agent, touch, memory, provider, session = await setup(
        tool_call_reply("files.touch", {"path": "x"}), "No answer, so no.", timeout_s=0.05
    )
    user = SilentUser()
    result = await agent.run_turn(
        session, "touch x", channel_id=CHANNEL, observer=user, approval="ask"
    )
    assert touch.ran == []
    assert result.reply == "No answer, so no."
    assert len(user.settled) == 1
    (text,) = tool_result_texts(provider, 1)
    assert "did not answer" in text
    (entry,) = await memory.list_tool_calls()
    assert (entry.decision, entry.decided_by) == ("expired", "timeout")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("y", ApprovalDecision.ALLOW),
        ("YES", ApprovalDecision.ALLOW),
        (" n ", ApprovalDecision.DENY),
        ("no", ApprovalDecision.DENY),
        ("a", ApprovalDecision.ALLOW_ALL),
        ("All", ApprovalDecision.ALLOW_ALL),
        ("maybe", None),
        ("", None),
    ],
)
def test_typed_answers(typed: str, expected: ApprovalDecision | None) -> None:
    assert parse_decision(typed) == expected


async def test_allow_all_outlives_the_process_through_the_audit_trail() -> None:
    agent, touch, memory, provider, session = await setup(
        tool_call_reply("files.touch", {"path": "a"}), "a done"
    )
    await agent.run_turn(
        session,
        "a",
        channel_id=CHANNEL,
        observer=RecordingObserver([ApprovalDecision.ALLOW_ALL]),
        approval="ask",
    )
    # A new process: a new gate, the same database.
    provider.add(tool_call_reply("files.touch", {"path": "b"}), "b done")
    restarted = Agent(
        provider, ToolRegistry([touch.tool]), memory, approval=ApprovalGate(memory=memory)
    )
    observer = RecordingObserver()
    await restarted.run_turn(session, "b", channel_id=CHANNEL, observer=observer, approval="ask")
    assert touch.ran == ["a", "b"]
    assert observer.questions == []
    # Another session still asks.
    other = (await memory.create_session(CHANNEL)).id
    provider.add(tool_call_reply("files.touch", {"path": "c"}), "not allowed")
    await restarted.run_turn(other, "c", channel_id=CHANNEL, observer=observer, approval="ask")
    assert touch.ran == ["a", "b"]
    assert len(observer.questions) == 1


async def test_a_call_that_cannot_run_is_not_asked_about() -> None:
    agent, touch, memory, provider, session = await setup(
        tool_calls_reply(ToolCall("bad", "files.touch", "{not json")), "Oops."
    )
    observer = RecordingObserver([ApprovalDecision.ALLOW])
    await agent.run_turn(session, "touch", channel_id=CHANNEL, observer=observer, approval="ask")
    assert observer.questions == []
    assert touch.ran == []
    (text,) = tool_result_texts(provider, 1)
    assert "invalid arguments" in text
    (entry,) = await memory.list_tool_calls()
    assert (entry.decision, entry.ok) == ("auto", False)


async def test_a_turn_stopped_while_asking_audits_the_call_as_denied() -> None:
    agent, touch, memory, _, session = await setup(
        tool_call_reply("files.touch", {"path": "x"}), "never"
    )
    user = SilentUser()
    turn = asyncio.create_task(
        agent.run_turn(session, "touch x", channel_id=CHANNEL, observer=user, approval="ask")
    )
    await asyncio.sleep(0.05)
    turn.cancel()
    with pytest.raises(asyncio.CancelledError):
        await turn
    assert touch.ran == []
    (entry,) = await memory.list_tool_calls()
    assert (entry.decision, entry.decided_by, entry.ok) == ("denied", "cancelled", False)
    roles = [m.role for m in await memory.load_messages(session)]
    assert roles == ["user", "assistant", "tool"]


async def test_a_deleted_session_takes_its_allow_all_with_it() -> None:
    agent, touch, memory, provider, session = await setup(
        tool_call_reply("files.touch", {"path": "a"}), "a done"
    )
    await agent.run_turn(
        session,
        "a",
        channel_id=CHANNEL,
        observer=RecordingObserver([ApprovalDecision.ALLOW_ALL]),
        approval="ask",
    )
    await memory.delete_session(session)
    await memory.create_session(CHANNEL, session)  # a new session under the same id
    provider.add(tool_call_reply("files.touch", {"path": "b"}), "not allowed")
    restarted = Agent(
        provider, ToolRegistry([touch.tool]), memory, approval=ApprovalGate(memory=memory)
    )
    observer = RecordingObserver()
    await restarted.run_turn(session, "b", channel_id=CHANNEL, observer=observer, approval="ask")
    assert touch.ran == ["a"]
    assert len(observer.questions) == 1
