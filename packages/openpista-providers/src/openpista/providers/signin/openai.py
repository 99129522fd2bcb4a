"""OpenAI: sign in with a ChatGPT subscription, the way the Codex CLI does.

Browser authorization with PKCE, the code received on a local callback server, exchanged
for tokens; then the id_token is exchanged for an API key (when the account has an API
organisation) and the ChatGPT account id is read from the id_token's claims.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from openpista.providers.credentials import Credential
from openpista.providers.signin._http import SigninError, SigninHttp
from openpista.providers.signin._time import expiry, required_text
from openpista.providers.signin.callback import CallbackServer
from openpista.providers.signin.console import SigninConsole
from openpista.providers.signin.endpoints import OpenAIEndpoints
from openpista.providers.signin.jwt import chatgpt_account_id
from openpista.providers.signin.pkce import new_pkce, new_state

logger = logging.getLogger(__name__)

PROVIDER = "openai"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"


async def sign_in(
    console: SigninConsole,
    endpoints: OpenAIEndpoints,
    *,
    timeout_s: float = 300.0,
    now: float | None = None,
) -> Credential:
    """Run the browser sign-in and return the credential (not stored yet)."""
    pkce = new_pkce()
    state = new_state()
    try:
        server = CallbackServer(
            port=endpoints.callback_port, path=endpoints.callback_path, state=state
        )
    except OSError as exc:
        raise SigninError(f"{PROVIDER}: {exc.strerror}", provider=PROVIDER) from None
    async with server:
        redirect_uri = endpoints.redirect_uri(server.port)
        query = {
            "response_type": "code",
            "client_id": endpoints.client_id,
            "redirect_uri": redirect_uri,
            "scope": endpoints.scope,
            "code_challenge": pkce.challenge,
            "code_challenge_method": pkce.method,
            "id_token_add_organizations": "true",
            "codex_cli_simplified_flow": "true",
            "state": state,
        }
        url = f"{endpoints.authorize_url}?{urlencode(query)}"
        console.say(
            "Sign in with your ChatGPT account: open this URL in a browser on this machine\n"
            f"(the browser comes back to {redirect_uri}):\n\n  {url}\n"
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
        answer = await http.post_form(
            endpoints.token_url,
            {
                "grant_type": "authorization_code",
                "code": result.code,
                "redirect_uri": redirect_uri,
                "client_id": endpoints.client_id,
                "code_verifier": pkce.verifier,
            },
            "exchanging the authorization code",
        )
        access_token = required_text(answer, "access_token")
        id_token = required_text(answer, "id_token")
        if not access_token or not id_token:
            raise http.error("the token endpoint answered without access_token or id_token")
        api_key = await _exchange_for_api_key(http, endpoints, id_token)
        if not api_key:
            console.say(
                "(No API key could be made for this account; the ChatGPT subscription is used.)"
            )
    return Credential(
        provider=PROVIDER,
        method="oauth",
        access_token=access_token,
        refresh_token=required_text(answer, "refresh_token"),
        expires_at=expiry(answer, access_token, now),
        id_token=id_token,
        account_id=chatgpt_account_id(id_token),
        api_key=api_key,
    )


async def _exchange_for_api_key(http: SigninHttp, endpoints: OpenAIEndpoints, id_token: str) -> str:
    """An API key for the id_token's organisation, or "" when the account has none.

    Not fatal: ChatGPT accounts without an API organisation are refused here, and the
    subscription's access token still works.
    """
    try:
        answer = await http.post_form(
            endpoints.token_url,
            {
                "grant_type": TOKEN_EXCHANGE_GRANT,
                "client_id": endpoints.client_id,
                "requested_token": "openai-api-key",
                "subject_token": id_token,
                "subject_token_type": ID_TOKEN_TYPE,
            },
            "exchanging the id_token for an API key",
        )
    except SigninError as exc:
        logger.info("%s", exc)
        return ""
    return required_text(answer, "access_token")


async def refresh(
    credential: Credential, endpoints: OpenAIEndpoints, now: float | None
) -> Credential:
    """The credential with new tokens from the refresh_token grant (raises SigninError)."""
    async with SigninHttp(PROVIDER, secrets=credential.secrets()) as http:
        answer = await http.post_form(
            endpoints.token_url,
            {
                "grant_type": "refresh_token",
                "refresh_token": credential.refresh_token,
                "client_id": endpoints.client_id,
                "scope": "openid profile email",
            },
            "refreshing the token",
        )
        access_token = required_text(answer, "access_token")
        if not access_token:
            raise http.error("the token endpoint answered without an access_token")
    id_token = required_text(answer, "id_token") or credential.id_token
    return Credential(
        provider=credential.provider,
        method="oauth",
        access_token=access_token,
        # The server may rotate the refresh token; keep the old one when it does not.
        refresh_token=required_text(answer, "refresh_token") or credential.refresh_token,
        expires_at=expiry(answer, access_token, now),
        id_token=id_token,
        account_id=chatgpt_account_id(id_token) or credential.account_id,
        api_key=credential.api_key,
        extra=dict(credential.extra),
    )
