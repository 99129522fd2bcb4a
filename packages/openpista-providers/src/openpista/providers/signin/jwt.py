"""Reading the claims of a JWT (OpenAI's id_token) without verifying its signature.

The token came straight from the issuer's token endpoint over TLS, so its origin is known;
the claims are only read to find the ChatGPT account id, never trusted for access.
"""

from __future__ import annotations

import base64
import json
from typing import Any, cast

OPENAI_AUTH_CLAIM = "https://api.openai.com/auth"


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of `token` as a dict; {} when it is no JWT or its payload is no JSON object."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        data = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, UnicodeError):
        return {}
    return cast(dict[str, Any], data) if isinstance(data, dict) else {}


def chatgpt_account_id(id_token: str) -> str:
    """The `chatgpt_account_id` in the id_token's `https://api.openai.com/auth` claim, or ""."""
    auth = jwt_claims(id_token).get(OPENAI_AUTH_CLAIM)
    if not isinstance(auth, dict):
        return ""
    account = cast(dict[str, Any], auth).get("chatgpt_account_id")
    return account if isinstance(account, str) else ""
