"""A socket in front of a real Docker engine that forwards everything to it, except what a test
makes it hold back, and that can go away mid-run as a stopped engine does."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from urllib.parse import urlsplit


class EngineProxy:
    """Listens at `path` (its DOCKER_HOST is `address`) and relays to the engine at `target`."""

    def __init__(self, target: str, path: Path) -> None:
        self.target = urlsplit(target).path
        self.path = path
        self.address = f"unix://{path}"
        self.hold = b""
        """A request holding these bytes is swallowed: never relayed, never answered."""
        self.answered = bytearray()
        """The last 64 KiB the engine sent back."""
        self._server: asyncio.Server | None = None
        self._serving = False
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, str(self.path))
        self._serving = True

    async def stop(self) -> None:
        """Go away as an engine does: every connection cut, the socket file gone."""
        self._serving = False
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        self.path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._serving:  # accepted just before the stop
            writer.transport.abort()
            return
        upstream_reader, upstream_writer = await asyncio.open_unix_connection(self.target)
        self._writers |= {writer, upstream_writer}
        back = asyncio.create_task(self._relay_back(upstream_reader, writer))
        try:
            held = False
            while data := await reader.read(65536):
                held = held or bool(self.hold and self.hold in data)
                if not held:
                    upstream_writer.write(data)
                    await upstream_writer.drain()
            upstream_writer.write_eof()
            await back
        except (ConnectionError, OSError):
            pass
        finally:
            back.cancel()
            for end in (writer, upstream_writer):
                self._writers.discard(end)
                end.transport.abort()

    async def _relay_back(
        self, upstream: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await upstream.read(65536):
                self.answered += data
                del self.answered[: max(0, len(self.answered) - 65536)]
                writer.write(data)
                await writer.drain()
            writer.write_eof()
