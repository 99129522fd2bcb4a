"""Per-task credentials: a random token minted for one container run, revoked when it ends.

The container finds its token in OPENPISTA_TASK_TOKEN (and its task id in OPENPISTA_TASK_ID);
whatever it reports back to openpista later (the worker report endpoint) proves with it that it
is the worker of that task, and of no other, while the task runs. Tokens live only in this
process's memory, are compared in constant time, and never appear in logs or tool results.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
import time
from dataclasses import dataclass

TASK_TOKEN_ENV = "OPENPISTA_TASK_TOKEN"
TASK_ID_ENV = "OPENPISTA_TASK_ID"
_TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class _Credential:
    token: str
    expires_at: float
    """time.monotonic() after which the token is refused even if never revoked."""


class TaskCredentials:
    """Tokens by task id: mint one per run, verify what a worker presents, revoke at the end."""

    def __init__(self) -> None:
        self._credentials: dict[str, _Credential] = {}

    def mint(self, task_id: str, ttl_s: float) -> str:
        """A new token for `task_id`, valid for `ttl_s` seconds or until revoked."""
        if task_id in self._credentials:
            raise ValueError(f"task {task_id} already has a token")
        token = secrets.token_urlsafe(_TOKEN_BYTES)
        self._credentials[task_id] = _Credential(token, time.monotonic() + ttl_s)
        return token

    def verify(self, task_id: str, token: str) -> bool:
        """Whether `token` is the live token of `task_id` (constant-time comparison)."""
        credential = self._credentials.get(task_id)
        if credential is None:
            return False
        if time.monotonic() >= credential.expires_at:
            del self._credentials[task_id]
            return False
        return hmac.compare_digest(credential.token.encode(), token.encode())

    def revoke(self, task_id: str) -> None:
        """End `task_id`'s token; revoking an unknown or revoked task does nothing."""
        self._credentials.pop(task_id, None)

    def active_tasks(self) -> list[str]:
        """The task ids holding a live token."""
        now = time.monotonic()
        return [task for task, item in self._credentials.items() if now < item.expires_at]


REDACTED = "[task token]"
MIN_REDACTED_PIECE = 16
"""Pieces of the token (or of its reversed or base64 forms) this long or longer are redacted."""
_TOKEN_LIKE = re.compile(rf"[A-Za-z0-9+/=_-]{{{MIN_REDACTED_PIECE},}}")


def token_forms(token: str) -> list[str]:
    """What a worker's output may hold the token as: itself, reversed, and the base64 of any
    text holding it (the part of the encoding fixed by the token alone, at each of the three
    alignments, in both alphabets)."""
    forms = [token, token[::-1]]
    data = token.encode()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode()
        # Leave out the characters that mix in bits of the bytes around the token.
        start, end = -(-offset * 8 // 6), (offset + len(data)) * 8 // 6
        core = encoded[start:end]
        forms += [core, core.replace("+", "-").replace("/", "_")]
    return list(dict.fromkeys(forms))


def redact(text: str, token: str) -> str:
    """`text` with the token, and any piece of MIN_REDACTED_PIECE or more characters of one of
    its `token_forms`, replaced by "[task token]". A worker can still get it out otherwise
    (hex, split up); the token is only good until its run ends."""
    forms = token_forms(token)
    windows = {
        form[i : i + MIN_REDACTED_PIECE]
        for form in forms
        for i in range(len(form) - MIN_REDACTED_PIECE + 1)
    }

    def scrub(match: re.Match[str]) -> str:
        run = match.group()
        pieces: list[str] = []
        i = kept_from = 0
        while i + MIN_REDACTED_PIECE <= len(run):
            if run[i : i + MIN_REDACTED_PIECE] not in windows:
                i += 1
                continue
            end = i + MIN_REDACTED_PIECE
            while end < len(run) and any(run[i : end + 1] in form for form in forms):
                end += 1
            pieces += [run[kept_from:i], REDACTED]
            i = kept_from = end
        pieces.append(run[kept_from:])
        return "".join(pieces)

    # Only runs of token-like characters can hold a piece: the rest of the text is skipped fast.
    return _TOKEN_LIKE.sub(scrub, text)


TASK_CREDENTIALS = TaskCredentials()
"""The process's registry: container runs mint here, the worker report endpoint verifies here."""
