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
from pathlib import Path
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
    other_key_envs: tuple[str, ...] = ()
    """Further variables litellm takes the key from (Gemini's GOOGLE_API_KEY)."""
    base_url_env: str = ""
    """The variable litellm reads the endpoint from, where one is required (Azure's)."""
    checked: bool = True
    """Whether a provider made for this route is refused at once when no key is found.
    Bedrock's AWS credentials may come from ~/.aws or an instance role, and `litellm/`
    names any vendor: neither can be checked here."""


ROUTES: Mapping[str, LitellmRoute] = MappingProxyType(
    {
        "gemini": LitellmRoute(
            "gemini",
            "Google Gemini",
            "gemini/",
            "GEMINI_API_KEY",
            ("gemini-2.5-flash", "gemini-2.5-pro"),
            other_key_envs=("GOOGLE_API_KEY",),
        ),
        "azure": LitellmRoute(
            "azure",
            "Azure OpenAI",
            "azure/",
            "AZURE_API_KEY",
            ("your-deployment-name",),
            other_key_envs=("AZURE_OPENAI_API_KEY", "AZURE_AD_TOKEN"),
            base_url_env="AZURE_API_BASE",
        ),
        "bedrock": LitellmRoute(
            "bedrock",
            "AWS Bedrock",
            "bedrock/",
            "AWS_ACCESS_KEY_ID",
            ("anthropic.claude-sonnet-4-5-20250929-v1:0",),
            checked=False,
        ),
        "vercel": LitellmRoute(
            "vercel",
            "Vercel AI Gateway",
            "vercel_ai_gateway/",
            "VERCEL_AI_GATEWAY_API_KEY",
            ("openai/gpt-4.1-mini", "anthropic/claude-sonnet-4"),
        ),
        "litellm": LitellmRoute(
            "litellm",
            "litellm (any model it knows)",
            "",
            "",
            ("gemini/gemini-2.5-flash",),
            checked=False,
        ),
    }
)
"""Every provider name this module serves."""

