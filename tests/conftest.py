"""Fixtures for end-to-end tests: the real `openpista` command against a fake LLM server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from openpista.providers.testing import FakeChatCompletionsServer

OPENPISTA = str(Path(sys.executable).parent / "openpista")


@dataclass
class Openpista:
    """Runs the installed `openpista` command with its own OPENPISTA_HOME."""

    home: Path
    env: dict[str, str]

    def run(
        self, *args: str, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [OPENPISTA, *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.home,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [OPENPISTA, *args],
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.home,
        )

    def modules_loaded(self, *args: str) -> tuple[set[str], subprocess.CompletedProcess[str]]:
        """The modules `openpista ARGS` imported (by their full names), and how it ran: the
        command is run in a probe that prints `sys.modules` as it ends."""
        probe = (
            "import json, sys\n"
            "from openpista.cli.main import main\n"
            "sys.argv = ['openpista', *sys.argv[1:]]\n"
            "try:\n"
            "    main()\n"
            "except SystemExit:\n"
            "    pass\n"
            "print('MODULES:', json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", probe, *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.home,
            timeout=60,
        )
        line = [x for x in done.stderr.splitlines() if x.startswith("MODULES: ")]
        assert line, done.stderr
        return set(json.loads(line[-1].removeprefix("MODULES: "))), done

    def write_config(self, text: str) -> Path:
        path = self.home / "config.toml"
        path.write_text(text)
        return path


@pytest.fixture
def llm() -> Iterator[FakeChatCompletionsServer]:
    with FakeChatCompletionsServer() as server:
        yield server


@pytest.fixture
def openpista(tmp_path: Path, llm: FakeChatCompletionsServer) -> Openpista:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.upper().startswith(("OPENPISTA_", "OPENAI_", "TELEGRAM_", "WHATSAPP_"))
    }
    env.update(
        {
            "OPENPISTA_HOME": str(home),
            "OPENPISTA_PROVIDER": "openai",
            "OPENPISTA_MODEL": "fake-model",
            "OPENPISTA_BASE_URL": llm.base_url,
            "OPENAI_API_KEY": "sk-test-key",
            "OPENPISTA_CREDENTIALS_BACKEND": "file",
            "HOME": str(tmp_path),
        }
    )
    return Openpista(home=home, env=env)


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll `predicate` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False
