"""What users see when things go wrong: one clear line, the right exit status, no traceback."""

from __future__ import annotations

import socket

from openpista.providers.testing import FakeChatCompletionsServer

from .conftest import Openpista


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_malformed_config_exits_2_naming_file_and_key(openpista: Openpista) -> None:
    path = openpista.write_config('[agent]\nmax_tool_rounds = "many"\n')

    result = openpista.run("run", "-e", "hi")

    assert result.returncode == 2
    assert str(path) in result.stderr
    assert "agent.max_tool_rounds" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_config_syntax_error_exits_2(openpista: Openpista) -> None:
    openpista.write_config("[agent\nmodel = 1\n")
    result = openpista.run("session", "list")
    assert result.returncode == 2
    assert "config.toml" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_provider_exits_1_with_one_clear_line(openpista: Openpista) -> None:
    openpista.env["OPENPISTA_BASE_URL"] = f"http://127.0.0.1:{_free_port()}/v1"

    result = openpista.run("run", "-e", "hi")

    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "cannot reach" in lines[0]
    assert "sk-test-key" not in result.stderr
    assert "Traceback" not in result.stderr


def test_provider_refusal_reaches_the_user(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    llm.queue_error(400, "This model does not exist")
    result = openpista.run("run", "-e", "hi")
    assert result.returncode == 1
    assert "This model does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_provider_is_a_config_error(openpista: Openpista) -> None:
    result = openpista.run("run", "--provider", "nonesuch", "-e", "hi")
    assert result.returncode == 2
    assert "nonesuch" in result.stderr
    assert "openai" in result.stderr  # lists what is installed


def test_version_and_help_import_nothing_heavy(openpista: Openpista) -> None:
    version = openpista.run("--version")
    assert version.returncode == 0
    assert version.stdout == "openpista 0.1.0\n"

    heavy = {"sqlalchemy", "httpx", "aiosqlite", "alembic", "telegram", "yaml", "croniter"}
    for args in (["--version"], ["--help"], ["run", "--help"], ["session", "--help"]):
        modules, done = openpista.modules_loaded(*args)
        assert not {m.split(".")[0] for m in modules} & heavy, args
        # Settings declarations are entry points: loaded with a config, never for --help.
        settings = {m for m in modules if m == "importlib.metadata" or m.endswith(".settings")}
        assert not settings, (args, settings)
        assert "openpista" in done.stdout


def test_a_blank_or_overlong_session_id_is_refused(openpista: Openpista) -> None:
    for bad, said in ((" ", "must not be blank"), ("a" * 5000, "at most 128 characters")):
        done = openpista.run("run", "-s", bad, "-e", "hi")
        assert done.returncode == 2
        assert said in done.stderr
    assert openpista.run("session", "list", "--json").stdout.strip() == "[]"
