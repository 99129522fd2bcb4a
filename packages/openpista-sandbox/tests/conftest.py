"""A real Docker engine for the container tests: the one at DOCKER_HOST, or a private dockerd
started for the session (root, Debian's docker.io and busybox-static; .ci/run installs them)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from openpista.sandbox.testing import TestEngine, missing_requirement

MISSING = missing_requirement()
needs_engine = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


@pytest.fixture(scope="session")
def engine() -> Iterator[TestEngine]:
    with TestEngine() as started:
        yield started


@pytest.fixture
def dead_socket(tmp_path: Path) -> str:
    """A DOCKER_HOST where a socket file exists but nothing listens: connecting is refused."""
    path = tmp_path / "docker.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.close()
    return f"unix://{path}"
