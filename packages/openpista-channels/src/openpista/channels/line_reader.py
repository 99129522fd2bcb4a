"""Reading lines from a text stream (pipe, TTY, file or in-memory) without blocking the event loop.

Pipes, TTYs and sockets are watched with the event loop's `add_reader`, so nothing reads ahead
and nothing is left blocked when the reader is dropped. Sources the loop cannot watch (regular
files, /dev/null, in-memory streams) are read in a short-lived daemon thread per read: a
daemon thread never holds up interpreter exit, unlike the default executor's workers.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import errno
import os
import stat
import threading
from collections.abc import Callable
from typing import TextIO, TypeVar

_T = TypeVar("_T")
_CHUNK_BYTES = 65536


def _fileno(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        # In-memory streams have no descriptor (io.UnsupportedOperation), closed ones raise.
        return None


def _loop_can_watch(fd: int) -> bool:
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


def _in_daemon_thread(work: Callable[[], _T]) -> asyncio.Future[_T]:
    """Run `work` in a fresh daemon thread; the future resolves on the calling loop."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def resolve(result: _T) -> None:
        if not future.done():
            future.set_result(result)

    def fail(error: BaseException) -> None:
        if not future.done():
            future.set_exception(error)

    def target() -> None:
        # The loop may have closed while we were blocked: then nobody is waiting any more.
        try:
            result = work()
        except BaseException as exc:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fail, exc)
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(resolve, result)

    threading.Thread(target=target, name="openpista-cli-input", daemon=True).start()
    return future


class LineReader:
    """Yields the lines of `stream` one at a time, without their line endings."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._fd = _fileno(stream)
        self._watchable = self._fd is not None and _loop_can_watch(self._fd)
        encoding = getattr(stream, "encoding", None) or "utf-8"
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._buffer = ""
        self._at_eof = False
        # A read handed to a thread survives a cancelled readline; the next call picks it up.
        self._pending: asyncio.Future[str | bytes] | None = None

    def discard_typed_ahead(self) -> None:
        """On a terminal, forget what was typed but not yet read (the kernel's pending input
        and anything buffered here): a key pressed before a question appeared must not
        answer it. Pipes and files keep their lines: scripts answer ahead on purpose."""
        fd = self._fd
        if fd is None or not os.isatty(fd):
            return
        import termios

        with contextlib.suppress(OSError, termios.error):
            termios.tcflush(fd, termios.TCIFLUSH)
        self._buffer = ""

    async def readline(self) -> str | None:
        """The next line, or None once the stream has ended."""
        while "\n" not in self._buffer and not self._at_eof:
            chunk = await self._read_chunk()
            if chunk is None:
                self._at_eof = True
            else:
                self._buffer += chunk
        if "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            return line.removesuffix("\r")
        if self._buffer:
            line, self._buffer = self._buffer, ""
            return line.removesuffix("\r")
        return None

    async def _read_chunk(self) -> str | None:
        """Some text from the stream (possibly "" mid-character), None at its end."""
        if self._fd is None:
            text = await self._from_thread(self._stream.readline)
            assert isinstance(text, str)
            return text or None
        data = await self._read_bytes(self._fd)
        if not data:
            self._buffer += self._decoder.decode(b"", final=True)
            return None
        return self._decoder.decode(data)

    async def _read_bytes(self, fd: int) -> bytes:
        if self._watchable:
            try:
                return await self._when_readable(fd)
            except _CannotWatch:
                self._watchable = False
        data = await self._from_thread(lambda: _read_or_eof(fd))
        assert isinstance(data, bytes)
        return data

    async def _from_thread(self, work: Callable[[], str | bytes]) -> str | bytes:
        pending = self._pending or _in_daemon_thread(work)
        self._pending = pending
        try:
            return await asyncio.shield(pending)
        finally:
            if pending.done():
                self._pending = None

    async def _when_readable(self, fd: int) -> bytes:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()

        def on_readable() -> None:
            if future.done():
                return
            try:
                future.set_result(_read_or_eof(fd))
            except BlockingIOError:
                pass  # someone else took the data; keep waiting
            except OSError as exc:
                future.set_exception(exc)

        try:
            loop.add_reader(fd, on_readable)
        except (OSError, ValueError, NotImplementedError) as exc:
            # epoll refuses some character devices (/dev/null); Windows loops have no add_reader.
            raise _CannotWatch from exc
        try:
            return await future
        finally:
            loop.remove_reader(fd)


class _CannotWatch(Exception):
    """The event loop cannot watch this descriptor; read it in a thread instead."""


def _read_or_eof(fd: int) -> bytes:
    try:
        return os.read(fd, _CHUNK_BYTES)
    except OSError as exc:
        # A TTY whose terminal went away reports EIO: for us that is the end of input.
        if exc.errno == errno.EIO:
            return b""
        raise
