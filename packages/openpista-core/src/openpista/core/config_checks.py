"""The checks on single configuration values: ranges, enumerations, URLs, cron schedules.

Each check returns what is wrong with a value, or None; `CHECKS` maps the dotted key patterns
of `openpista.core.config_schema` (`providers.*.api`, `cron[].schedule`) to them. The public
ones (`port`, `one_of`, `APPROVAL`, ...) are the vocabulary libraries check their own
`[channels.NAME]` and `[tools.NAME]` settings with (see `openpista.core.settings`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import cast

from openpista.core.config_schema import Check, describe_value

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_MCP_SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_CHANNEL_ID = re.compile(r"^[A-Za-z0-9_-]+:\S.*$")
_CRON_ALIASES = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)


def _choices(allowed: tuple[str, ...]) -> str:
    shown = [f'"{choice}"' for choice in allowed if choice]
    if "" in allowed:
        shown.append('"" (empty: the default)')
    return ", ".join(shown[:-1]) + " or " + shown[-1]


def one_of(*allowed: str) -> Check:
    def check(value: str) -> str | None:
        if value in allowed:
            return None
        return f"expected one of {_choices(allowed)}, got {describe_value(value)}"

    return check


def at_least(minimum: int) -> Check:
    def check(value: int) -> str | None:
        if value >= minimum:
            return None
        return f"expected an integer of at least {minimum}, got {value}"

    return check


def positive_seconds(value: float) -> str | None:
    # TOML has inf and nan; neither is a time limit.
    if math.isfinite(value) and value > 0:
        return None
    return f"expected a finite number of seconds greater than 0, got {value:g}"


_MIN_CPUS = 0.01
"""The smallest CPU quota a container can have (1 ms per 100 ms); less would mean none."""


def _cpus(value: float) -> str | None:
    if math.isfinite(value) and value >= _MIN_CPUS:
        return None
    return f"expected a finite number of CPUs of at least {_MIN_CPUS:g}, got {value:g}"


def port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else f"expected a port from 1 to 65535, got {value}"


def not_empty(what: str) -> Check:
    def check(value: str) -> str | None:
        return None if value.strip() else f"expected {what}, got an empty string"

    return check


def http_url(value: str) -> str | None:
    """Empty (the default applies) or an http(s) URL."""
    if not value:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc:
        return None
    return f"expected an http:// or https:// URL, got {describe_value(value)}"


def origin(value: str) -> str | None:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if value == "*" or (
        parts.scheme in ("http", "https") and parts.netloc and parts.path in ("", "/")
    ):
        return None
    return (
        'expected "*" or an origin such as "https://chat.example.com" (scheme, host and '
        f"optional port), got {describe_value(value)}"
    )


def mcp_server_name(name: str) -> str | None:
    """Server names become part of tool names (`mcp.NAME.TOOL`), so they stay plain."""
    if _MCP_SERVER_NAME.match(name):
        return None
    return (
        "a server name may hold only letters, digits, '_' and '-' "
        "(its tools are named mcp.NAME.TOOL); rename the table"
    )


def _provider_name(value: str) -> str | None:
    if _NAME.match(value):
        return None
    return (
        'expected a provider name such as "openai", "anthropic", "ollama" or "custom", '
        f"got {describe_value(value)}"
    )


def _provider_model(value: str) -> str | None:
    provider, _, model = value.partition("/")
    if _NAME.match(provider) and model.strip():
        return None
    example = '"anthropic/claude-sonnet-4-5"'
    return f'expected "provider/model" such as {example}, got {describe_value(value)}'


def _channel_id(value: str) -> str | None:
    if _CHANNEL_ID.match(value):
        return None
    return (
        'expected a channel id "CHANNEL:ID" such as "telegram:12345" or "cli:local", '
        f"got {describe_value(value)}"
    )


def _cron_schedule(value: str) -> str | None:
    expression = value.strip()
    fields = expression.split()
    usage = (
        'expected a cron schedule of five fields ("0 9 * * *": minute hour day month weekday), '
        'six with seconds first ("30 0 9 * * *"), or @hourly/@daily/@weekly/@monthly/@yearly'
    )
    if expression.lower() not in _CRON_ALIASES and len(fields) not in (5, 6):
        return f"{usage}; got {len(fields)} field(s) in {value!r}"
    if not _croniter_accepts(expression):
        return f"{usage}; {value!r} is not a valid schedule"
    return _never_fires(expression)


def _never_fires(expression: str) -> str | None:
    # Valid fields can still name no real time (31 February): only the search for the next
    # one shows it.
    import time

    from openpista.core.cron import next_fire_time

    try:
        next_fire_time(expression, time.time())
    except ValueError:
        return f"{expression!r} never fires: no date matches it (is the day in that month?)"
    return None


def _croniter_accepts(expression: str) -> bool:
    # croniter is imported only when the file has [[cron]] entries: start-up stays fast.
    import importlib

    croniter_class = importlib.import_module("croniter").croniter
    is_valid = cast(Callable[..., bool], croniter_class.is_valid)
    return bool(is_valid(expression, second_at_beginning=True))


APPROVAL = one_of("", "auto", "ask")


CHECKS: dict[str, Check] = {
    "agent.provider": _provider_name,
    "agent.model": not_empty('a model name such as "gpt-4.1-mini"'),
    "agent.max_tool_rounds": at_least(1),
    "agent.timeout_s": positive_seconds,
    "agent.approval": APPROVAL,
    "agent.approval_timeout_s": positive_seconds,
    "agent.context_tokens": at_least(0),
    "agent.fallback_models[]": _provider_model,
    "providers.*.base_url": http_url,
    "providers.*.api": one_of("", "chat", "responses", "anthropic"),
    "database.url": not_empty("a database path or SQLAlchemy URL"),
    "skills.workspace": not_empty("a directory"),
    "sandbox.image": not_empty('a container image such as "python:3.12-slim"'),
    "sandbox.timeout_s": positive_seconds,
    "sandbox.memory_mb": at_least(16),
    "sandbox.cpus": _cpus,
    "cron[].schedule": _cron_schedule,
    "cron[].channel_id": _channel_id,
    "cron[].message": not_empty("the message to send"),
    "mcp.servers.*.command[]": not_empty("a program or argument"),
    "mcp.servers.*.url": http_url,
}
