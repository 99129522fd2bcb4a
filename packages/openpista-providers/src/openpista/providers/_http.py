"""What every wire protocol shares: the HTTP side of talking to an LLM API.

A protocol module (chat_completions, responses, anthropic) only translates: it builds the
request body, parses the answer or the stream's events, and names what it speaks. This module
owns the rest, so every protocol behaves alike:

- one pooled httpx client per provider, with static headers and per-request auth headers
  (a signed-in token is refreshed before a request, not after a 401);
- retries of 429, 5xx and broken connections with exponential backoff and Retry-After,
  but never a request the server called invalid, and never once text was shown;
- one-line errors naming the provider, the status and the setting to check, with every
  secret scrubbed;
- server-sent events read until the stream's end or `[DONE]`, comment lines skipped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NoReturn, TypeVar

import httpx

from openpista.core.errors import ProviderError
from openpista.core.provider import ToolSpec
from openpista.providers._errors import (
    api_error_message,
    connection_failure_reason,
    one_line,
    scrub,
)
from openpista.providers._retry import RETRYABLE_STATUS_CODES, RetryPolicy, Sleep, retry_after_s
from openpista.providers._sse import ServerSentEvent, ServerSentEventDecoder

log = logging.getLogger("openpista.providers")

T = TypeVar("T")

DEFAULT_CONNECT_TIMEOUT_S = 10.0
"""A server that does not accept a connection in this long is not going to."""

USER_AGENT = "openpista"

AuthHeaders = Callable[[], Awaitable[Mapping[str, str]]]
"""Headers that authenticate one request, fetched before each attempt (a signed-in token is
refreshed here when it is about to expire)."""

_DRAIN_LIMIT_S = 2.0
"""How long to wait for a stream's end after `[DONE]` before giving the connection up."""

FailureKind = Literal["connect", "timeout", "broken", "status"]

# A 5xx is normally the server's trouble and worth retrying, but some servers (llama.cpp's
# Python server among them) answer a request they cannot parse with a 500 whose body says so:
# that request fails the same way every time.
_INVALID_REQUEST_WORDING = re.compile(
    r"validation error|invalid request|invalid_request|unprocessable|"
    r"field required|extra inputs are not permitted|input should be",
    re.IGNORECASE,
)


# How APIs say a model does not exist in a 400 (the Responses API: code model_not_found).
_MODEL_UNKNOWN = re.compile(
    r"model_not_found|model .{0,80} does not exist|unknown model|invalid model|"
    r"model not found|no such model",
    re.IGNORECASE,
)


def _is_web_page(response: httpx.Response) -> bool:
    content_type = response.headers.get("content-type", "").lower()
    start = response.content[:200].lstrip().lower()
    return "text/html" in content_type or start.startswith((b"<!doctype html", b"<html"))


