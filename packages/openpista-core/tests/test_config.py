"""The configuration loader: which file, defaults, validation messages, environment overrides."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from openpista.core.config import (
    Config,
    approval_mode,
    channel_names,
    channel_setting,
    config_file,
    environment_variables,
    expand_path,
    load_config,
    provider_settings,
)
from openpista.core.errors import ConfigError


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str, **env: str) -> Config:
    path = write(tmp_path, text)
    return load_config(path, {"OPENPISTA_HOME": str(tmp_path / "home"), **env})


def get(config: Config, dotted: str) -> Any:
    """The value at `channels.web.port` or `providers.openai.api_key` in a loaded config."""
    value: Any = config
    for name in dotted.split("."):
        value = value[name] if isinstance(value, dict) else getattr(value, name)
    return value


def config_error(tmp_path: Path, text: str, **env: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text, **env)
    return caught.value


# --- which file, and defaults -----------------------------------------------------------------


def test_no_file_means_defaults_under_openpista_home(tmp_path: Path) -> None:
    config = load_config(env={"OPENPISTA_HOME": str(tmp_path)})

    assert config.source is None
    assert config.home == tmp_path
    assert config.agent.provider == "openai"
    assert config.agent.model == "gpt-4.1-mini"
    assert config.agent.max_tool_rounds == 30
    assert config.agent.timeout_s == 120.0
    assert config.agent.approval == ""
    assert config.agent.approval_timeout_s == 300.0
    assert config.agent.context_tokens == 0
    assert get(config, "tools.shell.timeout_s") == 30.0
    assert get(config, "tools.shell.max_output_chars") == 10000
    assert get(config, "channels.cli.enabled") is True
    assert get(config, "channels.telegram.enabled") is False
    assert get(config, "channels.telegram.webhook_port") == 8443
    assert get(config, "channels.web.host") == "127.0.0.1"
    assert get(config, "channels.web.port") == 3210
    assert config.providers == {}
    assert config.cron == []
    assert config.mcp.servers == {}
    assert config.database.url == str(tmp_path / "memory.db")
    assert config.skills.workspace == str(tmp_path / "workspace")
    assert get(config, "channels.whatsapp.session_dir") == str(tmp_path / "whatsapp")


def test_explicit_missing_file_is_not_an_error(tmp_path: Path) -> None:
    config = load_config(tmp_path / "nowhere.toml", {"OPENPISTA_HOME": str(tmp_path)})
    assert config.source is None
    assert config.agent.model == "gpt-4.1-mini"


def test_home_config_toml_is_read_by_default(tmp_path: Path) -> None:
    write(tmp_path, '[agent]\nmodel = "from-home"\n')
    config = load_config(env={"OPENPISTA_HOME": str(tmp_path)})
    assert config.agent.model == "from-home"
    assert config.source == tmp_path / "config.toml"


def test_openpista_config_beats_home_and_explicit_path_beats_both(tmp_path: Path) -> None:
    write(tmp_path, '[agent]\nmodel = "from-home"\n')
    other = write(tmp_path, '[agent]\nmodel = "from-env"\n', "other.toml")
    explicit = write(tmp_path, '[agent]\nmodel = "from-flag"\n', "flag.toml")
    env = {"OPENPISTA_HOME": str(tmp_path), "OPENPISTA_CONFIG": str(other)}

    assert load_config(env=env).agent.model == "from-env"
    assert load_config(explicit, env).agent.model == "from-flag"
    assert load_config(str(explicit), env).source == explicit
    assert config_file(None, env) == other


def test_lower_case_home_and_config_spellings(tmp_path: Path) -> None:
    other = write(tmp_path, '[agent]\nmodel = "lower"\n', "other.toml")
    config = load_config(env={"openpista_HOME": str(tmp_path), "openpista_CONFIG": str(other)})
    assert config.home == tmp_path
    assert config.agent.model == "lower"
    assert config.database.url == str(tmp_path / "memory.db")


def test_values_set_in_the_file_do_not_follow_openpista_home(tmp_path: Path) -> None:
    config = load_text(
        tmp_path,
        '[database]\nurl = "postgresql+asyncpg://db/openpista"\n'
        '[skills]\nworkspace = "~/skills"\n'
        '[channels.whatsapp]\nsession_dir = "/srv/wa"\n',
    )
    assert config.database.url == "postgresql+asyncpg://db/openpista"
    assert config.skills.workspace == "~/skills"
    assert get(config, "channels.whatsapp.session_dir") == "/srv/wa"


def test_a_full_file_is_read_into_the_dataclasses(tmp_path: Path) -> None:
    config = load_text(
        tmp_path,
        """
        [agent]
        provider = "ollama"
        model = "llama3.2"
        max_tool_rounds = 5
        timeout_s = 60
        approval = "ask"
        approval_timeout_s = 60
        context_tokens = 32000
        fallback_models = ["openai/gpt-4.1-mini", "openrouter/meta-llama/llama-3.3-70b"]
        system_prompt = "Be brief."

        [providers.ollama]
        base_url = "http://127.0.0.1:11434/v1"
        api = "chat"

        [providers.my-vllm]
        base_url = "http://127.0.0.1:8000/v1"
        api_key = "secret"

        [tools.shell]
        timeout_s = 2.5
        max_output_chars = 500

        [channels.telegram]
        enabled = true
        token = "123:abc"
        allowed_users = [11, 22]
        webhook_url = "https://bot.example.com/hook"
        webhook_port = 8444
        confirm_actions = true
        approval = "auto"

        [channels.web]
        enabled = true
        host = "0.0.0.0"
        port = 8080
        cors_origins = ["https://chat.example.com", "*"]

        [channels.whatsapp]
        allowed_numbers = ["+15551234567", "447700900123"]

        [[cron]]
        schedule = "0 9 * * *"
        channel_id = "telegram:12345"
        message = "Summarise my inbox"

        [[cron]]
        schedule = "30 */5 * * * *"
        channel_id = "telegram:12345:7"
        message = "Every five minutes, at 30 seconds"

        [mcp.servers.files]
        command = ["npx", "some-server", "--root", "/tmp"]

        [mcp.servers.search]
        url = "http://127.0.0.1:9000/mcp"
        """,
    )
    assert config.agent.provider == "ollama"
    assert config.agent.timeout_s == 60.0
    assert isinstance(config.agent.timeout_s, float)
    assert (config.agent.approval_timeout_s, config.agent.context_tokens) == (60.0, 32000)
    assert config.agent.fallback_models[1] == "openrouter/meta-llama/llama-3.3-70b"
    assert config.providers["ollama"].base_url == "http://127.0.0.1:11434/v1"
    assert config.providers["my-vllm"].api_key == "secret"
    assert get(config, "tools.shell.timeout_s") == 2.5
    assert get(config, "channels.telegram.allowed_users") == [11, 22]
    assert get(config, "channels.telegram.webhook_port") == 8444
    assert get(config, "channels.web.cors_origins") == ["https://chat.example.com", "*"]
    assert [job.channel_id for job in config.cron] == ["telegram:12345", "telegram:12345:7"]
    assert config.cron[1].schedule == "30 */5 * * * *"
    assert config.mcp.servers["files"].command[0] == "npx"
    assert config.mcp.servers["search"].url == "http://127.0.0.1:9000/mcp"


# --- aliases and third-party channels -----------------------------------------------------------


def test_claude_is_an_alias_of_anthropic_everywhere(tmp_path: Path) -> None:
    config = load_text(
        tmp_path,
        '[agent]\nprovider = "claude"\nfallback_models = ["claude/claude-haiku-4-5"]\n'
        '[providers.claude]\napi_key = "sk-ant"\n',
    )
    assert config.agent.provider == "anthropic"
    assert config.agent.fallback_models == ["anthropic/claude-haiku-4-5"]
    assert config.providers["anthropic"].api_key == "sk-ant"
    assert "claude" not in config.providers
    assert provider_settings(config, "claude").name == "anthropic"


def test_claude_and_anthropic_sections_together_are_refused(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[providers.claude]\napi_key = "a"\n[providers.anthropic]\n')
    assert error.key in ("providers.claude", "providers.anthropic")
    assert "keep one" in error.problem


def test_unknown_channel_sections_pass_through_for_third_party_channels(tmp_path: Path) -> None:
    config = load_text(
        tmp_path, '[channels.discord]\nenabled = true\ntoken = "x"\napproval = "auto"\n'
    )
    assert config.channels["discord"] == {"enabled": True, "token": "x", "approval": "auto"}
    assert approval_mode(config, "discord:123", one_shot=False) == "auto"


def test_an_unknown_channel_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[channels]\ndiscord = "yes"\n')
    assert error.key == "channels.discord"
    assert "expected a table" in error.problem


# --- validation: every error names the file, the key and what was expected ----------------------


def test_toml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[agent]\nmodel = "x"\nmax_tool_rounds = = 3\n')
    assert error.file == str(tmp_path / "config.toml")
    assert error.key == "line 3, column 19"
    assert error.problem.startswith("invalid TOML")
    assert str(error).startswith(f"{tmp_path / 'config.toml'}: line 3, column 19: invalid TOML")


def test_unknown_top_level_key_lists_the_known_ones(tmp_path: Path) -> None:
    error = config_error(tmp_path, "[channel.telegram]\nenabled = true\n")
    assert error.key == "channel"
    assert error.problem.startswith("unknown key; expected one of: agent, providers, database")
    assert "did you mean channels?" in error.problem


def test_unknown_key_in_a_section(tmp_path: Path) -> None:
    error = config_error(tmp_path, "[agent]\nmax_rounds = 3\n")
    assert error.key == "agent.max_rounds"
    assert "expected one of: provider, model, max_tool_rounds" in error.problem


def test_unknown_key_in_a_provider_section(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[providers.openai]\napikey = "x"\n')
    assert error.key == "providers.openai.apikey"
    assert "did you mean api_key?" in error.problem


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (
            '[agent]\nmax_tool_rounds = "abc"\n',
            "agent.max_tool_rounds",
            "expected an integer, got a string ('abc')",
        ),
        (
            "[agent]\nmax_tool_rounds = true\n",
            "agent.max_tool_rounds",
            "expected an integer, got a boolean (true)",
        ),
        ("[agent]\nmax_tool_rounds = 2.5\n", "agent.max_tool_rounds", "expected an integer"),
        ('[agent]\ntimeout_s = "60"\n', "agent.timeout_s", "expected a number, got a string"),
        ("[agent]\ntimeout_s = false\n", "agent.timeout_s", "expected a number, got a boolean"),
        ("[agent]\nmodel = 4\n", "agent.model", "expected a string, got an integer (4)"),
        (
            '[channels.cli]\nenabled = "yes"\n',
            "channels.cli.enabled",
            "expected a boolean (true or false), got a string ('yes')",
        ),
        (
            '[channels.telegram]\nallowed_users = [1, "abc"]\n',
            "channels.telegram.allowed_users[1]",
            "expected an integer, got a string ('abc')",
        ),
        (
            "[channels.telegram]\nallowed_users = 5\n",
            "channels.telegram.allowed_users",
            "expected an array of integers, got an integer (5)",
        ),
        (
            '[agent]\nfallback_models = "openai/gpt-4o"\n',
            "agent.fallback_models",
            "expected an array of strings",
        ),
        ('agent = "openai"\n', "agent", "expected a table ([agent]), got a string"),
        ('[providers]\nopenai = "sk"\n', "providers.openai", "expected a table"),
        (
            '[cron]\nschedule = "0 9 * * *"\n',
            "cron",
            "expected an array of tables ([[cron]]), got a table",
        ),
        (
            '[mcp.servers.x]\ncommand = "npx server"\n',
            "mcp.servers.x.command",
            "expected an array of strings, got a string ('npx server')",
        ),
        ("[database]\nurl = 2020-01-01\n", "database.url", "expected a string, got a date"),
    ],
)
def test_wrong_types_name_key_and_expectation(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    error = config_error(tmp_path, text)
    assert error.file == str(tmp_path / "config.toml")
    assert error.key == key
    assert problem in error.problem


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[agent]\nmax_tool_rounds = 0\n", "agent.max_tool_rounds", "at least 1, got 0"),
        ("[agent]\ntimeout_s = 0\n", "agent.timeout_s", "greater than 0, got 0"),
        ("[agent]\ntimeout_s = -5.5\n", "agent.timeout_s", "greater than 0, got -5.5"),
        ("[agent]\napproval_timeout_s = 0\n", "agent.approval_timeout_s", "greater than 0, got 0"),
        ("[agent]\ncontext_tokens = -1\n", "agent.context_tokens", "at least 0, got -1"),
        ("[agent]\ncontext_tokens = 1.5\n", "agent.context_tokens", "expected an integer"),
        ("[tools.shell]\ntimeout_s = -1\n", "tools.shell.timeout_s", "greater than 0"),
        ("[tools.shell]\nmax_output_chars = 0\n", "tools.shell.max_output_chars", "at least 1"),
        ("[channels.web]\nport = 0\n", "channels.web.port", "port from 1 to 65535, got 0"),
        ("[channels.web]\nport = 70000\n", "channels.web.port", "port from 1 to 65535"),
        (
            "[channels.telegram]\nwebhook_port = -1\n",
            "channels.telegram.webhook_port",
            "port from 1 to 65535",
        ),
        (
            "[channels.telegram]\nallowed_users = [5, -3]\n",
            "channels.telegram.allowed_users[1]",
            "positive integer",
        ),
        ('[agent]\nmodel = ""\n', "agent.model", "expected a model name"),
        ('[agent]\nprovider = "open ai"\n', "agent.provider", "expected a provider name"),
        ('[channels.web]\nhost = ""\n', "channels.web.host", "expected a host"),
        ('[database]\nurl = ""\n', "database.url", "expected a database path"),
    ],
)
def test_values_out_of_range_are_refused(tmp_path: Path, text: str, key: str, problem: str) -> None:
    error = config_error(tmp_path, text)
    assert error.key == key
    assert problem in error.problem


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[sandbox]\ntimeout_s = inf\n", "sandbox.timeout_s", "finite number of seconds"),
        ("[sandbox]\ntimeout_s = nan\n", "sandbox.timeout_s", "finite number of seconds"),
        ("[agent]\ntimeout_s = +inf\n", "agent.timeout_s", "got inf"),
        ("[sandbox]\ncpus = inf\n", "sandbox.cpus", "finite number of CPUs"),
        ("[sandbox]\ncpus = -inf\n", "sandbox.cpus", "got -inf"),
        ("[sandbox]\nmemory_mb = inf\n", "sandbox.memory_mb", "expected an integer"),
        # Below the kernel's smallest CPU quota a container would get no limit at all.
        ("[sandbox]\ncpus = 0.000001\n", "sandbox.cpus", "at least 0.01, got 1e-06"),
        ("[sandbox]\ncpus = 0.005\n", "sandbox.cpus", "at least 0.01, got 0.005"),
    ],
)
def test_sandbox_limits_must_be_finite_and_cpus_at_least_a_hundredth(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    error = config_error(tmp_path, text)

    assert str(error).startswith(f"{error.file}: {key}: ")
    assert error.file.endswith("config.toml")
    assert problem in error.problem


def test_the_smallest_cpu_limit_is_accepted(tmp_path: Path) -> None:
    assert load_text(tmp_path, "[sandbox]\ncpus = 0.01\n").sandbox.cpus == 0.01


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[agent]\napproval = "always"\n', "agent.approval"),
        ('[channels.cli]\napproval = "never"\n', "channels.cli.approval"),
        ('[channels.telegram]\napproval = "Ask"\n', "channels.telegram.approval"),
        ('[channels.web]\napproval = "yes"\n', "channels.web.approval"),
        ('[channels.whatsapp]\napproval = "no"\n', "channels.whatsapp.approval"),
    ],
)
def test_approval_must_be_auto_ask_or_empty(tmp_path: Path, text: str, key: str) -> None:
    error = config_error(tmp_path, text)
    assert error.key == key
    assert error.problem.startswith('expected one of "auto", "ask" or "" (empty: the default)')


def test_provider_api_must_be_a_known_wire_protocol(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[providers.openai]\napi = "completions"\n')
    assert error.key == "providers.openai.api"
    assert '"chat", "responses", "anthropic"' in error.problem
    assert "got a string ('completions')" in error.problem
    for api in ("", "chat", "responses", "anthropic"):
        path = write(tmp_path, f'[providers.openai]\napi = "{api}"\n', f"{api or 'empty'}.toml")
        assert load_config(path, {}).providers["openai"].api == api


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[providers.openai]\nbase_url = "api.openai.com/v1"\n', "providers.openai.base_url"),
        ('[channels.telegram]\napi_url = "ftp://x"\n', "channels.telegram.api_url"),
        ('[channels.telegram]\nwebhook_url = "bot.example.com"\n', "channels.telegram.webhook_url"),
        ('[mcp.servers.s]\nurl = "127.0.0.1:9000"\n', "mcp.servers.s.url"),
    ],
)
def test_urls_must_be_http_or_https(tmp_path: Path, text: str, key: str) -> None:
    error = config_error(tmp_path, text)
    assert error.key == key
    assert "expected an http:// or https:// URL" in error.problem


def test_cors_origins_and_phone_numbers_are_checked(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[channels.web]\ncors_origins = ["https://ok.example", "x/y"]\n')
    assert error.key == "channels.web.cors_origins[1]"
    assert "origin" in error.problem
    error = config_error(tmp_path, '[channels.whatsapp]\nallowed_numbers = ["+1 555 0100"]\n')
    assert error.key == "channels.whatsapp.allowed_numbers[0]"
    assert "phone number" in error.problem


def test_fallback_models_must_be_provider_slash_model(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[agent]\nfallback_models = ["openai/gpt-4o", "gpt-4o"]\n')
    assert error.key == "agent.fallback_models[1]"
    assert 'expected "provider/model"' in error.problem
    assert "got a string ('gpt-4o')" in error.problem


# --- cron -------------------------------------------------------------------------------------


def cron_file(
    schedule: str = "0 9 * * *", channel_id: str = "telegram:1", message: str = "hi"
) -> str:
    return (
        f'[[cron]]\nschedule = "{schedule}"\nchannel_id = "{channel_id}"\nmessage = "{message}"\n'
    )


@pytest.mark.parametrize(
    "schedule", ["0 9 * * *", "*/15 * * * 1-5", "30 0 9 * * *", "0 0 12 1 1 *", "@daily"]
)
def test_valid_cron_schedules_are_accepted(tmp_path: Path, schedule: str) -> None:
    assert load_text(tmp_path, cron_file(schedule)).cron[0].schedule == schedule


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        ("0 9 * *", "got 4 field(s)"),
        ("0 9 * * * * *", "got 7 field(s)"),
        ("61 9 * * *", "is not a valid schedule"),
        ("0 25 * * *", "is not a valid schedule"),
        ("0 9 * * * 2024", "is not a valid schedule"),  # six fields mean seconds first
        ("every day", "got 2 field(s)"),
        ("", "got 0 field(s)"),
    ],
)
def test_invalid_cron_schedules_name_the_entry(tmp_path: Path, schedule: str, problem: str) -> None:
    error = config_error(tmp_path, cron_file() + cron_file(schedule))
    assert error.key == "cron[1].schedule"
    assert "expected a cron schedule of five fields" in error.problem
    assert problem in error.problem


@pytest.mark.parametrize("schedule", ["0 0 31 2 *", "0 0 0 30 2 *"])
def test_a_cron_schedule_that_never_fires_is_refused(tmp_path: Path, schedule: str) -> None:
    error = config_error(tmp_path, cron_file(schedule))
    assert error.key == "cron[0].schedule"
    assert (
        error.problem == f"{schedule!r} never fires: no date matches it (is the day in that month?)"
    )


def test_cron_entries_need_schedule_channel_and_message(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[[cron]]\nschedule = "0 9 * * *"\nchannel_id = "cli:x"\n')
    assert error.key == "cron[0].message"
    assert error.problem == "missing; this table needs schedule, channel_id and message"


@pytest.mark.parametrize("channel_id", ["12345", "telegram:", ":12345", "telegram 1"])
def test_cron_channel_id_must_be_channel_colon_id(tmp_path: Path, channel_id: str) -> None:
    error = config_error(tmp_path, cron_file(channel_id=channel_id))
    assert error.key == "cron[0].channel_id"
    assert 'expected a channel id "CHANNEL:ID"' in error.problem


def test_cron_message_must_not_be_empty(tmp_path: Path) -> None:
    error = config_error(tmp_path, cron_file(message=""))
    assert error.key == "cron[0].message"


def test_unknown_key_in_a_cron_entry(tmp_path: Path) -> None:
    error = config_error(tmp_path, cron_file() + 'chanel = "x"\n')
    assert error.key == "cron[0].chanel"


# --- MCP --------------------------------------------------------------------------------------


def test_mcp_server_needs_exactly_one_of_command_and_url(tmp_path: Path) -> None:
    error = config_error(
        tmp_path, '[mcp.servers.both]\ncommand = ["srv"]\nurl = "http://127.0.0.1:1/mcp"\n'
    )
    assert error.key == "mcp.servers.both"
    assert error.problem.startswith("both command and url are set; set exactly one")
    error = config_error(tmp_path, "[mcp.servers.none]\n")
    assert error.key == "mcp.servers.none"
    assert error.problem.startswith("neither command nor url is set")
    error = config_error(tmp_path, "[mcp.servers.empty]\ncommand = []\n")
    assert error.key == "mcp.servers.empty"


def test_mcp_server_names_stay_plain_and_commands_hold_no_empty_strings(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[mcp.servers."my.server"]\ncommand = ["srv"]\n')
    assert error.key == 'mcp.servers."my.server"'
    assert "only letters, digits" in error.problem
    error = config_error(tmp_path, '[mcp.servers.s]\ncommand = ["srv", ""]\n')
    assert error.key == "mcp.servers.s.command[1]"


# --- files that cannot be read ----------------------------------------------------------------


def test_a_directory_as_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, {})
    assert caught.value.file == str(tmp_path)
    assert "is a directory" in caught.value.problem


def test_a_file_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'[agent]\nmodel = "\xff"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert "not UTF-8" in caught.value.problem


# --- environment overrides --------------------------------------------------------------------


ENV_CASES: list[tuple[str, str, str, Any]] = [
    ("OPENPISTA_PROVIDER", "ollama", "agent.provider", "ollama"),
    ("OPENPISTA_MODEL", "gpt-5", "agent.model", "gpt-5"),
    (
        "OPENPISTA_DATABASE_URL",
        "sqlite+aiosqlite:///x.db",
        "database.url",
        "sqlite+aiosqlite:///x.db",
    ),
    ("OPENPISTA_WORKSPACE", "/srv/skills", "skills.workspace", "/srv/skills"),
    ("TELEGRAM_BOT_TOKEN", "123:abc", "channels.telegram.token", "123:abc"),
    ("TELEGRAM_ALLOWED_USERS", "11, 22,33", "channels.telegram.allowed_users", [11, 22, 33]),
    (
        "TELEGRAM_API_URL",
        "http://127.0.0.1:8081",
        "channels.telegram.api_url",
        "http://127.0.0.1:8081",
    ),
    (
        "TELEGRAM_WEBHOOK_URL",
        "https://bot.example/hook",
        "channels.telegram.webhook_url",
        "https://bot.example/hook",
    ),
    ("TELEGRAM_WEBHOOK_PORT", "8444", "channels.telegram.webhook_port", 8444),
    ("TELEGRAM_WEBHOOK_SECRET", "s3cret", "channels.telegram.webhook_secret", "s3cret"),
    ("OPENPISTA_WEB_TOKEN", "tok", "channels.web.token", "tok"),
    ("OPENPISTA_WEB_PORT", "9000", "channels.web.port", 9000),
    ("OPENPISTA_WEB_HOST", "0.0.0.0", "channels.web.host", "0.0.0.0"),
    ("WHATSAPP_SESSION_DIR", "/srv/wa", "channels.whatsapp.session_dir", "/srv/wa"),
    ("WHATSAPP_BRIDGE_PATH", "/opt/bridge.js", "channels.whatsapp.bridge_path", "/opt/bridge.js"),
    ("OPENAI_API_KEY", "sk-openai", "providers.openai.api_key", "sk-openai"),
    ("ANTHROPIC_API_KEY", "sk-ant", "providers.anthropic.api_key", "sk-ant"),
    ("OPENROUTER_API_KEY", "sk-or", "providers.openrouter.api_key", "sk-or"),
    ("TOGETHER_API_KEY", "tg", "providers.together.api_key", "tg"),
    (
        "OLLAMA_BASE_URL",
        "http://127.0.0.1:11434/v1",
        "providers.ollama.base_url",
        "http://127.0.0.1:11434/v1",
    ),
    (
        "OPENPISTA_BASE_URL",
        "http://127.0.0.1:8000/v1",
        "providers.openai.base_url",
        "http://127.0.0.1:8000/v1",
    ),
    ("OPENPISTA_API_KEY", "sk-any", "providers.openai.api_key", "sk-any"),
]

FILE_FOR_ENV_CASES = """
[agent]
provider = "openai"
model = "from-file"
[database]
url = "/file/memory.db"
[skills]
workspace = "/file/workspace"
[providers.openai]
api_key = "file-key"
base_url = "http://file.example/v1"
[providers.ollama]
base_url = "http://file.example:11434/v1"
[providers.anthropic]
api_key = "file-ant"
[providers.openrouter]
api_key = "file-or"
[providers.together]
api_key = "file-tg"
[channels.telegram]
token = "file-token"
allowed_users = [1]
webhook_port = 9999
[channels.web]
port = 1234
host = "10.0.0.1"
token = "file-web-token"
[channels.whatsapp]
session_dir = "/file/wa"
"""


def test_the_cases_cover_every_overriding_variable() -> None:
    overriding = set(environment_variables()) - {"OPENPISTA_HOME", "OPENPISTA_CONFIG"}
    assert {case[0] for case in ENV_CASES} == overriding


@pytest.mark.parametrize(("variable", "value", "key", "expected"), ENV_CASES)
def test_each_environment_variable_overrides_the_file(
    tmp_path: Path, variable: str, value: str, key: str, expected: Any
) -> None:
    assert get(load_text(tmp_path, FILE_FOR_ENV_CASES, **{variable: value}), key) == expected


@pytest.mark.parametrize(("variable", "value", "key", "expected"), ENV_CASES)
def test_empty_environment_variables_count_as_unset(
    tmp_path: Path, variable: str, value: str, key: str, expected: Any
) -> None:
    baseline = load_text(tmp_path, FILE_FOR_ENV_CASES)
    assert get(load_text(tmp_path, FILE_FOR_ENV_CASES, **{variable: ""}), key) == get(baseline, key)


@pytest.mark.parametrize(
    ("variable", "value", "key", "expected"),
    [case for case in ENV_CASES if case[0].startswith("OPENPISTA_")],
)
def test_lower_case_openpista_spellings_are_accepted(
    tmp_path: Path, variable: str, value: str, key: str, expected: Any
) -> None:
    lower = "openpista_" + variable.removeprefix("OPENPISTA_")
    assert get(load_text(tmp_path, FILE_FOR_ENV_CASES, **{lower: value}), key) == expected


def test_upper_case_spelling_wins_over_lower_case(tmp_path: Path) -> None:
    config = load_text(tmp_path, "", OPENPISTA_MODEL="upper", openpista_MODEL="lower")
    assert config.agent.model == "upper"


def test_active_provider_variables_follow_the_provider_override(tmp_path: Path) -> None:
    config = load_text(
        tmp_path,
        FILE_FOR_ENV_CASES,
        OPENPISTA_PROVIDER="claude",
        OPENPISTA_BASE_URL="http://127.0.0.1:9/",
        OPENPISTA_API_KEY="active-key",
    )
    assert config.agent.provider == "anthropic"
    assert config.providers["anthropic"].base_url == "http://127.0.0.1:9/"
    assert config.providers["anthropic"].api_key == "active-key"
    assert config.providers["openai"].api_key == "file-key"


def test_openpista_api_key_wins_over_the_preset_variable(tmp_path: Path) -> None:
    config = load_text(
        tmp_path, FILE_FOR_ENV_CASES, OPENAI_API_KEY="preset", OPENPISTA_API_KEY="specific"
    )
    assert config.providers["openai"].api_key == "specific"
    config = load_text(tmp_path, FILE_FOR_ENV_CASES, OPENAI_API_KEY="preset")
    assert config.providers["openai"].api_key == "preset"


def test_telegram_token_alone_does_not_enable_the_channel(tmp_path: Path) -> None:
    config = load_text(tmp_path, "", TELEGRAM_BOT_TOKEN="123:abc")
    assert get(config, "channels.telegram.token") == "123:abc"
    assert get(config, "channels.telegram.enabled") is False


def test_relative_paths_in_the_environment_mean_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_text(tmp_path, "", OPENPISTA_WORKSPACE="skills", WHATSAPP_BRIDGE_PATH="b.js")
    assert config.skills.workspace == str(tmp_path / "skills")
    assert get(config, "channels.whatsapp.bridge_path") == str(tmp_path / "b.js")


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("TELEGRAM_ALLOWED_USERS", "12,abc", "expected comma-separated integers, got 'abc'"),
        ("TELEGRAM_ALLOWED_USERS", "12,-4", "positive integer"),
        ("TELEGRAM_WEBHOOK_PORT", "https", "expected an integer, got 'https'"),
        ("TELEGRAM_WEBHOOK_PORT", "0", "port from 1 to 65535"),
        ("OPENPISTA_WEB_PORT", "99999", "port from 1 to 65535"),
        ("openpista_WEB_PORT", "abc", "expected an integer"),
        ("TELEGRAM_API_URL", "127.0.0.1:8081", "http:// or https:// URL"),
        ("OPENPISTA_BASE_URL", "localhost:8000", "http:// or https:// URL"),
        ("OLLAMA_BASE_URL", "localhost:11434", "http:// or https:// URL"),
        ("OPENPISTA_PROVIDER", "open ai", "expected a provider name"),
    ],
)
def test_bad_environment_values_name_the_variable(
    tmp_path: Path, variable: str, value: str, problem: str
) -> None:
    error = config_error(tmp_path, "", **{variable: value})
    assert error.file == "environment"
    assert error.key == variable
    assert problem in error.problem
    assert str(error).startswith(f"environment: {variable}: ")


# --- helpers ------------------------------------------------------------------------------------


def test_provider_settings_resolves_the_active_or_named_provider(tmp_path: Path) -> None:
    config = load_text(
        tmp_path,
        '[agent]\nprovider = "ollama"\nmodel = "llama3.2"\ntimeout_s = 45\n'
        '[providers.ollama]\nbase_url = "http://127.0.0.1:11434/v1"\napi = "chat"\n'
        '[providers.anthropic]\napi_key = "sk-ant"\n',
    )
    active = provider_settings(config)
    assert (active.name, active.model, active.base_url, active.api, active.timeout_s) == (
        "ollama",
        "llama3.2",
        "http://127.0.0.1:11434/v1",
        "chat",
        45.0,
    )
    named = provider_settings(config, "claude", "claude-sonnet-4-5")
    assert (named.name, named.model, named.api_key) == ("anthropic", "claude-sonnet-4-5", "sk-ant")
    unknown = provider_settings(config, "together")
    assert (unknown.name, unknown.model, unknown.base_url, unknown.api_key) == (
        "together",
        "llama3.2",
        "",
        "",
    )


def test_approval_defaults_auto_for_one_shot_and_ask_elsewhere(tmp_path: Path) -> None:
    config = load_text(tmp_path, "")
    assert approval_mode(config, "cli", one_shot=True) == "auto"
    assert approval_mode(config, "tui", one_shot=False) == "ask"
    assert approval_mode(config, "cli", one_shot=False) == "ask"
    for remote in ("telegram", "telegram:42", "web:client", "whatsapp", "discord"):
        assert approval_mode(config, remote, one_shot=False) == "ask"


def test_agent_approval_applies_everywhere_and_channel_approval_overrides_it(
    tmp_path: Path,
) -> None:
    config = load_text(
        tmp_path,
        '[agent]\napproval = "ask"\n[channels.telegram]\napproval = "auto"\n'
        '[channels.cli]\napproval = "auto"\n',
    )
    assert approval_mode(config, "web", one_shot=False) == "ask"
    assert approval_mode(config, "telegram:42", one_shot=False) == "auto"
    assert approval_mode(config, "tui", one_shot=False) == "auto"
    config = load_text(tmp_path, '[agent]\napproval = "ask"\n')
    assert approval_mode(config, "cli", one_shot=True) == "ask"


def test_expand_path_takes_relative_paths_from_home(tmp_path: Path) -> None:
    assert expand_path("workspace", tmp_path) == tmp_path / "workspace"
    assert expand_path("/abs/dir", tmp_path) == Path("/abs/dir")
    assert expand_path("~/x", tmp_path) == Path.home() / "x"


def test_loading_imports_nothing_heavy_unless_cron_entries_need_croniter(tmp_path: Path) -> None:
    plain = write(tmp_path, '[agent]\nmodel = "m"\n', "plain.toml")
    with_cron = write(tmp_path, cron_file(), "cron.toml")
    script = (
        "import sys\n"
        "from openpista.core.config import load_config\n"
        "load_config(sys.argv[1], {})\n"
        "heavy = ('croniter', 'sqlalchemy', 'yaml', 'httpx', 'alembic')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    for path, expected in ((plain, ""), (with_cron, "croniter")):
        result = subprocess.run(
            [sys.executable, "-c", script, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert result.stdout.strip() == expected


def test_errors_never_show_a_secret_value(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[channels.telegram]\ntoken = 123456789\n[providers.x]\napi_key = 42\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert "123456789" not in str(caught.value)
    assert "not shown: a secret" in str(caught.value)


def test_errors_mask_passwords_in_urls(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[providers.openai]\nbase_url = "ftp://me:hunter2@example.com"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert "hunter2" not in str(caught.value)
    assert "ftp://me:***@example.com" in str(caught.value)


def test_channel_settings_come_from_typed_and_third_party_sections(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[channels.web]\nenabled = true\n[channels.discord]\napproval = "auto"\n')
    config = load_config(path, env={})
    assert channel_names(config) == ["cli", "telegram", "web", "whatsapp", "discord"]
    assert channel_setting(config, "web", "enabled") is True
    assert channel_setting(config, "discord", "approval") == "auto"
    assert channel_setting(config, "discord", "enabled", False) is False
    assert approval_mode(config, "discord:1") == "auto"
