"""Shared fixtures: a session store in a temporary folder and a fresh session key."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.sessions import SessionStore, new_session_key


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "sessions")


@pytest.fixture
def session_key() -> str:
    return new_session_key()
