"""One fresh container per task on the Docker engine, through aiodocker (imported on first use).

`ContainerEngine.run` creates the container locked down (no network, read-only root and
mounts, tmpfs /tmp, every capability dropped, no-new-privileges, a non-root user, memory, CPU
and process limits), mints the task's credential into its environment, starts it, streams its
stdout and stderr (bounded), waits for it under the timeout, and removes it, whatever happened:
an exit, a timeout, an out-of-memory kill, or the caller being cancelled. A container is never
reused.

Every container carries the labels `openpista.task`, `openpista.pid` and `openpista.host`; one
left behind by a process that died mid-run (SIGKILL, a power cut) is removed by the next
process to start a container on this host (`remove_stale`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from openpista.core.errors import ToolError
from openpista.sandbox.credentials import (
    TASK_CREDENTIALS,
    TASK_ID_ENV,
    TASK_TOKEN_ENV,
    TaskCredentials,
)
from openpista.sandbox.engine import engine_address

if TYPE_CHECKING:
    from aiodocker import Docker
    from aiodocker.containers import DockerContainer

logger = logging.getLogger(__name__)

TASK_LABEL = "openpista.task"
PID_LABEL = "openpista.pid"
HOST_LABEL = "openpista.host"
PIDS_LIMIT = 256
"""Processes (threads included) a container may hold: a fork bomb stops here."""
NOBODY = "65534:65534"
"""The user of images whose own user is root."""
TMP_SIZE = "64m"
MAX_KEPT_BYTES = 1 << 20
"""Of each of stdout and stderr, what is kept; the rest is only counted."""
PULL_TIMEOUT_S = 600.0
_REMOVE_TIMEOUT_S = 30.0
_CANNOT_CONNECT = 900
"""aiodocker's DockerError status for an engine it could not connect to."""
_CREDENTIAL_GRACE_S = 60.0
"""A token outlives the run's timeout by this at most, should revocation ever be missed."""


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
        return self.kept.decode("utf-8", errors="replace").replace(secret, "[task token]")


def _is_root(user: str) -> bool:
    name = user.split(":", 1)[0].strip()
    return name in ("", "root", "0")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ContainerEngine:
    """A connection to the Docker engine (opened on first use) that runs task containers."""

    def __init__(
        self, address: str | None = None, credentials: TaskCredentials = TASK_CREDENTIALS
    ) -> None:
        self.address = address or engine_address()
        self.credentials = credentials
        self._docker: Docker | None = None
        self._live: dict[str, DockerContainer] = {}
        self._stale_checked = False

    async def _client(self) -> Docker:
        if self._docker is None:
            import aiodocker

            self._docker = aiodocker.Docker(url=self.address)
        if not self._stale_checked:
            self._stale_checked = True
            await self.remove_stale()
        return self._docker

    async def run(self, spec: ContainerSpec) -> ContainerResult:
        """Run `spec` in a fresh container and remove it; raises ToolError when the engine
        cannot (no engine, no image, a refused configuration)."""
        import aiodocker
        import aiohttp

        try:
            docker = await self._client()
            user = await self._image_user(docker, spec.image)
        except (aiodocker.DockerError, aiohttp.ClientError, OSError) as exc:
            raise ToolError(self._describe_failure(exc)) from exc
        task_id = uuid.uuid4().hex[:16]
        token = self.credentials.mint(task_id, spec.timeout_s + _CREDENTIAL_GRACE_S)
        try:
            return await self._run(docker, spec, task_id, token, user)
        except (aiodocker.DockerError, aiohttp.ClientError, OSError) as exc:
            raise ToolError(self._describe_failure(exc)) from exc
        finally:
            self.credentials.revoke(task_id)

    async def _run(
        self, docker: Docker, spec: ContainerSpec, task_id: str, token: str, user: str
    ) -> ContainerResult:
        config = self._config(spec, task_id, token, user)
        container = await docker.containers.create(config, name=f"openpista-{task_id}")
        self._live[task_id] = container
        stdout, stderr = _Output(), _Output()
        timed_out = False
        try:
            stream = container.attach(stdout=True, stderr=True, stdin=spec.stdin is not None)
            async with stream:
                await container.start()
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
            state: dict[str, Any] = {}
            if not timed_out:
                state = await _final_state(container)
        finally:
            # Shielded: a cancelled turn (Ctrl-C, SIGTERM) still gets its container removed.
            await asyncio.shield(self._remove(task_id))
        exit_code = None if timed_out else int(state.get("ExitCode", -1))
        return ContainerResult(
            task_id=task_id,
            exit_code=exit_code,
            stdout=stdout.text(token),
            stderr=stderr.text(token),
            stdout_dropped=stdout.dropped,
            stderr_dropped=stderr.dropped,
            oom_killed=bool(state.get("OOMKilled", False)),
            timed_out=timed_out,
        )

    def _config(self, spec: ContainerSpec, task_id: str, token: str, user: str) -> dict[str, Any]:
        memory = spec.memory_mb * 1024 * 1024
        env = {**spec.env, "HOME": "/tmp", TASK_ID_ENV: task_id, TASK_TOKEN_ENV: token}
        config: dict[str, Any] = {
            "Image": spec.image,
            "User": user,
            "Env": [f"{name}={value}" for name, value in env.items()],
            "Labels": {
                TASK_LABEL: task_id,
                PID_LABEL: str(os.getpid()),
                HOST_LABEL: socket.gethostname(),
            },
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
                "NanoCpus": int(spec.cpus * 1e9),
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
        """The user to run `image` as: its own unless that is root; pulls a missing image."""
        import aiodocker

        try:
            info = await docker.images.inspect(image)
        except aiodocker.DockerError as exc:
            if exc.status != 404:
                raise
            await self._pull(docker, image)
            info = await docker.images.inspect(image)
        user = str(cast(dict[str, Any], info.get("Config") or {}).get("User") or "")
        return NOBODY if _is_root(user) else user

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

    async def _remove(self, task_id: str) -> None:
        container = self._live.pop(task_id, None)
        if container is None:
            return
        try:
            await container.delete(force=True, v=True, timeout=_REMOVE_TIMEOUT_S)
        except Exception as exc:
            logger.warning("could not remove container openpista-%s: %s", task_id, exc)

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
            if not pid_text.isdigit() or _pid_alive(int(pid_text)):
                continue
            try:
                await container.delete(force=True, v=True)
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

    async def aclose(self) -> None:
        """Remove the containers still running (a stop mid-run) and close the connection."""
        for task_id in list(self._live):
            await self._remove(task_id)
        if self._docker is not None:
            docker, self._docker = self._docker, None
            await docker.close()


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
