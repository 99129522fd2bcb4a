"""Decoding a server-sent event stream, line by line, into events."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One event: its `event:` name ("" when the server named none) and its data."""

    event: str
    data: str


class ServerSentEventDecoder:
    """Feed it the lines of an SSE body; it hands back each event when the event ends.

    `event:` and `data:` fields matter to LLM APIs (Anthropic and the Responses API name their
    events; chat completions only sends data); `id:` and `retry:` are ignored, and so are
    comment lines (`: keep-alive`, `: ping`, OpenRouter's `: OPENROUTER PROCESSING`).
    """

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> ServerSentEvent | None:
        """Take one line (no line ending); return the event if this line ended one."""
        if line == "":
            return self.flush()
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        # The spec strips exactly one space after the colon.
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        return None

    def flush(self) -> ServerSentEvent | None:
        """The event the stream ended without a blank line after, if any."""
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent(self._event, "\n".join(self._data))
        self._event = ""
        self._data = []
        return event
