"""Model fallback: when the primary model fails, the next of `[agent] fallback_models` answers.

`FallbackProvider` wraps the primary provider and a list of fallbacks, each built only when
it is first needed (a fallback nobody needs costs nothing, and one that cannot be built, say
for want of an API key, is skipped with its reason logged). A request moves on to the next
model when the current one raises a ProviderError marked `retryable` (rate limits, 5xx,
timeouts, a server that cannot be reached: the provider already retried it) and never:

- after part of the reply was streamed: the user has seen it, and another model would start
  over (the error is raised as it is);
- on other errors (a refused key, a bad request, an unknown model): another model would not
  fix the configuration, and the error says what to fix.

Each switch is reported through `ChatRequest.notify` ("openai/gpt-4.1-mini failed (...);
switched to anthropic/claude-sonnet-4-5"), which the agent points at the turn observer. Once
switched, the rest of that turn stays on the fallback (`for_turn` gives each turn its own
view); the next turn starts from the primary again, so a passing outage costs one turn.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from openpista.core.errors import OpenpistaError, ProviderError
from openpista.core.provider import ChatRequest, ChatResponse, DeltaHandler, LlmProvider

logger = logging.getLogger(__name__)

ProviderBuilder = Callable[[], LlmProvider]
"""Builds a fallback's provider; raises OpenpistaError (ProviderError, ConfigError) when it
cannot (no API key, no such provider installed)."""


@dataclass(frozen=True, slots=True)
class FallbackModel:
    """One entry of `[agent] fallback_models`: its "provider/model" label and how to build it."""

    label: str
    build: ProviderBuilder


def provider_label(provider: LlmProvider) -> str:
    """ "name/model", as fallback notices and `fallback_models` name a model."""
    return f"{provider.name}/{provider.model}"


class FallbackProvider:
    """An LlmProvider that answers with the primary, else with the fallbacks in order.

    `name` and `model` are the primary's. `complete` starts from the primary on every call;
    the agent uses `for_turn()` so that a switch lasts for the rest of the turn.
    """

    def __init__(self, primary: LlmProvider, fallbacks: Sequence[FallbackModel]) -> None:
        self.primary = primary
        self.fallbacks = list(fallbacks)
        self._labels = [provider_label(primary), *(entry.label for entry in self.fallbacks)]
        self._built: dict[int, LlmProvider | str] = {0: primary}
        """Position in the chain -> its provider, or why it could not be built."""

    @property
    def name(self) -> str:
        return self.primary.name

    @property
    def model(self) -> str:
        return self.primary.model

    @property
    def labels(self) -> list[str]:
        """ "provider/model" of the primary, then of each fallback."""
        return list(self._labels)

    def for_turn(self) -> LlmProvider:
        """A view for one turn: it starts at the primary and stays where it switched to."""
        return _FallbackTurn(self)

    async def complete(
        self, request: ChatRequest, on_delta: DeltaHandler | None = None
    ) -> ChatResponse:
        return await _FallbackTurn(self).complete(request, on_delta)

    async def aclose(self) -> None:
        """Close the primary and every fallback built; the first failure is raised after."""
        failure: BaseException | None = None
        for built in list(self._built.values()):
            if isinstance(built, str):
                continue
            try:
                await built.aclose()
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def provider_at(self, position: int) -> LlmProvider | str:
        """The provider at `position` (0: the primary), built on first use; or the reason
        it cannot be built (remembered: the configuration does not change meanwhile)."""
        built = self._built.get(position)
        if built is not None:
            return built
        entry = self.fallbacks[position - 1]
        try:
            built = entry.build()
        except OpenpistaError as exc:
            built = str(exc)
            # Told in the switch notice or the final error; logged for --log-level info.
            logger.info("fallback model %s cannot be used: %s", entry.label, built)
        self._built[position] = built
        return built


class _FallbackTurn:
    """One turn's way through the chain: where it is now, moving on only forwards."""

    def __init__(self, chain: FallbackProvider) -> None:
        self._chain = chain
        self._position = 0

    @property
    def name(self) -> str:
        return self._current().name

    @property
    def model(self) -> str:
        return self._current().model

    def _current(self) -> LlmProvider:
        built = self._chain.provider_at(self._position)
        return built if not isinstance(built, str) else self._chain.primary

    async def complete(
        self, request: ChatRequest, on_delta: DeltaHandler | None = None
    ) -> ChatResponse:
        chain = self._chain
        labels = chain.labels
        position = self._position
        failures: list[str] = []
        """Why each model tried or skipped in this request did not answer."""
        switching_from: str | None = None
        """The failure that moved the request on, until a model that can answer is found."""
        skipped: list[str] = []
        """Fallbacks passed over since then, because they could not be built."""
        last_error: ProviderError | None = None
        while position < len(labels):
            label = labels[position]
            provider = chain.provider_at(position)
            if isinstance(provider, str):
                failures.append(f"{label} is not usable ({provider})")
                skipped.append(failures[-1])
                position += 1
                continue
            if switching_from is not None:
                self._position = position
                notice = "; ".join([switching_from, *skipped, f"switched to {label}"])
                if request.notify is not None:
                    logger.info("%s", notice)
                    await request.notify(notice)
                else:
                    logger.warning("%s", notice)
                switching_from = None
                skipped = []
            streamed = False

            async def forward(text: str) -> None:
                nonlocal streamed
                streamed = True
                assert on_delta is not None
                await on_delta(text)

            # A fallback answers with its own model, not one the request chose for the primary.
            attempt = request if position == 0 else dataclasses.replace(request, model=None)
            try:
                return await provider.complete(attempt, forward if on_delta is not None else None)
            except ProviderError as exc:
                if streamed or not exc.retryable:
                    raise
                last_error = exc
                switching_from = f"{label} failed ({exc})"
                failures.append(switching_from)
                position += 1
        if last_error is not None and len(failures) == 1:
            raise last_error  # nothing else was there to try
        raise ProviderError(
            "every model failed: " + "; ".join(failures),
            provider=chain.name,
            status_code=last_error.status_code if last_error is not None else None,
            retryable=True,
        )

    async def aclose(self) -> None:
        """The chain is closed by its owner, not by one turn's view."""
