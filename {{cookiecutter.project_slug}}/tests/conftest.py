"""Shared fixtures: a clean environment, a session store in a temporary folder, a session key, and
moto's in-memory AWS for the review and preflight tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from core.config import DEFAULT_AWS_REGION, ENVIRONMENT_VARIABLES
from core.sessions import SessionStore, new_session_key


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see the defaults, not whatever the developer's shell exports (AWS_REGION, ...)."""
    for name in (*ENVIRONMENT_VARIABLES, "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "sessions")


@pytest.fixture
def session_key() -> str:
    return new_session_key()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's in-memory AWS, with fake credentials so that nothing can reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": DEFAULT_AWS_REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield
