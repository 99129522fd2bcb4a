"""When to try an HTTP request to a provider again, and how long to wait first."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

Sleep = Callable[[float], Awaitable[None]]

RETRYABLE_STATUS_CODES = frozenset({429}) | (frozenset(range(500, 600)) - {501, 505})
"""Rate limits and server errors: worth another try. Other 4xx would fail the same way again,
and so would 501 (the server does not do this at all) and 505."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: `base_s`, doubling per attempt, capped at `cap_s`.

    A server's Retry-After wins over the backoff, capped the same way so a hostile or
    confused server cannot park the agent for an hour.
    """

    max_attempts: int = 3
    base_s: float = 0.5
    cap_s: float = 30.0
    sleep: Sleep = field(default=asyncio.sleep)

    def delay_s(self, failed_attempt: int, retry_after_s: float | None = None) -> float:
        """How long to wait after attempt number `failed_attempt` (1-based) failed."""
        if retry_after_s is not None:
            return min(self.cap_s, max(0.0, retry_after_s))
        return min(self.cap_s, self.base_s * 2 ** (failed_attempt - 1))


def retry_after_s(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """The wait a response asks for: `retry-after-ms`, or `Retry-After` (seconds or HTTP-date).

    None when the headers ask for nothing or say something unparseable.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    milliseconds = _finite_float(lowered.get("retry-after-ms", ""))
    if milliseconds is not None:
        return max(0.0, milliseconds / 1000)
    raw = lowered.get("retry-after", "").strip()
    if not raw:
        return None
    seconds = _finite_float(raw)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _finite_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
