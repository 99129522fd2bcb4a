"""Tool approval: the policy, the question put to the user, and the answer.

Under the `ask` policy a tool that declares `requires_approval` (or whose
`requires_approval_for(arguments)` says so for this call) does not run until the user
of the channel the message came from allows it. The question travels through the turn's
observer (`TurnObserver.request_approval`), which a channel answers outside the session's
queue, so an answer never waits behind the turn that waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, cast

from openpista.core.models import ToolCall, new_id

if TYPE_CHECKING:
    from openpista.core.memory import MemoryStore
    from openpista.core.observer import TurnObserver
    from openpista.core.tool import Tool

logger = logging.getLogger(__name__)

ApprovalPolicy = Literal["auto", "ask"]

DEFAULT_APPROVAL_TIMEOUT_S = 300.0


class ApprovalDecision(StrEnum):
    """A user's answer to one approval question."""

    ALLOW = "allow"
    DENY = "deny"
    ALLOW_ALL = "allow_all"
    """Allow this call and every later one in the session without asking."""


class AuditDecision(StrEnum):
    """How a tool call came to run (or not), as the audit trail records it."""

    AUTO = "auto"
    """The policy is auto, or the tool needs no approval."""
    ALLOWED = "allowed"
    ALLOWED_ALL = "allowed_all"
    """Allowed by an earlier "allow all" in the session (or by this call's answer)."""
    DENIED = "denied"
    EXPIRED = "expired"
    """Nobody answered within approval_timeout_s: denied."""


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """The question put to the user: may `tool` run with `arguments`?"""

    session_id: str
    channel_id: str
    call: ToolCall
    sender: str | None = None
    id: str = field(default_factory=new_id)

    @property
    def tool(self) -> str:
        return self.call.name

    @property
    def arguments(self) -> str:
        """The call's arguments as the model wrote them (JSON text)."""
        return self.call.arguments


@dataclass(frozen=True, slots=True)
class ApprovalAnswer:
    """A user's answer and who gave it (`cli:local`, a Telegram user id, a web client)."""

    decision: ApprovalDecision
    decided_by: str
    reason: str | None = None
    """Why a call is denied when no person decided (`openpista is stopping`): the LLM is told
    this instead of "the user denied"."""


@dataclass(frozen=True, slots=True)
class ApprovalOutcome:
    """What became of one call's approval: the decision and who made it."""

    decision: AuditDecision
    decided_by: str
    """`policy`, `session` (an earlier allow-all), `timeout`, or the channel's user."""
    reason: str | None = None

    @property
    def allowed(self) -> bool:
        return self.decision not in (AuditDecision.DENIED, AuditDecision.EXPIRED)


def tool_requires_approval(tool: Tool | None, arguments: dict[str, Any] | None = None) -> bool:
    """Whether a call to `tool` with `arguments` is asked about under `ask`. Tools that do not
    say, are. A tool's `requires_approval_for(arguments)`, when it has one and the arguments
    are known, decides per call; failing, it counts as a yes."""
    if tool is None:
        return False  # an unknown tool never runs: nothing to ask about
    per_call: object = getattr(tool, "requires_approval_for", None)
    if arguments is not None and callable(per_call):
        try:
            return bool(cast("Callable[[dict[str, Any]], object]", per_call)(arguments))
        except Exception:
            logger.warning("%s: requires_approval_for failed; asking", tool.name, exc_info=True)
            return True
    value: Any = getattr(tool, "requires_approval", True)
    return bool(value)


def _call_arguments(request: ApprovalRequest) -> dict[str, Any] | None:
    try:
        return request.call.parsed_arguments()
    except ValueError:
        return None


def denied_result_text(tool: str, outcome: ApprovalOutcome) -> str:
    """The tool result the LLM gets for a call that did not run."""
    if outcome.decision == AuditDecision.EXPIRED:
        return (
            f"The user did not answer the request to run {tool} in time, so it was not run. "
            "Do not retry it unless the user asks; say what you wanted to do instead."
        )
    if outcome.reason:
        return f"{tool} was not run: {outcome.reason}."
    if outcome.decided_by == "no-approver":
        return (
            f"{tool} was not run: it needs the user's approval, and nobody can be asked here "
            "(no terminal or channel to ask on). Tell the user what you wanted to run."
        )
    return (
        f"The user denied running {tool}; it was not run. Do not retry it unless the user "
        "asks; continue without it or ask the user what to do."
    )


class ApprovalGate:
    """Decides, per call, whether it runs: the policy, the session's allow-all, the user.

    "Allow all" lasts as long as the session: the gate remembers it in this process, and, given
    the memory, finds it in the session's audit trail, so a later `run -e -s ID` or a
    restarted daemon does not ask again.
    """

    def __init__(
        self, timeout_s: float = DEFAULT_APPROVAL_TIMEOUT_S, memory: MemoryStore | None = None
    ) -> None:
        self.timeout_s = timeout_s
        self.memory = memory
        self._allow_all: set[str] = set()
        self._looked_up: set[str] = set()

    def forget(self, session_id: str) -> None:
        """Drop what is remembered of the session (it was deleted)."""
        self._allow_all.discard(session_id)
        self._looked_up.discard(session_id)

    async def _allowed_all_before(self, session_id: str) -> bool:
        if session_id in self._allow_all:
            return True
        if self.memory is None or session_id in self._looked_up:
            return False
        self._looked_up.add(session_id)
        session = await self.memory.get_session(session_id)
        if session is None:
            return False
        # Only this session's own answers count: a deleted session's audit rows stay, and a
        # new session under the same id must not inherit what was allowed there.
        for entry in await self.memory.list_tool_calls(session_id):
            if entry.at < session.created_at:
                break  # newest first: the rest are older still
            if entry.decision == AuditDecision.ALLOWED_ALL and entry.decided_by != "session":
                self._allow_all.add(session_id)
                return True
        return False

    async def decide(
        self,
        policy: ApprovalPolicy,
        tool: Tool | None,
        request: ApprovalRequest,
        observer: TurnObserver,
    ) -> ApprovalOutcome:
        if policy == "auto" or not tool_requires_approval(tool, _call_arguments(request)):
            return ApprovalOutcome(AuditDecision.AUTO, "policy")
        if await self._allowed_all_before(request.session_id):
            return ApprovalOutcome(AuditDecision.ALLOWED_ALL, "session")
        try:
            async with asyncio.timeout(self.timeout_s):
                answer = await observer.request_approval(request)
        except TimeoutError:
            return ApprovalOutcome(AuditDecision.EXPIRED, "timeout")
        if answer is None:
            return ApprovalOutcome(AuditDecision.DENIED, "no-approver")
        who = answer.decided_by
        if answer.decision == ApprovalDecision.ALLOW_ALL:
            self._allow_all.add(request.session_id)
            return ApprovalOutcome(AuditDecision.ALLOWED_ALL, who)
        if answer.decision == ApprovalDecision.ALLOW:
            return ApprovalOutcome(AuditDecision.ALLOWED, who)
        return ApprovalOutcome(AuditDecision.DENIED, who, answer.reason)


def parse_decision(text: str) -> ApprovalDecision | None:
    """The answer a person typed (y, yes, n, no, a, all; any case), or None if it is none."""
    word = text.strip().lower()
    if word in ("y", "yes", "allow"):
        return ApprovalDecision.ALLOW
    if word in ("n", "no", "deny"):
        return ApprovalDecision.DENY
    if word in ("a", "all", "allow_all", "allow all"):
        return ApprovalDecision.ALLOW_ALL
    return None
