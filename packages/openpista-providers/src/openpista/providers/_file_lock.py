"""An exclusive lock between processes (and between coroutines of one), held on a lock file.

`flock` locks belong to an open file description, so two `exclusive_lock` calls conflict
even inside one process; that is what lets coroutines and threads wait on it too. Where
there is no `fcntl` (Windows) the lock is a no-op: credentials there are written one
process at a time in practice, and the store's writes stay atomic either way.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created 0600) for the `with` block; blocks until free."""
    descriptor = acquire(path)
    try:
        yield
    finally:
        release(descriptor)


def acquire(path: Path) -> int:
    """Take the lock on `path` and return its descriptor; `release` gives it back.

    For code that must take the lock in one thread and give it back in another (an event
    loop waiting in a worker thread).
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if fcntl is not None:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def release(descriptor: int) -> None:
    os.close(descriptor)  # closing the descriptor releases the lock
