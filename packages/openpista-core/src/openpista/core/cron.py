"""Scheduled messages: `[[cron]]` jobs sent to the gateway as if a user had written them.

Schedules are cron expressions in local time: five fields (minute hour day month weekday),
or six with seconds first (second minute hour day month weekday), or croniter's `@hourly`,
`@daily`, `@weekly`, `@monthly`, `@yearly` shorthands.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from openpista.core.channel import EventDispatcher
from openpista.core.config import CronJobConfig
from openpista.core.models import ChannelEvent

logger = logging.getLogger(__name__)

_FIELD_NAMES_5 = "minute hour day month weekday"
_FIELD_NAMES_6 = "second minute hour day month weekday"


def validate_schedule(expr: str) -> str | None:
    """What is wrong with the cron expression `expr`, or None when it is valid."""
    try:
        next_fire_time(expr, time.time())
    except ValueError as exc:
        return str(exc)
    return None


def next_fire_time(expr: str, after: float) -> float:
    """The first time (epoch seconds) strictly after `after` that `expr` matches.

    Raises ValueError with a readable message when `expr` is not a valid schedule.
    """
    from croniter import CroniterError, croniter

    fields = expr.split()
    is_alias = len(fields) == 1 and fields[0].startswith("@")
    if not is_alias and len(fields) not in (5, 6):
        raise ValueError(
            f"{expr!r} has {len(fields)} fields; a schedule has five ({_FIELD_NAMES_5}) or "
            f"six with seconds first ({_FIELD_NAMES_6})"
        )
    # Local time: "0 9 * * *" means nine o'clock where the machine is.
    local_after = datetime.fromtimestamp(after).astimezone()
    try:
        iterator = croniter(expr, local_after, second_at_beginning=len(fields) == 6)
        # An impossible date (30 February) only shows when the next time is looked for.
        return float(iterator.get_next(float))
    except (CroniterError, ValueError, KeyError) as exc:
        raise ValueError(f"{expr!r} is not a valid cron schedule: {exc}") from exc


@dataclass(slots=True)
class _ScheduledJob:
    job: CronJobConfig
    next_time: float


class CronScheduler:
    """Sends each job's message to `dispatch` at every time its schedule matches."""

    def __init__(
        self,
        jobs: Sequence[CronJobConfig],
        dispatch: EventDispatcher,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for job in jobs:
            problem = validate_schedule(job.schedule)
            if problem is not None:
                raise ValueError(f"cron job for {job.channel_id}: {problem}")
        self.jobs = list(jobs)
        self._dispatch = dispatch
        self._clock = clock

    async def run(self) -> None:
        """Fire jobs until cancelled. Times missed while asleep are fired once, not replayed."""
        if not self.jobs:
            # Nothing will ever fire; stay alive like a scheduler with jobs, until cancelled.
            await asyncio.Event().wait()
        now = self._clock()
        scheduled = [_ScheduledJob(job, next_fire_time(job.schedule, now)) for job in self.jobs]
        while True:
            due_at = min(item.next_time for item in scheduled)
            delay = due_at - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
                # Sleep can end early by a hair (a different clock): wait again if so.
                continue
            now = self._clock()
            for item in scheduled:
                if item.next_time <= now:
                    await self._fire(item.job)
                    item.next_time = next_fire_time(item.job.schedule, max(item.next_time, now))

    async def _fire(self, job: CronJobConfig) -> None:
        event = ChannelEvent(
            channel_id=job.channel_id,
            text=job.message,
            sender="cron",
            metadata={"cron": job.schedule},
            unrequested=True,
        )
        try:
            await self._dispatch(event)
        except Exception:
            logger.exception(
                "cron job %r for %s could not be dispatched", job.schedule, job.channel_id
            )
