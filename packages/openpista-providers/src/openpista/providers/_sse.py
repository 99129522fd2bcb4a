"""Decoding a server-sent event stream, line by line, into the data of each event."""

from __future__ import annotations


class ServerSentEventDecoder:
    """Feed it the lines of an SSE body; it hands back each event's data when the event ends.

    Only `data:` fields matter to LLM APIs: `event:`, `id:` and `retry:` are ignored, and so are
    comment lines (`: keep-alive`, OpenRouter's `: OPENROUTER PROCESSING`).
    """

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        """Take one line (no line ending); return the event's data if this line ended one."""
        if line == "":
            return self.flush()
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        if field == "data":
            # The spec strips exactly one space after the colon.
            self._data.append(value[1:] if value.startswith(" ") else value)
        return None

    def flush(self) -> str | None:
        """The data of an event the stream ended without a blank line after, if any."""
        if not self._data:
            return None
        data = "\n".join(self._data)
        self._data = []
        return data
