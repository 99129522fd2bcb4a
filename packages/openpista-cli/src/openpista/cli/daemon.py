"""`openpista start`: every enabled channel plus cron, until SIGTERM or Ctrl-C.

Writes OPENPISTA_HOME/openpista.pid while running and removes it on exit. On a signal the
channels stop taking messages, in-flight replies get a grace period to finish and are then
cancelled cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from openpista.cli.runtime import (
    Runtime,
    create_channels,
    create_gateway,
    enabled_but_missing_channels,
    open_runtime,
)
from openpista.core.config import Config, load_config
from openpista.core.errors import OpenpistaError

log = logging.getLogger(__name__)

# How long in-flight replies may run on after a shutdown signal before they are cancelled.
SHUTDOWN_GRACE_S = 10.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PidFile:
    """OPENPISTA_HOME/openpista.pid: refuses a second daemon, tolerates a stale file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def acquire(self) -> None:
        try:
            other = int(self.path.read_text().strip())
        except (FileNotFoundError, ValueError):
            other = None
        if other is not None and other != os.getpid() and _pid_alive(other):
            raise OpenpistaError(
                f"openpista is already running (pid {other}, {self.path}); stop it first"
            )
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path.write_text(f"{os.getpid()}\n")

    def release(self) -> None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            if int(self.path.read_text().strip()) == os.getpid():
                self.path.unlink()


async def _serve(config: Config) -> int:
    # Signal handlers come first, so a signal during start-up also shuts down cleanly.
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    pid_file = PidFile(config.home / "openpista.pid")
    try:
        pid_file.acquire()
        try:
            async with open_runtime(config) as runtime:
                await _serve_until_stopped(config, runtime, stop)
        finally:
            pid_file.release()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    sys.stderr.write("openpista: stopped\n")
    return 0


async def _serve_until_stopped(config: Config, runtime: Runtime, stop: asyncio.Event) -> None:
    for name in enabled_but_missing_channels(config):
        sys.stderr.write(
            f"openpista: warning: channels.{name} is enabled, but no installed distribution "
            f"provides a {name!r} channel in this version; skipping it\n"
        )
    channels = create_channels(config)
    if not channels and not config.cron:
        raise OpenpistaError(
            "nothing to run: no channel is enabled and no [[cron]] job is configured "
            "(enable one under [channels.NAME] in config.toml)"
        )
    gateway = create_gateway(runtime, channels)
    channel_tasks = {
        asyncio.create_task(adapter.run(gateway.dispatch), name=f"channel {name}")
        for name, adapter in channels.items()
    }
    cron_task: asyncio.Task[None] | None = None
    if config.cron:
        from openpista.core.cron import CronScheduler

        cron_task = asyncio.create_task(CronScheduler(config.cron, gateway.dispatch).run())
    names = ", ".join(channels) or "no channels"
    jobs = f", {len(config.cron)} cron job(s)" if config.cron else ""
    sys.stderr.write(f"openpista: serving {names}{jobs} (pid {os.getpid()})\n")
    sys.stderr.flush()

    stopped = asyncio.create_task(stop.wait())
    running = set(channel_tasks)
    # A channel whose input ends (the cli at EOF) ends the daemon only when nothing else
    # can bring work: no other channel and no cron.
    while not stop.is_set() and (running or cron_task is not None):
        done, _ = await asyncio.wait(running | {stopped}, return_when=asyncio.FIRST_COMPLETED)
        for task in done - {stopped}:
            running.discard(task)
            if not task.cancelled() and task.exception() is not None:
                log.error("%s stopped: %s", task.get_name(), task.exception())
    if not stop.is_set():
        sys.stderr.write("openpista: every channel's input has ended and no cron job is set\n")

    for adapter in channels.values():
        with contextlib.suppress(Exception):
            await adapter.stop()
    try:
        async with asyncio.timeout(SHUTDOWN_GRACE_S):
            await gateway.shutdown()
    except TimeoutError:
        await gateway.shutdown(cancel=True)
    leftovers = [*running, stopped, *([cron_task] if cron_task else [])]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)


def run_daemon(config_path: Path | None) -> int:
    return asyncio.run(_serve(load_config(config_path)))
