"""Our channels' settings as a config file and the environment give them (CONTRACT section 4)."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest

from openpista.channels import settings as channel_settings
from openpista.channels.settings import (
    CliSettings,
    TelegramSettings,
    WebSettings,
    WhatsAppAccountSettings,
    WhatsAppSettings,
)
from openpista.core.config import Config, load_config
from openpista.core.errors import ConfigError


def load_text(tmp_path: Path, text: str, **env: str) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, {"OPENPISTA_HOME": str(tmp_path / "home"), **env})


def config_error(tmp_path: Path, text: str, **env: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text, **env)
    return caught.value


def test_entry_points_declare_every_channel_section() -> None:
    declared = {entry.name: entry.value for entry in entry_points(group="openpista.settings")}
    for name in ("cli", "telegram", "web", "whatsapp"):
        assert declared[f"channels.{name}"] == f"openpista.channels.settings:{name.upper()}"


def test_defaults_are_the_contracts(tmp_path: Path) -> None:
    config = load_text(tmp_path, "")
    assert config.section("channels.cli", CliSettings) == CliSettings(enabled=True)
    telegram = config.section("channels.telegram", TelegramSettings)
    assert (telegram.enabled, telegram.dm_policy, telegram.stream) == (False, "pairing", False)
    assert (telegram.webhook_port, telegram.api_url, telegram.allowed_users) == (8443, "", [])
    web = config.section("channels.web", WebSettings)
    assert (web.host, web.port, web.tls_cert, web.tls_key) == ("127.0.0.1", 3210, "", "")
    whatsapp = config.section("channels.whatsapp", WhatsAppSettings)
    assert whatsapp.session_dir == str(tmp_path / "home" / "whatsapp")
    assert (whatsapp.dm_policy, whatsapp.accounts) == ("pairing", {})


def test_whatsapp_accounts_get_their_own_session_dirs(tmp_path: Path) -> None:
    config = load_text(
        tmp_path,
        "[channels.whatsapp]\nenabled = true\n"
        '[channels.whatsapp.accounts.work]\nallowed_numbers = ["+15550100"]\n'
        '[channels.whatsapp.accounts.shop]\nsession_dir = "/srv/shop"\ndm_policy = "open"\n',
    )
    accounts = config.section("channels.whatsapp", WhatsAppSettings).accounts
    assert accounts["work"] == WhatsAppAccountSettings(
        session_dir=str(tmp_path / "home" / "whatsapp-work"), allowed_numbers=["+15550100"]
    )
    assert (accounts["shop"].session_dir, accounts["shop"].dm_policy) == ("/srv/shop", "open")


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (
            '[channels.telegram]\ndm_policy = "strangers"\n',
            "channels.telegram.dm_policy",
            'expected one of "pairing", "allowlist" or "open", got a string (\'strangers\')',
        ),
        (
            '[channels.whatsapp.accounts.work]\ndm_policy = "all"\n',
            "channels.whatsapp.accounts.work.dm_policy",
            'expected one of "pairing", "allowlist" or "open"',
        ),
        (
            '[channels.whatsapp.accounts.work]\nallowed_numbers = ["555 0100"]\n',
            "channels.whatsapp.accounts.work.allowed_numbers[0]",
            "expected a phone number",
        ),
        (
            '[channels.whatsapp.accounts.work]\nsesion_dir = "/x"\n',
            "channels.whatsapp.accounts.work.sesion_dir",
            "(did you mean session_dir?)",
        ),
        (
            '[channels.web]\ntls_cert = "/etc/cert.pem"\n',
            "channels.web.tls_key",
            "missing; HTTPS needs both tls_cert and tls_key",
        ),
        (
            '[channels.telegram]\nstream = "yes"\n',
            "channels.telegram.stream",
            "expected a boolean (true or false)",
        ),
        (
            "[channels.web]\ntls = true\n",
            "channels.web.tls",
            "unknown key; expected one of: enabled, host, port, token",
        ),
    ],
)
def test_channel_keys_are_checked(tmp_path: Path, text: str, key: str, problem: str) -> None:
    error = config_error(tmp_path, text)
    assert error.file == str(tmp_path / "config.toml")
    assert error.key == key
    assert problem in error.problem


def test_a_bad_webhook_secret_is_refused_without_showing_it(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[channels.telegram]\nwebhook_secret = "has spaces!"\n')
    assert error.key == "channels.telegram.webhook_secret"
    assert "letters, digits, '_' or '-'" in error.problem
    assert "has spaces" not in str(error)
    error = config_error(tmp_path, "", TELEGRAM_WEBHOOK_SECRET="bad secret")
    assert error.key == "TELEGRAM_WEBHOOK_SECRET"
    assert "bad secret" not in str(error)


def test_a_misspelt_channel_section_is_an_error(tmp_path: Path) -> None:
    error = config_error(tmp_path, "[channels.telgram]\nenabled = true\n")
    assert error.key == "channels.telgram"
    assert error.problem.endswith("(did you mean channels.telegram?)")


def test_the_declarations_import_nothing_but_core() -> None:
    import ast

    tree = ast.parse(Path(channel_settings.__file__).read_text(encoding="utf-8"))
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module is not None
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert imported <= {"__future__", "re", "dataclasses", "openpista.core.settings"}
