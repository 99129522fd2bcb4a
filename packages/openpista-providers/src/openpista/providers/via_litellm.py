"""The long tail of providers through litellm: Gemini, Azure OpenAI, AWS Bedrock, Vercel AI
Gateway, and any `litellm/<model>` name.

litellm is an optional extra (`pip install 'openpista-providers[litellm]'`): importing it
costs seconds and hundreds of megabytes, so it is imported only when such a provider answers
its first request, never when the entry point is loaded. Requests and answers keep the
chat-completions shape on both sides, so this module reuses chat_completions' translation;
litellm turns it into each vendor's own protocol.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from openpista.core.errors import ProviderError
from openpista.core.provider import (
    ChatRequest,
    ChatResponse,
    DeltaHandler,
    LlmProvider,
    ProviderSettings,
)
from openpista.core.secrets import register_secret_variables

if TYPE_CHECKING:
    from types import ModuleType


@dataclass(frozen=True, slots=True)
class LitellmRoute:
    """How one provider name reaches litellm: the model prefix and where its key lives."""

    name: str
    display_name: str
    prefix: str
    """Put before the model name for litellm ("gemini/"); empty: the model names its route."""
    key_env: str = ""
    """The variable litellm reads the key from (documented; litellm reads it itself)."""
    example_models: tuple[str, ...] = ()


ROUTES: Mapping[str, LitellmRoute] = MappingProxyType(
    {
        "gemini": LitellmRoute(
            "gemini",
            "Google Gemini",
            "gemini/",
            "GEMINI_API_KEY",
            ("gemini-2.5-flash", "gemini-2.5-pro"),
        ),
        "azure": LitellmRoute(
            "azure", "Azure OpenAI", "azure/", "AZURE_API_KEY", ("your-deployment-name",)
        ),
        "bedrock": LitellmRoute(
            "bedrock",
            "AWS Bedrock",
            "bedrock/",
            "AWS_SECRET_ACCESS_KEY",
            ("anthropic.claude-sonnet-4-5-20250929-v1:0",),
        ),
        "vercel": LitellmRoute(
            "vercel",
            "Vercel AI Gateway",
            "vercel_ai_gateway/",
            "VERCEL_AI_GATEWAY_API_KEY",
            ("openai/gpt-4.1-mini", "anthropic/claude-sonnet-4"),
        ),
        "litellm": LitellmRoute(
            "litellm", "litellm (any model it knows)", "", "", ("gemini/gemini-2.5-flash",)
        ),
    }
)
"""Every provider name this module serves."""

# Tools never see these keys (AWS's are registered only when bedrock is used: the user's
# own `aws` commands through system.run would miss them otherwise).
register_secret_variables(
    route.key_env for route in ROUTES.values() if route.key_env and route.name != "bedrock"
)

_CLASS_PREFIX = re.compile(r"^(?:[\w.]*(?:Error|Exception)\s*(?:-|:)\s*)+")

INSTALL_HINT = "pip install 'openpista-providers[litellm]'"

_STATUS_WORDS = {
    401: "authentication failed",
    403: "authentication failed",
    404: "model or deployment not found",
    429: "rate limited",
}


def create_provider(settings: ProviderSettings) -> LlmProvider:
    """The entry point of the litellm-served names: checks the settings now, imports litellm
    at the first request."""
    route = ROUTES.get(settings.name, ROUTES["litellm"])
    if not settings.model:
        raise ProviderError(
            f"{settings.name}: no model chosen; set [agent] model in config.toml or pass --model "
            f"(e.g. {route.example_models[0]})",
            provider=settings.name,
        )
    if route.name == "bedrock":
        register_secret_variables(["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"])
    api_key = settings.api_key.strip()
    extra: dict[str, str] = {}
    if not api_key:
        api_key, extra = _stored_key(settings.name)
    return LitellmProvider(
        name=settings.name,
        model=settings.model,
        route=route,
        base_url=settings.base_url,
        api_key=api_key,
        timeout_s=settings.timeout_s,
        extra_arguments=extra,
    )


# The values `openpista auth login` keeps beside a key, passed to litellm under their names.
_STORED_EXTRAS = ("api_base", "api_version", "aws_secret_access_key", "aws_region_name")


def _stored_key(name: str) -> tuple[str, dict[str, str]]:
    """The key and litellm arguments `openpista auth login NAME` stored ("" and {} if none)."""
    from openpista.providers.signin.stored import stored_auth

    stored = stored_auth(name)
    if stored is None or stored.method != "api_key":
        return "", {}
    extra = {
        key: stored.credential.extra[key]
        for key in _STORED_EXTRAS
        if key in stored.credential.extra
    }
    if name == "bedrock":
        # Bedrock's "key" is the access key id; litellm takes it under its own name.
        extra["aws_access_key_id"] = stored.api_key
        return "", extra
    return stored.api_key, extra


def litellm_model(route: LitellmRoute, model: str) -> str:
    """The model name litellm expects: the route's prefix added unless already there
    (`litellm/` before a name, as fallback_models may spell it, is dropped)."""
    model = model.removeprefix("litellm/")
    if route.prefix and not model.startswith(route.prefix):
        return route.prefix + model
    return model


class LitellmProvider:
    """An LlmProvider that hands chat-completions-shaped requests to `litellm.acompletion`."""

    def __init__(
        self,
        *,
        name: str,
        model: str,
        route: LitellmRoute,
        base_url: str = "",
        api_key: str = "",
        timeout_s: float = 120.0,
        max_retries: int = 2,
        extra_arguments: Mapping[str, str] | None = None,
    ) -> None:
        """`extra_arguments` go to `litellm.acompletion` as they are (Azure's api_version,
        Bedrock's AWS keys and region)."""
        self._name = name
        self._model = model
        self._route = route
        self._base_url = base_url.strip().rstrip("/")
        self._api_key = api_key.strip()
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._extra_arguments = dict(extra_arguments or {})

    @property
    def name(self) -> str:
        return self._name

    @property
    def model(self) -> str:
        return self._model

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def timeout_s(self) -> float:
        return self._timeout_s

    async def aclose(self) -> None:
        """litellm keeps its own clients; nothing of ours to close."""

    async def complete(
        self, request: ChatRequest, on_delta: DeltaHandler | None = None
    ) -> ChatResponse:
        from openpista.providers._http import wire_names
        from openpista.providers.chat_completions import _StreamedReply, chat_completions_body

        litellm = _import_litellm(self._name)
        model = litellm_model(self._route, request.model or self._model)
        names = wire_names(request.tools, self._name)
        # Always streamed: one code path for every vendor behind litellm.
        body = chat_completions_body(request, model, stream=True, names=names)
        internal_names = {wire: internal for internal, wire in names.items()}
        arguments: dict[str, Any] = {
            **self._extra_arguments,
            **body,
            "timeout": self._timeout_s,
            "num_retries": self._max_retries,
        }
        if self._api_key:
            arguments["api_key"] = self._api_key
        if self._base_url:
            arguments["api_base"] = self._base_url
        try:
            reply = _StreamedReply(internal_names)
            text_shown = False
            try:
                stream = await litellm.acompletion(**arguments)
                async for chunk in stream:
                    piece = reply.add(chunk.model_dump())
                    if piece and on_delta is not None:
                        text_shown = True
                        await on_delta(piece)
            except Exception as exc:
                if not text_shown or not _is_litellm_error(litellm, exc):
                    raise
                # Part of the reply was shown: keep it, marked as cut.
                return reply.response(interrupted=True)
            return reply.response()
        except ProviderError:
            raise
        except Exception as exc:
            if not _is_litellm_error(litellm, exc):
                raise
            raise self._error(exc) from exc

    def _error(self, exc: Exception) -> ProviderError:
        status = getattr(exc, "status_code", None)
        status = status if isinstance(status, int) else None
        message = str(getattr(exc, "message", "") or exc)
        if self._api_key:
            message = message.replace(self._api_key, "***")
        # litellm prefixes its messages with exception class names; keep the human part.
        message = _CLASS_PREFIX.sub("", " ".join(message.split()))
        if len(message) > 300:
            message = message[:299] + "…"
        what = _STATUS_WORDS.get(status or 0, "the request failed")
        where = f" (HTTP {status})" if status else ""
        retryable = status is None or status == 429 or status >= 500
        hint = ""
        if status in (401, 403):
            env = f"{self._route.key_env} or " if self._route.key_env else ""
            hint = (
                f"; check {env}providers.{self._name}.api_key, or run "
                f"`openpista auth login {self._name}`"
            )
        return ProviderError(
            f"{self._name}: {what}{where}: {message}{hint}",
            provider=self._name,
            status_code=status,
            retryable=retryable,
        )


def _import_litellm(provider: str) -> ModuleType:
    # litellm fetches a price list from the network at import unless told not to; this agent
    # must not phone anywhere it was not asked to.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm
    except ModuleNotFoundError as exc:
        if exc.name != "litellm":
            raise
        raise ProviderError(
            f"{provider} is served through litellm, which is not installed: {INSTALL_HINT}",
            provider=provider,
        ) from exc
    litellm.suppress_debug_info = True
    return litellm


def _is_litellm_error(litellm: ModuleType, exc: Exception) -> bool:
    exceptions = getattr(litellm, "exceptions", None)
    base = getattr(exceptions, "OpenAIError", None) if exceptions else None
    if isinstance(base, type) and isinstance(exc, base):
        return True
    return type(exc).__module__.startswith(("litellm", "openai", "httpx"))
