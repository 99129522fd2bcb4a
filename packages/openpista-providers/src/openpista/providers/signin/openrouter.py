"""OpenRouter: sign in in the browser and receive an API key (OpenRouter's PKCE flow).

The browser comes back to a local callback server with `?code=`; the code and the PKCE
verifier buy a user-controlled API key, stored as an API key (it does not expire).
"""

from __future__ import annotations

from urllib.parse import urlencode

from openpista.providers.credentials import Credential
from openpista.providers.signin._http import SigninError, SigninHttp
from openpista.providers.signin._time import required_text
from openpista.providers.signin.callback import CallbackServer
from openpista.providers.signin.console import SigninConsole
from openpista.providers.signin.endpoints import OpenRouterEndpoints
from openpista.providers.signin.pkce import new_pkce

PROVIDER = "openrouter"


async def sign_in(
    console: SigninConsole, endpoints: OpenRouterEndpoints, *, timeout_s: float = 300.0
) -> Credential:
    """Run the browser sign-in and return the API key as a credential (not stored yet)."""
    pkce = new_pkce()
    try:
        # OpenRouter returns no `state`; the PKCE verifier, which never leaves this
        # process before the exchange, is what makes a forged code useless.
        server = CallbackServer(
            port=endpoints.callback_port, path=endpoints.callback_path, state=None
        )
    except OSError as exc:
        raise SigninError(f"{PROVIDER}: {exc.strerror}", provider=PROVIDER) from None
    async with server:
        query = {
            "callback_url": endpoints.callback_url(server.port),
            "code_challenge": pkce.challenge,
            "code_challenge_method": pkce.method,
        }
        url = f"{endpoints.authorize_url}?{urlencode(query)}"
        console.say(
            "Sign in to OpenRouter: open this URL in a browser on this machine; OpenRouter\n"
            f"creates an API key for openpista:\n\n  {url}\n"
        )
        console.open_browser(url)
        try:
            result = await server.wait(timeout_s)
        except TimeoutError:
            raise SigninError(
                f"{PROVIDER}: no sign-in within {timeout_s:g} s; run `openpista auth login "
                f"{PROVIDER}` again",
                provider=PROVIDER,
            ) from None
    if result.error:
        raise SigninError(
            f"{PROVIDER}: the sign-in was refused ({result.error})", provider=PROVIDER
        )
    async with SigninHttp(PROVIDER, secrets=[pkce.verifier, result.code]) as http:
        answer = await http.post_json(
            endpoints.keys_url,
            {
                "code": result.code,
                "code_verifier": pkce.verifier,
                "code_challenge_method": pkce.method,
            },
            "exchanging the code for an API key",
        )
        key = required_text(answer, "key")
        if not key:
            raise http.error("the key endpoint answered without a key")
    return Credential(provider=PROVIDER, method="api_key", access_token=key)
