"""One fresh container per task on the Docker engine, through aiodocker (imported on first use).

`ContainerEngine.run` creates the container locked down (no network, read-only root and
mounts, tmpfs /tmp, every capability dropped, no-new-privileges, a non-root user, memory, CPU
and process limits), mints the task's credential into its environment, starts it, streams its
stdout and stderr (bounded), waits for it under the timeout, and removes it, whatever happened:
an exit, a timeout, an out-of-memory kill, the caller being cancelled, or the engine going away
(then it is removed by the next run, once the engine is back). A container is never reused.

Every request to the engine is bounded: one that gets no answer within `reply_timeout_s`, or a
run still going `timeout_s` plus a margin after it began, fails saying no engine answers.

Every container carries the labels `openpista.task`, `openpista.pid` and `openpista.host`; one
left behind by a process that died mid-run (SIGKILL, a power cut) is removed by the next
process to start a container on this host (`remove_stale`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from openpista.core.errors import ToolError
from openpista.core.process import pid_alive
from openpista.sandbox.credentials import (
    TASK_CREDENTIALS,
    TASK_ID_ENV,
    TASK_TOKEN_ENV,
    TaskCredentials,
    redact,
)
from openpista.sandbox.engine import engine_address
from openpista.sandbox.image_user import needs_accounts, resolve_user

if TYPE_CHECKING:
    from aiodocker import Docker
    from aiodocker.containers import DockerContainer

logger = logging.getLogger(__name__)

TASK_LABEL = "openpista.task"
PID_LABEL = "openpista.pid"
HOST_LABEL = "openpista.host"
PROBE_LABEL = "openpista.probe"
"""On the container created (never started) to read an image's /etc/passwd and /etc/group."""
PIDS_LIMIT = 256
"""Processes (threads included) a container may hold: a fork bomb stops here."""
MIN_CPUS = 0.01
"""The smallest CPU limit: a CFS quota of 1 ms per 100 ms period, the least the kernel takes."""
REPLY_TIMEOUT_S = 10.0
"""How long the engine may take to answer one request (connect, create, start, inspect)."""
RUN_MARGIN_REPLIES = 4
"""A run may take its timeout plus this many reply timeouts (create, attach, start, its end)."""
TMP_SIZE = "64m"
MAX_KEPT_BYTES = 1 << 20
"""Of each of stdout and stderr, what is kept; the rest is only counted."""
PULL_TIMEOUT_S = 600.0
_REMOVE_TIMEOUT_S = 30.0
_CANNOT_CONNECT = 900
"""aiodocker's DockerError status for an engine it could not connect to."""
_CREDENTIAL_GRACE_S = 60.0
"""A token outlives the run's timeout by this at most, should revocation ever be missed."""
_MAX_ACCOUNTS_BYTES = 1 << 20
"""An image's /etc/passwd or /etc/group larger than this is not read (its user: nobody)."""


@dataclass(frozen=True, slots=True)
class Mount:
    """A host folder the container sees, always read-only."""

    source: Path
    target: str


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    image: str
    command: list[str] | None
    """argv; None: the image's own command."""
    timeout_s: float
    memory_mb: int
    cpus: float
    mounts: tuple[Mount, ...] = ()
    workdir: str = ""
    env: Mapping[str, str] = field(default_factory=lambda: {})
    stdin: bytes | None = None
    """Written to the container's stdin, then closed; None: stdin is empty."""


@dataclass(slots=True)
class ContainerResult:
    task_id: str
    exit_code: int | None
    """None when the container was killed at the timeout."""
    stdout: str
    stderr: str
    stdout_dropped: int = 0
    stderr_dropped: int = 0
    oom_killed: bool = False
    timed_out: bool = False
    engine_lost: str = ""
    """Why the run has no end: the engine went away during it (the output is what came)."""


class _Output:
    """One stream's bytes: the first MAX_KEPT_BYTES kept, the rest counted."""

    def __init__(self) -> None:
        self.kept = bytearray()
        self.dropped = 0

    def add(self, data: bytes) -> None:
        room = MAX_KEPT_BYTES - len(self.kept)
        self.kept += data[:room]
        self.dropped += max(0, len(data) - room)

    def text(self, secret: str) -> str:
        # A worker printing its own token must not put it into the model's context.
        return redact(self.kept.decode("utf-8", errors="replace"), secret)


