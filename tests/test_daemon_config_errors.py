"""`openpista start` refuses cron jobs that could never run, before it starts anything."""

from __future__ import annotations

import pytest

from .conftest import Openpista


@pytest.mark.parametrize(
    ("job", "key", "problem"),
    [
        (
            'schedule = "0 0 31 2 *"\nchannel_id = "cli:local"',
            "cron[0].schedule",
            "never fires",
        ),
        (
            'schedule = "0 9 * * *"\nchannel_id = "telegram:1"',
            "cron[0].channel_id",
            "channel 'telegram' is not enabled",
        ),
    ],
)
def test_a_cron_job_that_can_never_run_is_a_configuration_error(
    openpista: Openpista, job: str, key: str, problem: str
) -> None:
    config = openpista.write_config(
        f'[channels.telegram]\nenabled = false\n\n[[cron]]\n{job}\nmessage = "hi"\n'
    )
    result = openpista.run("start", input="", timeout=30)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"openpista: error: {config}: {key}: ")
    assert problem in result.stderr
    assert "serving" not in result.stderr  # no channel was started
    assert not (openpista.home / "openpista.pid").exists()
