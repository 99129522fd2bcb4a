"""`openpista start`: every enabled channel plus cron, until SIGTERM, SIGHUP or Ctrl-C.

Writes OPENPISTA_HOME/openpista.pid while running and removes it on exit. On a signal the
channels stop taking messages, in-flight replies get a grace period to finish and are then
cancelled cleanly (at once on a second signal); a cancelled tool's process group is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path

from openpista.cli.runtime import (
    Runtime,
    channel_enabled,
    create_channels,
    create_gateway,
    enabled_but_missing_channels,
    open_runtime,
)
from openpista.cli.signals import STOP_SIGNALS
from openpista.core.config import Config, channel_names, load_config
from openpista.core.errors import OpenpistaError
from openpista.core.gateway import Gateway
from openpista.core.process import pid_alive

log = logging.getLogger(__name__)

# How long in-flight replies may run on after a shutdown signal before they are cancelled.
SHUTDOWN_GRACE_S = 10.0


def _is_openpista(pid: int) -> bool:
    """Whether `pid` runs openpista; True where the system cannot say (no /proc)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True
    args = [arg.decode(errors="replace") for arg in cmdline.split(b"\0") if arg]
    # `.../bin/openpista start`, `python .../bin/openpista start`, `python -m openpista.cli.main`
    return any(Path(arg).name.startswith("openpista") for arg in args[:3])


class PidFile:
    """OPENPISTA_HOME/openpista.pid: refuses a second daemon, tolerates a stale file.

    A file is stale when its process is gone or is not openpista (after a reboot the PID may
    belong to anything); it is written readable by the owner only.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def acquire(self) -> None:
        try:
            other = int(self.path.read_text().strip())
        except (FileNotFoundError, ValueError):
            other = None
        if other is not None and other != os.getpid() and pid_alive(other) and _is_openpista(other):
            raise OpenpistaError(
                f"openpista is already running (pid {other}, {self.path}); stop it first"
            )
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            os.fchmod(fd, 0o600)  # a stale file may have been made with wider permissions
            file.write(f"{os.getpid()}\n")

    def release(self) -> None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            if int(self.path.read_text().strip()) == os.getpid():
                self.path.unlink()


async def _serve(config: Config) -> int:
    # Signal handlers come first, so a signal during start-up also shuts down cleanly.
    loop = asyncio.get_running_loop()
    stop, hurry = asyncio.Event(), asyncio.Event()

    def on_signal() -> None:
        # The first signal starts a graceful shutdown, a second one cuts it short.
        (hurry if stop.is_set() else stop).set()

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal)
    _check_cron_jobs(config)
    pid_file = PidFile(config.home / "openpista.pid")
    try:
        pid_file.acquire()
        try:
            async with open_runtime(config) as runtime:
                await _serve_until_stopped(config, runtime, stop, hurry)
        finally:
            pid_file.release()
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
    sys.stderr.write("openpista: stopped\n")
    return 0


def _check_cron_jobs(config: Config) -> None:
    """Jobs that could never fire or be delivered are configuration errors, found before the
    PID file is written or any channel starts."""
    if not config.cron:
        return
    from openpista.core.cron import check_jobs

    enabled = {name for name in channel_names(config) if channel_enabled(config, name)}
    served = enabled - set(enabled_but_missing_channels(config))
    source = str(config.source) if config.source else "configuration"
    check_jobs(config.cron, served=served, enabled=enabled, source=source)


async def _serve_until_stopped(
    config: Config, runtime: Runtime, stop: asyncio.Event, hurry: asyncio.Event
) -> None:
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
    scheduler = None
    if config.cron:
        from openpista.core.cron import CronScheduler

        scheduler = CronScheduler(config.cron, gateway.dispatch)
        cron_task = asyncio.create_task(scheduler.run())
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

    if scheduler is not None:
        scheduler.stop()  # no cron message may start a turn once shutdown has begun
    for adapter in channels.values():
        with contextlib.suppress(Exception):
            await adapter.stop()
    await _shut_down(gateway, hurry)
    leftovers = [*running, stopped, *([cron_task] if cron_task else [])]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)


async def _shut_down(gateway: Gateway, hurry: asyncio.Event) -> None:
    """Let in-flight replies finish for SHUTDOWN_GRACE_S (less on a second signal), then
    cancel them: cancelled tools kill their process groups."""
    busy = len(gateway.active_sessions)
    if busy:
        sys.stderr.write(
            f"openpista: stopping: letting {busy} conversation(s) finish their replies (at most "
            f"{SHUTDOWN_GRACE_S:g} s); signal again to stop them now\n"
        )
        sys.stderr.flush()
    graceful = asyncio.create_task(gateway.shutdown())
    hurried = asyncio.create_task(hurry.wait())
    await asyncio.wait({graceful, hurried}, timeout=SHUTDOWN_GRACE_S, return_when="FIRST_COMPLETED")
    hurried.cancel()
    if not graceful.done():
        graceful.cancel()
        await asyncio.gather(graceful, hurried, return_exceptions=True)
        await gateway.shutdown(cancel=True)
    await asyncio.gather(graceful, hurried, return_exceptions=True)


def run_daemon(config_path: Path | None) -> int:
    return asyncio.run(_serve(load_config(config_path)))