class ContainerEngine:
    """A connection to the Docker engine (opened on first use) that runs task containers."""

    def __init__(
        self,
        address: str | None = None,
        credentials: TaskCredentials = TASK_CREDENTIALS,
        *,
        reply_timeout_s: float = REPLY_TIMEOUT_S,
    ) -> None:
        self.address = address or engine_address()
        self.credentials = credentials
        self.reply_timeout_s = reply_timeout_s
        self._docker: Docker | None = None
        self._live: dict[str, DockerContainer] = {}
        self._leftovers: set[str] = set()
        """Ids of containers whose engine went away before they were removed: the next run
        removes them."""
        self._users: dict[str, str] = {}
        """`uid:gid` by image id (see image_user)."""
        self._stale_checked = False

    async def _client(self) -> Docker:
        if self._docker is None:
            import aiodocker
            import aiohttp

            reply = self.reply_timeout_s
            # Each request must be answered in time; aiodocker lifts the read limit itself
            # for the long ones (attach, wait, pull), which the run's deadline bounds instead.
            timeout = aiohttp.ClientTimeout(
                total=None, connect=reply, sock_connect=reply, sock_read=reply
            )
            self._docker = aiodocker.Docker(url=self.address, timeout=timeout)
        if not self._stale_checked:
            await self.remove_stale()
            self._stale_checked = True
        for container_id in list(self._leftovers):
            self._leftovers.discard(container_id)
            await self._delete(self._docker.containers.container(container_id))
        return self._docker

    async def run(self, spec: ContainerSpec) -> ContainerResult:
        """Run `spec` in a fresh container and remove it; raises ToolError when the engine
        cannot (no engine, no image, a refused configuration) or does not answer in time."""
        import aiodocker
        import aiohttp

        _check_limits(spec)
        try:
            docker = await self._client()
            user = await self._image_user(docker, spec.image)
        except TimeoutError:
            raise ToolError(self._no_answer(self.reply_timeout_s)) from None
        except (aiodocker.DockerError, aiohttp.ClientError, OSError) as exc:
            raise ToolError(self._describe_failure(exc)) from exc
        task_id = uuid.uuid4().hex[:16]
        token = self.credentials.mint(task_id, spec.timeout_s + _CREDENTIAL_GRACE_S)
        deadline_s = spec.timeout_s + RUN_MARGIN_REPLIES * self.reply_timeout_s
        deadline = asyncio.timeout(deadline_s)
        try:
            async with deadline:
                result = await self._run(docker, spec, task_id, token, user)
            if result.engine_lost:
                await self._reconnect()
            return result
        except TimeoutError:
            waited = deadline_s if deadline.expired() else self.reply_timeout_s
            raise ToolError(self._no_answer(waited)) from None
        except (aiodocker.DockerError, aiohttp.ClientError, OSError) as exc:
            raise ToolError(self._describe_failure(exc)) from exc
        finally:
            self.credentials.revoke(task_id)

    async def _run(
        self, docker: Docker, spec: ContainerSpec, task_id: str, token: str, user: str
    ) -> ContainerResult:
        config = self._config(spec, task_id, token, user)
        container = await self._create(docker, config, name=f"openpista-{task_id}")
        self._live[task_id] = container
        stdout, stderr = _Output(), _Output()
        timed_out = False
        started = False
        lost = ""
        state: dict[str, Any] = {}
        try:
            stream = container.attach(stdout=True, stderr=True, stdin=spec.stdin is not None)
            async with stream:
                await container.start()
                started = True
                if spec.stdin is not None:
                    await stream.write_in(spec.stdin)
                    _close_stdin(stream)
                try:
                    async with asyncio.timeout(spec.timeout_s):
                        while (message := await stream.read_out()) is not None:
                            (stdout if message.stream == 1 else stderr).add(message.data)
                        await container.wait()
                except TimeoutError:
                    timed_out = True
            if not timed_out:
                state = await _final_state(container)
        except Exception as exc:
            if not (started and _engine_gone(exc)):
                raise
            lost = f"the Docker engine at {self.address} went away during the run"
        finally:
            # Shielded: a cancelled turn (Ctrl-C, SIGTERM) still gets its container removed.
            await asyncio.shield(self._remove(task_id))
        exit_code = None if timed_out or lost else int(state.get("ExitCode", -1))
        return ContainerResult(
            task_id=task_id,
            exit_code=exit_code,
            stdout=stdout.text(token),
            stderr=stderr.text(token),
            stdout_dropped=stdout.dropped,
            stderr_dropped=stderr.dropped,
            oom_killed=bool(state.get("OOMKilled", False)),
            timed_out=timed_out,
            engine_lost=lost,
        )

    def _config(self, spec: ContainerSpec, task_id: str, token: str, user: str) -> dict[str, Any]:
        memory = spec.memory_mb * 1024 * 1024
        env = {**spec.env, "HOME": "/tmp", TASK_ID_ENV: task_id, TASK_TOKEN_ENV: token}
        config: dict[str, Any] = {
            "Image": spec.image,
            "User": user,
            "Env": [f"{name}={value}" for name, value in env.items()],
            "Labels": _labels(task_id),
            "AttachStdout": True,
            "AttachStderr": True,
            "AttachStdin": spec.stdin is not None,
            "OpenStdin": spec.stdin is not None,
            "StdinOnce": spec.stdin is not None,
            "Tty": False,
            "NetworkDisabled": True,
            "HostConfig": {
                "NetworkMode": "none",
                "Memory": memory,
                "MemorySwap": memory,
                "NanoCpus": _nano_cpus(spec.cpus),
                "PidsLimit": PIDS_LIMIT,
                "ReadonlyRootfs": True,
                "Tmpfs": {"/tmp": f"rw,nosuid,nodev,size={TMP_SIZE},mode=1777"},
                "CapDrop": ["ALL"],
                "SecurityOpt": ["no-new-privileges"],
                "Binds": [f"{mount.source}:{mount.target}:ro" for mount in spec.mounts],
                # The output is streamed to us; nothing is kept on the engine's disk.
                "LogConfig": {"Type": "none", "Config": {}},
            },
        }
        if spec.command is not None:
            config["Cmd"] = spec.command
        if spec.workdir:
            config["WorkingDir"] = spec.workdir
        return config

    async def _image_user(self, docker: Docker, image: str) -> str:
        """The numeric `uid:gid` to run `image` as: its own user, never root (see image_user);
        pulls a missing image."""
        import aiodocker

        try:
            info = await docker.images.inspect(image)
        except aiodocker.DockerError as exc:
            if exc.status != 404:
                raise
            await self._pull(docker, image)
            info = await docker.images.inspect(image)
        image_id = str(info.get("Id") or image)
        if image_id not in self._users:
            user = str(cast(dict[str, Any], info.get("Config") or {}).get("User") or "")
            passwd = group = ""
            if needs_accounts(user):
                passwd, group = await self._accounts(docker, image_id)
            self._users[image_id] = resolve_user(user, passwd, group)
        return self._users[image_id]

    async def _accounts(self, docker: Docker, image_id: str) -> tuple[str, str]:
        """The image's /etc/passwd and /etc/group, read from a container created (never
        started) for it; "" for a file that is missing, not a plain file, or too large."""
        labels = {**_labels(""), PROBE_LABEL: "user"}
        del labels[TASK_LABEL]  # no task: only removal after a crash (remove_stale) concerns it
        probe = await self._create(
            docker,
            {
                "Image": image_id,
                "Cmd": ["true"],
                "NetworkDisabled": True,
                "Labels": labels,
                "HostConfig": {"NetworkMode": "none", "LogConfig": {"Type": "none", "Config": {}}},
            },
        )
        try:
            return await _read_file(probe, "/etc/passwd"), await _read_file(probe, "/etc/group")
        finally:
            await asyncio.shield(self._delete(probe))

    async def _pull(self, docker: Docker, image: str) -> None:
        import aiodocker

        logger.info("pulling image %s", image)
        try:
            async with asyncio.timeout(PULL_TIMEOUT_S):
                await docker.images.pull(image)
        except TimeoutError:
            raise ToolError(
                f"image {image} is not on the Docker engine and pulling it took over "
                f"{PULL_TIMEOUT_S:g} s; pull it first (docker pull {image})"
            ) from None
        except aiodocker.DockerError as exc:
            raise ToolError(
                f"image {image} is not on the Docker engine at {self.address} and could not be "
                f"pulled: {exc.message}"
            ) from None

    async def _create(
        self, docker: Docker, config: dict[str, Any], name: str | None = None
    ) -> DockerContainer:
        """Create a container; when the caller is cancelled meanwhile, the engine makes it all
        the same, so it is waited for and removed."""
        creating = asyncio.ensure_future(docker.containers.create(config, name=name))
        try:
            return await asyncio.shield(creating)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._delete(await asyncio.shield(creating)))
            raise

    async def _reconnect(self) -> None:
        """Drop the connection to an engine that went away: the next run opens a new one (a
        restarted engine does not know the old connections)."""
        if self._docker is not None:
            docker, self._docker = self._docker, None
            await docker.close()

    async def _remove(self, task_id: str) -> None:
        container = self._live.pop(task_id, None)
        if container is not None:
            await self._delete(container)

    async def _delete(self, container: DockerContainer) -> None:
        try:
            await container.delete(force=True, v=True, timeout=_REMOVE_TIMEOUT_S)
        except Exception as exc:
            if _engine_gone(exc):
                # Not lost: removed by the next run, once the engine is back.
                self._leftovers.add(container.id)
                logger.info("container %s is removed when the engine is back", container.id)
            elif getattr(exc, "status", None) != 404:  # 404: it is gone already
                logger.warning("could not remove container %s: %s", container.id, exc)

    async def remove_stale(self) -> int:
        """Remove this host's containers whose openpista process is gone; how many."""
        import json

        if self._docker is None:
            return 0
        labels = [f"{HOST_LABEL}={socket.gethostname()}", PID_LABEL]
        found = await self._docker.containers.list(all=True, filters=json.dumps({"label": labels}))
        removed = 0
        for container in found:
            pid_text = str(cast(dict[str, Any], container["Labels"]).get(PID_LABEL, ""))
            if not pid_text.isdigit() or pid_alive(int(pid_text)):
                continue
            try:
                await container.delete(force=True, v=True, timeout=_REMOVE_TIMEOUT_S)
                removed += 1
            except Exception as exc:
                logger.warning("could not remove stale container %s: %s", container.id, exc)
        if removed:
            logger.info("removed %d container(s) left by openpista processes that died", removed)
        return removed

    def _describe_failure(self, exc: BaseException) -> str:
        import aiodocker

        if isinstance(exc, aiodocker.DockerError) and exc.status != _CANNOT_CONNECT:
            return f"the Docker engine at {self.address} refused: {exc.message}"
        # aiodocker wraps a failed connection (status 900) around aiohttp's error.
        cause = exc.__cause__ or exc.__context__ or exc
        reason = getattr(cause, "strerror", None) or getattr(
            getattr(cause, "os_error", None), "strerror", None
        )
        return f"no Docker engine at {self.address} ({reason or cause})"

    def _no_answer(self, waited_s: float) -> str:
        return f"no Docker engine answering at {self.address} (timed out after {waited_s:g} s)"

    async def aclose(self) -> None:
        """Remove the containers still running (a stop mid-run) and close the connection."""
        for task_id in list(self._live):
            await self._remove(task_id)
        if self._docker is not None:
            docker, self._docker = self._docker, None
            await docker.close()


