"""The HTTP calls of the sign-in flows: JSON answers, one-line errors with secrets scrubbed."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, cast

import httpx

from openpista.core.errors import ProviderError
from openpista.providers._errors import (
    api_error_message,
    connection_failure_reason,
    one_line,
    scrub,
)

CONNECT_TIMEOUT_S = 15.0
TIMEOUT_S = 60.0


class SigninError(ProviderError):
    """A sign-in or token refresh failed; the message names the provider and says why.

    `detail` is the cause alone ("HTTP 400: invalid_grant", "cannot reach ..."), for a
    caller that words its own message around it.
    """

    def __init__(
        self, message: str, *, provider: str, detail: str = "", status_code: int | None = None
    ) -> None:
        super().__init__(message, provider=provider, status_code=status_code)
        self.detail = detail or message


class SigninHttp:
    """A short-lived client for one flow; every secret it is given is scrubbed from errors."""

    def __init__(self, provider: str, *, secrets: Iterable[str] = ()) -> None:
        self.provider = provider
        self._secrets: set[str] = {secret for secret in secrets if secret}
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            headers={"Accept": "application/json", "User-Agent": "openpista"},
        )

    async def __aenter__(self) -> SigninHttp:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.aclose()

    def keep_secret(self, *values: str) -> None:
        """Scrub these values (tokens received, codes) from every later error message."""
        self._secrets.update(value for value in values if value)

    async def post_form(self, url: str, data: Mapping[str, str], what: str) -> dict[str, Any]:
        self.keep_secret(*_secret_fields(data))
        return await self._send("POST", url, what, data=dict(data))

    async def post_json(self, url: str, body: Mapping[str, str], what: str) -> dict[str, Any]:
        self.keep_secret(*_secret_fields(body))
        return await self._send("POST", url, what, json=dict(body))

    async def get_json(
        self, url: str, what: str, headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        return await self._send("GET", url, what, headers=dict(headers or {}))

    async def form_response(
        self, url: str, data: Mapping[str, str], what: str
    ) -> tuple[int, dict[str, Any]]:
        """POST a form and return (status, JSON body) whatever the status (device-flow polls
        answer errors such as authorization_pending with 200 or 400)."""
        self.keep_secret(*_secret_fields(data))
        response = await self._request("POST", url, what, data=dict(data))
        return response.status_code, self._json(response, what, strict=False)

    async def _send(self, method: str, url: str, what: str, **options: Any) -> dict[str, Any]:
        response = await self._request(method, url, what, **options)
        if response.status_code >= 400:
            detail = f"HTTP {response.status_code}: {_error_text(response.content)}"
            raise self.error(f"{what} failed", detail, status_code=response.status_code)
        return self._json(response, what, strict=True)

    async def _request(self, method: str, url: str, what: str, **options: Any) -> httpx.Response:
        try:
            return await self._client.request(method, url, **options)
        except httpx.TransportError as exc:
            reason = connection_failure_reason(exc, CONNECT_TIMEOUT_S)
            raise self.error(f"{what} failed", f"cannot reach {_origin(url)}: {reason}") from None

    def _json(self, response: httpx.Response, what: str, *, strict: bool) -> dict[str, Any]:
        try:
            data = json.loads(response.content or b"{}")
        except ValueError:
            data = None
        if isinstance(data, dict):
            body = cast(dict[str, Any], data)
            self.keep_secret(*_secret_fields(body))
            return body
        if not strict:
            return {}
        raise self.error(f"{what} failed", "the server answered something that is not JSON")

    def error(
        self, message: str, detail: str = "", *, status_code: int | None = None
    ) -> SigninError:
        """SigninError("PROVIDER: MESSAGE (DETAIL)") with every known secret masked."""
        detail = self.scrubbed(detail)
        text = self.scrubbed(f"{self.provider}: {message}") + (f" ({detail})" if detail else "")
        return SigninError(text, provider=self.provider, detail=detail, status_code=status_code)

    def scrubbed(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = scrub(text, secret)
        return text


_SECRET_KEYS = (
    "code",
    "code_verifier",
    "device_code",
    "refresh_token",
    "access_token",
    "id_token",
    "subject_token",
    "token",
    "key",
)


def _secret_fields(data: Mapping[str, Any]) -> list[str]:
    return [value for key in _SECRET_KEYS if isinstance(value := data.get(key), str) and value]


def _error_text(body: bytes) -> str:
    """What an error body says; OAuth's `{"error", "error_description"}` as "error: description"."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        fields = cast(dict[str, Any], data)
        error, description = fields.get("error"), fields.get("error_description")
        if isinstance(error, str) and isinstance(description, str) and description:
            return one_line(f"{error}: {description}")
    return api_error_message(body)


def _origin(url: str) -> str:
    parts = httpx.URL(url)
    return f"{parts.scheme}://{parts.netloc.decode('ascii')}"
