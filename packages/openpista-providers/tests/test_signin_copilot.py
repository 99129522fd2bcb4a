"""GitHub Copilot: the device flow and the Copilot token exchange against the fake server."""

from __future__ import annotations

import pytest

from openpista.providers.signin import SigninError
from openpista.providers.signin.copilot import EDITOR_HEADERS, sign_in
from openpista.providers.testing import BrowserConsole, FakeAuthorizationServer


async def test_device_flow_honours_interval_and_slow_down() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    with FakeAuthorizationServer(
        device_interval_s=5, device_pending_polls=2, device_slow_downs=1
    ) as auth:
        console = BrowserConsole(open_browser=False)
        credential = await sign_in(console, auth.endpoints().copilot, sleep=sleep)

        # Polls: slow_down (which names the new interval, 10 s, kept from then on),
        # authorization_pending, then the token.
        assert slept == [5.0, 10.0, 10.0]
        assert credential.method == "oauth"
        assert credential.refresh_token.startswith("gho_fake")
        assert auth.is_valid_access_token(credential.access_token, "copilot")
        assert credential.expires_at is not None
        assert credential.extra == {"api_base": auth.base_url + "/copilot-api"}
        [device] = auth.requests_to("/login/device/code")
        assert device.body == {"client_id": "Iv1.b507a08c87ecfe98", "scope": "read:user"}
        assert device.content_type == "application/x-www-form-urlencoded"
        [exchange] = auth.requests_to("/copilot_internal/v2/token")
        assert exchange.headers["authorization"] == f"token {credential.refresh_token}"
        assert exchange.headers["editor-version"] == EDITOR_HEADERS["Editor-Version"]
    user_code_line = console.said[0]
    assert "/copilot/login/device and enter the code" in user_code_line


async def test_copilot_refusal_names_the_provider_and_status() -> None:
    async def no_sleep(seconds: float) -> None:
        pass

    with FakeAuthorizationServer() as auth:
        endpoints = auth.endpoints().copilot
        # A Copilot token endpoint that does not know the token (no Copilot subscription).
        from dataclasses import replace

        broken = replace(endpoints, copilot_token_url=auth.base_url + "/copilot/nowhere")
        with pytest.raises(SigninError) as caught:
            await sign_in(BrowserConsole(open_browser=False), broken, sleep=no_sleep)
    message = str(caught.value)
    assert message.startswith("copilot: getting a Copilot token")
    assert "(HTTP 404: " in message
    assert "gho_fake" not in message
