"""Shared fixtures: a clean environment, a session store in a temporary folder, a session key."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import ENVIRONMENT_VARIABLES
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
