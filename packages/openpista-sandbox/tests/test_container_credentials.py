"""Task credentials: minted per task, checked in constant time, gone once revoked or expired."""

from __future__ import annotations

import pytest

from openpista.sandbox.credentials import TaskCredentials


def test_a_token_verifies_for_its_task_only_until_revoked() -> None:
    credentials = TaskCredentials()
    token = credentials.mint("task-a", ttl_s=60)
    other = credentials.mint("task-b", ttl_s=60)

    assert len(token) >= 40 and token != other
    assert credentials.verify("task-a", token)
    assert not credentials.verify("task-a", other)
    assert not credentials.verify("task-b", token)
    assert not credentials.verify("task-a", token[:-1])
    assert sorted(credentials.active_tasks()) == ["task-a", "task-b"]

    credentials.revoke("task-a")

    assert not credentials.verify("task-a", token)
    assert credentials.active_tasks() == ["task-b"]
    credentials.revoke("task-a")  # twice is harmless


def test_an_expired_token_is_refused() -> None:
    credentials = TaskCredentials()
    token = credentials.mint("task", ttl_s=0)

    assert not credentials.verify("task", token)
    assert credentials.active_tasks() == []


def test_a_task_gets_one_token() -> None:
    credentials = TaskCredentials()
    credentials.mint("task", ttl_s=60)

    with pytest.raises(ValueError, match="already has a token"):
        credentials.mint("task", ttl_s=60)
