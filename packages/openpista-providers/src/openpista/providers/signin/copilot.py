"""GitHub Copilot: GitHub's device flow, then Copilot's short-lived session token.

The GitHub token (kept as the refresh token) buys Copilot tokens, which last about half
an hour; a new one is fetched whenever the stored one is about to expire.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from openpista.providers.credentials import Credential
from openpista.providers.signin._http import SigninHttp
from openpista.providers.signin._time import required_text
from openpista.providers.signin.console import SigninConsole
from openpista.providers.signin.endpoints import CopilotEndpoints

PROVIDER = "copilot"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_STEP_S = 5.0
"""RFC 8628: each slow_down adds five seconds to the polling interval."""

EDITOR_HEADERS = {
    # Copilot's API serves known editor integrations only; these name the VS Code chat.
    "Editor-Version": "vscode/1.99.3",
    "Editor-Plugin-Version": "copilot-chat/0.26.7",
    "Copilot-Integration-Id": "vscode-chat",
    "User-Agent": "GitHubCopilotChat/0.26.7",
}
"""Headers every request to Copilot (the token exchange and the chat API) carries."""

Sleep = Callable[[float], Awaitable[None]]


async def sign_in(
    console: SigninConsole,
    endpoints: CopilotEndpoints,
    *,
    now: float | None = None,
    sleep: Sleep = asyncio.sleep,
) -> Credential:
    """Run the device flow and the Copilot token exchange; the credential is not stored yet."""
    async with SigninHttp(PROVIDER) as http:
        device = await http.post_form(
            endpoints.device_code_url,
            {"client_id": endpoints.client_id, "scope": endpoints.scope},
            "asking GitHub for a device code",
        )
        device_code = required_text(device, "device_code")
        user_code = required_text(device, "user_code")
        verification_uri = required_text(device, "verification_uri")
        if not device_code or not user_code or not verification_uri:
            raise http.error(
                "GitHub's device-code answer lacks device_code, user_code or verification_uri"
            )
        console.say(
            f"Sign in to GitHub: open {verification_uri} and enter the code\n\n  {user_code}\n"
        )
        console.open_browser(verification_uri)
        github_token = await _poll_for_token(http, endpoints, device, device_code, sleep)
        return await _copilot_credential(http, endpoints, github_token, now)


async def _poll_for_token(
    http: SigninHttp,
    endpoints: CopilotEndpoints,
    device: dict[str, Any],
    device_code: str,
    sleep: Sleep,
) -> str:
    interval = _seconds(device.get("interval"), 5.0)
    deadline = time.monotonic() + _seconds(device.get("expires_in"), 900.0)
    while True:
        await sleep(interval)
        if time.monotonic() > deadline:
            raise http.error("the device code expired before it was entered; sign in again")
        status, answer = await http.form_response(
            endpoints.access_token_url,
            {
                "client_id": endpoints.client_id,
                "device_code": device_code,
                "grant_type": DEVICE_GRANT,
            },
            "waiting for the GitHub sign-in",
        )
        token = required_text(answer, "access_token")
        if token:
            http.keep_secret(token)
            return token
        error = required_text(answer, "error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval = _seconds(answer.get("interval"), interval + SLOW_DOWN_STEP_S)
            continue
        if error == "access_denied":
            raise http.error("the GitHub sign-in was cancelled")
        if error == "expired_token":
            raise http.error("the device code expired before it was entered; sign in again")
        description = required_text(answer, "error_description") or error or "no token"
        raise http.error("the GitHub sign-in failed", f"HTTP {status}: {description}")


def _seconds(value: Any, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return default


async def _copilot_credential(
    http: SigninHttp, endpoints: CopilotEndpoints, github_token: str, now: float | None
) -> Credential:
    answer = await http.get_json(
        endpoints.copilot_token_url,
        "getting a Copilot token (is Copilot enabled for this GitHub account?)",
        headers={"Authorization": f"token {github_token}", **EDITOR_HEADERS},
    )
    token = required_text(answer, "token")
    if not token:
        raise http.error("the Copilot token answer holds no token")
    expires_at = answer.get("expires_at")
    if not isinstance(expires_at, int | float) or isinstance(expires_at, bool):
        # Copilot tokens last about 30 minutes; without a stated expiry assume less.
        expires_at = (time.time() if now is None else now) + 20 * 60
    extra: dict[str, str] = {}
    endpoints_answer = answer.get("endpoints")
    if isinstance(endpoints_answer, dict):
        api = endpoints_answer.get("api")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if isinstance(api, str) and api:
            extra["api_base"] = api
    return Credential(
        provider=PROVIDER,
        method="oauth",
        access_token=token,
        refresh_token=github_token,
        expires_at=float(expires_at),
        extra=extra,
    )


async def refresh(
    credential: Credential, endpoints: CopilotEndpoints, now: float | None
) -> Credential:
    """A new Copilot token bought with the stored GitHub token (raises SigninError)."""
    async with SigninHttp(PROVIDER, secrets=credential.secrets()) as http:
        fresh = await _copilot_credential(http, endpoints, credential.refresh_token, now)
    fresh.extra = {**credential.extra, **fresh.extra}
    return fresh
