"""Exceptions a user can meet. Each carries a message fit to print as one line."""

from __future__ import annotations


class OpenpistaError(Exception):
    """Base of every error openpista reports to a user as one clear line."""


class ConfigError(OpenpistaError):
    """The configuration is malformed: names the file, the key and what was expected."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        super().__init__(f"{file}: {key}: {problem}")


class ProviderError(OpenpistaError):
    """The LLM provider failed: unreachable, refused the request, or answered nonsense.

    `retryable` marks failures worth trying again (429, 5xx, connection errors);
    `status_code` is the HTTP status when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status_code: int | None = None,
        retryable: bool = False,
    ) -> None:
        self.provider = provider
        self.status_code = status_code
        self.retryable = retryable
        super().__init__(message)


class ToolError(OpenpistaError):
    """Raised by a tool to report a failure to the LLM as a tool error (not a crash)."""


class ToolRegistrationError(OpenpistaError):
    """A tool could not be registered: bad name, or a name that collides on the wire."""


class SessionNotFoundError(OpenpistaError):
    """No session has the given id."""