def _labels(task_id: str) -> dict[str, str]:
    return {TASK_LABEL: task_id, PID_LABEL: str(os.getpid()), HOST_LABEL: socket.gethostname()}


def _check_limits(spec: ContainerSpec) -> None:
    """Refuse limits the engine would take as "none" or reject with a raw error."""
    if not (math.isfinite(spec.timeout_s) and spec.timeout_s > 0):
        raise ToolError(f"a container's timeout must be a number of seconds > 0: {spec.timeout_s}")
    if not (math.isfinite(spec.cpus) and spec.cpus >= MIN_CPUS):
        raise ToolError(f"a container's CPU limit must be at least {MIN_CPUS:g}: {spec.cpus}")


def _nano_cpus(cpus: float) -> int:
    # Never 0: the engine reads 0 as "no limit".
    return max(round(cpus * 1e9), round(MIN_CPUS * 1e9))


def _engine_gone(exc: BaseException) -> bool:
    """Whether `exc` says the connection to the engine broke or could not be made (as
    opposed to the engine answering with an error, or not answering in time)."""
    import aiodocker
    import aiohttp

    if isinstance(exc, TimeoutError):
        return False
    if isinstance(exc, aiodocker.DockerError):
        return exc.status == _CANNOT_CONNECT
    return isinstance(exc, aiohttp.ClientError | OSError)


