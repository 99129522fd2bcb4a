"""Cron: schedule validation, next fire times, and jobs really firing into a dispatcher."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import pytest

from openpista.core.config import CronJobConfig
from openpista.core.cron import CronScheduler, next_fire_time, validate_schedule
from openpista.core.models import ChannelEvent


@pytest.mark.parametrize(
    "expr", ["0 9 * * *", "*/5 * * * *", "0 9 * * mon-fri", "* * * * * *", "30 0 9 * * *", "@daily"]
)
def test_valid_schedules(expr: str) -> None:
    assert validate_schedule(expr) is None


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("* * * *", "has 4 fields; a schedule has five"),
        ("* * * * * * *", "has 7 fields"),
        ("", "has 0 fields"),
        ("61 * * * *", "is not a valid cron schedule"),
        ("often", "has 1 fields"),
        ("0 0 30 2 *", "is not a valid cron schedule"),
    ],
)
def test_invalid_schedules_say_what_is_wrong(expr: str, problem: str) -> None:
    message = validate_schedule(expr)
    assert message is not None
    assert problem in message
    assert repr(expr) in message


def local(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> float:
    return datetime(year, month, day, hour, minute, second).timestamp()


async def run_until(scheduler: CronScheduler, done: asyncio.Event) -> None:
    """Runs `scheduler` until `done` is set (10 s at the most), then stops it."""
    task = asyncio.create_task(scheduler.run())
    try:
        async with asyncio.timeout(10):
            await done.wait()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_five_fields_are_minute_first_in_local_time() -> None:
    after = local(2030, 1, 7, 8, 0)  # a Monday
    assert next_fire_time("0 9 * * *", after) == local(2030, 1, 7, 9, 0)
    assert next_fire_time("0 9 * * *", local(2030, 1, 7, 9, 0)) == local(2030, 1, 8, 9, 0)


def test_six_fields_have_seconds_first() -> None:
    after = local(2030, 1, 7, 8, 0, 0)
    assert next_fire_time("30 * * * * *", after) == local(2030, 1, 7, 8, 0, 30)
    assert next_fire_time("0 15 8 * * *", after) == local(2030, 1, 7, 8, 15, 0)


def test_an_invalid_job_is_refused_by_the_scheduler() -> None:
    async def dispatch(event: ChannelEvent) -> None:
        pass

    with pytest.raises(ValueError, match="cron job for telegram:1: '99 \\* \\* \\* \\*'"):
        CronScheduler([CronJobConfig("99 * * * *", "telegram:1", "hi")], dispatch)


async def test_a_seconds_schedule_really_fires_into_the_dispatcher() -> None:
    received: list[ChannelEvent] = []
    two_fired = asyncio.Event()

    async def dispatch(event: ChannelEvent) -> None:
        received.append(event)
        if len(received) == 2:
            two_fired.set()

    job = CronJobConfig(schedule="* * * * * *", channel_id="telegram:12345", message="tick")
    await run_until(CronScheduler([job], dispatch), two_fired)
    assert received[0] == ChannelEvent(
        channel_id="telegram:12345",
        text="tick",
        sender="cron",
        metadata={"cron": "* * * * * *"},
        unrequested=True,
    )


async def test_a_failing_dispatch_is_logged_and_the_schedule_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0
    second_call = asyncio.Event()

    async def flaky(event: ChannelEvent) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("gateway unavailable")
        second_call.set()

    scheduler = CronScheduler([CronJobConfig("* * * * * *", "cli:local", "x")], flaky)
    with caplog.at_level(logging.ERROR, logger="openpista.core.cron"):
        await run_until(scheduler, second_call)
    assert "could not be dispatched" in caplog.text
    assert "gateway unavailable" in caplog.text


async def test_a_scheduler_without_jobs_waits_until_cancelled() -> None:
    async def dispatch(event: ChannelEvent) -> None:
        raise AssertionError("nothing should fire")

    task = asyncio.create_task(CronScheduler([], dispatch).run())
    await asyncio.sleep(0.01)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_times_missed_while_asleep_fire_once_not_for_each_missed_time() -> None:
    # A fake clock that jumps an hour ahead, as after a laptop sleeps.
    offset = [0.0]
    base = float(int(datetime.now().timestamp())) + 0.999

    def clock() -> float:
        return base + offset[0] + (datetime.now().timestamp() - started)

    received: list[ChannelEvent] = []
    second = asyncio.Event()

    async def dispatch(event: ChannelEvent) -> None:
        received.append(event)
        if len(received) == 1:
            offset[0] += 3600
        else:
            second.set()

    started = datetime.now().timestamp()
    scheduler = CronScheduler(
        [CronJobConfig("* * * * * *", "cli:local", "x")], dispatch, clock=clock
    )
    await run_until(scheduler, second)
    assert len(received) == 2
