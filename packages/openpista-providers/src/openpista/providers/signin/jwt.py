"""Reading the claims of a JWT (OpenAI's id_token) without verifying its signature.

The token came straight from the issuer's token endpoint over TLS, so its origin is known;
the claims are only read to find the ChatGPT account id, never trusted for access.
"""

from __future__ import annotations

import base64
import json
from typing import Any, cast

OPENAI_AUTH_CLAIM = "https://api.openai.com/auth"


def jwt_payload(token: str) -> dict[str, Any]:
    """The payload of `token` as a dict. ValueError, never quoting the token, when it is no
    JWT or its payload is no base64url-encoded JSON object."""
    parts = token.strip().split(".")
    if len(parts) != 3 or not parts[1]:
        raise ValueError("the id_token is not a JWT (expected three dot-separated parts)")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        data = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, UnicodeError):
        data = None
    if not isinstance(data, dict):
        raise ValueError("the id_token's claims are not base64url-encoded JSON")
    return cast(dict[str, Any], data)


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of `token` as a dict; {} when it is no JWT or its payload is no JSON object."""
    try:
        return jwt_payload(token)
    except ValueError:
        return {}


def account_id_in(claims: dict[str, Any]) -> str:
    """The `chatgpt_account_id` in the claims' `https://api.openai.com/auth` claim, or ""."""
    auth = claims.get(OPENAI_AUTH_CLAIM)
    if not isinstance(auth, dict):
        return ""
    account = cast(dict[str, Any], auth).get("chatgpt_account_id")
    return account if isinstance(account, str) else ""


def chatgpt_account_id(id_token: str) -> str:
    """The `chatgpt_account_id` in the id_token's `https://api.openai.com/auth` claim, or ""."""
    return account_id_in(jwt_claims(id_token))