class TransientFailure(Exception):
    """One attempt failed in a way worth retrying; a ProviderError once retries run out."""

    def __init__(
        self,
        kind: FailureKind,
        detail: str,
        *,
        status_code: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.kind: FailureKind = kind
        self.detail = detail
        self.status_code = status_code
        self.retry_after_s = retry_after_s

    @property
    def summary(self) -> str:
        if self.status_code is not None:
            return f"HTTP {self.status_code}: {self.detail}"
        return self.detail


def wire_names(tools: list[ToolSpec], provider: str) -> dict[str, str]:
    """Each tool's wire name by internal name; ProviderError when two share a wire name.

    The registry refuses such tools already; this catches a third-party caller that builds
    requests itself, before the API answers with a confusing 400 (or, worse, calls the wrong
    tool).
    """
    by_wire: dict[str, str] = {}
    for spec in tools:
        other = by_wire.get(spec.wire_name)
        if other is not None and other != spec.name:
            raise ProviderError(
                f"{provider}: tools {other!r} and {spec.name!r} both go on the wire as "
                f"{spec.wire_name!r}; rename one of them",
                provider=provider,
            )
        by_wire[spec.wire_name] = spec.name
    return {spec.name: spec.wire_name for spec in tools}


@dataclass(frozen=True, slots=True)
class ApiDescription:
    """How error messages speak of the API a provider talks to."""

    what: str = "an OpenAI-compatible API"
    """What `base_url` should point at ("an OpenAI-compatible API", "the Anthropic API")."""
    base_url_example: str = "http://127.0.0.1:8000/v1"
    base_url_suffix: str = "/v1"
    """What the base URL usually ends in, for the hint on a 404 ("" for none)."""


class HttpApi:
    """The HTTP side of one provider: pooled client, auth, retries, errors, SSE.

    Made by a protocol module's provider; `aclose()` closes the pool and a later request
    opens a fresh one.
    """

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        api_key: str = "",
        auth: AuthHeaders | None = None,
        key_headers: Callable[[str], Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 120.0,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        key_setting: str = "",
        describe: ApiDescription | None = None,
        max_attempts: int = 3,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        sleep: Sleep | None = None,
    ) -> None:
        """`key_headers` turns the API key into headers (default: `Authorization: Bearer`);
        `auth` supplies headers per request instead (a signed-in token); `key_setting` names
        where the key is configured, for error messages; `sleep` lets tests observe backoff
        without waiting for it."""
        self.name = name
        self.base_url = base_url.strip().rstrip("/")
        self.timeout_s = timeout_s
        self.describe = describe or ApiDescription()
        self._api_key = api_key.strip()
        self._auth = auth
        self._connect_timeout_s = min(connect_timeout_s, timeout_s)
        self.key_setting = key_setting or f"providers.{name}.api_key in config.toml"
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._retry = RetryPolicy(
            max_attempts=max_attempts,
            base_s=backoff_base_s,
            cap_s=backoff_cap_s,
            sleep=sleep or asyncio.sleep,
        )
        if not self.base_url.startswith(("http://", "https://")):
            raise ProviderError(
                f"{name}: base_url {self.base_url!r} is not an http(s) URL; set "
                f"providers.{name}.base_url to something like {self.describe.base_url_example}",
                provider=name,
            )
        if self._api_key and not (self._api_key.isascii() and self._api_key.isprintable()):
            # httpx would refuse the header with an error quoting it: refuse first, key unsaid.
            raise ProviderError(
                f"{name}: the API key holds characters an HTTP header cannot carry "
                f"(a stray newline?); check {self.key_setting}",
                provider=name,
            )
        self._headers: dict[str, str] = {"User-Agent": USER_AGENT, **(headers or {})}
        if self._api_key:
            make = key_headers or _bearer
            self._headers.update(make(self._api_key))
        self._secrets: set[str] = {self._api_key} if self._api_key else set()
        self._client: httpx.AsyncClient | None = None

    @property
    def signed_in(self) -> bool:
        """Whether requests carry a signed-in token rather than a configured key."""
        return self._auth is not None and not self._api_key

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    async def aclose(self) -> None:
        """Close the pooled connections. A later request opens a fresh pool."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def scrub(self, text: str) -> str:
        """`text` with every secret this provider knows masked."""
        for secret in self._secrets:
            text = scrub(text, secret)
        return text

    # Requests.

    async def retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run `attempt` until it succeeds, retrying on TransientFailure with backoff.

        An attempt that must not be repeated (text already shown) handles its own failure
        instead of raising TransientFailure.
        """
        number = 1
        while True:
            try:
                return await attempt()
            except TransientFailure as failure:
                asked = failure.retry_after_s
                if number >= self._retry.max_attempts or (
                    asked is not None and asked > self._retry.cap_s
                ):
                    # A server asking for a longer wait than we would ever make is not
                    # waited for at all: say so now (a fallback model can answer instead).
                    raise self.gave_up_error(failure, number) from failure
                delay = self._retry.delay_s(number, failure.retry_after_s)
                log.info(
                    "%s: %s; retrying in %.1f s (attempt %d of %d)",
                    self.name,
                    self.scrub(failure.summary),
                    delay,
                    number + 1,
                    self._retry.max_attempts,
                )
                await self._retry.sleep(delay)
                number += 1

    async def post_json(self, url: str, body: dict[str, Any], model: str) -> dict[str, Any]:
        """One POST answered with a JSON object; failures as TransientFailure or ProviderError."""
        headers = await self._request_headers()
        try:
            response = await self._http().post(url, json=body, headers=headers)
        except httpx.TransportError as exc:
            raise self.transport_failure(exc) from exc
        if not response.is_success:
            self.raise_for_status(response, model)
        data = self.json_object(response.content, url)
        return data

    async def stream_events(
        self, url: str, body: dict[str, Any], model: str
    ) -> AsyncGenerator[ServerSentEvent]:
        """POST `body` and yield the answer's server-sent events, until the stream ends or
        sends `[DONE]` (what follows `[DONE]` is never read: a server may tear the connection
        down right after it, and the reply is complete).

        Use it as `async with contextlib.aclosing(api.stream_events(...)) as events:` so an
        early exit closes the response. Transport failures arrive as TransientFailure, HTTP
        errors as raise_for_status makes them.
        """
        headers = await self._request_headers()
        decoder = ServerSentEventDecoder()
        try:
            async with self._http().stream("POST", url, json=body, headers=headers) as response:
                if not response.is_success:
                    await response.aread()
                    self.raise_for_status(response, model)
                lines = response.aiter_lines()
                async for line in lines:
                    event = decoder.feed(line)
                    if event is None:
                        continue
                    if event.data.strip() == "[DONE]":
                        await _drain(lines)
                        return
                    yield event
                tail = decoder.flush()
                if tail is not None and tail.data.strip() != "[DONE]":
                    yield tail
        except httpx.TransportError as exc:
            raise self.transport_failure(exc) from exc

    async def discard_connections(self) -> None:
        """Drop the pool: after a stream that misbehaved, a kept connection could carry its
        leftovers into the next request."""
        await self.aclose()

    # Turning failures into errors.

    def transport_failure(self, exc: httpx.TransportError) -> TransientFailure | ProviderError:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return TransientFailure(
                "connect", connection_failure_reason(exc, self._connect_timeout_s)
            )
        if isinstance(exc, httpx.TimeoutException):
            return TransientFailure("timeout", f"no data within {self.timeout_s:g} s")
        if isinstance(exc, httpx.UnsupportedProtocol):
            return ProviderError(
                f"{self.name}: cannot use {self.base_url} ({one_line(str(exc), 120)}); set "
                f"providers.{self.name}.base_url to an http(s) URL",
                provider=self.name,
            )
        detail = self.scrub(one_line(str(exc), 160)) or type(exc).__name__
        return TransientFailure("broken", f"connection broke off: {detail}")

    def raise_for_status(self, response: httpx.Response, model: str) -> NoReturn:
        status = response.status_code
        name = self.name
        web_page = _is_web_page(response)
        # A page's markup says nothing useful in one line (a proxy's 502 page, say).
        message = "a web page" if web_page else self.scrub(api_error_message(response.content))
        if status in RETRYABLE_STATUS_CODES and not (
            status >= 500 and _INVALID_REQUEST_WORDING.search(message)
        ):
            raise TransientFailure(
                "status",
                message,
                status_code=status,
                retry_after_s=retry_after_s(response.headers),
            )
        if web_page and status not in (401, 403, 404):
            # A web server, not an LLM API: asking again will not make it one.
            raise ProviderError(
                f"{name}: {response.request.url} answered HTTP {status} with a web page, not "
                f"an API error; check that providers.{name}.base_url points at "
                f"{self.describe.what}",
                provider=name,
                status_code=status,
            )
        if status in (401, 403):
            if self.signed_in:
                what = f"the stored sign-in was refused: run `openpista auth login {name}`"
            elif self._api_key:
                what = f"the API key was refused: check {self.key_setting}"
            else:
                what = f"no API key was sent: set {self.key_setting}"
            text = f"{name}: authentication failed (HTTP {status}: {message}); {what}"
        elif status == 404:
            suffix = self.describe.base_url_suffix
            hint = (
                f" (it usually ends in {suffix})"
                if suffix and not self.base_url.endswith(suffix)
                else ""
            )
            from openpista.providers.catalog import unknown_model_hint

            # A base URL missing its /v1 is the likelier cause: then no list of models.
            known = "" if hint else unknown_model_hint(name, model)
            text = (
                f"{name}: model '{model}' or URL {response.request.url} not found (HTTP 404: "
                f"{message}); check the model name and providers.{name}.base_url{hint}"
                + (f"; {known}" if known else "")
            )
        elif 400 <= status < 500:
            text = f"{name}: the API rejected the request (HTTP {status}): {message}"
            if _MODEL_UNKNOWN.search(message) or _MODEL_UNKNOWN.search(
                response.content.decode("utf-8", errors="replace")[:2000]
            ):
                from openpista.providers.catalog import unknown_model_hint

                known = unknown_model_hint(name, model)
                text = f"{text.rstrip('.')}; {known}" if known else text
        elif status >= 500:
            text = (
                f"{name}: the server refused the request as invalid (HTTP {status}: {message}); "
                "not retried, it would fail the same way"
            )
        else:
            location = response.headers.get("location")
            moved = f" (redirect to {location})" if location else ""
            text = (
                f"{name}: unexpected HTTP {status} from {response.request.url}{moved}; check "
                f"providers.{name}.base_url"
            )
        raise ProviderError(text, provider=name, status_code=status)

    def json_object(self, raw: bytes | str, url: str) -> dict[str, Any]:
        """`raw` parsed as a JSON object; ProviderError naming the URL when it is not one."""
        try:
            data: Any = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
            raise self.wrong_api_error(url, f"something that is not JSON ({one_line(text, 80)!r})")
        return data

    def wrong_api_error(self, url: str, what: str) -> ProviderError:
        """The server at `url` answered `what`: probably not the API we think it is."""
        return ProviderError(
            self.scrub(
                f"{self.name}: {url} answered with {what}; check that "
                f"providers.{self.name}.base_url points at {self.describe.what}"
            ),
            provider=self.name,
        )

    def api_reported_error(self, data: Mapping[str, Any]) -> str:
        """The message of an error object inside a 200 answer, scrubbed."""
        return self.scrub(api_error_message(json.dumps(data).encode()))

    def gave_up_error(self, failure: TransientFailure, attempts: int) -> ProviderError:
        name = self.name
        tries = f"gave up after {attempts} attempt{'s' if attempts != 1 else ''}"
        if failure.kind == "connect":
            text = (
                f"{name}: cannot reach {self.base_url} ({failure.detail}); check "
                f"providers.{name}.base_url or your network"
            )
        elif failure.kind == "timeout":
            text = (
                f"{name}: {self.base_url} sent no answer within {self.timeout_s:g} s "
                f"({tries}); try again later or raise [agent] timeout_s"
            )
        elif failure.status_code == 429:
            asked = failure.retry_after_s
            wait = (
                f"the server asks to wait {asked:.0f} s"
                if asked is not None and asked > self._retry.cap_s
                else "wait a minute and try again"
            )
            text = (
                f"{name}: rate limited (HTTP 429: {failure.detail}), {tries}; {wait}, or check "
                "your plan's rate limits"
            )
        elif failure.status_code is not None:
            text = (
                f"{name}: server error (HTTP {failure.status_code}: {failure.detail}), "
                f"{tries}; try again later"
            )
        else:
            text = f"{name}: {self.base_url}: {failure.detail} ({tries}); try again later"
        return ProviderError(
            self.scrub(text), provider=name, status_code=failure.status_code, retryable=True
        )

    # Plumbing.

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                headers=self._headers,
                timeout=httpx.Timeout(self.timeout_s, connect=self._connect_timeout_s),
            )
        return self._client

    async def _request_headers(self) -> dict[str, str]:
        if self._auth is None or self._api_key:
            return {}
        headers = dict(await self._auth())
        for key, value in headers.items():
            if key.lower() in ("authorization", "x-api-key") and value:
                # A refreshed token is a new secret to keep out of messages.
                self._secrets.add(value.removeprefix("Bearer ").strip())
        return headers


async def _drain(lines: AsyncIterator[str]) -> None:
    """Read what follows `[DONE]` so the connection can serve the next request; if the server
    tears the connection down instead (llama.cpp's does when another request interrupts it),
    or keeps it open, the reply is complete anyway and the connection is simply not reused."""
    try:
        async with asyncio.timeout(_DRAIN_LIMIT_S):
            async for _ in lines:
                pass
    except (httpx.TransportError, TimeoutError):
        pass


def _bearer(api_key: str) -> Mapping[str, str]:
    return {"Authorization": f"Bearer {api_key}"}
