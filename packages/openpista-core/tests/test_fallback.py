"""Model fallback: the next model answers when the primary is down, and the switch is told."""

from __future__ import annotations

from typing import Any

import pytest

from openpista.core.agent import Agent
from openpista.core.errors import ProviderError
from openpista.core.fallback import FallbackModel, FallbackProvider
from openpista.core.gateway import Gateway
from openpista.core.models import ChannelEvent
from openpista.core.provider import ChatRequest
from openpista.core.registry import ToolRegistry
from openpista.core.testing import (
    BrokenStream,
    InMemoryStore,
    RecordingChannel,
    RecordingObserver,
    ScriptedProvider,
    ScriptItem,
    tool_call_reply,
)
from openpista.core.tool import FunctionTool, ToolContext

CHANNEL = "test:local"


def down(name: str = "openai") -> ProviderError:
    return ProviderError(
        f"{name}: server error (HTTP 503: overloaded), gave up after 3 attempts; try again later",
        provider=name,
        status_code=503,
        retryable=True,
    )


def refused(name: str = "openai") -> ProviderError:
    return ProviderError(
        f"{name}: authentication failed (HTTP 401: bad key)", provider=name, status_code=401
    )


class Builds:
    """Fallback builders that count how often they are asked."""

    def __init__(self) -> None:
        self.built: list[str] = []

    def entry(self, provider: ScriptedProvider) -> FallbackModel:
        label = f"{provider.name}/{provider.model}"

        def build() -> ScriptedProvider:
            self.built.append(label)
            return provider

        return FallbackModel(label, build)

    def unbuildable(self, label: str, reason: str) -> FallbackModel:
        def build() -> ScriptedProvider:
            self.built.append(label)
            raise ProviderError(reason)

        return FallbackModel(label, build)


def primary(*script: ScriptItem) -> ScriptedProvider:
    return ScriptedProvider(script, name="openai", model="gpt-4.1-mini")


def second(*script: ScriptItem) -> ScriptedProvider:
    return ScriptedProvider(script, name="anthropic", model="claude-sonnet-4-5")


async def ask(chain: FallbackProvider, notices: list[str], stream: list[str] | None = None) -> str:
    async def notify(text: str) -> None:
        notices.append(text)

    async def on_delta(text: str) -> None:
        assert stream is not None
        stream.append(text)

    request = ChatRequest([], notify=notify)
    response = await chain.complete(request, on_delta if stream is not None else None)
    return response.message.content


async def test_a_fallback_is_built_only_when_needed() -> None:
    builds = Builds()
    chain = FallbackProvider(primary("hello"), [builds.entry(second("unused"))])
    notices: list[str] = []
    assert await ask(chain, notices) == "hello"
    assert builds.built == [] and notices == []
    assert (chain.name, chain.model) == ("openai", "gpt-4.1-mini")


async def test_a_retryable_failure_moves_to_the_fallback_and_says_so() -> None:
    builds = Builds()
    fallback = second("from the fallback")
    chain = FallbackProvider(primary(down()), [builds.entry(fallback)])
    notices: list[str] = []

    assert await ask(chain, notices) == "from the fallback"

    assert notices == [
        "openai/gpt-4.1-mini failed (openai: server error (HTTP 503: overloaded), gave up after "
        "3 attempts; try again later); switched to anthropic/claude-sonnet-4-5"
    ]
    assert fallback.requests[0].model is None  # the fallback answers with its own model


async def test_a_fallback_that_cannot_be_built_is_skipped_and_named() -> None:
    builds = Builds()
    last = ScriptedProvider(["local answer", "again local"], name="ollama", model="llama3.2")
    chain = FallbackProvider(
        primary(down(), down()),
        [
            builds.unbuildable("anthropic/claude-sonnet-4-5", "no API key for anthropic"),
            builds.entry(last),
        ],
    )
    notices: list[str] = []

    assert await ask(chain, notices) == "local answer"
    assert len(notices) == 1
    assert "anthropic/claude-sonnet-4-5 is not usable (no API key for anthropic)" in notices[0]
    assert notices[0].endswith("switched to ollama/llama3.2")

    # The reason is remembered: the next request does not try to build it again.
    assert await ask(chain, []) == "again local"
    assert builds.built.count("anthropic/claude-sonnet-4-5") == 1


