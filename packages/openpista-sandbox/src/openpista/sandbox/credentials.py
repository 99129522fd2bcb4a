"""Per-task credentials: a random token minted for one container run, revoked when it ends.

The container finds its token in OPENPISTA_TASK_TOKEN (and its task id in OPENPISTA_TASK_ID);
whatever it reports back to openpista later (the worker report endpoint) proves with it that it
is the worker of that task, and of no other, while the task runs. Tokens live only in this
process's memory, are compared in constant time, and never appear in logs or tool results.
"""

from __future__ import annotations

import hmac
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


TASK_CREDENTIALS = TaskCredentials()
"""The process's registry: container runs mint here, the worker report endpoint verifies here."""
