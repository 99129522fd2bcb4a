"""What every protocol provider on `HttpApi` shares, so a protocol module holds only its
translation: the LlmProvider properties, closing, the model check and the retried request."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Self

from openpista.core.errors import ProviderError
from openpista.core.provider import ChatRequest, ChatResponse, DeltaHandler
from openpista.providers._http import HttpApi, wire_names


class HttpProvider(ABC):
    """The base of ChatCompletionsProvider, ResponsesProvider and AnthropicProvider.

    A subclass makes its `HttpApi`, and supplies one attempt at a request: `_complete_once`
    (a whole reply) and `_stream_once` (server-sent events, text passed to `on_delta`).
    """

    def __init__(self, api: HttpApi, model: str) -> None:
        self._api = api
        self._model = model

    @property
    def name(self) -> str:
        return self._api.name

    @property
    def model(self) -> str:
        return self._model

    @property
    def base_url(self) -> str:
        return self._api.base_url

    @property
    def timeout_s(self) -> float:
        return self._api.timeout_s

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections. A later request opens a fresh pool."""
        await self._api.aclose()

    def _chosen_model(self, request: ChatRequest) -> str:
        """The request's model, else the configured one; a clear error when there is none."""
        model = request.model or self._model
        if not model:
            raise ProviderError(
                f"{self.name}: no model chosen; set [agent] model in config.toml or pass --model",
                provider=self.name,
            )
        return model

    def _tool_names(self, request: ChatRequest) -> tuple[dict[str, str], dict[str, str]]:
        """The request's tools' wire names by internal name, and internal names by wire name."""
        names = wire_names(request.tools, self.name)
        return names, {wire: internal for internal, wire in names.items()}

    async def _retried(
        self,
        body: dict[str, Any],
        model: str,
        internal_names: Mapping[str, str],
        on_delta: DeltaHandler | None,
    ) -> ChatResponse:
        """Send `body`, retried as `HttpApi.retrying` allows; streamed when `on_delta` is given."""
        if on_delta is None:
            return await self._api.retrying(
                lambda: self._complete_once(body, model, internal_names)
            )
        return await self._api.retrying(
            lambda: self._stream_once(body, model, internal_names, on_delta)
        )

    @abstractmethod
    async def _complete_once(
        self, body: dict[str, Any], model: str, internal_names: Mapping[str, str]
    ) -> ChatResponse:
        """One unstreamed attempt (a TransientFailure is retried)."""

    @abstractmethod
    async def _stream_once(
        self,
        body: dict[str, Any],
        model: str,
        internal_names: Mapping[str, str],
        on_delta: DeltaHandler,
    ) -> ChatResponse:
        """One streamed attempt, each text piece passed to `on_delta` (a TransientFailure
        before any text was shown is retried)."""
