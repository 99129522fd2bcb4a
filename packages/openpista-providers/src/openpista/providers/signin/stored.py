"""The hook providers use to authenticate with what `openpista auth login` stored."""

from __future__ import annotations

from dataclasses import dataclass

from openpista.providers.credentials import AuthMethod, Credential, CredentialStore

ANTHROPIC_OAUTH_BETA = "oauth-2025-04-20"


@dataclass(slots=True)
class StoredAuth:
    """A provider's stored credential, as a source of request headers.

    How a provider uses it (the presets do this):

    - `method == "api_key"`: use `api_key` exactly as a configured key (it never expires;
      OpenRouter's browser sign-in lands here too). `credential.extra` holds the slot's
      other values (Azure `api_base`/`api_version`, Bedrock `aws_secret_access_key`/
      `aws_region_name`, with `api_key` the access key id).
    - `method == "oauth"`: call `await headers()` before every request and send them
      instead of any key header. It refreshes the token first when it expires within five
      minutes (and saves it), so it is cheap and always current. It gives
      `Authorization: Bearer ...`, plus `chatgpt-account-id` for openai (the Responses API
      of the ChatGPT subscription), `anthropic-beta: oauth-2025-04-20` for anthropic (send
      no x-api-key), and Copilot's editor headers for copilot (whose API root is
      `credential.extra["api_base"]` when the token named one). For openai,
      `credential.api_key` is the API key exchanged from the id_token, "" when the account
      has none.

    `headers()` raises SigninError (a ProviderError) when the sign-in has expired and
    cannot be refreshed; its message tells the user to run `openpista auth login`.
    """

    provider: str
    method: AuthMethod
    credential: Credential
    """The credential as it was when this StoredAuth was made (headers() reads it afresh)."""
    store: CredentialStore

    @property
    def api_key(self) -> str:
        """The key of an api_key credential; "" for oauth ones (use headers())."""
        return self.credential.access_token if self.method == "api_key" else ""

    async def headers(self) -> dict[str, str]:
        """The authentication headers for the next request (refreshing first if needed)."""
        if self.method == "api_key":
            if self.provider == "anthropic":
                return {"x-api-key": self.api_key}
            return {"Authorization": f"Bearer {self.api_key}"}
        from openpista.providers.signin.refresh import fresh_credential

        credential = await fresh_credential(self.store, self.provider)
        self.credential = credential
        headers = {"Authorization": f"Bearer {credential.access_token}"}
        if self.provider == "openai" and credential.account_id:
            headers["chatgpt-account-id"] = credential.account_id
        elif self.provider == "anthropic":
            headers["anthropic-beta"] = ANTHROPIC_OAUTH_BETA
        elif self.provider == "copilot":
            from openpista.providers.signin.copilot import EDITOR_HEADERS

            headers.update(EDITOR_HEADERS)
        return headers


def stored_auth(provider: str, store: CredentialStore | None = None) -> StoredAuth | None:
    """What `openpista auth login` stored for `provider`, or None when nothing is.

    `store` defaults to `CredentialStore.open()` (OPENPISTA_HOME, the configured backend).
    Raises ConfigError or CredentialStoreError when the store cannot be read.
    """
    if store is None:
        store = CredentialStore.open_if_used(provider)
        if store is None:
            return None
    credential = store.get(provider)
    if credential is None:
        return None
    return StoredAuth(
        provider=provider, method=credential.method, credential=credential, store=store
    )
