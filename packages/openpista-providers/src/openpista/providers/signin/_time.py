"""Expiry times from what token endpoints answer."""

from __future__ import annotations

import time
from typing import Any

from openpista.providers.signin.jwt import jwt_claims


def expiry(answer: dict[str, Any], access_token: str, now: float | None) -> float | None:
    """When the access token expires (unix seconds): `expires_in` from `now`, else the token's
    own `exp` claim when it is a JWT, else None (unknown: never refreshed ahead of time)."""
    expires_in = answer.get("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        return (time.time() if now is None else now) + float(expires_in)
    exp = jwt_claims(access_token).get("exp")
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return float(exp)
    return None


def required_text(answer: dict[str, Any], key: str) -> str:
    """`answer[key]` when it is a non-empty string, else ""."""
    value = answer.get(key)
    return value if isinstance(value, str) else ""
