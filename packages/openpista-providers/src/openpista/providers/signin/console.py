"""What a sign-in flow needs from whoever runs it: show text, ask for a line, open a URL."""

from __future__ import annotations

from typing import Protocol


class SigninConsole(Protocol):
    """The person signing in, as a flow sees them (the cli's terminal, a test's fake browser)."""

    def say(self, text: str) -> None:
        """Show `text` (instructions, the URL to open)."""
        ...

    def ask(self, prompt: str) -> str:
        """Ask for one line (a pasted code) and return it; called in a worker thread."""
        ...

    def open_browser(self, url: str) -> bool:
        """Open `url` in the user's browser if there is one; False when it was not opened
        (the URL has been shown with `say` anyway)."""
        ...
