"""The settings of our channels: `[channels.cli]`, `[channels.telegram]`, `[channels.web]`,
`[channels.whatsapp]` (CONTRACT section 4), declared for the config loader.

The `openpista.settings` entry points name the declarations below; every config load imports
this module, so it imports nothing but core's settings vocabulary. A channel reads its own
section with `config.section("channels.web", WebSettings)`. Keys of channels whose adapter is
not written yet are read and checked all the same, so a config file valid today stays valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from openpista.core.settings import (
    APPROVAL,
    SettingsDeclaration,
    describe_value,
    http_url,
    not_empty,
    one_of,
    origin,
    port,
)

__all__ = [
    "CLI",
    "TELEGRAM",
    "WEB",
    "WHATSAPP",
    "CliSettings",
    "TelegramSettings",
    "WebSettings",
    "WhatsAppAccountSettings",
    "WhatsAppSettings",
]

_PHONE_NUMBER = re.compile(r"^\+?[0-9]+$")
# Telegram's own rule for the secret_token of setWebhook.
_WEBHOOK_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")

_DM_POLICY = one_of("pairing", "allowlist", "open")


def _telegram_user(value: int) -> str | None:
    return None if value >= 1 else f"expected a Telegram user id (a positive integer), got {value}"


def _phone_number(value: str) -> str | None:
    if _PHONE_NUMBER.match(value):
        return None
    return (
        'expected a phone number of digits with an optional leading "+" such as '
        f'"+15551234567", got {describe_value(value)}'
    )


def _webhook_secret(value: str) -> str | None:
    # Never echoes the value: it is a secret.
    if not value or _WEBHOOK_SECRET.match(value):
        return None
    return (
        "expected 1 to 256 letters, digits, '_' or '-' (Telegram refuses anything else), "
        f"got {len(value)} character(s) that are not (value not shown: a secret)"
    )


@dataclass(slots=True)
class CliSettings:
    enabled: bool = True
    approval: str = ""


CLI = SettingsDeclaration(CliSettings, checks={"approval": APPROVAL})


@dataclass(slots=True)
class TelegramSettings:
    enabled: bool = False
    token: str = ""
    allowed_users: list[int] = field(default_factory=lambda: [])
    dm_policy: str = "pairing"
    approval: str = ""
    stream: bool = False
    api_url: str = ""
    webhook_url: str = ""
    webhook_port: int = 8443
    webhook_secret: str = ""
    confirm_actions: bool = False


TELEGRAM = SettingsDeclaration(
    TelegramSettings,
    checks={
        "allowed_users[]": _telegram_user,
        "dm_policy": _DM_POLICY,
        "approval": APPROVAL,
        "api_url": http_url,
        "webhook_url": http_url,
        "webhook_port": port,
        "webhook_secret": _webhook_secret,
    },
    environment={
        "TELEGRAM_BOT_TOKEN": "token",
        "TELEGRAM_ALLOWED_USERS": "allowed_users",
        "TELEGRAM_API_URL": "api_url",
        "TELEGRAM_WEBHOOK_URL": "webhook_url",
        "TELEGRAM_WEBHOOK_PORT": "webhook_port",
        "TELEGRAM_WEBHOOK_SECRET": "webhook_secret",
    },
    secrets=frozenset({"token", "webhook_secret"}),
)


@dataclass(slots=True)
class WebSettings:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 3210
    token: str = ""
    cors_origins: list[str] = field(default_factory=lambda: [])
    static_dir: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    approval: str = ""


def _tls_pair(settings: WebSettings) -> tuple[str, str] | None:
    if bool(settings.tls_cert) == bool(settings.tls_key):
        return None
    missing = "tls_key" if settings.tls_cert else "tls_cert"
    return (
        missing,
        "missing; HTTPS needs both tls_cert and tls_key (set both, or neither for plain HTTP "
        "behind a proxy)",
    )


WEB = SettingsDeclaration(
    WebSettings,
    checks={
        "host": not_empty('a host or address such as "127.0.0.1"'),
        "port": port,
        "cors_origins[]": origin,
        "approval": APPROVAL,
    },
    environment={
        "OPENPISTA_WEB_TOKEN": "token",
        "OPENPISTA_WEB_PORT": "port",
        "OPENPISTA_WEB_HOST": "host",
    },
    paths=frozenset({"static_dir", "tls_cert", "tls_key"}),
    secrets=frozenset({"token"}),
    check_section=_tls_pair,
)


@dataclass(slots=True)
class WhatsAppAccountSettings:
    """One more WhatsApp number, `[channels.whatsapp.accounts.NAME]`: its own bridge and
    session; nothing is inherited from `[channels.whatsapp]`."""

    enabled: bool = True
    session_dir: str = ""
    """Empty in code; the loader fills in OPENPISTA_HOME/whatsapp-NAME when the file does not
    set it."""
    bridge_path: str = ""
    allowed_numbers: list[str] = field(default_factory=lambda: [])
    dm_policy: str = "pairing"
    approval: str = ""


@dataclass(slots=True)
class WhatsAppSettings:
    enabled: bool = False
    session_dir: str = "~/.openpista/whatsapp"
    bridge_path: str = ""
    allowed_numbers: list[str] = field(default_factory=lambda: [])
    dm_policy: str = "pairing"
    approval: str = ""
    accounts: dict[str, WhatsAppAccountSettings] = field(default_factory=lambda: {})


_WHATSAPP_KEY_CHECKS = {
    "session_dir": not_empty("a directory"),
    "allowed_numbers[]": _phone_number,
    "dm_policy": _DM_POLICY,
    "approval": APPROVAL,
}

WHATSAPP = SettingsDeclaration(
    WhatsAppSettings,
    checks={
        **_WHATSAPP_KEY_CHECKS,
        **{f"accounts.*.{key}": check for key, check in _WHATSAPP_KEY_CHECKS.items()},
    },
    environment={
        "WHATSAPP_SESSION_DIR": "session_dir",
        "WHATSAPP_BRIDGE_PATH": "bridge_path",
    },
    paths=frozenset({"session_dir", "bridge_path"}),
    home_defaults={"session_dir": "whatsapp", "accounts.*.session_dir": "whatsapp-{name}"},
)