# Tools never see these keys (AWS's are registered only when bedrock is used: the user's
# own `aws` commands through system.run would miss them otherwise).
register_secret_variables(
    variable
    for route in ROUTES.values()
    if route.name != "bedrock"
    for variable in (route.key_env, *route.other_key_envs)
    if variable
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
    """The entry point of the litellm-served names: checks the settings now (a model, and for
    Gemini, Azure and Vercel a key and endpoint), imports litellm at the first request."""
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
    _check_credentials(
        settings.name,
        route,
        key=api_key,
        base_url=settings.base_url.strip() or extra.get("api_base", ""),
        env=os.environ,
    )
    return LitellmProvider(
        name=settings.name,
        model=settings.model,
        route=route,
        base_url=settings.base_url,
        api_key=api_key,
        timeout_s=settings.timeout_s,
        extra_arguments=extra,
    )


def how_to_authenticate(name: str) -> str:
    """How the user gives provider `name` (a litellm route) its credentials, as error
    messages and `openpista model list` say it."""
    route = ROUTES.get(name, ROUTES["litellm"])
    login = f"`openpista auth login {name}`"
    if route.name == "bedrock":
        return f"set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or run {login}"
    if route.name == "litellm" or not route.key_env:
        return (
            "set the variable litellm reads for the model's vendor, e.g. MISTRAL_API_KEY, "
            f"or providers.{name}.api_key in config.toml"
        )
    return f"set {route.key_env} or providers.{name}.api_key in config.toml, or run {login}"


def credentials_found(
    name: str, configured_key: str = "", env: Mapping[str, str] | None = None
) -> bool | None:
    """Whether route `name` has a key in the config or in a variable litellm reads (a
    stored sign-in aside): None when that cannot be told (`litellm/` names any vendor)."""
    route = ROUTES.get(name, ROUTES["litellm"])
    env = os.environ if env is None else env
    if configured_key.strip():
        return True
    if route.name == "litellm":
        return None
    if route.name == "bedrock":
        aws = Path(env.get("HOME", "~")).expanduser() / ".aws"
        return bool(
            env.get("AWS_ACCESS_KEY_ID", "").strip()
            or env.get("AWS_PROFILE", "").strip()
            or (aws / "credentials").is_file()
            or (aws / "config").is_file()
        )
    return any(env.get(variable, "").strip() for variable in (route.key_env, *route.other_key_envs))


def _check_credentials(
    name: str, route: LitellmRoute, *, key: str, base_url: str, env: Mapping[str, str]
) -> None:
    """Refuse now what litellm would refuse after a network round (a missing key or Azure
    endpoint), in the words the presets use."""
    if not route.checked:
        return
    if not credentials_found(name, key, env):
        raise ProviderError(
            f"no API key for {name}: {how_to_authenticate(name)}",
            provider=name,
        )
    if route.base_url_env and not (base_url or env.get(route.base_url_env, "").strip()):
        raise ProviderError(
            f"no endpoint for {name}: set {route.base_url_env} or providers.{name}.base_url "
            f"in config.toml (https://NAME.openai.azure.com), or run "
            f"`openpista auth login {name}`",
            provider=name,
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
        from openpista.providers.pictures import PictureSender

        pictures = PictureSender.for_model(
            self._name, request.model or self._model, request.read_media
        )
        body = chat_completions_body(request, model, stream=True, names=names, pictures=pictures)
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
            raise self._error(litellm, exc) from exc

    def _error(self, litellm: ModuleType, exc: Exception) -> ProviderError:
        reason = _connection_failure(litellm, exc, self._timeout_s)
        if reason is not None:
            return ProviderError(
                f"{self._name}: cannot reach the API ({reason})",
                provider=self._name,
                retryable=True,
            )
        status = getattr(exc, "status_code", None)
        status = status if isinstance(status, int) else None
        if any(isinstance(link, litellm.exceptions.APIConnectionError) for link in _chain(exc)):
            # litellm files every error it did not get from an HTTP answer (a missing key,
            # a bug) as an APIConnectionError with status 500: no server said 500.
            status = None
        message = _readable(str(getattr(exc, "message", "") or exc), self._api_key)
        what = _STATUS_WORDS.get(status or 0, "the request failed")
        where = f" (HTTP {status})" if status else ""
        retryable = status is None or status == 429 or status >= 500
        hint = f"; {how_to_authenticate(self._name)}" if status in (401, 403) else ""
        return ProviderError(
            f"{self._name}: {what}{where}: {message}{hint}",
            provider=self._name,
            status_code=status,
            retryable=retryable,
        )


# `<ssl.SSLContext object at 0x7f...>` (after aiohttp's "ssl:"): a repr, no help to anyone.
_OBJECT_REPR = re.compile(r"(?:\b\w+:)?<[^<>]*\bobject at 0x[0-9a-fA-F]+>")


def _readable(text: str, secret: str = "") -> str:
    """litellm's error text as one line: no traceback (litellm appends one to some
    messages), no object reprs, no exception class prefixes, no key."""
    from openpista.providers._errors import one_line, scrub

    text = text.split("Traceback", 1)[0]
    text = scrub(_OBJECT_REPR.sub("", text), secret)
    return one_line(_CLASS_PREFIX.sub("", " ".join(text.split()))) or "no error message"


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and the exceptions it was raised from or wraps, outermost first."""
    links: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending:
        link = pending.pop(0)
        if link is None or any(link is seen for seen in links):
            continue
        links.append(link)
        original = getattr(link, "original_exception", None)
        pending += [
            original if isinstance(original, BaseException) else None,
            link.__cause__,
            link.__context__,
        ]
    return links


def _connection_failure(litellm: ModuleType, exc: Exception, timeout_s: float) -> str | None:
    """Why no answer came, in a few words, when `exc` is a connection failure or timeout;
    None for errors an API (or litellm itself) reported."""
    import socket
    import ssl

    import httpx
    import openai

    links = _chain(exc)
    if any(isinstance(link, openai.APITimeoutError | httpx.TimeoutException) for link in links):
        return f"no answer within {timeout_s:g} s"
    own_wrapper = litellm.exceptions.APIConnectionError
    transport = [
        link
        for link in links
        if isinstance(link, httpx.TransportError | ConnectionError | socket.gaierror | ssl.SSLError)
        or (isinstance(link, openai.APIConnectionError) and not isinstance(link, own_wrapper))
        or "Cannot connect to host" in str(link)
    ]
    if not transport:
        return None
    for link in reversed(links):  # the innermost OS error says what really happened
        if isinstance(link, ConnectionRefusedError):
            return "connection refused"
        if isinstance(link, socket.gaierror):
            return "host name not found"
        if isinstance(link, ssl.SSLError):
            return f"TLS failure: {_readable(link.reason or str(link))}"
        if isinstance(link, ConnectionError) and link.strerror:
            return _readable(link.strerror).rstrip(".").lower()
    return _readable(str(transport[-1]), "").rstrip(".")


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