async def _read_file(container: Any, path: str) -> str:
    import aiodocker

    try:
        archive = await container.get_archive(path)
    except aiodocker.DockerError as exc:
        if exc.status == 404:
            return ""
        raise
    with archive:
        member = next(iter(archive.getmembers()), None)
        if member is None or not member.isfile() or member.size > _MAX_ACCOUNTS_BYTES:
            return ""
        file = archive.extractfile(member)
        return file.read().decode("utf-8", errors="replace") if file is not None else ""


def _close_stdin(stream: object) -> None:
    """Half-close the attach connection: the container reads end-of-file on stdin and its
    output keeps coming. aiodocker's Stream.close() would end both directions, so this reaches
    for its transport (the same one Stream.write_in writes to)."""
    response: Any = getattr(stream, "_resp", None)
    transport: Any = getattr(getattr(response, "connection", None), "transport", None)
    if transport is not None and transport.can_write_eof():
        transport.write_eof()


_SIGKILL_EXIT = 137
_OOM_SETTLE_S = 2.0


async def _final_state(container: Any) -> dict[str, Any]:
    """The container's state once it has exited. The engine learns of an OOM kill from a
    separate event that can arrive after the exit (cgroup v2): a process killed by SIGKILL
    is looked at again for up to 2 s before it counts as not killed for memory."""
    state = cast(dict[str, Any], (await container.show())["State"])
    deadline = asyncio.get_running_loop().time() + _OOM_SETTLE_S
    while (
        state.get("ExitCode") == _SIGKILL_EXIT
        and not state.get("OOMKilled")
        and asyncio.get_running_loop().time() < deadline
    ):
        await asyncio.sleep(0.1)
        state = cast(dict[str, Any], (await container.show())["State"])
    return state
