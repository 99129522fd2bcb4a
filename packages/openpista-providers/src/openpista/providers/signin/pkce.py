"""PKCE (RFC 7636): a random verifier kept here, its S256 challenge sent to the server."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pkce:
    verifier: str
    """43 to 128 characters of [A-Za-z0-9-._~]; secret until the code is exchanged."""
    challenge: str
    """base64url(SHA-256(verifier)), unpadded."""
    method: str = "S256"


def new_pkce(random_bytes: int = 64) -> Pkce:
    """A fresh verifier from `secrets` (64 bytes: an 86-character verifier) and its challenge."""
    verifier = _base64url(secrets.token_bytes(random_bytes))
    if not 43 <= len(verifier) <= 128:
        raise ValueError("a PKCE verifier must be 43 to 128 characters (32 to 96 random bytes)")
    return Pkce(verifier=verifier, challenge=s256_challenge(verifier))


def s256_challenge(verifier: str) -> str:
    return _base64url(hashlib.sha256(verifier.encode("ascii")).digest())


def new_state() -> str:
    """An unguessable `state` tying the callback to this sign-in (checked in constant time)."""
    return secrets.token_urlsafe(32)


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