async def test_when_every_model_fails_the_error_names_each() -> None:
    builds = Builds()
    chain = FallbackProvider(
        primary(down()),
        [
            builds.unbuildable("anthropic/claude-sonnet-4-5", "no API key for anthropic"),
            builds.entry(ScriptedProvider([down("ollama")], name="ollama", model="llama3.2")),
        ],
    )
    with pytest.raises(ProviderError) as caught:
        await ask(chain, [])
    message = str(caught.value)
    assert message.startswith("every model failed: openai/gpt-4.1-mini failed (openai: server")
    assert "anthropic/claude-sonnet-4-5 is not usable (no API key for anthropic)" in message
    assert "ollama/llama3.2 failed (ollama: server error" in message
    assert caught.value.retryable


async def test_an_error_a_fallback_cannot_fix_is_raised_at_once() -> None:
    builds = Builds()
    chain = FallbackProvider(primary(refused()), [builds.entry(second("unused"))])
    notices: list[str] = []
    with pytest.raises(ProviderError, match="authentication failed"):
        await ask(chain, notices)
    assert builds.built == [] and notices == []


async def test_no_fallback_after_part_of_the_reply_was_streamed() -> None:
    builds = Builds()
    chain = FallbackProvider(
        primary(BrokenStream("Half of the ans", down())), [builds.entry(second("unused"))]
    )
    notices: list[str] = []
    shown: list[str] = []
    with pytest.raises(ProviderError, match="HTTP 503"):
        await ask(chain, notices, shown)
    assert "".join(shown) == "Half of the ans"
    assert builds.built == [] and notices == []


async def test_a_failure_before_any_text_falls_back_while_streaming() -> None:
    builds = Builds()
    chain = FallbackProvider(primary(down()), [builds.entry(second("streamed answer"))])
    notices: list[str] = []
    shown: list[str] = []
    assert await ask(chain, notices, shown) == "streamed answer"
    assert "".join(shown) == "streamed answer"
    assert len(notices) == 1


async def test_close_closes_the_primary_and_the_fallbacks_built() -> None:
    builds = Builds()
    first, used, unused = primary(down()), second("ok"), second("never")
    chain = FallbackProvider(first, [builds.entry(used), builds.entry(unused)])
    await ask(chain, [])
    await chain.aclose()
    assert first.closed and used.closed and not unused.closed


async def noop(arguments: dict[str, Any], context: ToolContext) -> str:
    return "done"


TOOL = FunctionTool(
    "test.noop", noop, description="Does nothing.", parameters={"type": "object", "properties": {}}
)


async def test_a_turn_stays_on_the_fallback_and_the_next_turn_starts_on_the_primary() -> None:
    builds = Builds()
    first = primary(down(), "primary is back")
    fallback = second(tool_call_reply("test.noop", {}), "fallback finished the turn")
    chain = FallbackProvider(first, [builds.entry(fallback)])
    memory = InMemoryStore()
    session = (await memory.create_session(CHANNEL)).id
    agent = Agent(chain, ToolRegistry([TOOL]), memory)
    observer = RecordingObserver()

    result = await agent.run_turn(session, "do it", channel_id=CHANNEL, observer=observer)

    assert result.reply == "fallback finished the turn"
    assert len(first.requests) == 1  # the tool round's second request went to the fallback
    assert len(fallback.requests) == 2
    (notice,) = observer.notices()
    assert notice.endswith("switched to anthropic/claude-sonnet-4-5")

    result = await agent.run_turn(session, "again", channel_id=CHANNEL, observer=observer)
    assert result.reply == "primary is back"
    assert len(first.requests) == 2
    assert len(observer.notices()) == 1


async def test_the_channel_is_shown_the_switch() -> None:
    builds = Builds()
    chain = FallbackProvider(primary(down()), [builds.entry(second("hi from the fallback"))])
    memory = InMemoryStore()
    channel = RecordingChannel("test")
    gateway = Gateway(Agent(chain, ToolRegistry(), memory), memory, {"test": channel})
    await gateway.dispatch(ChannelEvent("test:1", "hi"))
    (response,) = await channel.wait_for_responses(1)

    assert response.content == "hi from the fallback"
    ((channel_id, session_id, text),) = channel.notices
    assert (channel_id, session_id) == ("test:1", response.session_id)
    assert text.startswith("openai/gpt-4.1-mini failed (openai: server error (HTTP 503")
    assert text.endswith("switched to anthropic/claude-sonnet-4-5")
    await gateway.shutdown()
