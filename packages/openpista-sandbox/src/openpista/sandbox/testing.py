"""A real Docker engine and a tiny local image for tests, with no registry needed.

`TestEngine` uses the engine at DOCKER_HOST when one answers there; otherwise (as root, with
Debian's docker.io installed) it starts a private dockerd of its own on a socket under /run,
with no iptables and no bridge, and stops it afterwards. Either way it imports
`openpista/busybox:test` (user `sandbox`, uid 1000) and `openpista/busybox-root:test` (no user)
with `docker import` from a root made of Debian's busybox-static: /bin/busybox, its applet
links, /etc/passwd, /tmp.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

from openpista.sandbox.engine import engine_problem

IMAGE = "openpista/busybox:test"
ROOT_IMAGE = "openpista/busybox-root:test"
IMAGE_UID = 1000
BUSYBOX = "/bin/busybox"
_START_TIMEOUT_S = 30.0
_PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "sandbox:x:1000:1000:sandbox:/tmp:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
_GROUP = "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n"


def missing_requirement() -> str | None:
    """Why no engine can be had here, or None: an engine at DOCKER_HOST, or root with dockerd
    and a static busybox to build the image from."""
    if shutil.which("docker") is None:
        return "the docker command (Debian's docker.io) is needed to import the test image"
    if not _busybox_is_static():
        return f"{BUSYBOX} from busybox-static is needed to build the test image"
    if os.environ.get("DOCKER_HOST") and engine_problem() is None:
        return None
    if shutil.which("dockerd") is None:
        return "dockerd (Debian's docker.io) is not installed and DOCKER_HOST names no engine"
    if os.geteuid() != 0:
        return "starting dockerd needs root, and DOCKER_HOST names no engine"
    return None


def _busybox_is_static() -> bool:
    if not os.path.isfile(BUSYBOX):
        return False
    # A dynamic executable names its loader (PT_INTERP) in its first pages; a static one does not.
    with open(BUSYBOX, "rb") as file:
        head = file.read(4096)
    return head.startswith(b"\x7fELF") and b"ld-linux" not in head and b"ld-musl" not in head


def busybox_root_tar(passwd: str = _PASSWD, group: str = _GROUP) -> bytes:
    """A root filesystem of busybox-static, as a tar archive for `docker import`, with these
    /etc/passwd and /etc/group."""
    buffer = io.BytesIO()
    applets = subprocess.run(
        [BUSYBOX, "--list-full"], capture_output=True, text=True, check=True
    ).stdout.split()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        for folder in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "workspace"):
            add_dir(folder)
        add_dir("tmp", 0o1777)
        add_file("bin/busybox", Path(BUSYBOX).read_bytes(), 0o755)
        add_file("etc/passwd", passwd.encode())
        add_file("etc/group", group.encode())
        for applet in applets:
            if applet == "bin/busybox" or not applet.startswith(("bin/", "sbin/", "usr/")):
                continue
            link = tarfile.TarInfo(applet)
            link.type, link.linkname = tarfile.SYMTYPE, "/bin/busybox"
            tar.addfile(link)
    return buffer.getvalue()


class TestEngine:
    """An engine to test against (see module); `address` is its DOCKER_HOST."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.address = ""
        self.started_seconds: float | None = None
        """How long starting our own dockerd took; None when one at DOCKER_HOST was used."""
        self._process: subprocess.Popen[bytes] | None = None
        self._state: Path | None = None

    def __enter__(self) -> TestEngine:
        existing = os.environ.get("DOCKER_HOST", "")
        if existing and engine_problem(existing) is None:
            self.address = existing
        else:
            self._start()
        try:
            self.import_image(IMAGE, user="sandbox")
            self.import_image(ROOT_IMAGE, user=None)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _start(self) -> None:
        tag = uuid.uuid4().hex[:8]
        # The data root must not be on overlayfs (overlay2 cannot stack on it): /var/lib is a
        # real disk on CI; sockets and pid file go under /run, as dockerd's own do.
        self._state = Path(f"/var/lib/openpista-test-docker-{tag}")
        run = Path(tempfile.mkdtemp(prefix=f"openpista-test-docker-{tag}-", dir="/run"))
        socket_path = run / "docker.sock"
        self.address = f"unix://{socket_path}"
        self._log = run / "dockerd.log"
        started = time.monotonic()
        with open(self._log, "wb") as log:
            self._process = subprocess.Popen(
                [
                    "dockerd",
                    f"--host={self.address}",
                    "--iptables=false",
                    "--ip6tables=false",
                    "--bridge=none",
                    "--storage-driver=overlay2",
                    f"--data-root={self._state}",
                    f"--exec-root={run / 'exec'}",
                    f"--pidfile={run / 'dockerd.pid'}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._run_dir = run
        deadline = time.monotonic() + _START_TIMEOUT_S
        while engine_problem(self.address) is not None:
            if self._process.poll() is not None or time.monotonic() > deadline:
                tail = self._log.read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"dockerd did not start; its log ends:\n{tail}")
            time.sleep(0.05)
        self.started_seconds = time.monotonic() - started

    def import_image(
        self, image: str, *, user: str | None, passwd: str = _PASSWD, group: str = _GROUP
    ) -> None:
        """`docker import` a busybox root as `image`, running as `user` (None: root), with
        these /etc/passwd and /etc/group."""
        changes = ["--change", f"USER {user}"] if user else []
        subprocess.run(
            ["docker", "-H", self.address, "import", *changes, "-", image],
            input=busybox_root_tar(passwd, group),
            capture_output=True,
            check=True,
        )

    def docker(self, *args: str) -> str:
        """The docker command against this engine; its stdout."""
        return subprocess.run(
            ["docker", "-H", self.address, *args], capture_output=True, text=True, check=True
        ).stdout

    def containers(self, label: str = "openpista.task") -> list[str]:
        """Ids of every container (running or not) carrying `label`."""
        return self.docker("ps", "-aq", "--filter", f"label={label}").split()

    def stop(self) -> None:
        """Stop our dockerd (if we started one) and delete its state."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._state is not None:
            shutil.rmtree(self._state, ignore_errors=True)
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._state = None
